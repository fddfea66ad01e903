"""``xfacies run``: the pipeline end to end on synthetic glaciers served over STAC; resume,
idempotence, configuration errors, the mass-balance report, parallel region writes on a cluster."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xfacies
from xfacies import io
from xfacies.app.cli import main
from xfacies.app.pipeline import RunConfig, load_config, run

DATES = ["2019-06-20", "2020-07-10", "2021-08-05"]
GLACIER = "SYN60-00.00001"


def config(outdir, **sections):
    cfg = {
        "area": {"synthetic": {"size": 128, "seed": 7, "n_glaciers": 1, "dates": DATES}},
        "time": {"start": 2019, "end": 2021},
        "stac": {"catalog": "synthetic", "chunks": 64},
        "dem": {"source": "synthetic"},
        "products": {"window": ["06-01", "10-15"]},
        "cluster": {"scheduler": "threads"},
        "output": {"dir": str(outdir)},
    }
    for k, v in sections.items():
        cfg[k] = {**cfg.get(k, {}), **v}
    return cfg


def toml(cfg) -> str:
    def val(v):
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + "}"
        return str(v)

    return "\n".join(f"[{s}]\n" + "\n".join(f"{k} = {val(v)}" for k, v in kv.items()) for s, kv in cfg.items())


def chunk_files(store: Path) -> dict[str, float]:
    return {str(p.relative_to(store)): p.stat().st_mtime_ns for p in (store / "classes").rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    res = run(config(out), progress=False, verbose=False)
    return out, res


def test_run_end_to_end(first_run):
    out, res = first_run
    assert [t.strftime("%Y-%m-%d") for t in res.written] == DATES and res.skipped == []
    maps = io.open_zarr(res.store).compute()
    assert maps.classes.dtype == np.int8 and maps.sizes == {"time": 3, "y": 128, "x": 128}
    assert maps.classes.encoding["chunks"] == (1, 64, 64)
    assert set(np.unique(maps.classes.values)) - {-1} and maps.confidence.dtype == np.float32
    assert [str(t)[:10] for t in io.complete_dates(res.store).strftime("%Y-%m-%d")] == DATES
    frac = io.open_zarr(res.fractions_store).compute()
    np.testing.assert_allclose(frac.fraction.sum("class").values, 1.0, atol=1e-5)
    prod = io.open_zarr(res.products_store).compute()
    assert set(prod.data_vars) >= {"aar_proxy", "end_of_season_aar_proxy", "snowline_altitude"}
    from zarr_reader import assert_same_in_tensorstore  # a second Zarr implementation reads them too

    for store in (res.store, res.fractions_store, res.products_store):
        assert_same_in_tensorstore(store)  # text (ids, names, platforms) excepted: tensorstore has no strings
    assert list(res.table.columns[:3]) == ["year", "glacier", "aar_proxy"] and len(res.table) == 3
    assert res.table.aar_proxy.between(0, 1).all()
    report = res.report_dir
    assert {"end_of_season.csv", "fractions.png", "summary.txt"} <= {p.name for p in report.iterdir()}
    assert (report / "fractions.png").read_bytes()[:4] == b"\x89PNG"
    log = res.log.read_text()
    assert "wrote 2019-06-20" in log and "summary:" in log
    assert "classified and written: 3 date(s)" in (report / "summary.txt").read_text()


def test_a_stored_date_is_the_scene_classified_directly_and_its_fractions_are_a_bincount(first_run, tmp_path):
    """The product checked from outside the pipeline: one date's scene written again as COGs by
    the generator, searched on its own loopback server, put through ``open_stac`` -> ``features``
    -> ``classify`` with the run's model, outlines and smoothing, equals the stored class map;
    fractions, coverage and AAR proxy equal counts of the stored map inside the outline (pixel
    centres tested with shapely, not the package's rasteriser)."""
    import shapely

    from xfacies import synthetic
    from xfacies.features import features
    from xfacies.sources import stac_server

    out, res = first_run
    area = {"size": 128, "seed": 7, "n_glaciers": 1}
    day = DATES[1]
    season = synthetic.season([day], **area)
    outlines = synthetic.outlines(128, seed=7, n_glaciers=1)
    coll, items = stac_server.synthetic_catalog(season, tmp_path / "stac")
    model = xfacies.load_model(res.config.model.path)
    with stac_server.serve(coll, items) as url:
        cube = xfacies.open_stac(season, time=day, sensors=("sentinel-2",), catalog=url,
                                 provider="earth-search", chunks={"y": 64, "x": 64})
        feats = features(cube, dem=season["dem"], outlines=outlines, feature_set=model.features)
        direct = xfacies.classify(feats, model, outlines, method=res.config.model.method,
                                  smooth=res.config.model.smooth).compute()
    stored = io.open_zarr(res.store)["classes"].sel(time=day).compute()
    np.testing.assert_array_equal(direct.isel(time=0).values, stored.values)
    # the outline masks the map, and the map is not trivial
    yy, xx = np.meshgrid(stored["y"].values, stored["x"].values, indexing="ij")
    inside = shapely.contains_xy(outlines.geometry.iloc[0], xx, yy)
    assert (stored.values[~inside] == -1).all() and 0.05 < inside.mean() < 0.95
    assert len(np.unique(stored.values[inside])) >= 3
    # fractions, coverage, AAR proxy: plain counts of the stored map inside the outline
    frac = io.open_zarr(res.fractions_store).compute().sel(time=day)
    glacier = frac["glacier"].values[0]
    names = [c.name for c in xfacies.CLASSES]
    v = stored.values[inside]
    counts = np.bincount(v[v >= 0], minlength=len(names))
    observed = counts.sum() - counts[names.index("cloud")]
    assert list(frac["class"].values) == [n for n in names if n != "cloud"]  # cloud is not surface
    for k, name in enumerate(names):
        if name != "cloud":
            got = frac["fraction"].sel(glacier=glacier, **{"class": name}).item()
            assert got == pytest.approx(counts[k] / observed, abs=1e-6), name
    assert frac["coverage"].sel(glacier=glacier).item() == pytest.approx(observed / inside.sum(), abs=1e-6)
    aar = (counts[names.index("snow")] + counts[names.index("firn")]) / observed
    prod = io.open_zarr(res.products_store).compute()
    assert prod["aar_proxy"].sel(time=day, glacier=glacier).item() == pytest.approx(aar, abs=1e-6)


def test_rerun_is_idempotent_and_no_resume_replaces_in_place(first_run):
    out, first = first_run
    before = chunk_files(first.store)
    maps0 = io.open_zarr(first.store).compute()
    again = run(config(out), progress=False, verbose=False)
    assert again.written == [] and len(again.skipped) == 3
    assert chunk_files(first.store) == before  # nothing rewritten
    redo = run(config(out), resume=False, progress=False, verbose=False)
    assert len(redo.written) == 3
    maps1 = io.open_zarr(first.store).compute()
    xr.testing.assert_identical(maps0, maps1)  # same dates, same values: replaced, not appended
    pd.testing.assert_frame_equal(again.table, first.table)


def test_resume_after_interruption_writes_only_the_missing_dates(first_run, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real = io.mark_complete
    calls = []

    def interrupt_after_first(store, dates):
        calls.append(dates)
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated interruption")
        real(store, dates)

    monkeypatch.setattr(io, "mark_complete", interrupt_after_first)
    with pytest.raises(KeyboardInterrupt):
        run(config(out), progress=False, verbose=False)
    monkeypatch.setattr(io, "mark_complete", real)
    store = out / "facies.zarr"
    assert list(io.complete_dates(store).strftime("%Y-%m-%d")) == DATES[:1]
    assert io.open_zarr(store).sizes["time"] == 1  # readers never see the unfinished dates
    first_chunks = {k: v for k, v in chunk_files(store).items() if k.split("/")[-3:-2] == ["0"]
                    or k.startswith("c/0/")}
    assert first_chunks
    res = run(config(out), progress=False, verbose=False)
    assert [t.strftime("%Y-%m-%d") for t in res.written] == DATES[1:]
    assert [t.strftime("%Y-%m-%d") for t in res.skipped] == DATES[:1]
    after = chunk_files(store)
    assert all(after[k] == v for k, v in first_chunks.items())  # the first date was not rewritten
    xr.testing.assert_identical(io.open_zarr(store).compute(), io.open_zarr(first_run[1].store).compute())


def wgms_record(folder, first, wgms_id: int, name: str):
    """A small WGMS-format record: balances (mm w.e.) that fall as the run's AAR proxy falls."""
    folder.mkdir()
    aar = first.table.set_index("year")["aar_proxy"]
    mm = {y: round((3.0 * a - 1.8) * 1000 + 30 * (-1) ** y) for y, a in aar.items()}
    rows = "\n".join(f"{y},{wgms_id},XX,{name},1.0,,,{b},," for y, b in mm.items())
    (folder / f"mbdata_WGMS-{wgms_id:05d}.csv").write_text(
        "YEAR,WGMS_ID,POLITICAL_UNIT,NAME,AREA,WINTER_BALANCE,SUMMER_BALANCE,ANNUAL_BALANCE,REMARKS,RGI_ID\n"
        + rows + "\n")
    return folder


def test_massbalance_report_with_a_wgms_table(first_run, tmp_path):
    out, first = first_run
    wg = wgms_record(tmp_path / "wgms", first, 1, "SYNTHETIC GL.")
    (wg / "rgi_wgms_links.csv").write_text(f"NAME,WGMS_ID,RGI50_ID,RGI60_ID\nSYNTHETIC GL.,1,,{GLACIER}\n")
    res = run(config(out, massbalance={"wgms": str(wg)}), progress=False, verbose=False)
    assert res.written == []  # resumed: only products and the report
    reg = res.regression
    assert reg is not None and reg.n == 3 and reg.r > 0.95 and abs(reg.slope - 3.0) < 0.5
    assert {"massbalance.csv", "massbalance.png"} <= {p.name for p in res.report_dir.iterdir()}
    assert "balance" in res.table and "mass balance regression" in res.summary()
    # a plain CSV table works too; too few pairs is a note, not a crash
    csv = tmp_path / "mb.csv"
    pd.DataFrame({"glacier": [GLACIER], "year": [2021], "balance": [-1.0]}).to_csv(csv, index=False)
    res = run(config(out, massbalance={"wgms": str(csv)}), progress=False, verbose=False)
    assert res.regression is None and "regression skipped" in res.notes[0]


def test_config_errors_list_the_valid_keys(tmp_path):
    with pytest.raises(ValueError, match=r"unknown key 'sensor' in \[stac\]; valid keys: catalog, provider, "
                                         r"sensors, max_cloud, resolution, crs, chunks, buffer"):
        RunConfig.from_dict(config(tmp_path, stac={"sensor": "landsat"}))
    with pytest.raises(ValueError, match=r"unknown section \[outputs\].*valid sections: area, time, stac"):
        RunConfig.from_dict({**config(tmp_path), "outputs": {}})
    with pytest.raises(ValueError, match=r"unknown key 'sice' in \[area.synthetic\]; valid keys: size, seed"):
        RunConfig.from_dict(config(tmp_path, area={"synthetic": {"sice": 64}}))
    with pytest.raises(ValueError, match=r"\[model\] method must be one of 'dense', 'exact', got 'fast'"):
        RunConfig.from_dict(config(tmp_path, model={"method": "fast"}))
    with pytest.raises(ValueError, match=r"\[stac\] chunks must be an integer, got '64'"):
        RunConfig.from_dict(config(tmp_path, stac={"chunks": "64"}))
    with pytest.raises(ValueError, match=r"\[area\] needs exactly one of `outlines`"):
        RunConfig.from_dict({"time": {"start": 2020, "end": 2021}})
    p = tmp_path / "bad.toml"
    p.write_text(toml(config(tmp_path, cluster={"workers": 4})))
    assert main(["run", str(p)]) == 2


def test_cli_run_from_toml_with_relative_paths(first_run, tmp_path, capsys):
    out, first = first_run
    cfg = config("out")
    p = tmp_path / "run.toml"
    p.write_text(toml(cfg))
    loaded = load_config(p)
    assert loaded.output.dir == str(tmp_path / "out")  # relative to the config file
    assert main(["run", str(p), "--scheduler", "threads", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "classified and written: 3 date(s)" in text and "end of season" in text
    xr.testing.assert_identical(io.open_zarr(tmp_path / "out" / "facies.zarr").compute(),
                                io.open_zarr(first.store).compute())


# --------------------------------------------------------------------------- on a real LocalCluster
@pytest.fixture(scope="module")
def cluster(local_cluster):
    return local_cluster


def test_parallel_region_writes_are_done_by_the_workers(cluster, tmp_path):
    """Disjoint per-date regions, written by the worker processes; the client never holds the data."""
    import dask.array as da
    from distributed import Client, get_task_stream

    def block(block_info=None):
        (t0, _), (y0, y1), (x0, x1) = block_info[None]["array-location"]
        shape = block_info[None]["chunk-shape"]
        # which process made this block: a file per block, named by pid (the data is deterministic)
        Path(os.environ["XFACIES_TEST_PIDS"], f"{os.getpid()}-{t0}-{y0}-{x0}").touch()
        return (np.arange(np.prod(shape)).reshape(shape) % 7 + t0).astype(np.int8)

    pids = tmp_path / "pids"
    pids.mkdir()
    os.environ["XFACIES_TEST_PIDS"] = str(pids)
    t = pd.date_range("2021-06-01", periods=4, freq="10D")
    arr = da.map_blocks(block, dtype=np.int8, chunks=((1,) * 4, (32, 32), (32, 32)))
    classes = xr.DataArray(arr, dims=("time", "y", "x"), name="classes",
                           coords={"time": t, "y": 5190000.0 - 10 * np.arange(64), "x": 630000.0 + 10 * np.arange(64)},
                           attrs=xfacies.catalog.class_flag_attrs())
    store = tmp_path / "par.zarr"
    with Client(cluster) as client:
        client.run(lambda: os.environ.__setitem__("XFACIES_TEST_PIDS", str(pids)))
        io.layout_regions(classes, store)
        writes = io.region_writes(classes, store)
        with get_task_stream(client) as ts:
            futures = client.compute(list(writes.values()))
            assert all(f.result() is None for f in futures)  # nothing but None travels back
        io.mark_complete(store, list(writes))
    made_by = {int(p.name.split("-")[0]) for p in pids.iterdir()}
    assert len(list(pids.iterdir())) == 16 and os.getpid() not in made_by and len(made_by) == 2
    keys = [(rec["key"][0] if isinstance(rec["key"], tuple) else rec["key"], rec["worker"]) for rec in ts.data]
    writers = {w for k, w in keys if "store" in str(k)}
    assert len(writers) == 2, "both workers should write chunks"
    expect = np.stack([(np.arange(32 * 32).reshape(32, 32) % 7 + k).astype(np.int8) for k in range(4)])
    back = io.open_zarr(store).compute()
    np.testing.assert_array_equal(back.classes.values[:, :32, :32], expect)
    xr.testing.assert_identical(back, classes.compute().to_dataset())
    assert len(io.complete_dates(store)) == 4


def test_run_on_a_local_cluster_matches_the_threaded_run(cluster, first_run, tmp_path, capsys):
    out, first = first_run
    res = run(config(tmp_path / "c"), scheduler=cluster.scheduler_address, progress=False)
    assert len(res.written) == 3 and res.dashboard and "Dask dashboard:" in capsys.readouterr().out
    xr.testing.assert_identical(io.open_zarr(res.store).compute(), io.open_zarr(first.store).compute())


def test_layout_regions_extends_a_store_and_keeps_the_record(tmp_path):
    """New dates laid out after a to_zarr store (or a previous layout) keep the old dates complete."""
    import dask

    t = pd.date_range("2021-06-01", periods=4, freq="10D")
    da_ = xr.DataArray(np.arange(4 * 4, dtype="float32").reshape(4, 2, 2), dims=("time", "y", "x"), name="v",
                       coords={"time": t, "y": [15.0, 5.0], "x": [5.0, 15.0]}).chunk({"time": 1})
    store = tmp_path / "s.zarr"
    io.to_zarr(da_.isel(time=[0]), store)  # a plain store: no record
    io.layout_regions(da_.isel(time=[1, 2]), store)
    assert list(io.complete_dates(store)) == [t[0]] and io.open_zarr(store).sizes["time"] == 1
    w = io.region_writes(da_.isel(time=[1]), store)
    dask.compute(*w.values())
    io.mark_complete(store, list(w))
    io.layout_regions(da_.isel(time=[3]), store)  # the append must not lose the record
    assert list(io.complete_dates(store)) == list(t[:2])
    xr.testing.assert_identical(io.open_zarr(store).compute(), da_.isel(time=[0, 1]).to_dataset())


def test_region_writes_cost_no_task_per_date_coordinate(tmp_path):
    """Per-date coordinates held in memory (sun angles, platform, item ids...) are written with
    the date's region, not as dask tasks: the graph of one date's write is as small with seven
    such coordinates as with none, and the store holds their values."""
    import dask

    t = pd.date_range("2021-06-01", periods=3, freq="10D")
    base = xr.DataArray(np.arange(3 * 4 * 4, dtype="float32").reshape(3, 4, 4), dims=("time", "y", "x"),
                        name="v", coords={"time": t, "y": [35.0, 25.0, 15.0, 5.0], "x": [5.0, 15.0, 25.0, 35.0]})
    extra = {f"c{k}": ("time", np.array([10.0 * k + i for i in range(3)])) for k in range(6)}
    extra["platform"] = ("time", np.array(["sentinel-2a", "sentinel-2b", "sentinel-2a"], dtype=object))
    sizes = {}
    for name, da_ in (("bare", base), ("coords", base.assign_coords(extra))):
        store = tmp_path / f"{name}.zarr"
        lazy = da_.chunk({"time": 1, "y": 2, "x": 2})
        io.layout_regions(lazy, store)
        writes = io.region_writes(lazy, store)
        (one,) = dask.optimize(writes[t[1]])
        sizes[name] = len(dict(one.__dask_graph__()))
        dask.compute(*writes.values())
        io.mark_complete(store, list(writes))
        xr.testing.assert_identical(io.open_zarr(store).compute(), da_.to_dataset())
    assert sizes["coords"] == sizes["bare"], sizes


def test_wgms_glacier_without_rgi6_id_is_matched_by_location_and_checked_at_load(first_run, tmp_path):
    """Outlines without RGI 6 ids (as RGI 7): the WGMS glacier whose point lies inside the outline
    is matched by location, with a dated link-table name; a broken WGMS folder fails at load time."""
    out, first = first_run
    wg = wgms_record(tmp_path / "wgms", first, 7, "LOCATED GL.")
    centre = xfacies.synthetic.outlines(128, seed=7, n_glaciers=1).to_crs(4326).geometry.iloc[0]
    lon, lat = centre.representative_point().x, centre.representative_point().y
    (wg / "rgi_wgms_links_20220112.csv").write_text(
        f"CenLon,CenLat,NAME,WGMS_ID,RGI50_ID,RGI60_ID\n{lon},{lat},LOCATED GL.,7,,RGI60-99.99999\n")
    res = run(config(out, massbalance={"wgms": str(wg)}), progress=False, verbose=False)
    match = pd.read_csv(res.report_dir / "wgms_match.csv")
    assert match.loc[0, "glacier_id"] == GLACIER and match.loc[0, "wgms_id"] == 7
    assert match.loc[0, "method"] == "location"
    reg = res.regression
    assert reg is not None and reg.n == 3 and abs(reg.slope - 3.0) < 0.5
    # the WGMS folder is checked when the configuration is loaded, before anything runs
    (wg / "mbdata_WGMS-00007.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"\[massbalance\] wgms: .*mbdata_WGMS"):
        RunConfig.from_dict(config(tmp_path / "never", massbalance={"wgms": str(wg)}))
    assert not (tmp_path / "never").exists()


def test_a_second_run_on_the_same_output_is_refused_and_a_dead_runs_lock_is_taken_over(first_run, tmp_path, capsys):
    """One run per output folder: a live run's lock refuses a second run (clear message, CLI rc 2, nothing
    written); the lock of a run whose process is gone is taken over with a warning and removed at the end."""
    import json
    import socket
    import subprocess
    import sys as _sys

    from xfacies.app.pipeline import RunLockedError

    out, first = first_run
    lock = out / ".xfacies-run.lock"
    assert not lock.exists()  # the finished run released it
    before = chunk_files(out / "facies.zarr")
    other = subprocess.Popen([_sys.executable, "-c", "import time; time.sleep(60)"])  # "another run"
    try:
        lock.write_text(json.dumps({"pid": other.pid, "host": socket.gethostname(), "started": "then"}))
        with pytest.raises(RunLockedError, match=rf"another xfacies run \(pid {other.pid} .* is writing to"):
            run(config(out), progress=False, verbose=False)
        p = tmp_path / "run.toml"
        p.write_text(toml(config(out)))
        assert main(["run", str(p), "--no-progress"]) == 2
        assert "another xfacies run" in capsys.readouterr().err
        assert lock.exists() and chunk_files(out / "facies.zarr") == before  # untouched
    finally:
        other.kill()
        other.wait()
    with pytest.warns(UserWarning, match="no longer running; taking it over"):
        res = run(config(out), progress=False, verbose=False)
    assert res.written == [] and not lock.exists()


def test_static_terrain_is_computed_once_per_grid_and_reused_by_a_later_run(first_run, tmp_path, caplog):
    """elevation/slope/proximity go to <dir>/static.zarr on the first run; a run over more dates on
    the same grid reads them (the cache is not rewritten) and its maps equal the one-go run's."""
    import logging

    out = tmp_path / "out"
    two = config(out, area={"synthetic": {"size": 128, "seed": 7, "n_glaciers": 1, "dates": DATES[:2]}})
    run(two, progress=False, verbose=False)
    static = out / "static.zarr"
    before = {p: p.stat().st_mtime_ns for p in static.rglob("*") if p.is_file()}
    assert [str(b) for b in xr.open_zarr(static)["band"].values] == ["elevation", "slope", "proximity"]
    caplog.set_level(logging.INFO, logger="xfacies")
    res = run(config(out), progress=False, verbose=False)
    assert [t.strftime("%Y-%m-%d") for t in res.written] == DATES[2:]
    assert any("static terrain features read from" in r.getMessage() for r in caplog.records)
    assert {p: p.stat().st_mtime_ns for p in static.rglob("*") if p.is_file()} == before
    xr.testing.assert_identical(io.open_zarr(out / "facies.zarr").compute(),
                                io.open_zarr(first_run[1].store).compute())
    # another glacier set on the same folder: recomputed, not reused
    caplog.clear()
    other = config(tmp_path / "other", area={"synthetic": {"size": 128, "seed": 8, "n_glaciers": 1,
                                                           "dates": DATES[:1]}})
    shutil.copytree(static, tmp_path / "other" / "static.zarr")
    run(other, progress=False, verbose=False)
    assert any("are for another grid, outlines or DEM: recomputing" in r.getMessage() for r in caplog.records)


def test_a_synthetic_catalogue_of_a_longer_record_serves_a_shorter_run(tmp_path):
    """The benchmarks write the longest record once: a run over fewer years of the same area reuses
    it (nothing rewritten), its dates hold the same pixels as a catalogue written for them alone,
    and a run that needs a date the catalogue lacks (or another area) gets it rewritten."""
    import json

    import rasterio

    from xfacies.app.pipeline import prepare_synthetic_catalog

    def cfg(out, start, end, seed=7):
        return RunConfig.from_dict(config(out, area={"synthetic": {"size": 64, "seed": seed, "n_glaciers": 1,
                                                                   "dates": 2}},
                                          time={"start": start, "end": end}))

    def mtimes(folder):
        return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}

    def pixels(cat):
        items = json.loads((cat / "items.json").read_text())["features"]
        out = {}
        for it in items:
            with rasterio.open(it["assets"]["nir"]["href"]) as src:
                out[it["properties"]["datetime"][:10]] = src.read(1)
        return out

    cat = prepare_synthetic_catalog(cfg(tmp_path / "a", 2019, 2021))
    before = mtimes(cat)
    assert prepare_synthetic_catalog(cfg(tmp_path / "a", 2020, 2020)) == cat
    assert mtimes(cat) == before
    alone = pixels(prepare_synthetic_catalog(cfg(tmp_path / "b", 2020, 2020)))
    full = pixels(cat)
    assert len(alone) == 2 and len(full) == 6
    for day, arr in alone.items():
        np.testing.assert_array_equal(full[day], arr)
    # a date the catalogue lacks, or another area: written again
    prepare_synthetic_catalog(cfg(tmp_path / "a", 2018, 2019))
    assert len(pixels(cat)) == 4 and "2018" in min(pixels(cat))
    prepare_synthetic_catalog(cfg(tmp_path / "a", 2018, 2019, seed=8))
    other = pixels(cat)
    days = sorted(d for d in other if d in full)
    assert len(days) == 2 and all(not np.array_equal(other[d], full[d]) for d in days)


def test_a_rerun_with_another_model_method_or_smoothing_is_refused_and_the_store_is_untouched(first_run, tmp_path):
    """The store records what made it; adding dates with another maker would mix models in one record."""
    import zarr

    from conftest import make_tiny_model

    out, first = first_run
    attrs = dict(zarr.open_group(str(first.store), mode="r").attrs)
    assert attrs["xfacies_model_sha256"] == xfacies.load_model("demo").sha256
    assert (attrs["xfacies_method"], attrs["xfacies_smooth"]) == ("dense", "true")
    before = chunk_files(first.store)
    other = make_tiny_model(11, seed=3).save(tmp_path / "other.xfacies")
    for change, what in (({"model": {"smooth": False}}, r"smooth: store 'true', this run 'false'"),
                         ({"model": {"method": "exact"}}, r"method: store 'dense', this run 'exact'"),
                         ({"model": {"path": str(other)}}, r"model: store 'demo', this run .*other.xfacies.*"
                                                           r"model_sha256: store")):
        with pytest.raises(ValueError, match=rf"facies.zarr holds class maps made differently from this run "
                                             rf"\(.*{what}.*\); adding dates would mix them.*new \[output\] dir"):
            run(config(out, **change), progress=False, verbose=False)
    assert chunk_files(first.store) == before


def test_a_run_in_a_folder_with_a_space_and_a_non_ascii_letter(first_run, tmp_path):
    """The catalogue's file:// hrefs are percent-encoded there ('My%20Glaciers', '%C3%96tztal'):
    every date used to fail after its retries; now the run equals the same run elsewhere."""
    out, first = first_run
    res = run(config(tmp_path / "My Glaciers" / "Ötztal run"), progress=False, verbose=False)
    assert len(res.written) == 3 and not res.failed
    assert "%20" in (res.config.output.path / "stac" / "items.json").read_text()
    xr.testing.assert_identical(io.open_zarr(res.store).compute(), io.open_zarr(first.store).compute())
