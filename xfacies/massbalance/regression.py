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

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["Fit", "CrossValidation", "RegressionResult", "regress", "tidy_pairs"]


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
    n, r, r2, rmse, slope, intercept, slope_ci, intercept_ci, p_value
        The global line (``by="global"``); for ``by="glacier"`` r, r2 and rmse
        of the pooled per-glacier fitted values and NaN coefficients (see
        ``per_glacier``).
    per_glacier
        ``{glacier: Fit}`` (every glacier with at least 3 years; for
        ``by="global"`` these are extra per-glacier fits for information).
    cv
        ``{"leave-one-year-out": CrossValidation, "leave-one-glacier-out": ...}``
        (empty when ``cv=False``).
    data
        DataFrame ``year, glacier, predictor, balance, fitted``.
    predictor_name, balance_units
        Labels used by :meth:`summary` and :meth:`plot`.
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

    # ------------------------------------------------------------------ views
    def to_dataframe(self) -> pd.DataFrame:
        """One row per fit: ``"all"`` then each glacier.

        Columns ``n, r, r2, rmse, slope, slope_lo, slope_hi, intercept,
        intercept_lo, intercept_hi, p_value`` and the cross-validated
        ``loyo_r, loyo_rmse, logo_r, logo_rmse`` (per glacier: the held-out
        predictions of that glacier).

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> idx = pd.MultiIndex.from_product([[2001, 2002, 2003], ["A", "B"]], names=["year", "glacier"])
        >>> x = pd.Series([0.1, 0.4, 0.3, 0.2, 0.6, 0.5], index=idx)
        >>> regress(x, x * 3 - 1, cv=False).to_dataframe().loc["all", ["n", "slope"]].tolist()
        [6.0, 3.0]
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
                if str(g) in df.index:
                    r, rmse = _r_rmse(sub["balance"].to_numpy(), sub["predicted"].to_numpy())
                    df.loc[str(g), [f"{prefix}_r", f"{prefix}_rmse"]] = [r, rmse]
        return df

    def summary(self) -> str:
        """A short text report (fit, confidence intervals, cross-validation)."""
        u = self.balance_units
        lines = [f"balance ~ {self.predictor_name}  (by={self.by!r}, n={self.n} glacier-years, "
                 f"{self.data['glacier'].nunique()} glaciers)"]
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
        if self.per_glacier:
            lines.append("  per glacier:")
            for g, f in self.per_glacier.items():
                lines.append(f"    {g:<18} n={f.n:<4d} r = {f.r:.3f}  RMSE = {f.rmse:.3f} {u}  "
                             f"slope = {f.slope:+.4g} [{f.slope_ci[0]:+.4g}, {f.slope_ci[1]:+.4g}]")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def plot(self, path: str | Path | None = None, *, dpi: int = 100) -> Any:
        """Scatter of balance vs predictor with the fit(s), plus one panel per glacier.

        Uses matplotlib's object API on an Agg canvas (no GUI, no global
        pyplot state).

        Parameters
        ----------
        path
            Where to save the figure (format from the suffix, e.g. ``.png``).
        dpi
            Resolution when saving.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        d = self.data
        glaciers = list(pd.unique(d["glacier"]))
        ng = len(glaciers)
        ncols = min(4, max(ng, 1))
        nrows_g = int(np.ceil(ng / ncols))
        fig = Figure(figsize=(3.2 * max(ncols, 2), 4.2 + 2.8 * nrows_g), layout="constrained")
        FigureCanvasAgg(fig)
        gs = fig.add_gridspec(1 + nrows_g, ncols, height_ratios=[1.6] + [1.0] * nrows_g)
        ax = fig.add_subplot(gs[0, :])
        colors = {g: f"C{i % 10}" for i, g in enumerate(glaciers)}
        xr_ = np.array([np.nanmin(d["predictor"]), np.nanmax(d["predictor"])])
        for g in glaciers:
            s = d[d["glacier"] == g]
            ax.scatter(s["predictor"], s["balance"], s=14, color=colors[g], alpha=0.7, label=str(g))
            if self.by == "glacier" and g in self.per_glacier:
                f = self.per_glacier[g]
                xs = np.array([s["predictor"].min(), s["predictor"].max()])
                ax.plot(xs, f.intercept + f.slope * xs, color=colors[g], lw=1.2)
        if self.by == "global":
            ax.plot(xr_, self.intercept + self.slope * xr_, color="k", lw=1.8,
                    label=f"fit: r={self.r:.2f}, RMSE={self.rmse:.2f} {self.balance_units}")
        ax.axhline(0.0, color="0.6", lw=0.6)
        ax.set_xlabel(self.predictor_name)
        ax.set_ylabel(f"mass balance ({self.balance_units})")
        title = (f"by={self.by}: r = {self.r:.2f}, RMSE = {self.rmse:.2f} {self.balance_units}, "
                 f"n = {self.n}")
        loyo = self.cv.get("leave-one-year-out")
        if loyo is not None and np.isfinite(loyo.rmse):
            title += f"; LOYO RMSE = {loyo.rmse:.2f}"
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, ncols=2, loc="best")
        for i, g in enumerate(glaciers):
            a = fig.add_subplot(gs[1 + i // ncols, i % ncols])
            s = d[d["glacier"] == g]
            a.scatter(s["predictor"], s["balance"], s=10, color=colors[g])
            f = self.per_glacier.get(g)
            xs = np.array([s["predictor"].min(), s["predictor"].max()])
            if self.by == "global":
                a.plot(xs, self.intercept + self.slope * xs, color="k", lw=1.0, label="global")
            if f is not None:
                a.plot(xs, f.intercept + f.slope * xs, color=colors[g], lw=1.2, label="glacier")
                a.set_title(f"{g}\nr={f.r:.2f} RMSE={f.rmse:.2f} n={f.n}", fontsize=8)
            else:
                a.set_title(f"{g}\n(n={len(s)}, too few to fit)", fontsize=8)
            a.axhline(0.0, color="0.6", lw=0.5)
            a.tick_params(labelsize=7)
        if path is not None:
            fig.savefig(path, dpi=dpi)
        return fig


# --------------------------------------------------------------------------- core maths
def _r_rmse(obs: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    obs = np.asarray(obs, float)
    pred = np.asarray(pred, float)
    ok = np.isfinite(obs) & np.isfinite(pred)
    obs, pred = obs[ok], pred[ok]
    if obs.size == 0:
        return np.nan, np.nan
    rmse = float(np.sqrt(np.mean((obs - pred) ** 2)))
    if obs.size < 2 or np.ptp(obs) == 0 or np.ptp(pred) == 0:
        return np.nan, rmse
    return float(np.corrcoef(obs, pred)[0, 1]), rmse


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept (NaN when x has no spread or n < 2)."""
    if x.size < 2:
        return np.nan, np.nan
    xm, ym = x.mean(), y.mean()
    sxx = np.sum((x - xm) ** 2)
    if sxx == 0:
        return np.nan, np.nan
    slope = float(np.sum((x - xm) * (y - ym)) / sxx)
    return slope, float(ym - slope * xm)


def _fit(x: np.ndarray, y: np.ndarray) -> Fit:
    from scipy import stats

    n = int(x.size)
    slope, intercept = _line(x, y)
    nan2 = (np.nan, np.nan)
    if not np.isfinite(slope):
        return Fit(n, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, nan2, nan2, np.nan)
    fitted = intercept + slope * x
    resid = y - fitted
    rmse = float(np.sqrt(np.mean(resid**2)))
    r = float(np.corrcoef(x, y)[0, 1]) if np.ptp(y) > 0 else np.nan
    if n < 3:
        return Fit(n, r, r * r, rmse, slope, intercept, np.nan, np.nan, nan2, nan2, np.nan)
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
    return Fit(n, r, r * r, rmse, slope, intercept, se_b, se_a,
               (slope - tq * se_b, slope + tq * se_b),
               (intercept - tq * se_a, intercept + tq * se_a), p)


# --------------------------------------------------------------------------- inputs
def _as_series(obj: Any, what: str) -> pd.Series:
    if isinstance(obj, xr.DataArray):
        missing = [d for d in ("year", "glacier") if d not in obj.dims]
        if missing or obj.ndim != 2:
            raise ValueError(
                f"{what} must be a (year, glacier) DataArray; got dims {obj.dims}. For per-date "
                "products pick one value per year first, e.g. xfacies.products.end_of_season"
            )
        s = obj.transpose("year", "glacier").to_series()
    elif isinstance(obj, pd.Series):
        names = list(obj.index.names)
        if obj.index.nlevels != 2 or set(names) != {"year", "glacier"}:
            raise ValueError(
                f"{what} must be a pandas Series indexed by (year, glacier); got index levels {names}"
            )
        s = obj.reorder_levels(["year", "glacier"])
    else:
        raise TypeError(
            f"{what} must be an xarray.DataArray (year, glacier) or a pandas Series with a "
            f"(year, glacier) MultiIndex, got {type(obj).__name__}"
        )
    if s.index.duplicated().any():
        raise ValueError(f"{what} has duplicate (year, glacier) entries")
    s = pd.to_numeric(s, errors="raise").astype(float)
    s.index = pd.MultiIndex.from_arrays(
        [s.index.get_level_values("year").astype(int),
         s.index.get_level_values("glacier").astype(str)], names=["year", "glacier"]
    )
    return s


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
    x = _as_series(predictor, "predictor").rename("predictor")
    y = _as_series(balance, "balance").rename("balance")
    d = pd.concat([x, y], axis=1, join="inner").dropna().reset_index()
    return d.sort_values(["glacier", "year"], ignore_index=True)


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
) -> RegressionResult:
    """Least-squares regression of mass balance on a facies predictor.

    Parameters
    ----------
    predictor
        E.g. the end-of-season AAR proxy: a ``(year, glacier)`` DataArray, or
        a Series with a ``(year, glacier)`` MultiIndex.
    balance
        Mass balance in **m w.e.** on the same labels (for example
        :func:`xfacies.massbalance.wgms.balance_for`); only pairs present and finite in both
        are used.
    by
        ``"global"``: one line for all glaciers; ``"glacier"``: one line per
        glacier (glaciers with fewer than ``min_years`` pairs are left out).
    cv
        Also run leave-one-year-out and leave-one-glacier-out cross-validation.
    min_years
        Minimum number of pairs for a per-glacier fit (at least 3, so that a
        confidence interval exists).

    Returns
    -------
    RegressionResult
        With r, r2, rmse, slope/intercept and 95 % CIs, n, p_value,
        ``per_glacier`` fits, ``cv`` results, ``.to_dataframe()``,
        ``.summary()`` and ``.plot(path)``.  See the module docstring for the
        definitions.

    Raises
    ------
    ValueError
        Fewer than 3 complete pairs, a predictor without spread, inputs not on
        (year, glacier), or an unknown ``by``.

    Warns
    -----
    UserWarning
        When the balances look like mm w.e. (median magnitude above 20).

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
    """
    if by not in ("global", "glacier"):
        raise ValueError(f"by must be 'global' or 'glacier', got {by!r}")
    if min_years < 3:
        raise ValueError(f"min_years must be at least 3, got {min_years}")
    d = tidy_pairs(predictor, balance)
    if len(d) < 3:
        raise ValueError(
            f"only {len(d)} complete (year, glacier) pairs in common between predictor and "
            "balance; need at least 3 (check that the glacier ids and years overlap)"
        )
    med = float(np.median(np.abs(d["balance"])))
    if med > 20:
        warnings.warn(
            f"the balances have a median magnitude of {med:.3g}: they look like mm w.e.; "
            "regress expects m w.e. (divide by 1000, or use xfacies.massbalance.wgms readers)",
            stacklevel=2,
        )
    if np.ptp(d["predictor"].to_numpy()) == 0:
        raise ValueError("the predictor is constant over all pairs; nothing to regress on")

    per: dict[str, Fit] = {}
    for g, s in d.groupby("glacier", sort=False):
        if len(s) >= min_years:
            per[str(g)] = _fit(s["predictor"].to_numpy(), s["balance"].to_numpy())

    nan2 = (np.nan, np.nan)
    if by == "global":
        f = _fit(d["predictor"].to_numpy(), d["balance"].to_numpy())
        d["fitted"] = f.intercept + f.slope * d["predictor"]
        top = dict(n=f.n, r=f.r, r2=f.r2, rmse=f.rmse, slope=f.slope, intercept=f.intercept,
                   slope_ci=f.slope_ci, intercept_ci=f.intercept_ci, p_value=f.p_value)
    else:
        if not per:
            raise ValueError(
                f"no glacier has {min_years} or more complete years; use by='global' or lower min_years"
            )
        d = d[d["glacier"].isin(list(per))].reset_index(drop=True)
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

    pname = getattr(predictor, "name", None) or "predictor"
    units = "m w.e."
    if isinstance(balance, xr.DataArray):
        units = str(balance.attrs.get("units", units))
    return RegressionResult(by=by, per_glacier=per, cv=cvs, data=d,
                            predictor_name=str(pname), balance_units=units, **top)
