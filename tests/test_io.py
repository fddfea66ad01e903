"""Zarr round trips, appends, in-place replacement, resume, formats, catalogue checks."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401
import xarray as xr

from xfacies.catalog import CLASSES, NODATA, class_flag_attrs
from xfacies import io
from xfacies.io import open_zarr, to_zarr, zarr_format_of

CRS = "EPSG:32632"
X0, Y0, RES = 600_000.0, 5_100_000.0, 10.0


def class_map(dates: list[str], seed: int = 0, ny: int = 12, nx: int = 17) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    values = rng.integers(NODATA, len(CLASSES), size=(len(dates), ny, nx)).astype("int8")
    da = xr.DataArray(
        values, dims=("time", "y", "x"), name="classes", attrs=class_flag_attrs(),
        coords={"time": pd.to_datetime(dates),
                "y": Y0 - RES / 2 - RES * np.arange(ny), "x": X0 + RES / 2 + RES * np.arange(nx)},
    )
    return da.rio.write_crs(CRS)


def scene(dates: list[str], seed: int = 0) -> xr.Dataset:
    classes = class_map(dates, seed)
    conf = xr.DataArray(np.random.default_rng(seed + 1).random(classes.shape).astype("float32"),
                        dims=classes.dims, coords=classes.coords,
                        attrs={"long_name": "confidence", "units": "1"})
    conf = conf.where(classes != NODATA)
    ds = xr.Dataset({"classes": classes, "confidence": conf}, attrs={"title": "test scene"})
    ds["sensor"] = ("time", np.array(["S2"] * len(dates), dtype=object))
    return ds


@pytest.mark.parametrize("zarr_format", [3, 2])
def test_round_trip_is_identical_and_int8_stays_int8(tmp_path, zarr_format):
    ds = scene(["2024-07-01", "2024-07-17", "2024-08-02"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing surfaces to users
        path = to_zarr(ds, tmp_path / "s.zarr", zarr_format=zarr_format)
        back = open_zarr(path)
    assert zarr_format_of(path) == zarr_format
    assert back["classes"].dtype == np.int8
    assert "_FillValue" not in back["classes"].attrs
    assert back["classes"].attrs["flag_values"].dtype == np.int8
    assert back["classes"].attrs["flag_meanings"] == class_flag_attrs()["flag_meanings"]
    assert back["classes"].encoding["chunks"][0] == 1  # time chunk 1
    assert back.rio.crs.to_epsg() == 32632
    xr.testing.assert_identical(back.compute(), ds)
    # plain xarray with CF masking: v3 keeps int8 (nodata is a flag, the array's fill value is no CF
    # mask); v2 has one fill value, NODATA (so unwritten chunks read as nodata, not ice), which
    # xarray reads as a mask: float with NaN exactly at nodata
    plain = xr.open_zarr(path, consolidated=zarr_format == 2, mask_and_scale=True)
    if zarr_format == 3:
        assert plain["classes"].dtype == np.int8
        assert (plain["classes"].values == NODATA).sum() == (ds["classes"].values == NODATA).sum()
    else:
        want = ds["classes"].values
        np.testing.assert_array_equal(plain["classes"].values, np.where(want == NODATA, np.nan, want))


def test_round_trip_of_named_dataarray_dask_and_strings(tmp_path):
    da = class_map(["2024-07-01", "2024-07-17"]).chunk({"time": 2, "y": 5, "x": (7, 3, 7)})
    path = to_zarr(da, tmp_path / "c.zarr")
    back = open_zarr(path)
    xr.testing.assert_identical(back.compute(), da.to_dataset().compute())
    assert back["classes"].encoding["chunks"] == (1, 5, 7)
    with pytest.raises(ValueError, match="no name"):
        to_zarr(da.rename(None), tmp_path / "x.zarr")

    frac = xr.Dataset({"fraction": (("glacier", "class"), np.full((2, 3), 0.5, "float32"))},
                      coords={"glacier": np.array(["RGI60-11.00001", "RGI60-11.00002"]),
                              "class": np.array(["ice", "snow", "firn"], dtype=object)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = open_zarr(to_zarr(frac, tmp_path / "f.zarr"))
    assert back["glacier"].dtype == object
    xr.testing.assert_identical(back.compute(), frac)


def test_append_new_dates(tmp_path):
    path = tmp_path / "s.zarr"
    first = scene(["2024-07-01", "2024-07-17"], seed=1)
    later = scene(["2024-08-02", "2024-08-18"], seed=2)
    to_zarr(first, path)
    to_zarr(later, path)
    back = open_zarr(path).compute()
    xr.testing.assert_identical(back, xr.concat([first, later], dim="time"))


def test_rewriting_an_existing_date_replaces_it(tmp_path):
    path = tmp_path / "s.zarr"
    orig = scene(["2024-07-01", "2024-07-17", "2024-08-02"], seed=3)
    to_zarr(orig, path)
    update = scene(["2024-07-17", "2024-08-18"], seed=4)  # one existing, one new date
    to_zarr(update.chunk({"y": 5}), path)
    back = open_zarr(path).compute()
    times = pd.DatetimeIndex(back["time"].values)
    assert not times.has_duplicates and times.is_monotonic_increasing
    assert list(times.strftime("%Y-%m-%d")) == ["2024-07-01", "2024-07-17", "2024-08-02", "2024-08-18"]
    xr.testing.assert_identical(back.sel(time=["2024-07-17"]), update.sel(time=["2024-07-17"]))
    xr.testing.assert_identical(back.sel(time=["2024-08-18"]), update.sel(time=["2024-08-18"]))
    xr.testing.assert_identical(back.sel(time=["2024-07-01", "2024-08-02"]),
                                orig.sel(time=["2024-07-01", "2024-08-02"]))


def test_skip_existing_writes_only_missing_dates(tmp_path):
    path = tmp_path / "s.zarr"
    done = scene(["2024-07-01", "2024-07-17"], seed=5)
    to_zarr(done, path)
    rerun = scene(["2024-07-01", "2024-07-17", "2024-08-02"], seed=6)  # different values
    to_zarr(rerun, path, skip_existing=True)
    back = open_zarr(path).compute()
    assert back.sizes["time"] == 3
    xr.testing.assert_identical(back.isel(time=[0, 1]), done)  # untouched
    xr.testing.assert_identical(back.isel(time=[2]), rerun.isel(time=[2]))


def test_out_of_order_dates_read_back_sorted(tmp_path):
    path = tmp_path / "s.zarr"
    to_zarr(scene(["2024-08-02"], seed=7), path)
    early = scene(["2024-07-01"], seed=8)
    to_zarr(early, path)
    back = open_zarr(path).compute()
    assert pd.DatetimeIndex(back["time"].values).is_monotonic_increasing
    xr.testing.assert_identical(back.isel(time=[0]), early)


def test_catalogue_mismatch_is_refused(tmp_path):
    path = tmp_path / "s.zarr"
    to_zarr(scene(["2024-07-01"]), path)
    other = scene(["2024-07-17"])
    other["classes"].attrs["flag_meanings"] = "no_data ice snow rock"
    other["classes"].attrs["flag_values"] = np.array([-1, 0, 1, 2], "int8")
    with pytest.raises(ValueError, match="catalogue mismatch") as info:
        to_zarr(other, path)
    assert "rock" in str(info.value) and "refrozen_like" in str(info.value)
    assert open_zarr(path).sizes["time"] == 1  # nothing written


def test_grid_mismatch_and_modes(tmp_path):
    path = tmp_path / "s.zarr"
    to_zarr(scene(["2024-07-01"]), path)
    shifted = scene(["2024-07-17"]).assign_coords(x=lambda d: d.x + 5)
    with pytest.raises(ValueError, match="'x' differs"):
        to_zarr(shifted, path)
    with pytest.raises(ValueError, match="mode='w'"):
        to_zarr(scene(["2024-07-17"]).isel(time=0, drop=True), path)
    with pytest.raises(ValueError, match="exists"):
        to_zarr(scene(["2024-07-17"]), path, mode="w-")
    to_zarr(shifted, path, mode="w")
    np.testing.assert_array_equal(open_zarr(path)["x"].values, shifted["x"].values)
    with pytest.raises(FileNotFoundError, match="no Zarr store"):
        open_zarr(tmp_path / "nothing.zarr")


def test_zarr_v2_updates_too(tmp_path):
    path = tmp_path / "v2.zarr"
    to_zarr(scene(["2024-07-01", "2024-07-17"], seed=9), path, zarr_format=2)
    new = scene(["2024-07-17", "2024-08-02"], seed=10)
    to_zarr(new, path)  # keeps the store's format
    assert zarr_format_of(path) == 2
    back = open_zarr(path).compute()
    assert back.sizes["time"] == 3 and back["classes"].dtype == np.int8
    xr.testing.assert_identical(back.isel(time=[1, 2]), new)


@pytest.mark.parametrize("zarr_format", [3, 2])
def test_dates_laid_out_but_never_written_read_as_nodata_with_plain_xarray(tmp_path, zarr_format):
    """A run lays out every date before writing any: the dates it never wrote (a crash, an edited
    completion record) read as NODATA, not as class 0 (ice), with plain ``xr.open_zarr``: -1 in
    Zarr v3 (the array's fill value, no CF mask), NaN in Zarr v2 (whose one fill value xarray
    reads as a CF mask).  ``xfacies.io.open_zarr`` reads both as int8 with -1."""
    import dask.array as da

    from xfacies.catalog import NODATA, class_flag_attrs

    t = pd.date_range("2021-06-01", periods=3, freq="10D")
    arr = da.from_array(np.arange(3 * 8 * 8).reshape(3, 8, 8) % 5, chunks=(1, 8, 8)).astype(np.int8)
    classes = xr.DataArray(arr, dims=("time", "y", "x"), name="classes",
                           coords={"time": t, "y": 5190000.0 - 10 * np.arange(8), "x": 630000.0 + 10 * np.arange(8)},
                           attrs=class_flag_attrs())
    store = tmp_path / "maps.zarr"
    io.layout_regions(classes, store, zarr_format=zarr_format)
    writes = io.region_writes(classes, store)
    writes[t[0]].compute()  # only the first date is written
    raw = xr.open_zarr(store, consolidated=False)
    if zarr_format == 3:
        assert raw.classes.dtype == np.int8 and "_FillValue" not in raw.classes.attrs
        np.testing.assert_array_equal(raw.classes.isel(time=0).values, classes.isel(time=0).values)
        assert (raw.classes.isel(time=slice(1, None)).values == NODATA).all()
    else:
        first = classes.isel(time=0).values
        np.testing.assert_array_equal(raw.classes.isel(time=0).values, np.where(first == NODATA, np.nan, first))
        assert np.isnan(raw.classes.isel(time=slice(1, None)).values).all()
    assert list(io.complete_dates(store)) == []  # nothing was marked complete
    io.mark_complete(store, t[:1])
    mine = io.open_zarr(store)
    assert mine.classes.dtype == np.int8
    np.testing.assert_array_equal(mine.classes.values, classes.isel(time=[0]).values)
    # and so do they in a second Zarr implementation
    from zarr_reader import read_with_tensorstore

    other, _ = read_with_tensorstore(store)
    np.testing.assert_array_equal(other["classes"].values, raw.classes.values)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_every_store_opens_in_a_second_zarr_implementation(tmp_path, zarr_format):
    """Class maps (laid out, partly written), fractions and a plain to_zarr store read the same in
    tensorstore as in xr.open_zarr, in both Zarr formats.  tensorstore has no string data type: the
    glacier ids and class names are the only variables it cannot read, and the class ids beside
    the names can be read instead."""
    import dask.array as da

    from xfacies import synthetic
    from xfacies.products import fractions
    from zarr_reader import assert_same_in_tensorstore

    ds = synthetic.season(["2021-07-01", "2021-08-15", "2021-09-10"], size=48, seed=3)
    classes = ds["truth"].rename("classes")
    plain = tmp_path / "plain.zarr"
    io.to_zarr(classes.to_dataset(), plain, zarr_format=zarr_format)
    assert assert_same_in_tensorstore(plain) == []

    lazy = classes.copy(data=da.from_array(classes.values, chunks=(1, 24, 24)))
    runs = tmp_path / "maps.zarr"
    io.layout_regions(lazy, runs, zarr_format=zarr_format)
    io.region_writes(lazy, runs)[pd.Timestamp("2021-08-15")].compute()
    assert assert_same_in_tensorstore(runs) == []

    frac = tmp_path / "fractions.zarr"
    io.to_zarr(fractions(classes, synthetic.outlines(48, seed=3)), frac, zarr_format=zarr_format)
    assert assert_same_in_tensorstore(frac) == ["class", "glacier"]
