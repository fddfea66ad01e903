"""Properties of the public functions over awkward inputs (issue #15, item 6).

Each property compares with something computed independently (a NumPy bincount over the mask,
a plain loop over pixel pairs, exact rational least squares, the patch model on a hand-built
patch, the unchunked result) or expects a clear error that names the input and the fix.
Inputs: NaN/inf, huge values, integer and boolean dtypes, empty / one-pixel outlines, outlines
outside the grid, ascending y, non-square pixels, chunks smaller than the halos, single dates,
dates out of order.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import dask.array as dsa
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import box

import xfacies
from xfacies.catalog import CLASSES, NODATA, OPTICAL_FEATURES
from xfacies.errors import InputWarning
from xfacies.halo import block_windows, map_halo, min_chunks
from xfacies.products import aar_proxy, end_of_season, fractions, snowline_altitude

X0, Y0 = 630000.0, 5190000.0
CRS = "EPSG:32632"
ID = {c.name: c.id for c in CLASSES}
CLOUD = ID["cloud"]
KEPT = [c.id for c in CLASSES if c.name != "cloud"]
NCLS = len(CLASSES)

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
MODEL = settings(max_examples=10, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# --------------------------------------------------------------------------- helpers
def coords(ny: int, nx: int, dx: float = 10.0, dy: float = 10.0, ydesc: bool = True) -> dict:
    y = Y0 - dy * (np.arange(ny) + 0.5)
    return {"y": y if ydesc else y[::-1].copy(), "x": X0 + dx * (np.arange(nx) + 0.5)}


def raster(v: np.ndarray, dx=10.0, dy=10.0, ydesc=True, times=None) -> xr.DataArray:
    c = coords(v.shape[-2], v.shape[-1], dx, dy, ydesc)
    dims = ("y", "x")
    if v.ndim == 3:
        dims = ("time",) + dims
        c["time"] = times
    return xr.DataArray(v, dims=dims, coords=c).rio.write_crs(CRS)


def gdf(*geoms) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"glacier_id": [f"G{i}" for i in range(len(geoms))]},
                            geometry=list(geoms), crs=CRS)


def cell_box(r0, r1, c0, c1, dx=10.0, dy=10.0):
    """A box over rows r0..r1 and columns c0..c1 of the north-up grid, inset by a fifth of a
    pixel so that no pixel centre lies on its edge."""
    return box(X0 + dx * (c0 + 0.2), Y0 - dy * (r1 + 0.8), X0 + dx * (c1 + 0.8), Y0 - dy * (r0 + 0.2))


def inside(da: xr.DataArray, geom) -> np.ndarray:
    """Pixel centres inside ``geom`` (an axis-aligned box), from the coordinates themselves."""
    x0, y0, x1, y1 = geom.bounds
    xx, yy = np.meshgrid(da["x"].values, da["y"].values)
    return (xx > x0) & (xx < x1) & (yy > y0) & (yy < y1)


def dates(n: int, seed: int) -> pd.DatetimeIndex:
    """``n`` distinct dates in a random (unsorted) order."""
    rng = np.random.default_rng(seed)
    days = rng.choice(np.arange(0, 4 * 365), size=n, replace=False)
    return pd.DatetimeIndex(pd.Timestamp("2019-01-01") + pd.to_timedelta(days, "D"))


def random_boxes(rng, ny, nx, n):
    """``n`` disjoint boxes (one per column strip), possibly of one pixel."""
    edges = np.linspace(0, nx, n + 1).astype(int)
    out = []
    for k in range(n):
        c_lo, c_hi = edges[k], edges[k + 1] - 1
        if c_hi < c_lo:
            continue
        c0, c1 = sorted(rng.integers(c_lo, c_hi + 1, 2))
        r0, r1 = sorted(rng.integers(0, ny, 2))
        out.append((r0, r1, c0, c1))
    return out


chunk_sizes = st.one_of(st.none(), st.tuples(st.integers(1, 9), st.integers(1, 9)))


# =========================================================================== fractions / AAR
@FAST
@given(seed=st.integers(0, 2**32 - 1), ny=st.integers(2, 11), nx=st.integers(2, 11), nt=st.integers(1, 3),
       nbox=st.integers(1, 3), chunks=chunk_sizes, ydesc=st.booleans(),
       res=st.sampled_from([(10.0, 10.0), (10.0, 20.0), (30.0, 7.5)]),
       dtype=st.sampled_from(["int8", "int16", "int64", "float32", "float64"]),
       as_index=st.booleans(), two_d=st.booleans())
def test_fractions_equal_a_bincount_over_each_glacier_mask(seed, ny, nx, nt, nbox, chunks, ydesc, res, dtype,
                                                           as_index, two_d):
    """Any dtype (float NaN = nodata), chunking, orientation, pixel shape, date order: the
    fractions, coverage, area and AAR proxy are those of a bincount over each glacier's pixels."""
    rng = np.random.default_rng(seed)
    dx, dy = res
    v = rng.integers(NODATA, NCLS, size=(nt, ny, nx))
    if rng.random() < 0.3:
        v[:, : ny // 2] = NODATA  # an all-nodata half (whole chunks of nodata)
    data = v.astype(dtype)
    if dtype.startswith("float"):
        data = np.where(v == NODATA, np.nan, data).astype(dtype)  # NaN is nodata in a float map
    times = dates(nt, seed)
    classes = raster(data, dx, dy, ydesc, times)
    if two_d:
        classes, v = classes.isel(time=0, drop=True), v[:1]
    geoms = [cell_box(*b, dx=dx, dy=dy) for b in random_boxes(rng, ny, nx, nbox)]
    outl = gdf(*geoms)
    idx = np.zeros((ny, nx), np.int32)
    for k, g in enumerate(geoms):
        idx[inside(classes, g)] = k + 1
    if chunks is not None:
        classes = classes.chunk({"y": chunks[0], "x": chunks[1]})
    if as_index:
        outl = xr.DataArray(idx, dims=("y", "x"), coords={"y": classes.y, "x": classes.x},
                            attrs={"glacier_ids": list(outl["glacier_id"])}).rio.write_crs(CRS)
    frac = fractions(classes, outl).compute()
    aar = aar_proxy(frac).values
    aar_r = aar_proxy(frac, include_refrozen=True).values
    if two_d:
        assert "time" not in frac["fraction"].dims
    for g in range(len(geoms)):
        sel = idx == g + 1
        assert frac["area"].values[g] == sel.sum() * dx * dy
        for t in range(v.shape[0]):
            n = np.bincount(v[t][sel] + 1, minlength=NCLS + 1)  # bin 0 = nodata
            n_valid = sum(n[c + 1] for c in KEPT)
            f = frac["fraction"].values[t, g] if not two_d else frac["fraction"].values[g]
            cov = frac["coverage"].values[t, g] if not two_d else frac["coverage"].values[g]
            a, ar = (aar[t, g], aar_r[t, g]) if not two_d else (aar[g], aar_r[g])
            if n_valid == 0:
                assert np.isnan(f).all() and np.isnan(a)
            else:
                np.testing.assert_allclose(f, [n[c + 1] / n_valid for c in KEPT], rtol=1e-6)
                np.testing.assert_allclose(a, (n[ID["snow"] + 1] + n[ID["firn"] + 1]) / n_valid, rtol=1e-6)
                np.testing.assert_allclose(ar, (n[ID["snow"] + 1] + n[ID["firn"] + 1]
                                                + n[ID["refrozen-like"] + 1]) / n_valid, rtol=1e-6)
            if sel.sum() == 0:
                assert np.isnan(cov)
            else:
                np.testing.assert_allclose(cov, n_valid / sel.sum(), rtol=1e-6)
    if not two_d and nt > 1:  # reordering the dates reorders the result, nothing else
        order = np.argsort(times)
        again = fractions(classes.isel(time=order), outl).compute()
        xr.testing.assert_allclose(again["fraction"], frac["fraction"].isel(time=order))


@FAST
@given(seed=st.integers(0, 2**32 - 1), row=st.integers(0, 7), col=st.integers(0, 8), ydesc=st.booleans(),
       res=st.sampled_from([(10.0, 10.0), (20.0, 10.0)]))
def test_one_pixel_outline_gives_that_pixels_class(seed, row, col, ydesc, res):
    dx, dy = res
    rng = np.random.default_rng(seed)
    v = rng.integers(NODATA, NCLS, size=(3, 8, 9)).astype("int8")
    classes = raster(v, dx, dy, True, dates(3, seed))
    if not ydesc:
        classes = classes.isel(y=slice(None, None, -1))
    tiny = box(X0 + dx * (col + 0.4), Y0 - dy * (row + 0.6), X0 + dx * (col + 0.6), Y0 - dy * (row + 0.4))
    frac = fractions(classes, gdf(tiny))
    assert float(frac["area"][0]) == dx * dy
    for t in range(3):
        c = int(v[t, row, col])
        f = frac["fraction"].values[t, 0]
        if c in KEPT:
            np.testing.assert_array_equal(f, [1.0 if k == c else 0.0 for k in KEPT])
            assert float(frac["coverage"][t, 0]) == 1.0
        else:  # cloud or nodata: nothing observed
            assert np.isnan(f).all() and float(frac["coverage"][t, 0]) == 0.0


@FAST
@given(where=st.sampled_from(["east", "west", "north", "south", "far"]), ydesc=st.booleans())
def test_outlines_outside_the_grid_are_refused_with_both_bounds(where, ydesc):
    classes = raster(np.zeros((6, 7), "int8"), ydesc=ydesc)
    dem = raster(np.full((6, 7), 2000.0), ydesc=ydesc)
    shift = {"east": (200, 0), "west": (-200, 0), "north": (0, 200), "south": (0, -200),
             "far": (-X0, -Y0)}[where]
    g = box(X0 + 10 + shift[0], Y0 - 30 + shift[1], X0 + 40 + shift[0], Y0 - 10 + shift[1])
    msg = r"the outlines do not overlap the grid: outline bounds .* vs grid bounds \(630000.0, 5189940.0"
    with pytest.raises(ValueError, match=msg):
        fractions(classes, gdf(g))
    with pytest.raises(ValueError, match=msg):
        snowline_altitude(classes, dem, gdf(g))


def test_empty_outlines_give_no_glaciers():
    classes = raster(np.zeros((2, 6, 7), "int8"), times=dates(2, 0))
    frac = fractions(classes, gdf())
    assert frac.sizes["glacier"] == 0 and frac["fraction"].shape == (2, 0, len(KEPT))
    sla = snowline_altitude(classes, raster(np.full((6, 7), 2000.0)), gdf())
    assert sla.shape == (2, 0)


@pytest.mark.parametrize("value", [0.5, 2.25, np.inf, -np.inf])
@pytest.mark.parametrize("lazy", [False, True])
def test_float_class_values_that_are_not_codes_are_refused_not_truncated(value, lazy):
    v = np.zeros((5, 6), "float32")
    v[2, 3] = value
    classes = raster(v)
    classes = classes.chunk({"y": 2}) if lazy else classes
    g = gdf(cell_box(0, 4, 0, 5))
    with pytest.raises(ValueError, match=r"float class map with values that are not class codes .*"
                                         r"round it first"):
        fractions(classes, g).compute()
    with pytest.raises(ValueError, match="not class codes"):
        snowline_altitude(classes, raster(np.full((5, 6), 2000.0)), g)


def test_boolean_and_out_of_catalogue_class_maps_are_refused():
    g = gdf(cell_box(0, 3, 0, 3))
    with pytest.raises(TypeError, match="class map is boolean"):
        fractions(raster(np.ones((4, 4), bool)), g)
    u8 = np.full((4, 4), 255, "uint8")  # nodata written as 255 in a uint8 file
    with pytest.raises(ValueError, match=r"outside its classes \[255\]; valid values are -1"):
        fractions(raster(u8).chunk({"x": 2}), g).compute()


@pytest.mark.parametrize("ny, nx", [(1, 5), (4, 1), (1, 1)])
def test_one_pixel_side_needs_a_stored_transform(ny, nx):
    """A grid of one row or column: the coordinates give no pixel size.  Without a stored
    transform, a clear error (it used to be placed at (0, 0) in 1 m pixels: "outlines do not
    overlap"); with one, the right answer."""
    full = raster(np.arange(20, dtype="int8").reshape(4, 5) % NCLS)
    g = gdf(cell_box(0, 3, 0, 4))
    with pytest.raises(ValueError, match=r"one pixel along .* no stored transform.*write_transform"):
        fractions(full.isel(y=slice(0, ny), x=slice(0, nx)), g)
    part = full.rio.write_transform(full.rio.transform()).isel(y=slice(0, ny), x=slice(0, nx))
    # the outline covers the whole 4 x 5 grid: the slice sees part of it
    with pytest.warns(InputWarning, match=r"1 glacier\(s\) extend beyond the class map"):
        frac = fractions(part, g)
    n = np.bincount(part.values.ravel() + 1, minlength=NCLS + 1)
    observed = n[[k + 1 for k in KEPT]].sum()
    np.testing.assert_allclose(frac["fraction"].values[0], [n[c + 1] / observed for c in KEPT], rtol=1e-6)
    assert float(frac["area"][0]) == 100.0 * ny * nx
    # coverage: the observed share of the whole outline (its pixels in the slice plus its area beyond
    # the slice, in pixels of 100 m2), not of the visible slice alone
    from shapely.geometry import box as sbox

    x, y = part["x"].values, part["y"].values
    extent = sbox(x.min() - 5, y.min() - 5, x.max() + 5, y.max() + 5)
    geom = g.geometry.iloc[0]
    whole = ny * nx + (geom.area - geom.intersection(extent).area) / 100.0
    np.testing.assert_allclose(frac["coverage"].values[0], observed / whole, rtol=1e-5)


# =========================================================================== snowline
def slow_boundary(cls, z, sel, acc, abl, min_edges):
    """Median of the mean elevation of every 4-neighbour acc/abl pair inside the glacier."""
    out = []
    for t in range(cls.shape[0]):
        e = []
        ny, nx = sel.shape
        for r in range(ny):
            for c in range(nx):
                for r2, c2 in ((r + 1, c), (r, c + 1)):
                    if r2 >= ny or c2 >= nx or not (sel[r, c] and sel[r2, c2]):
                        continue
                    a, b = cls[t, r, c], cls[t, r2, c2]
                    if (a in acc and b in abl) or (a in abl and b in acc):
                        if math.isfinite(z[r, c]) and math.isfinite(z[r2, c2]):
                            e.append((z[r, c] + z[r2, c2]) / 2)
        out.append((float(np.median(e)) if len(e) >= min_edges else np.nan, len(e)))
    return out


def slow_bands(cls, z, sel, acc, abl, bw, min_pixels):
    """The band edge minimising (accumulation below) + (ablation at or above), ties averaged."""
    ok = sel & np.isfinite(z)
    out = []
    for t in range(cls.shape[0]):
        za = [z[p] for p in zip(*np.nonzero(ok)) if cls[t][p] in acc]
        zb = [z[p] for p in zip(*np.nonzero(ok)) if cls[t][p] in abl]
        n = len(za) + len(zb)
        if not za or not zb or n < min_pixels:
            out.append((np.nan, n))
            continue
        lo = math.floor(min(z[ok]) / bw) * bw  # the edge at or below the lowest pixel ...
        cands = [lo + k * bw for k in range(int((max(z[ok]) - lo) // bw) + 2)]  # ... to the first above the top
        assert cands[-1] > max(z[ok]) >= cands[-2]
        cost = [sum(a < h for a in za) + sum(b >= h for b in zb) for h in cands]
        best = [h for h, c in zip(cands, cost) if c == min(cost)]
        out.append((float(np.mean(best)), n))
    return out


@FAST
@given(seed=st.integers(0, 2**32 - 1), ny=st.integers(2, 9), nx=st.integers(2, 9), nt=st.integers(1, 2),
       ydesc=st.booleans(), chunks=chunk_sizes, method=st.sampled_from(["boundary", "bands"]),
       min_pixels=st.integers(1, 4), refrozen=st.booleans(), dem_dtype=st.sampled_from(["float32", "int32"]),
       bad=st.sampled_from([None, np.nan, np.inf]))
def test_snowline_equals_a_plain_loop_over_pixel_pairs(seed, ny, nx, nt, ydesc, chunks, method, min_pixels,
                                                       refrozen, dem_dtype, bad):
    rng = np.random.default_rng(seed)
    choices = np.array([ID["ice"], ID["snow"], ID["firn"], ID["refrozen-like"], ID["debris"], CLOUD, NODATA])
    v = rng.choice(choices, size=(nt, ny, nx)).astype("int8")
    z = np.round(2000.0 + 300.0 * rng.random((ny, nx)))  # whole metres: an int DEM holds the same values
    zdem = z.astype(dem_dtype)
    if bad is not None and dem_dtype == "float32":
        z[rng.random((ny, nx)) < 0.2] = bad  # DEM voids: NaN, or inf (never an edge elevation)
        zdem = z.astype(dem_dtype)
    classes = raster(v, ydesc=True, times=dates(nt, seed))
    dem = raster(zdem)
    if not ydesc:
        classes, dem = classes.isel(y=slice(None, None, -1)), dem.isel(y=slice(None, None, -1))
        v, z = v[:, ::-1], z[::-1]
    if chunks is not None:
        classes = classes.chunk({"y": chunks[0], "x": chunks[1]})
    boxes = random_boxes(rng, ny, nx, 2)
    geoms = [cell_box(*b) for b in boxes]
    acc = {ID["snow"], ID["firn"]} | ({ID["refrozen-like"]} if refrozen else set())
    abl = {ID["ice"]} | (set() if refrozen else {ID["refrozen-like"]})
    got = snowline_altitude(classes, dem, gdf(*geoms), method=method, min_pixels=min_pixels,
                            include_refrozen=refrozen, band_width=20.0)
    for k, g in enumerate(geoms):
        sel = inside(dem, g)
        zz = z.astype(np.float64)
        want = (slow_boundary(v, zz, sel, acc, abl, min_pixels) if method == "boundary"
                else slow_bands(v, zz, sel, acc, abl, 20.0, min_pixels))
        for t, (val, n) in enumerate(want):
            np.testing.assert_allclose(got.values[t, k], val, equal_nan=True, rtol=1e-12)
            assert int(got["n_pixels"].values[t, k]) == n


@pytest.mark.parametrize("bw, match", [(np.nan, "band_width must be a positive number"),
                                       (-5.0, "band_width must be a positive number"),
                                       (1e-9, r"band_width=1e-09 m cuts .* into more than 1,000,000 bands")])
def test_snowline_band_width_out_of_range_is_refused(bw, match):
    cls = np.zeros((6, 4), "int8")
    cls[:3] = ID["snow"]
    z = np.repeat(np.arange(3050.0, 2990.0, -10.0)[:, None], 4, axis=1)
    with pytest.raises(ValueError, match=match):
        snowline_altitude(raster(cls), raster(z), gdf(cell_box(0, 5, 0, 3)), method="bands", band_width=bw,
                          min_pixels=1)


# =========================================================================== end of season
def slow_end_of_season(values, coverage, min_cov, window, hm, stat):
    """Documented rule, one date at a time: eligible = in the window, value not NaN, coverage
    >= min_cov; years labelled by the hydrological year in which the window starts."""
    s = tuple(int(p) for p in window[0].split("-"))
    e = tuple(int(p) for p in window[1].split("-"))
    best: dict = {}
    for t in values["time"].values:
        ts = pd.Timestamp(t)
        md = (ts.month, ts.day)
        if s <= e:
            ok_w, wy = s <= md <= e, ts.year
        else:
            ok_w, wy = md >= s or md <= e, ts.year if md >= s else ts.year - 1
        if not ok_w:
            continue
        year = wy + 1 if (hm != 1 and s[0] >= hm) else wy
        for g in values["glacier"].values:
            val = float(values.sel(time=t, glacier=g))
            if np.isnan(val):
                continue
            if coverage is not None:
                c = float(coverage.sel(time=t, glacier=g))
                if not c >= min_cov:
                    continue
            key = (year, str(g))
            cur = best.get(key)
            score = {"min": -val, "max": val, "last": ts.value}[stat]
            if cur is None or score > cur[0]:
                best[key] = (score, val, ts, (cur[3] if cur else 0) + 1)
            else:
                best[key] = cur[:3] + (cur[3] + 1,)
    return best


@FAST
@given(seed=st.integers(0, 2**32 - 1), nt=st.integers(1, 12), ng=st.integers(1, 3),
       window=st.sampled_from([("08-01", "10-15"), ("12-01", "03-31"), ("01-01", "12-31"), ("06-15", "06-15")]),
       hm=st.sampled_from([1, 4, 10]), stat=st.sampled_from(["min", "max", "last"]),
       with_cov=st.booleans(), integer=st.booleans(), transpose=st.booleans())
def test_end_of_season_equals_the_documented_rule_in_any_date_order(seed, nt, ng, window, hm, stat, with_cov,
                                                                     integer, transpose):
    rng = np.random.default_rng(seed)
    t = dates(nt, seed)  # unsorted
    ids = [f"RGI-{k}" for k in range(ng)]
    vals = rng.permutation(nt * ng).reshape(nt, ng).astype(float)  # distinct: no ties to break
    if not integer:
        vals = vals / (nt * ng)
        vals[rng.random(vals.shape) < 0.2] = np.nan
    values = xr.DataArray(vals.astype(int) if integer else vals, dims=("time", "glacier"),
                          coords={"time": t, "glacier": ids}, name="aar_proxy")
    cov = None
    if with_cov:
        c = rng.random((nt, ng))
        c[rng.random(c.shape) < 0.1] = np.nan
        cov = xr.DataArray(c, dims=("time", "glacier"), coords={"time": t, "glacier": ids})
        cov = cov.isel(time=rng.permutation(nt))  # its own date order
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = end_of_season(values.T if transpose else values, cov, min_coverage=0.5, window=window,
                            hydrological_year_start_month=hm, stat=stat)
    want = slow_end_of_season(values, cov, 0.5, window, hm, stat)
    # "last" warns exactly when a pick lies on or after its balance year's end (fresh snow likely)
    ends = {y: pd.Timestamp(f"{y + 1}-01-01") if hm == 1 else pd.Timestamp(f"{y}-{hm:02d}-01") for y, _ in want}
    late = sum(stat == "last" and w[2] >= ends[y] for (y, _), w in want.items())
    said = [w for w in caught if issubclass(w.category, InputWarning) and "after the end" in str(w.message)]
    assert len(said) == (1 if late else 0) and (not late or f"picked {late} date(s)" in str(said[0].message))
    years = sorted({y for y, _ in want})
    assert list(got["year"].values) == (list(range(years[0], years[-1] + 1)) if years else [])
    for y in got["year"].values:
        for g in ids:
            w = want.get((int(y), g))
            cell = got.sel(year=y, glacier=g)
            if w is None:
                assert np.isnan(float(cell)) and int(cell["n_dates"]) == 0
            else:
                assert float(cell) == w[1] and pd.Timestamp(cell["time"].values) == w[2]
                assert int(cell["n_dates"]) == w[3]
    # shuffling the dates changes nothing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        again = end_of_season(values.isel(time=rng.permutation(nt)), cov, min_coverage=0.5, window=window,
                              hydrological_year_start_month=hm, stat=stat)
    xr.testing.assert_identical(again, got)


def test_end_of_season_refuses_non_dates_and_coverage_of_other_glaciers():
    t = pd.to_datetime(["2021-08-20", "2021-09-10"])
    aar = xr.DataArray([[0.5], [0.4]], dims=("time", "glacier"), coords={"time": t, "glacier": ["A"]})
    with pytest.raises(ValueError, match=r"time coordinate must hold dates \(datetime64\), got int64.*"
                                         r"pd.to_datetime"):
        end_of_season(aar.assign_coords(time=[1, 2]))
    with pytest.raises(ValueError, match=r"coverage has none of the glaciers of values \(coverage: \['B'\]"):
        end_of_season(aar, aar.assign_coords(glacier=["B"]))


# =========================================================================== regression
def exact_line(x, y):
    """Least squares in exact rational arithmetic (independent of any float rounding)."""
    X = [Fraction(float(v)) for v in x]
    Y = [Fraction(float(v)) for v in y]
    n = len(X)
    xm, ym = sum(X) / n, sum(Y) / n
    sxx = sum((a - xm) ** 2 for a in X)
    sxy = sum((a - xm) * (b - ym) for a, b in zip(X, Y))
    syy = sum((b - ym) ** 2 for b in Y)
    slope = sxy / sxx
    inter = ym - slope * xm
    ssr = sum((b - inter - slope * a) ** 2 for a, b in zip(X, Y))
    return slope, inter, ssr, sxx, syy, sxy


@FAST
@given(seed=st.integers(0, 2**32 - 1), ny=st.integers(2, 8), ng=st.integers(1, 3),
       ex=st.integers(-170, 160), ey=st.integers(-170, 160), integer=st.booleans(),
       holes=st.booleans(), series=st.booleans())
def test_regress_equals_exact_least_squares_at_any_scale(seed, ny, ng, ex, ey, integer, holes, series):
    """1e160 or 1e-170 (it gave a slope of 0 or NaN), integers, NaN/inf holes, rows in any order."""
    assume(abs(ey - ex) < 290)  # the slope (~10**(ey - ex)) and its exact value must be finite floats
    rng = np.random.default_rng(seed)
    u = rng.uniform(0.1, 0.9, (ny, ng))
    b = 2.0 * u - 1.0 + 0.3 * rng.standard_normal(u.shape)
    if integer:
        x, y = np.round(u * 100).astype(int), np.round(b * 100).astype(int)
    else:
        x, y = u * 10.0**ex, b * 10.0**ey
    years, ids = np.arange(2000, 2000 + ny), [f"G{k}" for k in range(ng)]
    pred = xr.DataArray(x, dims=("year", "glacier"), coords={"year": years, "glacier": ids})
    bal = xr.DataArray(y, dims=("year", "glacier"), coords={"year": years, "glacier": ids})
    if holes:
        pred = pred.astype(float)
        pred[0, 0] = np.nan
        if ny * ng > 2:
            pred[-1, -1] = np.inf
    keep = np.isfinite(pred.values.astype(float)) & np.isfinite(bal.values.astype(float))
    xv, yv = pred.values.astype(float)[keep], bal.values.astype(float)[keep]
    assume(xv.size >= 3 and np.ptp(xv) > 0)
    # regress leaves out glaciers with fewer than min_years pairs or a constant predictor (its documented
    # rules, tested elsewhere): keep to records where none is left out, so all pairs enter the fit
    xs = pred.values.astype(float)
    assume(all(keep[:, g].sum() >= 3 and np.ptp(xs[keep[:, g], g]) > 0 for g in range(ng)))
    if series:  # rows shuffled
        ps, bs = pred.to_series(), bal.to_series()
        order = rng.permutation(len(ps))
        pred, bal = ps.iloc[order], bs.iloc[order]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mm-w.e.-like magnitudes, infinite values left out
        fit = xfacies.regress(pred, bal, cv=False, min_years=3)
    slope, inter, ssr, sxx, syy, sxy = exact_line(xv, yv)
    assert fit.n == xv.size
    np.testing.assert_allclose(fit.slope, float(slope), rtol=1e-9)
    np.testing.assert_allclose(fit.intercept, float(inter), rtol=1e-9, atol=1e-9 * abs(float(slope)) * xv.max())
    sy = Fraction(float(np.max(np.abs(yv)))) if np.max(np.abs(yv)) > 0 else Fraction(1)
    np.testing.assert_allclose(fit.rmse / float(sy), math.sqrt(float(ssr / xv.size / sy**2)), rtol=1e-9)
    if syy > 0:
        r2 = sxy * sxy / (sxx * syy)  # dimensionless, exact
        np.testing.assert_allclose(fit.r, math.copysign(math.sqrt(float(r2)), 1.0 if sxy >= 0 else -1.0), rtol=1e-9)  # sxy may exceed a float
    if xv.size > 3 and ssr > 0:  # the t-test of slope = 0 (scipy on the same numbers brought to unit scale)
        from scipy.stats import linregress

        sx = Fraction(float(np.max(np.abs(xv))))
        ref = linregress([float(Fraction(float(a)) / sx) for a in xv], [float(Fraction(float(c)) / sy) for c in yv])
        np.testing.assert_allclose(fit.p_value, ref.pvalue, rtol=1e-6, atol=1e-300)


# =========================================================================== halo helpers
@FAST
@given(ny=st.integers(1, 17), nx=st.integers(1, 17), cy=st.integers(1, 8), cx=st.integers(1, 8),
       dy=st.integers(0, 4), dx=st.integers(0, 4), boundary=st.sampled_from(["nearest", 0.0, np.nan]),
       seed=st.integers(0, 2**32 - 1))
def test_map_halo_equals_a_box_sum_over_the_padded_array(ny, nx, cy, cx, dy, dx, boundary, seed):
    """Chunks smaller than the halo, halos wider than the array, both boundaries."""
    rng = np.random.default_rng(seed)
    a = rng.random((ny, nx))

    def boxsum(b):
        v = np.lib.stride_tricks.sliding_window_view(b, (2 * dy + 1, 2 * dx + 1))
        return v.sum(axis=(-1, -2))

    arr = dsa.from_array(a, chunks=(cy, cx))
    got = map_halo(boxsum, arr, {0: dy, 1: dx}, boundary=boundary, trim=False).compute()
    if boundary == "nearest":
        padded = np.pad(a, ((dy, dy), (dx, dx)), mode="edge")
    else:
        padded = np.pad(a, ((dy, dy), (dx, dx)), mode="constant", constant_values=boundary)
    np.testing.assert_allclose(got, boxsum(padded), rtol=1e-12, equal_nan=True)


@FAST
@given(chunks=st.lists(st.integers(1, 9), min_size=1, max_size=8), d=st.integers(0, 12))
def test_min_chunks_only_merges_and_reaches_the_halo(chunks, d):
    arr = dsa.zeros((sum(chunks), 3), chunks=(tuple(chunks), 3))
    out = min_chunks(arr, {0: d}).chunks[0]
    assert sum(out) == sum(chunks)
    assert len(out) == 1 or min(out) >= d
    wins = [w for _, _, w in block_windows(out, (3,))]
    assert [w[0] for w in wins] == [0, *np.cumsum(out)[:-1]] and wins[-1][1] == sum(chunks)


# =========================================================================== inference
@pytest.fixture(scope="module")
def demo():
    return xfacies.load_model("demo")


@pytest.fixture(scope="module")
def scene():
    from xfacies import synthetic

    ds = synthetic.scene(size=40, seed=2)
    return ds.features, ds.glacier


def patch_oracle(model, feats: np.ndarray, r: int, c: int) -> np.ndarray:
    """The patch model on the pixel's own zero-padded 33 x 33 patch (the reference semantics)."""
    x = model.normalise(np.moveaxis(feats, 0, -1))
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    p = np.pad(x, ((16, 16), (16, 16), (0, 0)))[r:r + 33, c:c + 33]
    return np.asarray(model.keras_model(dense=False)(p[None].astype(np.float32), training=False))[0]


@MODEL
@given(seed=st.integers(0, 2**32 - 1), cy=st.integers(3, 40), cx=st.integers(3, 40),
       method=st.sampled_from(["dense", "exact"]), bad=st.sampled_from([np.nan, np.inf, -np.inf, 1e30]),
       hole=st.booleans())
def test_probabilities_are_the_patch_models_and_chunk_invariant(demo, scene, seed, cy, cx, method, bad, hole):
    """NaN/inf (missing: nodata, zeros for the neighbours), huge values, an all-masked region,
    chunks smaller than the 16 px halo: every chunking gives the unchunked result, and sampled
    pixels equal the patch model on their own hand-built patch."""
    feats, glacier = scene
    rng = np.random.default_rng(seed)
    v = feats.values.copy()
    for _ in range(4):
        v[rng.integers(0, v.shape[0]), rng.integers(0, 40), rng.integers(0, 40)] = bad
    f = feats.copy(data=v)
    mask = (glacier > 0).astype(np.int32)
    mask.values[:, :] = 1 if rng.random() < 0.3 else mask.values  # sometimes every pixel
    if hole:
        mask.values[:20, :20] = 0  # whole chunks without a glacier pixel
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xfacies.inference.ChunkWarning)
        whole = xfacies.predict_proba(f, demo, mask, method=method).values
        chunked = xfacies.predict_proba(f.chunk(y=cy, x=cx), demo, mask, method=method).values
    np.testing.assert_allclose(chunked, whole, atol=1e-5, equal_nan=True)
    valid = (mask.values == 1) & np.isfinite(v).all(axis=0)
    assert np.isnan(whole[:, ~valid]).all()
    np.testing.assert_allclose(whole[:, valid].sum(axis=0), 1.0, atol=1e-5)
    rows, cols = np.nonzero(valid)
    for k in rng.choice(rows.size, size=min(3, rows.size), replace=False):
        np.testing.assert_allclose(whole[:, rows[k], cols[k]], patch_oracle(demo, v, rows[k], cols[k]),
                                   atol=1e-5)


@MODEL
@given(seed=st.integers(0, 2**32 - 1), nt=st.integers(1, 3), chunk=st.sampled_from([None, 13, 40]))
def test_classify_per_date_equals_each_date_alone_in_any_date_order(demo, scene, seed, nt, chunk):
    feats, glacier = scene
    rng = np.random.default_rng(seed)
    t = dates(nt, seed)
    cube = xr.concat([(feats * (1 + 0.05 * k)).assign_coords(time=t[k]) for k in range(nt)], dim="time")
    cube.attrs = feats.attrs
    mask = (glacier > 0).astype(np.int32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xfacies.inference.ChunkWarning)
        c = cube if chunk is None else cube.chunk(time=1, y=chunk, x=chunk)
        both = xfacies.classify(c, demo, mask, smooth=False, confidence=True).compute()
        for k in rng.permutation(nt):
            alone = xfacies.classify(cube.isel(time=k), demo, mask, smooth=False).values
            np.testing.assert_array_equal(both["classes"].values[k], alone)
            p = xfacies.predict_proba(cube.isel(time=k), demo, mask).values
            ok = np.isfinite(p).all(axis=0)
            np.testing.assert_array_equal(alone[ok], np.argmax(p[:, ok], axis=0))
            assert (alone[~ok] == NODATA).all()
        smooth_c = xfacies.classify(c, demo, mask).values
        smooth_w = xfacies.classify(cube, demo, mask).values
    np.testing.assert_array_equal(smooth_c, smooth_w)


@pytest.mark.parametrize("method", ["dense", "exact"])
def test_inference_inputs_clear_errors_or_the_same_answer(demo, scene, method):
    feats, glacier = scene
    mask = (glacier > 0).astype(np.int32)
    base = xfacies.predict_proba(feats, demo, mask, method=method).values
    # integer digital numbers: refused
    for dt in ("int16", "uint16", "int64", bool):
        with pytest.raises(TypeError, match=r"features has integer dtype .*Apply the sensor's scale/offset"):
            xfacies.predict_proba(feats.astype(dt), demo, mask, method=method)
    # south-up: refused, with the fix
    with pytest.raises(ValueError, match=r"y coordinate must decrease .*Flip the features first"):
        xfacies.predict_proba(feats.isel(y=slice(None, None, -1)), demo, method=method)
    # float64 / float16: the float32 answer of the same numbers
    np.testing.assert_allclose(xfacies.predict_proba(feats.astype("float64"), demo, mask, method=method).values,
                               base, atol=1e-6, equal_nan=True)
    f16 = feats.astype("float16")
    np.testing.assert_allclose(xfacies.predict_proba(f16, demo, mask, method=method).values,
                               xfacies.predict_proba(f16.astype("float32"), demo, mask, method=method).values,
                               atol=1e-6, equal_nan=True)
    # non-square pixels: the model works on pixels, so the same probabilities
    tall = feats.assign_coords(y=Y0 - 20.0 * (np.arange(40) + 0.5))
    np.testing.assert_allclose(xfacies.predict_proba(tall, demo, mask.assign_coords(y=tall.y),
                                                     method=method).values, base, atol=1e-6, equal_nan=True)
    # a single date equals no time dim
    one = feats.expand_dims(time=pd.to_datetime(["2021-08-15"]))
    np.testing.assert_allclose(xfacies.predict_proba(one, demo, mask, method=method).values[0], base,
                               atol=1e-6, equal_nan=True)
    # a one-pixel scene (all its patch is padding): the patch model's answer
    px = feats.isel(y=[20], x=[20])
    np.testing.assert_allclose(xfacies.predict_proba(px, demo, method=method).values[:, 0, 0],
                               patch_oracle(demo, px.values, 0, 0), atol=1e-5)


def test_inference_outlines_empty_one_pixel_or_outside(demo, scene):
    feats, _ = scene
    with pytest.raises(ValueError, match=r"the outlines do not overlap the grid"):
        xfacies.predict_proba(feats, demo, gdf(box(0, 0, 10, 10)))
    assert np.isnan(xfacies.predict_proba(feats, demo, gdf()).values).all()  # nothing to classify
    x, y = float(feats.x[7]), float(feats.y[9])
    p = xfacies.predict_proba(feats, demo, gdf(box(x - 2, y - 2, x + 2, y + 2)), method="exact").values
    assert np.isfinite(p).all(axis=0).sum() == 1 and np.isfinite(p[:, 9, 7]).all()
    np.testing.assert_allclose(p[:, 9, 7], patch_oracle(demo, feats.values, 9, 7), atol=1e-5)
    lab = xfacies.classify(feats, demo, gdf(box(x - 2, y - 2, x + 2, y + 2))).values
    assert lab[9, 7] == np.argmax(p[:, 9, 7]) and (np.delete(lab.ravel(), 9 * 40 + 7) == NODATA).all()


# =========================================================================== features
def cube_and_dem(seed, ny, nx, nt, dx=10.0, dy=10.0, ydesc=True):
    rng = np.random.default_rng(seed)
    sh = ((nt,) if nt else ()) + (len(OPTICAL_FEATURES), ny, nx)
    c = {**coords(ny, nx, dx, dy, ydesc), "band": list(OPTICAL_FEATURES)}
    dims = (("time",) if nt else ()) + ("band", "y", "x")
    if nt:
        c["time"] = dates(nt, seed)
    cube = xr.DataArray(rng.uniform(0.05, 0.9, sh).astype("float32"), dims=dims, coords=c).rio.write_crs(CRS)
    z = 2000.0 + np.cumsum(rng.uniform(0, 8, (ny, nx)), axis=0)  # a rough slope
    dem = raster(z.astype("float32"), dx, dy, ydesc)
    return cube, dem


@MODEL
@given(seed=st.integers(0, 2**32 - 1), ny=st.integers(6, 16), nx=st.integers(6, 16), nt=st.integers(0, 3),
       chunks=st.tuples(st.integers(1, 8), st.integers(1, 8)), nan_cube=st.booleans(), nan_dem=st.booleans())
def test_features_chunked_equal_unchunked_and_match_plain_definitions(seed, ny, nx, nt, chunks, nan_cube, nan_dem):
    """Chunks smaller than every halo, NaN in cube and DEM, dates out of order, one date:
    chunked == unchunked, each date equals that date alone, NaN wherever an optical band is
    NaN, elevation and proximity equal their definitions."""
    from xfacies.features import features

    rng = np.random.default_rng(seed)
    cube, dem = cube_and_dem(seed, ny, nx, nt)
    if nan_cube:
        cube.values[..., rng.integers(0, 6), rng.integers(0, ny), rng.integers(0, nx)] = np.nan
    if nan_dem:
        dem.values[rng.integers(0, ny), rng.integers(0, nx)] = np.nan
    r0, r1, c0, c1 = 1, ny - 2, 1, nx - 3
    g = cell_box(r0, r1, c0, c1)
    sun = dict(sun_azimuth=list(rng.uniform(100, 250, nt)) if nt else 150.0,
               sun_elevation=list(rng.uniform(20, 60, nt)) if nt else 40.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = features(cube, dem, gdf(g), **sun).values
        chunked = features(cube.chunk({"y": chunks[0], "x": chunks[1]}), dem, gdf(g), **sun).values
        for k in range(nt):
            alone = features(cube.isel(time=k), dem, gdf(g), sun_azimuth=sun["sun_azimuth"][k],
                             sun_elevation=sun["sun_elevation"][k]).values
            np.testing.assert_array_equal(alone, whole[k])
    np.testing.assert_array_equal(chunked, whole)
    w = whole if nt else whole[None]
    missing = np.isnan(cube.values if nt else cube.values[None]).any(axis=1)
    assert np.isnan(w.transpose(1, 0, 2, 3)[:, missing]).all()
    # elevation: (z - min) / (max - min) over the DEM inside the outline
    names = [f.name for f in xfacies.FEATURES]
    z = dem.values.astype(np.float64)
    sel = inside(dem, g) & np.isfinite(z)
    lo, hi = z[sel].min(), z[sel].max()
    want = (z - lo) / (hi - lo) if hi - lo >= 1 else np.full_like(z, 0.5)
    ok = ~missing[0] & np.isfinite(z)
    np.testing.assert_allclose(w[0, names.index("elevation")][ok], want[ok], atol=1e-5)
    # proximity: distance from the pixel centre to the outline, over its maximum
    import shapely

    xx, yy = np.meshgrid(dem.x.values, dem.y.values)
    d = shapely.distance(shapely.points(xx, yy), g.exterior)
    ok = ~missing[0]
    np.testing.assert_allclose(w[0, names.index("proximity")][ok], (d / d.max())[ok], atol=1e-5)


@pytest.mark.parametrize("ydesc, dy", [(False, 10.0), (True, 20.0)])
def test_features_orientation_and_pixel_shape_refused_for_terrain_passed_for_optical(ydesc, dy):
    from xfacies.features import features

    cube, dem = cube_and_dem(0, 8, 9, 2, dy=dy, ydesc=ydesc)
    g = gdf(cell_box(1, 5, 1, 5, dy=dy))
    match = r"Flip the cube first" if not ydesc else r"terrain features need square pixels.*resample it"
    with pytest.raises(ValueError, match=match):
        features(cube, dem, g, sun_azimuth=[150.0, 160.0], sun_elevation=[40.0, 45.0])
    np.testing.assert_array_equal(features(cube, feature_set=1).values, cube.values)  # optical only


@pytest.mark.parametrize("dtype", ["int16", "uint16", "int32"])
def test_features_refuse_integer_and_huge_reflectance(dtype):
    from xfacies.features import features

    cube, _ = cube_and_dem(1, 8, 9, 1)
    with pytest.raises(TypeError, match=r"cube has integer dtype .*Apply the sensor's scale/offset"):
        features((cube * 10000).astype(dtype), feature_set=1)
    with pytest.raises(ValueError, match=r"does not look like surface reflectance"):
        features(cube * 1e30, feature_set=1)


def test_features_one_pixel_outline_elevation_one_half_and_exact_proximity():
    from xfacies.features import ElevationRangeWarning, features

    cube, dem = cube_and_dem(2, 9, 10, None)
    x, y = float(dem.x[4]), float(dem.y[3])
    tiny = box(x - 2, y - 2, x + 2, y + 2)
    with pytest.warns(ElevationRangeWarning, match="elevation feature is 0.5"):
        f = features(cube, dem, gdf(tiny), feature_set=["elevation", "proximity"]).values
    np.testing.assert_array_equal(f[0], np.float32(0.5))
    import shapely

    xx, yy = np.meshgrid(dem.x.values, dem.y.values)
    d = shapely.distance(shapely.points(xx, yy), tiny.exterior)
    np.testing.assert_allclose(f[1], d / d.max(), atol=1e-6)


def test_features_outlines_outside_the_cube_are_refused():
    from xfacies.features import features

    cube, dem = cube_and_dem(3, 8, 9, None)
    with pytest.raises(ValueError, match=r"the outlines do not overlap the grid: outline bounds"):
        features(cube, dem, gdf(box(0, 0, 10, 10)), feature_set=["elevation"])


def test_features_empty_outlines_say_so():
    from xfacies.features import features

    cube, dem = cube_and_dem(3, 8, 9, None)
    with pytest.raises(ValueError, match=r"outlines .*(empty|no glacier)"):
        features(cube, dem, gdf(), feature_set=["proximity"])


def test_features_float32_fill_in_a_dem_is_masked_or_refused():
    from xfacies.features import features

    cube, dem = cube_and_dem(4, 10, 10, None)
    z = dem.values.copy()
    z[4, 4] = np.finfo(np.float32).min  # undeclared nodata, as GDAL writes it
    g = gdf(cell_box(1, 8, 1, 8))
    try:
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            f = features(cube, dem.copy(data=z), g, feature_set=["elevation", "slope"]).values
    except ValueError as err:  # a clear refusal is fine too
        assert "dem" in str(err).lower() and "nodata" in str(err)
        return
    assert any("nodata" in str(w.message) for w in rec)
    ring = np.ones((3, 3), bool)
    ring[1, 1] = False  # Horn's slope at the void itself uses only its (valid) neighbours
    assert np.isnan(f[1, 3:6, 3:6][ring]).all()  # slope: masked around it, not a 90 degree cliff
    assert np.isnan(f[0, 4, 4])  # elevation: the void is nodata
    ok = np.isfinite(f[0])
    ok[4, 4] = False
    zf = dem.values.astype(np.float64)
    sel = inside(dem, g.geometry[0]) & ok
    lo, hi = zf[sel].min(), zf[sel].max()
    np.testing.assert_allclose(f[0][ok], ((zf - lo) / (hi - lo))[ok], atol=1e-5)
