"""regress(): numbers equal numpy/scipy, cross-validation equals an explicit loop, figure renders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from conftest import SHARED, needs_shared
from xfacies.massbalance import regress, tidy_pairs

WGMS_DIR = SHARED / "data" / "wgms"


def synthetic_pairs(seed: int = 0, years: int = 15, glaciers=("A", "B", "C")):
    """AAR-like predictor and balance with glacier-specific lines and some gaps."""
    rng = np.random.default_rng(seed)
    shape = (years, len(glaciers))
    aar = rng.uniform(0.05, 0.85, shape)
    slopes, icepts = np.array([2.0, 2.6, 3.1])[: len(glaciers)], np.array([-1.2, -1.5, -1.9])[: len(glaciers)]
    mb = slopes * aar + icepts + 0.15 * rng.standard_normal(shape)
    mb[rng.random(shape) < 0.1] = np.nan
    coords = {"year": np.arange(2000, 2000 + years), "glacier": list(glaciers)}
    return (xr.DataArray(aar, dims=("year", "glacier"), coords=coords, name="aar_proxy"),
            xr.DataArray(mb, dims=("year", "glacier"), coords=coords, attrs={"units": "m w.e."}))


def check_fit_against_scipy(fit, x, y):
    lr = stats.linregress(x, y)
    n = len(x)
    tq = stats.t.ppf(0.975, n - 2)
    assert fit.n == n
    assert fit.slope == pytest.approx(lr.slope, rel=1e-10)
    assert fit.intercept == pytest.approx(lr.intercept, rel=1e-10, abs=1e-12)
    assert fit.r == pytest.approx(lr.rvalue, rel=1e-10)
    assert fit.r2 == pytest.approx(lr.rvalue ** 2, rel=1e-10)
    assert fit.p_value == pytest.approx(lr.pvalue, rel=1e-6, abs=1e-300)
    np.testing.assert_allclose(fit.slope_ci, [lr.slope - tq * lr.stderr, lr.slope + tq * lr.stderr], rtol=1e-10)
    np.testing.assert_allclose(fit.intercept_ci, [lr.intercept - tq * lr.intercept_stderr,
                                                  lr.intercept + tq * lr.intercept_stderr], rtol=1e-10)
    b, a = np.polyfit(x, y, 1)
    assert fit.rmse == pytest.approx(np.sqrt(np.mean((y - (a + b * x)) ** 2)), rel=1e-10)


def test_global_fit_equals_scipy_linregress():
    x, y = synthetic_pairs()
    res = regress(x, y)
    d = tidy_pairs(x, y)
    ok = np.isfinite(y.values)
    assert res.n == ok.sum() == len(d)
    check_fit_against_scipy(res, x.values[ok], y.values[ok])
    for g in ("A", "B", "C"):
        m = np.isfinite(y.sel(glacier=g).values)
        check_fit_against_scipy(res.per_glacier[g], x.sel(glacier=g).values[m], y.sel(glacier=g).values[m])


def test_glacier_fits_pool_per_glacier_lines():
    x, y = synthetic_pairs(1)
    res = regress(x, y, by="glacier")
    fitted, obs = [], []
    for g in ("A", "B", "C"):
        m = np.isfinite(y.sel(glacier=g).values)
        xs, ys = x.sel(glacier=g).values[m], y.sel(glacier=g).values[m]
        lr = stats.linregress(xs, ys)
        fitted.append(lr.intercept + lr.slope * xs)
        obs.append(ys)
        check_fit_against_scipy(res.per_glacier[g], xs, ys)
    fitted, obs = np.concatenate(fitted), np.concatenate(obs)
    assert res.rmse == pytest.approx(np.sqrt(np.mean((obs - fitted) ** 2)), rel=1e-10)
    assert res.r == pytest.approx(np.corrcoef(obs, fitted)[0, 1], rel=1e-10)
    assert np.isnan(res.slope) and np.isnan(res.p_value)
    assert res.rmse < regress(x, y).rmse  # glacier-specific lines fit better here


def explicit_cv(x: xr.DataArray, y: xr.DataArray, by: str, leave: str):
    """Slow reference: refit for every held-out group with numpy.polyfit."""
    obs, pred = [], []
    groups = x[leave].values
    for held in groups:
        for g in x.glacier.values:
            for yr in x.year.values:
                if (leave == "year" and yr != held) or (leave == "glacier" and g != held):
                    continue
                xv, yv = float(x.sel(year=yr, glacier=g)), float(y.sel(year=yr, glacier=g))
                if not np.isfinite(yv):
                    continue
                train = (x[leave] != held)
                xt, yt = x.where(train), y.where(train)
                if by == "glacier":
                    xt, yt = xt.sel(glacier=g), yt.sel(glacier=g)
                xt, yt = xt.values.ravel(), yt.values.ravel()
                m = np.isfinite(xt) & np.isfinite(yt)
                b, a = np.polyfit(xt[m], yt[m], 1)
                obs.append(yv)
                pred.append(a + b * xv)
    obs, pred = np.array(obs), np.array(pred)
    return np.corrcoef(obs, pred)[0, 1], np.sqrt(np.mean((obs - pred) ** 2)), len(obs)


@pytest.mark.parametrize("by", ["global", "glacier"])
def test_cross_validation_equals_explicit_loop(by):
    x, y = synthetic_pairs(2, years=10)
    res = regress(x, y, by=by)
    r, rmse, n = explicit_cv(x, y, by, "year")
    cvr = res.cv["leave-one-year-out"]
    assert (cvr.r, cvr.rmse, cvr.n) == (pytest.approx(r, rel=1e-9), pytest.approx(rmse, rel=1e-9), n)
    assert cvr.rmse > res.rmse  # held-out error exceeds in-sample error
    logo = res.cv["leave-one-glacier-out"]
    if by == "global":
        r, rmse, n = explicit_cv(x, y, by, "glacier")
        assert (logo.r, logo.rmse, logo.n) == (pytest.approx(r, rel=1e-9), pytest.approx(rmse, rel=1e-9), n)
    else:  # a per-glacier line cannot predict an unseen glacier
        assert np.isnan(logo.rmse) and logo.n == 0
    assert regress(x, y, by=by, cv=False).cv == {}


def test_series_input_equals_dataarray_and_aligns_on_labels():
    x, y = synthetic_pairs(3)
    a = regress(x, y)
    xs = x.to_series().swaplevel().sort_index()  # (glacier, year) order is fine
    b = regress(xs, y.to_series())
    assert (b.n, b.slope, b.r) == (a.n, pytest.approx(a.slope), pytest.approx(a.r))
    # only common labels are used: drop one glacier and shift years in the predictor
    c = regress(x.sel(glacier=["A", "B"]).isel(year=slice(2, None)), y)
    expect = tidy_pairs(x.sel(glacier=["A", "B"]).isel(year=slice(2, None)), y)
    assert c.n == len(expect) and set(expect["glacier"]) == {"A", "B"}


def test_to_dataframe_and_summary():
    x, y = synthetic_pairs(4)
    res = regress(x, y)
    df = res.to_dataframe()
    assert list(df.index) == ["all", "A", "B", "C"]
    assert df.loc["all", "rmse"] == res.rmse and df.loc["all", "n"] == res.n
    assert df.loc["all", "loyo_rmse"] == res.cv["leave-one-year-out"].rmse
    assert np.isfinite(df.loc["B", ["loyo_r", "logo_rmse", "slope_lo", "slope_hi"]].astype(float)).all()
    text = res.summary()
    assert "RMSE" in text and "leave-one-year-out" in text and "aar_proxy" in text


def test_plot_renders_png(tmp_path):
    import matplotlib.image as mpimg

    x, y = synthetic_pairs(5)
    for by in ("global", "glacier"):
        path = tmp_path / f"fit_{by}.png"
        fig = regress(x, y, by=by).plot(path)
        assert len(fig.axes) == 1 + 3
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000
        img = mpimg.imread(path)
        assert img.ndim == 3 and img.shape[0] > 300 and img[..., :3].std() > 0.05


def test_clear_errors():
    x, y = synthetic_pairs(6)
    with pytest.raises(ValueError, match="need at least 3"):
        regress(x.isel(year=[0], glacier=[0, 1]), y.isel(year=[0], glacier=[0, 1]))
    with pytest.raises(ValueError, match="constant"):
        regress(x * 0 + 0.5, y)
    with pytest.raises(ValueError, match=r"\(year, glacier\)"):
        regress(x.rename(year="time"), y)
    with pytest.raises(TypeError, match="DataArray"):
        regress(x.values, y)
    with pytest.raises(ValueError, match="by must be"):
        regress(x, y, by="region")
    with pytest.warns(UserWarning, match="mm w.e."):
        regress(x, y * 1000)


# --------------------------------------------------------------------------- real WGMS data
@needs_shared("data", "wgms")
def test_real_wgms_aar_vs_annual_balance_equals_scipy():
    from xfacies.massbalance import wgms

    ids = ["RGI60-11.00897", "RGI60-11.00787", "RGI60-11.00719", "RGI60-11.00804"]
    aar = wgms.overview_for(ids, WGMS_DIR)
    mb = wgms.balance_for(ids, WGMS_DIR)
    # independent pairing straight from the raw csv files (mm w.e., AAR in %)
    ov = pd.read_csv(WGMS_DIR / "WGMS-FoG-2021-05-E-MASS-BALANCE-OVERVIEW.subset.csv", encoding="latin-1")
    raw = pd.concat([pd.read_csv(f) for f in sorted(WGMS_DIR.glob("mbdata_WGMS-*.csv"))])
    pairs = ov[["WGMS_ID", "Year", "AAR"]].merge(raw[["WGMS_ID", "YEAR", "ANNUAL_BALANCE"]],
                                                 left_on=["WGMS_ID", "Year"], right_on=["WGMS_ID", "YEAR"])
    pairs = pairs.dropna(subset=["AAR", "ANNUAL_BALANCE"])
    x_all, y_all = pairs["AAR"].to_numpy() / 100, pairs["ANNUAL_BALANCE"].to_numpy() / 1000

    res = regress(aar, mb)
    check_fit_against_scipy(res, x_all, y_all)
    assert res.n == len(pairs) == 293
    assert res.r == pytest.approx(0.9248, abs=1e-4) and res.rmse == pytest.approx(0.2533, abs=1e-4)
    for rgi, wid in zip(ids, [491, 507, 489, 408]):
        p = pairs[pairs["WGMS_ID"] == wid]
        check_fit_against_scipy(res.per_glacier[rgi], p["AAR"].to_numpy() / 100,
                                p["ANNUAL_BALANCE"].to_numpy() / 1000)
    assert res.per_glacier["RGI60-11.00897"].r == pytest.approx(0.97, abs=0.005)  # PROVENANCE.md
    per = regress(aar, mb, by="glacier")
    assert per.rmse < res.rmse and per.r > res.r
