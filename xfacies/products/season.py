"""End of season: one value per glacier and hydrological year, for mass-balance work.

:func:`end_of_season` picks, for example, the late-season minimum AAR proxy among
well observed dates, or the value within WGMS survey periods, for comparison
with mass balances (:mod:`xfacies.massbalance`).
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from xfacies.errors import InputError, InputWarning
from xfacies.validation import require_unique_times

__all__ = ["end_of_season"]


def _parse_md(s: str) -> int:
    try:
        m, d = (int(p) for p in str(s).split("-"))
        pd.Timestamp(year=2000, month=m, day=d)  # validates (leap year allows 02-29)
    except Exception:
        raise InputError(f"window bounds must be 'MM-DD' strings, got {s!r}") from None
    return m * 100 + d


def end_of_season(
    values: xr.DataArray,
    coverage: xr.DataArray | None = None,
    *,
    min_coverage: float = 0.7,
    window: tuple[str, str] = ("08-01", "10-15"),
    periods: pd.DataFrame | None = None,
    hydrological_year_start_month: int = 10,
    stat: Literal["min", "max", "last"] = "min",
    max_days_before_end: int | None = 60,
) -> xr.DataArray:
    """One end-of-season value per glacier and hydrological year.

    Among the dates of each glacier-year that are *eligible* -- inside the
    window, value not NaN, and ``coverage >= min_coverage`` -- take the
    minimum (``stat="min"``, e.g. the AAR proxy: the end-of-summer AAR is the
    season's lowest), the maximum (``"max"``, e.g. the snowline altitude) or
    the latest date (``"last"``).

    Years are **hydrological years labelled by the calendar year in which
    they end** (the WGMS balance-year convention): with
    ``hydrological_year_start_month=10`` the year 2021 runs from 1 Oct 2020 to
    30 Sep 2021.  A window is the same ``MM-DD`` span every year; it is
    labelled with the hydrological year in which it *starts*, so the default
    ``("08-01", "10-15")`` of 2021 is year 2021 even though it runs into the
    first two weeks of hydrological year 2022 (late-season scenes after the
    balance-year end are common).  Windows may wrap over New Year
    (``("12-01", "03-31")``).

    Parameters
    ----------
    values
        ``(time, glacier)`` product, e.g. :func:`aar_proxy` or
        :func:`snowline_altitude`.
    coverage
        ``(time, glacier)`` observed share of the glacier (``fractions(...)
        ["coverage"]``); ``None`` skips the coverage test.
    min_coverage
        Minimum coverage of an eligible date (0-1).
    window
        ``(start, end)`` as ``"MM-DD"``, inclusive.  Ignored when ``periods``
        is given.
    periods
        Per glacier-year survey periods instead of a fixed window: a DataFrame
        with columns ``glacier``, ``year``, ``begin``, ``end`` (dates,
        inclusive), e.g. :func:`xfacies.massbalance.wgms.periods_for`.  Glacier-years absent
        from it get NaN.
    hydrological_year_start_month
        First month of the hydrological year (10 for the northern hemisphere,
        4 for the southern; 1 for calendar years).
    stat
        ``"min"``, ``"max"`` or ``"last"``.  ``"last"`` warns when it picks
        dates after the end of the balance year (fresh snow is likely then).
    max_days_before_end
        With ``periods``: eligible dates lie at most this many days before the
        period's end (a WGMS summer period often starts in spring; a June
        scene says little about a September end of season).  ``None``: the
        whole period.  With a ``window`` the window is the limit.

    Returns
    -------
    xarray.DataArray
        ``(year, glacier)`` float64, NaN where no date was eligible, with
        coordinates ``time(year, glacier)`` (the date picked, NaT if none),
        ``n_dates(year, glacier)`` (eligible dates) and ``flag(year,
        glacier)`` (text, empty when nothing is to note: no eligible scene,
        a fallback of the periods such as an unknown END_WINTER).

    Raises
    ------
    ValueError
        Wrong dims, bad ``window`` or ``periods``, or duplicated dates in ``values``
        or ``coverage`` (listed, with the fix).

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> t = pd.to_datetime(["2021-07-15", "2021-08-20", "2021-09-10", "2021-09-25"])
    >>> aar = xr.DataArray([[0.8], [0.55], [0.4], [0.3]], dims=("time", "glacier"),
    ...                    coords={"time": t, "glacier": ["A"]})
    >>> cov = xr.DataArray([[1.0], [1.0], [0.95], [0.5]], dims=("time", "glacier"),
    ...                    coords={"time": t, "glacier": ["A"]})
    >>> eos = end_of_season(aar, cov)   # 09-25 is too cloudy, 07-15 outside the window
    >>> float(eos.sel(year=2021, glacier="A")), str(eos.time.sel(year=2021, glacier="A").values)[:10]
    (0.4, '2021-09-10')
    """
    if stat not in ("min", "max", "last"):
        raise InputError(f"stat must be 'min', 'max' or 'last', got {stat!r}")
    if not 1 <= int(hydrological_year_start_month) <= 12:
        raise InputError(f"hydrological_year_start_month must be 1-12, got {hydrological_year_start_month}")
    if not isinstance(values, xr.DataArray) or set(values.dims) != {"time", "glacier"}:
        raise InputError(
            "values must be a (time, glacier) DataArray, e.g. aar_proxy(fractions(...)); got "
            f"{getattr(values, 'dims', type(values).__name__)}"
        )
    require_unique_times(values, "values")
    if not pd.api.types.is_datetime64_any_dtype(values["time"].dtype) and values.sizes["time"]:
        raise InputError(
            f"values' time coordinate must hold dates (datetime64), got {values['time'].dtype} "
            f"({values['time'].values[:3].tolist()} ...); convert it, e.g. "
            "values.assign_coords(time=pd.to_datetime(values.time.values))"
        )
    values = values.transpose("time", "glacier")
    df = values.drop_vars([c for c in values.coords if c not in ("time", "glacier")]).to_series()
    df = df.rename("value").reset_index()
    df["glacier"] = df["glacier"].astype(str)
    if coverage is not None:
        if not isinstance(coverage, xr.DataArray) or set(coverage.dims) != {"time", "glacier"}:
            raise InputError("coverage must be a (time, glacier) DataArray like fractions(...)['coverage']")
        require_unique_times(coverage, "coverage")
        vg = {str(g) for g in values["glacier"].values}
        cg = {str(g) for g in coverage["glacier"].values}
        if vg and not vg & cg:
            raise InputError(
                f"coverage has none of the glaciers of values (coverage: {sorted(cg)[:10]}, values: "
                f"{sorted(vg)[:10]}); pass the coverage of the same fractions, e.g. "
                "frac['coverage'] with aar_proxy(frac)"
            )
        cov = coverage.transpose("time", "glacier")
        cov = cov.drop_vars([c for c in cov.coords if c not in ("time", "glacier")])
        cov = cov.reindex_like(values)
        df["coverage"] = cov.values.ravel()
        ok = df["coverage"].to_numpy() >= min_coverage
    else:
        ok = np.ones(len(df), bool)
    ok &= df["value"].notna().to_numpy()
    t = pd.DatetimeIndex(df["time"])
    start_month = int(hydrological_year_start_month)

    def hydro_year(year: np.ndarray, month: np.ndarray) -> np.ndarray:
        if start_month == 1:
            return year
        return np.where(month >= start_month, year + 1, year)

    if periods is None:
        s, e = _parse_md(window[0]), _parse_md(window[1])
        md = (t.month * 100 + t.day).to_numpy()
        yr = t.year.to_numpy()
        if s <= e:
            inside = (md >= s) & (md <= e)
            wyear = yr
        else:
            inside = (md >= s) | (md <= e)
            wyear = np.where(md >= s, yr, yr - 1)
        label = hydro_year(wyear, np.full_like(wyear, s // 100))
        df["year"] = label
        cand = df[ok & inside]
    else:
        need = {"glacier", "year", "begin", "end"}
        if not isinstance(periods, pd.DataFrame) or not need <= set(periods.columns):
            raise InputError(
                f"periods must be a DataFrame with columns {sorted(need)} (see "
                "xfacies.massbalance.wgms.periods_for)"
            )
        if max_days_before_end is not None and (not isinstance(max_days_before_end, (int, np.integer))
                                                or max_days_before_end < 0):
            raise InputError(f"max_days_before_end must be a whole number of days >= 0 or None, got "
                             f"{max_days_before_end!r}")
        p = periods[list(need) + (["fallback"] if "fallback" in periods.columns else [])].copy()
        p["glacier"] = p["glacier"].astype(str)
        unknown = sorted(set(p["glacier"]) - set(df["glacier"]))
        if unknown and not (set(p["glacier"]) & set(df["glacier"])):
            raise InputError(
                f"none of the glaciers in periods {unknown[:10]} is in values "
                f"{sorted(set(df['glacier']))[:10]}; use the same glacier ids"
            )
        p = p.dropna(subset=["begin", "end"])
        p["begin"] = pd.to_datetime(p["begin"]).dt.normalize()
        p["end"] = pd.to_datetime(p["end"]).dt.normalize() + pd.Timedelta(days=1)
        fallbacks = (p.dropna(subset=["fallback"]).query("fallback != ''")
                     .set_index(["year", "glacier"])["fallback"] if "fallback" in p.columns else pd.Series(
                         dtype=object))
        m = df[ok].reset_index().merge(p.drop(columns=["fallback"], errors="ignore"), on="glacier", how="inner")
        m = m[(m["time"] >= m["begin"]) & (m["time"] < m["end"])]
        if max_days_before_end is not None:
            m = m[(m["end"] - m["time"]) <= pd.Timedelta(days=int(max_days_before_end) + 1)]
        cand = m.drop(columns=["begin", "end"]).set_index("index")
        cand.index.name = None

    glaciers = [str(g) for g in values["glacier"].values]
    if len(cand):
        g = cand.groupby(["year", "glacier"])
        if stat == "min":
            pick = cand.loc[g["value"].idxmin()]
        elif stat == "max":
            pick = cand.loc[g["value"].idxmax()]
        else:
            pick = cand.loc[g["time"].idxmax()]
        pick = pick.set_index(["year", "glacier"])
        n = g.size()
        years = np.arange(int(pick.index.get_level_values(0).min()),
                          int(pick.index.get_level_values(0).max()) + 1)
    else:
        pick = pd.DataFrame(columns=["value", "time"],
                            index=pd.MultiIndex.from_tuples([], names=["year", "glacier"]))
        n = pd.Series(dtype=int)
        years = np.zeros(0, dtype=int)
    if periods is not None:  # every period year of these glaciers, eligible scene or not (then flagged)
        asked = p.loc[p["glacier"].isin(glaciers), "year"].astype(int)
        if len(asked):
            lo = min([int(asked.min())] + ([int(years.min())] if len(years) else []))
            hi = max([int(asked.max())] + ([int(years.max())] if len(years) else []))
            years = np.arange(lo, hi + 1)
    full = pd.MultiIndex.from_product([years, glaciers], names=["year", "glacier"])
    val = pick["value"].reindex(full).to_numpy(dtype=float).reshape(len(years), len(glaciers))
    tim = pd.to_datetime(pick["time"].reindex(full)).to_numpy(dtype="datetime64[ns]")
    tim = tim.reshape(len(years), len(glaciers))
    cnt = n.reindex(full).fillna(0).to_numpy(dtype=np.int64).reshape(len(years), len(glaciers))
    flag = np.full((len(years), len(glaciers)), "", dtype=object)
    if periods is None:
        where = " in the window"
    elif max_days_before_end is None:
        where = " in the period"
    else:
        where = f" in the period's last {max_days_before_end} days"
    flag[cnt == 0] = "no eligible scene" + where
    if periods is not None and len(fallbacks) and len(years):
        row = {int(y): i for i, y in enumerate(years)}
        col = {g: j for j, g in enumerate(glaciers)}
        for (yr, gl), text in fallbacks.items():
            if int(yr) in row and gl in col:
                i, j = row[int(yr)], col[gl]
                flag[i, j] = "; ".join(x for x in (flag[i, j], str(text)) if x)
    if stat == "last" and len(years):
        picked = pd.DatetimeIndex(tim.ravel())
        year_end = pd.to_datetime([f"{int(y) - (start_month == 1)}-{start_month:02d}-01" if start_month != 1
                                   else f"{int(y) + 1}-01-01" for y in np.repeat(years, len(glaciers))])
        late = np.asarray(picked >= year_end) & ~np.isnat(tim.ravel())
        if late.any():
            flag.ravel()[late] = ["; ".join(x for x in (f, "picked after the balance-year end: fresh snow likely")
                                            if x) for f in flag.ravel()[late]]
            warnings.warn(
                f"stat='last' picked {int(late.sum())} date(s) after the end of their balance year, when fresh "
                "snow often covers the glacier (an AAR proxy then reads too high); use stat='min' for the AAR "
                "proxy, or a window that ends with the balance year", InputWarning, stacklevel=2)
    attrs = dict(values.attrs)
    attrs["end_of_season"] = (
        f"stat={stat} over dates with coverage >= {min_coverage if coverage is not None else 'n/a'}"
        + (f" in window {window[0]}..{window[1]}" if periods is None else " in the given periods")
        + f"; hydrological years starting in month {start_month}, labelled by the year they end"
    )
    return xr.DataArray(
        val,
        dims=("year", "glacier"),
        coords={
            "year": ("year", years, {"long_name": "hydrological year (year in which it ends)"}),
            "glacier": ("glacier", np.array(glaciers, dtype=object)),
            "time": (("year", "glacier"), tim, {"long_name": "date picked"}),
            "n_dates": (("year", "glacier"), cnt, {"long_name": "eligible dates"}),
            "flag": (("year", "glacier"), flag, {"long_name": "what to note about the pick (empty: nothing)"}),
        },
        name=values.name,
        attrs=attrs,
    )

