"""Relate facies products (AAR proxy, snowline) to glacier mass balance.

:func:`regress` fits ordinary least squares ``balance = intercept + slope *
predictor`` on glacier-years, either one line for all glaciers
(``by="global"``) or one line per glacier (``by="glacier"``), reports r, RMSE
(m w.e.), the coefficients with 95 % confidence intervals and the p-value,
and cross-validates by leaving out one year (and, for the global model, one
glacier) at a time.  The reference study reports, for facies vs WGMS balance,
r = 0.65 / RMSE 0.60 m w.e. globally and r = 0.79 / RMSE 0.28 m w.e. with
glacier-specific fits.

The mass balances typically come from :func:`xfacies.massbalance.wgms.balance_for`
(WGMS (2021): Fluctuations of Glaciers Database, doi:10.5904/wgms-fog-2021-05).

Definitions
-----------
* ``rmse = sqrt(mean(residual**2))`` over the ``n`` pairs (divided by ``n``,
  not ``n - 2``), in the units of the balance (m w.e.).
* ``r`` is Pearson's correlation of predictor and balance (global) or, for
  ``by="glacier"``, of the fitted and observed balances pooled over glaciers
  (so ``r2`` is the pooled coefficient of determination of the fitted values).
* Confidence intervals: ``estimate ± t(0.975, n - 2) * standard error``;
  ``p_value``: two-sided t-test of ``slope = 0`` (as
  :func:`scipy.stats.linregress`).
* Cross-validation: every held-out glacier-year is predicted by a model fitted
  without it (without its year, or without its glacier); ``r`` and ``rmse`` of
  the held-out predictions are reported.  Leave-one-glacier-out is undefined
  for per-glacier models (NaN).

Which glacier-years are used
----------------------------
A *pair* is a (year, glacier) with a finite predictor and a finite balance.
Every glacier of the inputs is screened, in this order, and listed in
:attr:`RegressionResult.dropped` with the first reason that applies:

=============================  ==================================================
reason                         meaning
=============================  ==================================================
``no predictor values``        no finite predictor value at all (e.g. no AAR)
``no balance values``          no finite balance at all
``no common years``            both exist, but never in the same year
``constant predictor``         two or more pairs, all with the same predictor
                               (e.g. AAR = 0 every year)
``constant balance``           two or more pairs, all with the same balance
``fewer than <min_years>       fewer pairs than ``min_years``
pairs``
=============================  ==================================================

A listed glacier has no per-glacier fit.  Its pairs are left out of every fit,
``n``, :attr:`~RegressionResult.data` and the cross-validation, except that
with ``by="global"`` the pairs of a glacier with *fewer than min_years pairs*
still enter the global line (column ``in_fit`` of the table).  So ``n`` is
always the number of pairs actually used (``n == len(result.data)``).

Percent instead of fraction
---------------------------
The AAR (and its facies proxy) is a fraction 0-1; given in percent the slope
comes out 100 times too small.  The predictor is *fraction-like* when its
``units`` attribute is ``"1"``, ``"fraction"``, ``"%"`` or ``"percent"``, or,
without a ``units`` attribute, when its name (or ``long_name``) is or
contains ``aar`` as a word (``aar``, ``aar_proxy``, ``wgms_aar``), ``area ratio``
or ``fraction``.  A fraction-like predictor whose paired values exceed 1.5
raises a ``UserWarning`` naming it and the fix (divide by 100); nothing is
converted.  Balances with a median magnitude above 20 (mm w.e.) warn likewise.

Examples
--------
>>> import numpy as np, xarray as xr
>>> x = xr.DataArray(np.array([[0.2, 0.5], [0.6, 0.3], [0.4, 0.7], [0.8, 0.1]]),
...                  dims=("year", "glacier"), coords={"year": [2001, 2002, 2003, 2004],
...                                                   "glacier": ["A", "B"]})
>>> res = regress(x, 2.0 * x - 1.0)
>>> round(res.slope, 6), round(res.intercept, 6), round(res.rmse, 9), res.n
(2.0, -1.0, 0.0, 8)
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from xfacies.errors import InputError, InputWarning

__all__ = ["Fit", "CrossValidation", "RegressionResult", "regress", "tidy_pairs"]

#: Columns of :attr:`RegressionResult.dropped`.
DROPPED_COLUMNS = ("glacier", "name", "reason", "n_pairs", "in_fit")


def _empty_dropped() -> pd.DataFrame:
    return pd.DataFrame({"glacier": pd.Series([], dtype=object), "name": pd.Series([], dtype=object),
                         "reason": pd.Series([], dtype=object), "n_pairs": pd.Series([], dtype="int64"),
                         "in_fit": pd.Series([], dtype=bool)})


# --------------------------------------------------------------------------- data classes
@dataclass(frozen=True)
class Fit:
    """One least-squares line ``balance = intercept + slope * predictor``.

    Attributes
    ----------
    r, r2, rmse
        Pearson r, its square and the RMSE (m w.e.) of the fitted values.
    slope, intercept
        Coefficients; ``slope_ci`` and ``intercept_ci`` their 95 % intervals.
    slope_se, intercept_se
        Standard errors.
    n
        Number of glacier-years.
    p_value
        Two-sided p-value of ``slope = 0``.
    """

    n: int
    r: float
    r2: float
    rmse: float
    slope: float
    intercept: float
    slope_se: float
    intercept_se: float
    slope_ci: tuple[float, float]
    intercept_ci: tuple[float, float]
    p_value: float


@dataclass(frozen=True)
class CrossValidation:
    """Held-out skill of a regression.

    Attributes
    ----------
    scheme
        ``"leave-one-year-out"`` or ``"leave-one-glacier-out"``.
    r, rmse, n
        Pearson r and RMSE (m w.e.) of the held-out predictions, and their
        number (NaN / 0 when undefined).
    predictions
        DataFrame ``year, glacier, predictor, balance, predicted``.
    """

    scheme: str
    r: float
    rmse: float
    n: int
    predictions: pd.DataFrame = field(repr=False)


@dataclass(frozen=True)
class RegressionResult:
    """Result of :func:`regress`.

    Attributes
    ----------
    by
        ``"global"`` or ``"glacier"``.
    n
        Number of pairs (glacier-years) used in the fit(s), ``len(data)``.
    r, r2, rmse, slope, intercept, slope_ci, intercept_ci, p_value
        The global line (``by="global"``); for ``by="glacier"`` r, r2 and rmse
        of the pooled per-glacier fitted values and NaN coefficients (see
        ``per_glacier``).
    per_glacier
        ``{glacier: Fit}``: every glacier with a defined line (at least
        ``min_years`` pairs, predictor and balance not constant); for
        ``by="global"`` these are extra per-glacier fits for information.
    cv
        ``{"leave-one-year-out": CrossValidation, "leave-one-glacier-out": ...}``
        (empty when ``cv=False``).
    data
        DataFrame ``year, glacier, predictor, balance, fitted``: the pairs used.
    predictor_name, balance_units
        Labels used by :meth:`summary` and :meth:`plot`.
    dropped
        DataFrame ``glacier, name, reason, n_pairs, in_fit``: one row per
        glacier of the inputs without a per-glacier fit, with the reason (see
        the module docstring), its number of pairs and whether those pairs are
        nevertheless in the reported fit (only ``by="global"`` and reason
        ``fewer than <min_years> pairs``).  Empty when every glacier was fitted.
    names
        ``{glacier id: glacier name}`` where known (from a ``name``,
        ``wgms_name`` or ``glacier_name`` coordinate of the inputs, their
        ``attrs["glacier_names"]`` mapping, or ``regress(..., names=...)``).
    """

    by: str
    n: int
    r: float
    r2: float
    rmse: float
    slope: float
    intercept: float
    slope_ci: tuple[float, float]
    intercept_ci: tuple[float, float]
    p_value: float
    per_glacier: dict[str, Fit]
    cv: dict[str, CrossValidation]
    data: pd.DataFrame = field(repr=False)
    predictor_name: str = "predictor"
    balance_units: str = "m w.e."
    dropped: pd.DataFrame = field(default_factory=_empty_dropped, repr=False)
    names: dict[str, str] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ helpers
    def label(self, glacier: str) -> str:
        """The glacier's name when known, else its id.

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> c = {"year": [2001, 2002, 2003], "glacier": ["RGI60-11.00897", "X"],
        ...      "wgms_name": ("glacier", ["HINTEREISFERNER", ""])}
        >>> x = xr.DataArray(np.array([[0.2, 0.5], [0.6, 0.3], [0.4, 0.7]]), dims=("year", "glacier"), coords=c)
        >>> res = regress(x, 2 * x - 1, cv=False)
        >>> res.label("RGI60-11.00897"), res.label("X")
        ('HINTEREISFERNER', 'X')
        """
        return self.names.get(str(glacier)) or str(glacier)

    def _n_pairs_total(self) -> int:
        """Complete pairs in the inputs, used or not."""
        d = self.dropped
        return int(self.n + d.loc[~d["in_fit"].astype(bool), "n_pairs"].sum()) if len(d) else int(self.n)

    # ------------------------------------------------------------------ views
    def to_dataframe(self, *, dropped: bool = True) -> pd.DataFrame:
        """One row per fit: ``"all"``, each fitted glacier, then each dropped glacier.

        Columns ``n, r, r2, rmse, slope, slope_lo, slope_hi, intercept,
        intercept_lo, intercept_hi, p_value``, the cross-validated
        ``loyo_r, loyo_rmse, logo_r, logo_rmse`` (per glacier: the held-out
        predictions of that glacier), then ``name`` (glacier name, ``""`` when
        unknown), ``n_pairs`` (complete pairs in the inputs; for ``"all"`` all
        glaciers' pairs, used or not) and ``dropped`` (``""`` for fits, else
        the reason from :attr:`dropped`; the statistics of such rows are NaN).

        Parameters
        ----------
        dropped
            Append the rows of the dropped glaciers.

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> idx = pd.MultiIndex.from_product([[2001, 2002, 2003], ["A", "B"]], names=["year", "glacier"])
        >>> x = pd.Series([0.1, 0.4, 0.3, 0.2, 0.6, 0.5], index=idx)
        >>> regress(x, x * 3 - 1, cv=False).to_dataframe().loc["all", ["n", "slope"]].tolist()
        [6.0, 3.0]
        >>> x.loc[(slice(None), "B")] = 0.0                    # B: AAR = 0 every year
        >>> df = regress(x, x * 3 - 1 + np.array([0, 0, .1, 0, 0, 0]), cv=False).to_dataframe()
        >>> df[["n", "n_pairs", "dropped"]]
               n  n_pairs             dropped
        fit
        all  3.0        6
        A    3.0        3
        B    NaN        3  constant predictor
        """
        rows: dict[str, dict[str, float]] = {}

        def row(f: Fit | RegressionResult) -> dict[str, float]:
            return {
                "n": float(f.n), "r": f.r, "r2": f.r2, "rmse": f.rmse,
                "slope": f.slope, "slope_lo": f.slope_ci[0], "slope_hi": f.slope_ci[1],
                "intercept": f.intercept, "intercept_lo": f.intercept_ci[0],
                "intercept_hi": f.intercept_ci[1], "p_value": f.p_value,
            }

        rows["all"] = row(self)
        for g, f in self.per_glacier.items():
            rows[g] = row(f)
        df = pd.DataFrame.from_dict(rows, orient="index")
        df.index.name = "fit"
        for key, prefix in (("leave-one-year-out", "loyo"), ("leave-one-glacier-out", "logo")):
            df[f"{prefix}_r"] = np.nan
            df[f"{prefix}_rmse"] = np.nan
            cvr = self.cv.get(key)
            if cvr is None:
                continue
            df.loc["all", [f"{prefix}_r", f"{prefix}_rmse"]] = [cvr.r, cvr.rmse]
            pred = cvr.predictions.dropna(subset=["predicted"])
            for g, sub in pred.groupby("glacier"):
                if str(g) in self.per_glacier:
                    r, rmse = _r_rmse(sub["balance"].to_numpy(), sub["predicted"].to_numpy())
                    df.loc[str(g), [f"{prefix}_r", f"{prefix}_rmse"]] = [r, rmse]
        df["name"] = [self.names.get(str(g), "") if g != "all" else "" for g in df.index]
        df["n_pairs"] = [self._n_pairs_total()] + [f.n for f in self.per_glacier.values()]
        df["dropped"] = ""
        if dropped and len(self.dropped):
            extra = pd.DataFrame(
                {"name": self.dropped["name"].to_numpy(), "n_pairs": self.dropped["n_pairs"].to_numpy(),
                 "dropped": self.dropped["reason"].to_numpy()},
                index=pd.Index(self.dropped["glacier"].astype(str).to_numpy(), name="fit"))
            df = pd.concat([df, extra.reindex(columns=df.columns)])
            df.index.name = "fit"
        df["n_pairs"] = df["n_pairs"].astype("int64")
        return df

    def summary(self) -> str:
        """A short text report: fit, confidence intervals, cross-validation, per-glacier fits
        and the dropped glaciers with their reasons.

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> idx = pd.MultiIndex.from_product([[2001, 2002, 2003], ["A", "B"]], names=["year", "glacier"])
        >>> x = pd.Series([0.1, 0.0, 0.3, 0.0, 0.6, 0.0], index=idx)   # B: AAR = 0 every year
        >>> print(regress(x, x * 3 - 1 + np.array([0, .1, .1, 0, 0, 0]), cv=False).summary())
        ... # doctest: +NORMALIZE_WHITESPACE
        balance ~ predictor  (by='global', n=3 glacier-years of 1 glaciers, 1 per-glacier fits)
          slope     +2.974  95% CI [+0.07792, +5.869]
          intercept -0.9579  95% CI [-2.092, +0.176]
          r = 0.997  r2 = 0.994  RMSE = 0.047 m w.e.  p = 0.049
          per glacier:
            A                  n=3    r = 0.997  RMSE = 0.047 m w.e.  slope = +2.974 [+0.07792, +5.869]
          dropped (no per-glacier fit; 3 of 6 pairs not used):
            B                  constant predictor  (3 pairs)
        """
        u = self.balance_units
        nglac = self.data["glacier"].nunique()
        lines = [f"balance ~ {self.predictor_name}  (by={self.by!r}, n={self.n} glacier-years of "
                 f"{nglac} glaciers, {len(self.per_glacier)} per-glacier fits)"]
        if self.by == "global":
            lines.append(
                f"  slope     {self.slope:+.4g}  95% CI [{self.slope_ci[0]:+.4g}, {self.slope_ci[1]:+.4g}]"
            )
            lines.append(
                f"  intercept {self.intercept:+.4g}  95% CI [{self.intercept_ci[0]:+.4g}, "
                f"{self.intercept_ci[1]:+.4g}]"
            )
            lines.append(f"  r = {self.r:.3f}  r2 = {self.r2:.3f}  RMSE = {self.rmse:.3f} {u}  "
                         f"p = {self.p_value:.2g}")
        else:
            lines.append(f"  pooled per-glacier fits: r = {self.r:.3f}  r2 = {self.r2:.3f}  "
                         f"RMSE = {self.rmse:.3f} {u}")
        for key, cvr in self.cv.items():
            lines.append(f"  {key:<22} r = {cvr.r:.3f}  RMSE = {cvr.rmse:.3f} {u}  (n={cvr.n})")

        name_w = max((len(v) for v in self.names.values()), default=0)

        def who(g: str) -> str:
            return f"{g:<18} {self.names.get(g, ''):<{name_w}} " if name_w else f"{g:<18} "

        if self.per_glacier:
            lines.append("  per glacier:")
            for g, f in self.per_glacier.items():
                lines.append(f"    {who(g)}n={f.n:<4d} r = {f.r:.3f}  RMSE = {f.rmse:.3f} {u}  "
                             f"slope = {f.slope:+.4g} [{f.slope_ci[0]:+.4g}, {f.slope_ci[1]:+.4g}]")
        d = self.dropped
        if len(d):
            unused = self._n_pairs_total() - self.n
            lines.append(f"  dropped (no per-glacier fit; {unused} of {self._n_pairs_total()} pairs not used):")
            width = max(len(str(s)) for s in d["reason"])
            for g, reason, k, used in zip(d["glacier"], d["reason"], d["n_pairs"], d["in_fit"]):
                extra = "; in the global fit" if used else ""
                lines.append(f"    {who(str(g))}{reason:<{width}}  ({k} pairs{extra})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def plot(self, path: str | Path | None = None, *, dpi: int = 100, max_size: float = 24.0,
             max_panels: int | None = 30) -> Any:
        """The pooled scatter with the fit(s) on top, and small multiples: one panel per glacier.

        The pooled panel shows every pair used with the global line
        (``by="global"``) or the per-glacier lines (``by="glacier"``); its
        legend sits outside the data, to its right.  Below it, a grid of
        ``ceil(sqrt(n_glaciers))`` columns of panels with shared axes (tick
        labels on the outer panels only), ordered by panel title.  Each panel
        is titled with the glacier's name when known (else its id; duplicated
        names get the id appended) and carries its ``r`` and ``n`` in the
        corner the line leaves free.  Dropped glaciers have no panel; the
        figure title counts them by reason (see :attr:`dropped`).

        With more than ``max_panels`` glaciers, the panels show the
        ``max_panels`` glaciers with the most years (the pooled panel keeps
        every glacier, and the title says how many have a panel): 118 panels
        are neither readable nor quick to draw.  ``None``: every glacier.

        The figure is at most ``max_size`` × ``max_size`` inches: at the
        default ``dpi=100`` at most 2400 × 2400 px, whatever the number of
        glaciers (panels shrink instead).  Uses matplotlib's object API on an
        Agg canvas (no GUI, no global pyplot state).

        Parameters
        ----------
        path
            Where to save the figure (format from the suffix, e.g. ``.png``).
        dpi
            Resolution when saving; the PNG is ``figsize * dpi`` pixels.
        max_size
            Largest width and height of the figure, in inches.
        max_panels
            Most glacier panels (the glaciers with most years); ``None``: all.

        Returns
        -------
        matplotlib.figure.Figure
            ``fig.axes[0]`` is the pooled panel, ``fig.axes[1:]`` the glaciers.

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> rng = np.random.default_rng(1)
        >>> c = {"year": np.arange(2001, 2011), "glacier": ["RGI60-11.00897", "RGI60-11.00787"],
        ...      "wgms_name": ("glacier", ["HINTEREISFERNER", "KESSELWANDFERNER"])}
        >>> aar = xr.DataArray(rng.uniform(0.1, 0.8, (10, 2)), dims=("year", "glacier"), coords=c)
        >>> fig = regress(aar, 3 * aar - 1.8 + 0.1 * rng.standard_normal((10, 2))).plot("fit.png")
        >>> [a.get_title() for a in fig.axes[1:]]
        ['HINTEREISFERNER', 'KESSELWANDFERNER']
        >>> [round(v * 100) for v in fig.get_size_inches()]      # pixels at dpi=100
        [750, 724]
        """
        from xfacies.massbalance.figure import regression_figure

        return regression_figure(self, path, dpi=dpi, max_size=max_size, max_panels=max_panels)

# --------------------------------------------------------------------------- core maths
def _r_rmse(obs: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    obs = np.asarray(obs, float)
    pred = np.asarray(pred, float)
    ok = np.isfinite(obs) & np.isfinite(pred)
    obs, pred = obs[ok], pred[ok]
    if obs.size == 0:
        return np.nan, np.nan
    s = _scale(np.concatenate([obs, pred]))  # exact (a power of two): no overflow or underflow
    obs, pred = obs / s, pred / s
    rmse = float(np.sqrt(np.mean((obs - pred) ** 2))) * s
    if obs.size < 2 or np.ptp(obs) == 0 or np.ptp(pred) == 0:
        return np.nan, rmse
    return float(np.corrcoef(obs, pred)[0, 1]), rmse


def _scale(v: np.ndarray) -> float:
    """A power of two near ``max |v|`` (1 for empty, zero or non-finite ``v``): dividing by it is
    exact and brings the values near 1, so that squares and sums of squares neither overflow
    (values of 1e160) nor underflow (1e-170) and the fit is the same at any scale."""
    m = float(np.max(np.abs(v))) if v.size else 0.0
    if not np.isfinite(m) or m == 0.0:
        return 1.0
    return float(np.ldexp(1.0, int(np.frexp(m)[1])))


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept (NaN when x has no spread or n < 2)."""
    if x.size < 2:
        return np.nan, np.nan
    sx, sy = _scale(x), _scale(y)  # scaled by powers of two: exact, and no overflow/underflow
    x, y = x / sx, y / sy
    xm, ym = x.mean(), y.mean()
    sxx = np.sum((x - xm) ** 2)
    if sxx == 0:
        return np.nan, np.nan
    slope = float(np.sum((x - xm) * (y - ym)) / sxx)
    return slope * sy / sx, float(ym - slope * xm) * sy


def _fit(x: np.ndarray, y: np.ndarray) -> Fit:
    from scipy import stats

    n = int(x.size)
    nan2 = (np.nan, np.nan)
    # fitted on x / sx and y / sy (powers of two: exact), so that 1e160 or 1e-170 neither
    # overflow nor underflow; slope, intercept, rmse and errors are scaled back
    sx, sy = _scale(np.asarray(x, float)), _scale(np.asarray(y, float))
    x, y = np.asarray(x, float) / sx, np.asarray(y, float) / sy
    slope, intercept = _line(x, y)
    if not np.isfinite(slope):
        return Fit(n, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, nan2, nan2, np.nan)
    fitted = intercept + slope * x
    resid = y - fitted
    rmse = float(np.sqrt(np.mean(resid**2)))
    r = float(np.corrcoef(x, y)[0, 1]) if np.ptp(y) > 0 else np.nan
    kb, ka = sy / sx, sy  # back to the units of the inputs: slope, intercept (and rmse)
    if n < 3:
        return Fit(n, r, r * r, rmse * sy, slope * kb, intercept * ka, np.nan, np.nan, nan2, nan2, np.nan)
    xm = x.mean()
    sxx = float(np.sum((x - xm) ** 2))
    s2 = float(np.sum(resid**2)) / (n - 2)
    se_b = float(np.sqrt(s2 / sxx))
    se_a = float(np.sqrt(s2 * (1.0 / n + xm * xm / sxx)))
    tq = float(stats.t.ppf(0.975, n - 2))
    if se_b > 0:
        p = float(2.0 * stats.t.sf(abs(slope / se_b), n - 2))
    else:
        p = 0.0
    slope, intercept, se_b, se_a = slope * kb, intercept * ka, se_b * kb, se_a * ka
    return Fit(n, r, r * r, rmse * sy, slope, intercept, se_b, se_a,
               (slope - tq * se_b, slope + tq * se_b),
               (intercept - tq * se_a, intercept + tq * se_a), p)


# --------------------------------------------------------------------------- inputs
def _as_series(obj: Any, what: str) -> pd.Series:
    if isinstance(obj, xr.DataArray):
        missing = [d for d in ("year", "glacier") if d not in obj.dims]
        if missing or obj.ndim != 2:
            raise InputError(
                f"{what} must be a (year, glacier) DataArray; got dims {obj.dims}. For per-date "
                "products pick one value per year first, e.g. xfacies.products.end_of_season"
            )
        s = obj.transpose("year", "glacier").to_series()
    elif isinstance(obj, pd.Series):
        names = list(obj.index.names)
        if obj.index.nlevels != 2 or set(names) != {"year", "glacier"}:
            raise InputError(
                f"{what} must be a pandas Series indexed by (year, glacier); got index levels {names}"
            )
        s = obj.reorder_levels(["year", "glacier"])
    else:
        raise TypeError(
            f"{what} must be an xarray.DataArray (year, glacier) or a pandas Series with a "
            f"(year, glacier) MultiIndex, got {type(obj).__name__}"
        )
    if s.index.duplicated().any():
        raise InputError(f"{what} has duplicate (year, glacier) entries")
    s = pd.to_numeric(s, errors="raise").astype(float)
    s.index = pd.MultiIndex.from_arrays(
        [s.index.get_level_values("year").astype(int),
         s.index.get_level_values("glacier").astype(str)], names=["year", "glacier"]
    )
    return s


def _pairs(x: pd.Series, y: pd.Series) -> pd.DataFrame:
    d = pd.concat([x.rename("predictor"), y.rename("balance")], axis=1, join="inner").dropna()
    for col in ("predictor", "balance"):  # only finite pairs enter a fit; say so when some are not
        v = d[col].to_numpy(dtype=float)
        bad = ~np.isfinite(v)
        if bad.any():
            where = ", ".join(f"{g} {y}" for y, g in list(d.index[bad])[:5])
            warnings.warn(
                f"the {col} holds {int(bad.sum())} infinite value(s) ({where}{' ...' if bad.sum() > 5 else ''}); "
                "those pairs are left out of the fit. Check how the values were computed (e.g. a "
                "division by a zero area) and set them to NaN.", InputWarning, stacklevel=4)
            d = d[np.isfinite(d[col].to_numpy(dtype=float))]
    return d.reset_index().sort_values(["glacier", "year"], ignore_index=True)


def tidy_pairs(predictor: Any, balance: Any) -> pd.DataFrame:
    """Align predictor and balance on (year, glacier) and drop incomplete pairs.

    Parameters
    ----------
    predictor, balance
        ``(year, glacier)`` DataArrays or Series with a ``(year, glacier)``
        MultiIndex; glacier ids are compared as strings.

    Returns
    -------
    pandas.DataFrame
        Columns ``year, glacier, predictor, balance``, sorted by glacier then year.

    Examples
    --------
    >>> import pandas as pd
    >>> i = pd.MultiIndex.from_tuples([(2000, "A"), (2001, "A")], names=["year", "glacier"])
    >>> tidy_pairs(pd.Series([0.3, None], index=i), pd.Series([-1.0, 0.2], index=i)).shape
    (1, 4)
    """
    return _pairs(_as_series(predictor, "predictor"), _as_series(balance, "balance"))


_FRACTION_UNITS = {"1", "fraction", "%", "percent"}
_FRACTION_NAME = re.compile(r"(?:^|[^a-z0-9])aar(?:[^a-z0-9]|$)|area[\s_-]?ratio|fraction", re.IGNORECASE)


def _fraction_like(obj: Any) -> str | None:
    """Why ``obj`` is taken for a fraction (AAR-like) predictor, or None (module docstring)."""
    attrs = getattr(obj, "attrs", None) or {}
    units = attrs.get("units")
    if units is not None and str(units).strip() != "":
        u = str(units).strip()
        return f"units {u!r}" if u.lower() in _FRACTION_UNITS else None
    for label in (getattr(obj, "name", None), attrs.get("long_name")):
        if isinstance(label, str) and _FRACTION_NAME.search(label):
            return f"name {label!r}"
    return None


def _check_percent(predictor: Any, values: np.ndarray, pname: str) -> None:
    why = _fraction_like(predictor)
    if why is None or values.size == 0:
        return
    top = float(np.nanmax(values))
    if top > 1.5:
        warnings.warn(
            f"predictor {pname!r} is fraction-like ({why}) but its values reach {top:.4g}: it looks like "
            "percent (0-100), which makes the slope 100 times too small. regress expects a fraction "
            f"0-1: pass {pname} / 100 (and attrs['units'] = '1'), or read WGMS AAR with "
            "xfacies.massbalance.wgms.overview_for(..., 'aar'), which is a fraction", InputWarning,
            stacklevel=3,
        )


_NAME_COORDS = ("glacier_name", "wgms_name", "name")  # later ones win


def _valid_name(v: Any) -> bool:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return False
    return str(v).strip() not in ("", "nan", "None", "<NA>")


def _names_of(obj: Any) -> dict[str, str]:
    """Glacier names carried by an input: ``attrs["glacier_names"]`` and name coordinates."""
    out: dict[str, str] = {}
    attrs = getattr(obj, "attrs", None) or {}
    mapping = attrs.get("glacier_names")
    if isinstance(mapping, Mapping):
        out.update({str(k): str(v).strip() for k, v in mapping.items() if _valid_name(v)})
    if isinstance(obj, xr.DataArray) and "glacier" in obj.dims:
        for key in _NAME_COORDS:
            c = obj.coords.get(key)
            if c is not None and c.dims == ("glacier",):
                out.update({str(g): str(v).strip() for g, v in zip(obj["glacier"].values, c.values)
                            if _valid_name(v)})
    return out


def _screen(x: pd.Series, y: pd.Series, d: pd.DataFrame, *, by: str, min_years: int,
            names: Mapping[str, str]) -> tuple[list[str], pd.DataFrame]:
    """Glaciers with a defined per-glacier line, and the table of the others (module docstring)."""
    glaciers = sorted(set(x.index.get_level_values("glacier")) | set(y.index.get_level_values("glacier")))
    has_x = set(x.dropna().index.get_level_values("glacier"))
    has_y = set(y.dropna().index.get_level_values("glacier"))
    groups = d.groupby("glacier", sort=False).indices
    px, pb = d["predictor"].to_numpy(), d["balance"].to_numpy()
    fittable: list[str] = []
    rows: list[dict[str, Any]] = []
    for g in glaciers:
        idx = groups.get(g, np.array([], dtype=int))
        k = int(len(idx))
        if k == 0:
            reason = ("no predictor values" if g not in has_x else
                      "no balance values" if g not in has_y else "no common years")
        elif k >= 2 and np.ptp(px[idx]) == 0:
            reason = "constant predictor"
        elif k >= 2 and np.ptp(pb[idx]) == 0:
            reason = "constant balance"
        elif k < min_years:
            reason = f"fewer than {min_years} pairs"
        else:
            fittable.append(g)
            continue
        rows.append({"glacier": g, "name": names.get(g, ""), "reason": reason, "n_pairs": k,
                     "in_fit": by == "global" and reason.startswith("fewer than")})
    table = pd.DataFrame(rows, columns=list(DROPPED_COLUMNS)) if rows else _empty_dropped()
    table["n_pairs"] = table["n_pairs"].astype("int64")
    table["in_fit"] = table["in_fit"].astype(bool)
    return fittable, table


def _reasons(dropped: pd.DataFrame) -> str:
    if not len(dropped):
        return "none dropped"
    return ", ".join(f"{k} with {r}" for r, k in dropped["reason"].value_counts(sort=False).items())


# --------------------------------------------------------------------------- CV
def _predict(train: pd.DataFrame, test: pd.DataFrame, by: str) -> np.ndarray:
    out = np.full(len(test), np.nan)
    if by == "global":
        slope, intercept = _line(train["predictor"].to_numpy(), train["balance"].to_numpy())
        return intercept + slope * test["predictor"].to_numpy()
    for g, idx in test.groupby("glacier").indices.items():
        t = train[train["glacier"] == g]
        slope, intercept = _line(t["predictor"].to_numpy(), t["balance"].to_numpy())
        out[idx] = intercept + slope * test["predictor"].to_numpy()[idx]
    return out


def _cross_validate(d: pd.DataFrame, by: str, group: str, scheme: str) -> CrossValidation:
    pred = np.full(len(d), np.nan)
    if not (by == "glacier" and group == "glacier"):
        for _, idx in d.groupby(group).indices.items():
            mask = np.ones(len(d), bool)
            mask[idx] = False
            pred[idx] = _predict(d[mask], d.iloc[idx], by)
    p = d[["year", "glacier", "predictor", "balance"]].copy()
    p["predicted"] = pred
    r, rmse = _r_rmse(p["balance"].to_numpy(), pred)
    return CrossValidation(scheme, r, rmse, int(np.isfinite(pred).sum()), p)


# --------------------------------------------------------------------------- API
def regress(
    predictor: xr.DataArray | pd.Series,
    balance: xr.DataArray | pd.Series,
    by: Literal["global", "glacier"] = "global",
    *,
    cv: bool = True,
    min_years: int = 3,
    names: Mapping[str, str] | None = None,
) -> RegressionResult:
    """Least-squares regression of mass balance on a facies predictor.

    Parameters
    ----------
    predictor
        E.g. the end-of-season AAR proxy: a ``(year, glacier)`` DataArray, or
        a Series with a ``(year, glacier)`` MultiIndex.  An AAR is a
        **fraction** 0-1 (see the module docstring for the percent check).
    balance
        Mass balance in **m w.e.** on the same labels (for example
        :func:`xfacies.massbalance.wgms.balance_for`); only pairs present and finite in both
        are used.
    by
        ``"global"``: one line for all glaciers; ``"glacier"``: one line per
        glacier.
    cv
        Also run leave-one-year-out and leave-one-glacier-out cross-validation.
    min_years
        Minimum number of pairs for a per-glacier fit (at least 3, so that a
        confidence interval exists).
    names
        ``{glacier id: name}`` for the report and the figure; overrides the
        names found in the inputs (a ``name``, ``wgms_name`` or
        ``glacier_name`` coordinate along ``glacier``, or an
        ``attrs["glacier_names"]`` mapping; the balance's win over the
        predictor's).

    Returns
    -------
    RegressionResult
        With r, r2, rmse, slope/intercept and 95 % CIs, ``n`` (pairs used),
        p_value, ``per_glacier`` fits, ``cv`` results, the ``dropped``
        glaciers with their reasons, ``.to_dataframe()``, ``.summary()`` and
        ``.plot(path)``.  See the module docstring for the definitions and
        for which glaciers are dropped.

    Raises
    ------
    ValueError
        Fewer than 3 complete pairs (in all, or left after dropping
        glaciers), a predictor without spread, no glacier with a defined line
        for ``by="glacier"``, inputs not on (year, glacier), or an unknown
        ``by`` or ``min_years`` below 3.

    Warns
    -----
    UserWarning
        When the balances look like mm w.e. (median magnitude above 20), or a
        fraction-like predictor (AAR) looks like percent (values above 1.5).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> aar = xr.DataArray(rng.uniform(0.1, 0.8, (20, 3)), dims=("year", "glacier"),
    ...                    coords={"year": np.arange(2001, 2021), "glacier": ["A", "B", "C"]})
    >>> mb = 3.0 * aar - 1.8 + 0.1 * rng.standard_normal(aar.shape)
    >>> res = regress(aar, mb)
    >>> res.n, round(res.slope, 1), res.r > 0.95
    (60, 3.0, True)
    >>> sorted(res.cv)
    ['leave-one-glacier-out', 'leave-one-year-out']

    A glacier whose AAR is 0 every year has no line; it is dropped, listed and
    not counted:

    >>> res = regress(aar.where(aar.glacier != "C", 0.0), mb, by="glacier")
    >>> res.n, sorted(res.per_glacier)
    (40, ['A', 'B'])
    >>> res.dropped
      glacier name              reason  n_pairs  in_fit
    0       C       constant predictor       20   False

    AAR in percent is flagged:

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     _ = regress((100 * aar).rename("aar"), mb)
    >>> print(str(w[0].message).split(":")[0])
    predictor 'aar' is fraction-like (name 'aar') but its values reach 79.8
    """
    if by not in ("global", "glacier"):
        raise InputError(f"by must be 'global' or 'glacier', got {by!r}")
    if min_years < 3:
        raise InputError(f"min_years must be at least 3, got {min_years}")
    xs = _as_series(predictor, "predictor")
    ys = _as_series(balance, "balance")
    d = _pairs(xs, ys)
    if len(d) < 3:
        raise InputError(
            f"only {len(d)} complete (year, glacier) pairs in common between predictor and "
            "balance; need at least 3 (check that the glacier ids and years overlap)"
        )
    med = float(np.median(np.abs(d["balance"])))
    if med > 20:
        warnings.warn(
            f"the balances have a median magnitude of {med:.3g}: they look like mm w.e.; "
            "regress expects m w.e. (divide by 1000, or use xfacies.massbalance.wgms readers)",
            InputWarning, stacklevel=2,
        )
    pname = str(getattr(predictor, "name", None) or "predictor")
    _check_percent(predictor, d["predictor"].to_numpy(), pname)
    if np.ptp(d["predictor"].to_numpy()) == 0:
        raise InputError("the predictor is constant over all pairs; nothing to regress on")

    known = {**_names_of(predictor), **_names_of(balance)}
    if names is not None:
        known.update({str(k): str(v).strip() for k, v in names.items() if _valid_name(v)})
    fittable, dropped = _screen(xs, ys, d, by=by, min_years=min_years, names=known)
    used = set(fittable) | set(dropped.loc[dropped["in_fit"], "glacier"])
    d = d[d["glacier"].isin(used)].reset_index(drop=True)

    per: dict[str, Fit] = {}
    for g, s in d.groupby("glacier", sort=False):
        if g in fittable:
            per[str(g)] = _fit(s["predictor"].to_numpy(), s["balance"].to_numpy())

    nan2 = (np.nan, np.nan)
    if by == "global":
        if len(d) < 3 or np.ptp(d["predictor"].to_numpy()) == 0:
            raise InputError(
                f"only {len(d)} pairs (with a varying predictor) are left after dropping glaciers "
                f"({_reasons(dropped)}); need at least 3 with some spread in the predictor"
            )
        f = _fit(d["predictor"].to_numpy(), d["balance"].to_numpy())
        d["fitted"] = f.intercept + f.slope * d["predictor"]
        top = dict(n=f.n, r=f.r, r2=f.r2, rmse=f.rmse, slope=f.slope, intercept=f.intercept,
                   slope_ci=f.slope_ci, intercept_ci=f.intercept_ci, p_value=f.p_value)
    else:
        if not per:
            raise InputError(
                f"no glacier has a defined line ({min_years} or more complete years, predictor and "
                f"balance not constant): {_reasons(dropped)}; use by='global' or lower min_years"
            )
        fitted = np.empty(len(d))
        for g, idx in d.groupby("glacier").indices.items():
            fg = per[str(g)]
            fitted[idx] = fg.intercept + fg.slope * d["predictor"].to_numpy()[idx]
        d["fitted"] = fitted
        r, rmse = _r_rmse(d["balance"].to_numpy(), fitted)
        top = dict(n=len(d), r=r, r2=r * r, rmse=rmse, slope=np.nan, intercept=np.nan,
                   slope_ci=nan2, intercept_ci=nan2, p_value=np.nan)

    cvs: dict[str, CrossValidation] = {}
    if cv:
        cvs["leave-one-year-out"] = _cross_validate(d, by, "year", "leave-one-year-out")
        cvs["leave-one-glacier-out"] = _cross_validate(d, by, "glacier", "leave-one-glacier-out")

    units = "m w.e."
    if isinstance(balance, xr.DataArray):
        units = str(balance.attrs.get("units", units))
    glaciers_used = set(d["glacier"])
    return RegressionResult(by=by, per_glacier=per, cv=cvs, data=d,
                            predictor_name=pname, balance_units=units, dropped=dropped,
                            names={g: n for g, n in known.items() if g in glaciers_used
                                   or g in set(dropped["glacier"])},
                            **top)
