"""AAR proxy, snowline altitude and end-of-season picks, on synthetic seasons with a known snowline."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from shapely.geometry import box

from xfacies import synthetic
from xfacies.catalog import CLASSES, NODATA
from xfacies.errors import InputWarning
from xfacies.products import aar_proxy, end_of_season, fractions, snowline_altitude

ID = {c.name: c.id for c in CLASSES}
DATES = ["2021-07-10", "2021-07-20", "2021-07-30", "2021-08-10", "2021-08-20", "2021-09-10"]
SIZE, SEED = 512, 0


@pytest.fixture(scope="module")
def season():
    ds = synthetic.season(DATES, size=SIZE, seed=SEED)
    return ds, synthetic.outlines(SIZE, seed=SEED)


def on_glacier(gdf, altitude, margin=100.0):
    """(glacier,) mask: the altitude lies on every glacier's clean-ice/firn part."""
    return bool(((gdf["zmin"] + margin < altitude) & (altitude < gdf["zmax"] - margin)).all())


# --------------------------------------------------------------------------- snowline
def test_snowline_recovers_true_snowline_below_the_firn_line(season):
    ds, gdf = season
    est = snowline_altitude(ds.truth, ds.dem, gdf)
    assert est.dims == ("time", "glacier") and est.attrs["units"] == "m"
    assert list(est.glacier.values) == list(gdf["rgi_id"])
    firn = float(ds.firnline_altitude[0])
    checked = 0
    for t, true in enumerate(ds.snowline_altitude.values):
        if true < firn - 60 and on_glacier(gdf, true):
            np.testing.assert_allclose(est.isel(time=t).values, true, atol=30)
            assert (est.n_pixels.isel(time=t) >= 10).all()
            checked += 1
    assert checked >= 3


def test_snow_only_tracks_the_transient_snowline_above_the_firn_line(season):
    ds, gdf = season
    est = snowline_altitude(ds.truth, ds.dem, gdf, accumulation=("snow",))
    checked = 0
    for t, true in enumerate(ds.snowline_altitude.values):
        if on_glacier(gdf, true):
            np.testing.assert_allclose(est.isel(time=t).values, true, atol=30)
            checked += 1
    assert checked >= len(DATES) - 1  # the last snowline lies within 100 m of the tops


def test_with_refrozen_late_season_boundary_is_the_firn_line(season):
    ds, gdf = season
    est = snowline_altitude(ds.truth, ds.dem, gdf, include_refrozen=True)
    firn = float(ds.firnline_altitude[0])
    late = np.flatnonzero(ds.snowline_altitude.values - 35 > firn + 40)
    assert late.size >= 2
    np.testing.assert_allclose(est.isel(time=late).values, firn, atol=30)


def test_bands_method_agrees(season):
    ds, gdf = season
    est = snowline_altitude(ds.truth, ds.dem, gdf, accumulation=("snow",), method="bands", band_width=20)
    np.testing.assert_allclose(est.values, ds.snowline_altitude.values[:, None] + 0 * est.values, atol=40)
    assert (est.n_pixels > 1000).all()


def test_snowline_dask_and_index_inputs_equal_eager(season):
    ds, gdf = season
    eager = snowline_altitude(ds.truth, ds.dem, gdf)
    from xfacies.outlines import rasterize

    lazy = snowline_altitude(ds.truth.chunk({"time": 2, "y": 128, "x": 200}),
                             ds.dem.chunk({"y": 128, "x": 200}), rasterize(gdf, ds.truth))
    xr.testing.assert_identical(eager, lazy)
    one = snowline_altitude(ds.truth.isel(time=2), ds.dem, gdf)  # scalar time -> length-1
    np.testing.assert_array_equal(one.values[0], eager.values[2])


def small_scene(rows):
    """A 1-glacier scene from a list of class rows; DEM falls 10 m per row from 3050 m."""
    cls = np.array(rows, dtype="int8")
    ny, nx = cls.shape
    c = {"y": 5.0 + 10 * np.arange(ny)[::-1], "x": 5.0 + 10 * np.arange(nx)}
    classes = xr.DataArray(cls, dims=("y", "x"), coords=c).rio.write_crs("EPSG:32632")
    dem = xr.DataArray(np.repeat((3050.0 - 10 * np.arange(ny))[:, None], nx, axis=1), dims=("y", "x"), coords=c)
    gdf = gpd.GeoDataFrame({"rgi_id": ["G"]}, geometry=[box(0, 0, 10 * nx, 10 * ny)], crs="EPSG:32632")
    return classes, dem, gdf


def test_snowline_ignores_cloud_shadow_debris_and_needs_both_sides():
    S, I, C, H, D = ID["snow"], ID["ice"], ID["cloud"], ID["shadow"], ID["debris"]
    classes, dem, gdf = small_scene([[S, S, S, S], [S, S, S, S], [I, I, C, H], [I, I, I, I], [D, D, D, D]])
    # boundary edges: columns 0 and 1 between rows 1 (3040 m) and 2 (3030 m); cloud/shadow edges ignored
    sla = snowline_altitude(classes, dem, gdf, min_pixels=1)
    assert float(sla.item()) == 3035.0 and sla.n_pixels.item() == 2
    assert np.isnan(snowline_altitude(classes, dem, gdf, min_pixels=3).item())
    all_snow, dem2, gdf2 = small_scene([[S, S], [S, S], [D, D]])  # snowline below the clean ice
    assert np.isnan(snowline_altitude(all_snow, dem2, gdf2, min_pixels=1).item())
    # counting debris as ablation moves the line onto the snow/debris contact
    assert snowline_altitude(all_snow, dem2, gdf2, min_pixels=1,
                             ablation=("ice", "debris")).item() == 3035.0
    nod, dem3, gdf3 = small_scene([[S, NODATA], [I, I]])
    assert snowline_altitude(nod, dem3, gdf3, min_pixels=1).item() == 3045.0


def test_snowline_errors(season):
    ds, gdf = season
    with pytest.raises(ValueError, match="not on the grid of the class map"):
        snowline_altitude(ds.truth, ds.dem.isel(x=slice(1, None)), gdf)
    with pytest.raises(ValueError, match="not observed"):
        snowline_altitude(ds.truth, ds.dem, gdf, accumulation=("snow", "cloud"))
    with pytest.raises(ValueError, match="unknown class"):
        snowline_altitude(ds.truth, ds.dem, gdf, accumulation=("powder",))
    with pytest.raises(ValueError, match="both accumulation and ablation"):
        snowline_altitude(ds.truth, ds.dem, gdf, ablation=("ice", "snow"))
    with pytest.raises(ValueError, match="method"):
        snowline_altitude(ds.truth, ds.dem, gdf, method="hypsometric")


# --------------------------------------------------------------------------- AAR proxy
def test_aar_proxy_matches_the_true_accumulation_area(season):
    ds, gdf = season
    frac = fractions(ds.truth, gdf)
    aar = aar_proxy(frac)
    idx = ds.glacier.values
    firn = float(ds.firnline_altitude[0])
    for t, sl in enumerate(ds.snowline_altitude.values):
        if sl > firn - 60:
            continue
        for k, g in enumerate(gdf["rgi_id"]):
            z = ds.dem.values[idx == k + 1]
            assert float(aar.isel(time=t).sel(glacier=g)) == pytest.approx((z > sl).mean(), abs=0.05)
    with_ref = aar_proxy(frac, include_refrozen=True)
    np.testing.assert_allclose(with_ref.values, aar.values + frac["fraction"].sel({"class": "refrozen-like"}).values,
                               rtol=1e-6)
    assert "refrozen-like" in with_ref.attrs["long_name"]
    xr.testing.assert_identical(aar_proxy(frac, ("snow", "firn", "refrozen-like")), with_ref)


# --------------------------------------------------------------------------- end of season
def series(times, vals, cov=None, glaciers=("A",)):
    t = pd.to_datetime(times)
    v = np.asarray(vals, float).reshape(len(t), len(glaciers))
    c = {"time": t, "glacier": list(glaciers)}
    out = xr.DataArray(v, dims=("time", "glacier"), coords=c, name="aar_proxy")
    cv = None if cov is None else xr.DataArray(np.asarray(cov, float).reshape(v.shape), dims=("time", "glacier"), coords=c)
    return out, cv


def test_end_of_season_picks_late_minimum_with_enough_coverage():
    times = ["2020-06-01", "2020-08-15", "2020-09-20", "2020-10-10", "2020-10-20",
             "2021-07-01", "2021-08-05", "2021-09-01", "2021-09-15"]
    vals = [0.9, 0.6, 0.45, 0.40, 0.1, 0.95, 0.5, 0.3, 0.2]
    cov = [1, 1, 1, 0.9, 1, 1, 1, 1, 0.4]
    v, c = series(times, vals, cov)
    eos = end_of_season(v, c)
    assert list(eos.year.values) == [2020, 2021]
    # 2020: 10-10 is in the window (Aug 1 - Oct 15 belongs to balance year 2020); 10-20 is not
    assert float(eos.sel(year=2020, glacier="A")) == 0.40
    assert pd.Timestamp(eos.time.sel(year=2020, glacier="A").item()) == pd.Timestamp("2020-10-10")
    # 2021: the 09-15 minimum is too cloudy (coverage 0.4 < 0.7)
    assert float(eos.sel(year=2021, glacier="A")) == 0.3
    assert int(eos.n_dates.sel(year=2021, glacier="A")) == 2
    loose = end_of_season(v, c, min_coverage=0.3)
    assert float(loose.sel(year=2021, glacier="A")) == 0.2
    assert float(end_of_season(v, None).sel(year=2021, glacier="A")) == 0.2
    assert float(end_of_season(v, c, stat="max").sel(year=2020, glacier="A")) == 0.6
    with pytest.warns(InputWarning, match=r"stat='last' picked 1 date\(s\) after the end of their balance year"):
        last = end_of_season(v, c, stat="last")
    assert float(last.sel(year=2020, glacier="A")) == 0.40  # 2020-10-10: balance year 2020 ended 10-01
    assert "fresh snow likely" in str(last.flag.sel(year=2020, glacier="A").item())
    assert last.flag.sel(year=2021, glacier="A").item() == ""


def test_end_of_season_in_wgms_periods_stays_near_the_period_end_and_flags_fallbacks():
    """A WGMS summer period from END_WINTER (or from BEGIN_PERIOD when END_WINTER is unknown: the
    whole balance year) to END_PERIOD: a June scene is not an end of season for a September end."""
    v, c = series(["2016-10-22", "2017-06-20", "2017-08-25", "2018-06-15"], [0.9, 0.2, 0.4, 0.3])
    periods = pd.DataFrame({"glacier": ["A", "A"], "year": [2017, 2018],
                            "begin": pd.to_datetime(["2016-10-01", "2018-05-10"]),
                            "end": pd.to_datetime(["2017-09-30", "2018-09-28"]),
                            "fallback": ["begin = BEGIN_PERIOD: END_WINTER unknown", ""]})
    eos = end_of_season(v, c, periods=periods)
    assert float(eos.sel(year=2017, glacier="A")) == 0.4  # not 0.2 (June) nor 0.9 (the October before)
    assert str(eos.time.sel(year=2017, glacier="A").values)[:10] == "2017-08-25"
    assert eos.flag.sel(year=2017, glacier="A").item() == "begin = BEGIN_PERIOD: END_WINTER unknown"
    assert np.isnan(float(eos.sel(year=2018, glacier="A")))  # only a June scene: none eligible
    assert eos.flag.sel(year=2018, glacier="A").item() == "no eligible scene in the period's last 60 days"
    whole = end_of_season(v, c, periods=periods, max_days_before_end=None)
    assert float(whole.sel(year=2017, glacier="A")) == 0.2 and float(whole.sel(year=2018, glacier="A")) == 0.3
    with pytest.raises(ValueError, match="max_days_before_end must be a whole number of days"):
        end_of_season(v, c, periods=periods, max_days_before_end=-3)


def test_end_of_season_windows_wrap_and_hydrological_years():
    v, c = series(["2020-12-20", "2021-02-10", "2021-04-01", "2021-11-30"], [0.5, 0.4, 0.1, 0.2])
    # southern-hemisphere style: window Dec-Mar, hydrological year from April
    eos = end_of_season(v, window=("12-01", "03-31"), hydrological_year_start_month=4)
    assert list(eos.year.values) == [2021] and float(eos.item()) == 0.4
    cal = end_of_season(v, window=("11-01", "12-31"), hydrological_year_start_month=1)
    assert list(cal.year.values) == [2020, 2021] and float(cal.sel(year=2021).item()) == 0.2
    with pytest.raises(ValueError, match="MM-DD"):
        end_of_season(v, window=("Aug 1", "10-15"))


def test_end_of_season_with_wgms_periods_and_missing_years():
    v, c = series(["2020-08-01", "2020-09-05", "2020-09-25"] * 1, np.array([[0.5, 0.6], [0.3, 0.2], [0.1, 0.4]]),
                  np.ones((3, 2)), glaciers=("A", "B"))
    periods = pd.DataFrame({"glacier": ["A", "B"], "year": [2020, 2020],
                            "begin": pd.to_datetime(["2020-05-01", "2020-05-01"]),
                            "end": pd.to_datetime(["2020-09-10", "2020-09-25"])})
    eos = end_of_season(v, c, periods=periods)
    np.testing.assert_allclose(eos.sel(year=2020).values, [0.3, 0.2])  # A's period ends before 09-25
    nothing = end_of_season(v, c, min_coverage=1.1)
    assert nothing.sizes["year"] == 0
    gap = end_of_season(v.where(v.glacier == "A"), c)  # B never valid -> NaN, NaT
    assert np.isnan(gap.sel(year=2020, glacier="B").item()) and pd.isna(gap.time.sel(year=2020, glacier="B").item())
    with pytest.raises(ValueError, match="none of the glaciers"):
        end_of_season(v, c, periods=periods.assign(glacier=["X", "Y"]))
    with pytest.raises(ValueError, match=r"\(time, glacier\)"):
        end_of_season(v.rename(time="date"))


def test_end_of_season_on_a_synthetic_season(season):
    ds, gdf = season
    frac = fractions(ds.truth, gdf)
    aar = aar_proxy(frac)
    eos = end_of_season(aar, frac["coverage"], window=("07-01", "10-15"), min_coverage=0.9)
    cov = frac["coverage"].values
    assert (cov[-1] < 0.9).any()  # a cloudy last date: that glacier falls back to an earlier one
    for k, g in enumerate(gdf["rgi_id"]):
        ok = cov[:, k] >= 0.9
        t = int(np.nanargmin(np.where(ok, aar.values[:, k], np.nan)))
        assert float(eos.sel(year=2021, glacier=g)) == pytest.approx(float(aar.values[t, k]))
        assert eos.time.sel(year=2021, glacier=g).values == ds.time.values[t]
    sla = snowline_altitude(ds.truth, ds.dem, gdf, accumulation=("snow",))
    top = end_of_season(sla, frac["coverage"], stat="max", min_coverage=0.0)
    np.testing.assert_allclose(top.sel(year=2021).values, ds.snowline_altitude.values[-1], atol=30)
