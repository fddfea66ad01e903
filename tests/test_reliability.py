"""Reliability: transient failures retried against real failing loopback servers, persistent
failures and bad scenes skipped and recorded, and fault injection into real runs (a worker
process SIGKILLed on a LocalCluster; ``xfacies run`` interrupted with SIGINT and SIGKILL) — the
re-run finishes only the missing dates and the store equals a clean run's, byte for byte."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from rasterio.errors import RasterioIOError

import xfacies
from xfacies import io, synthetic
from xfacies.app.pipeline import NoWorkersError, prepare_synthetic_catalog, run
from xfacies.app.config import RunConfig
from xfacies.sources import stac_server
from xfacies.sources.quality import rejected_scenes, scene_quality
from xfacies.sources.stac import open_stac

sys.path.insert(0, str(Path(__file__).parent))
from flaky_server import FlakyServer  # noqa: E402
from test_pipeline import config, toml  # noqa: E402

BANDS = ["blue", "green", "red", "nir", "swir1", "swir2"]
DATES8 = ["2021-06-10", "2021-06-25", "2021-07-10", "2021-07-25", "2021-08-10", "2021-08-25",
          "2021-09-10", "2021-09-25"]


# --------------------------------------------------------------------------- scene quality
@pytest.mark.parametrize("margin", [0, 2])
def test_scene_quality_counts_the_glacier_pixels_like_a_loop(margin):
    """valid over the glacier pixels; saturated and implausible over the valid pixels that lie
    within ``margin`` pixels (Chebyshev: a square patch) of a glacier pixel."""
    rng = np.random.default_rng(4)
    nt, ny, nx = 3, 13, 15
    v = rng.uniform(0.0, 1.0, (nt, 6, ny, nx))
    v[rng.random(v.shape) < 0.05] = np.nan
    v[rng.random(v.shape) < 0.04] = 1.3          # saturated (>= 1.2), plausible
    v[rng.random(v.shape) < 0.03] = 45.0         # implausible (and saturated)
    v[1, :, :, :] = np.nan                       # one date without data
    mask = np.zeros((ny, nx), bool)
    mask[4:9, 5:10] = rng.random((5, 5)) < 0.7
    y = 1000.0 - 10.0 * np.arange(ny)
    x = 500.0 + 10.0 * np.arange(nx)
    cube = xr.DataArray(v, dims=("time", "band", "y", "x"), coords={
        "time": pd.date_range("2021-07-01", periods=nt, freq="10D"), "band": BANDS, "y": y, "x": x}
    ).chunk({"y": 4, "x": 5})
    outl = xr.DataArray(np.where(mask, 1, 0), dims=("y", "x"), coords={"y": y, "x": x})
    q = scene_quality(cube, outl, margin=margin).compute()
    gl = [(i, j) for i in range(ny) for j in range(nx) if mask[i, j]]
    for t in range(nt):
        n = valid = seen = sat = bad = 0
        for i in range(ny):
            for j in range(nx):
                near = any(abs(i - a) <= margin and abs(j - b) <= margin for a, b in gl)
                if not near:
                    continue
                px = v[t, :, i, j]
                ok = bool(np.all(np.isfinite(px)))
                if mask[i, j]:
                    n += 1
                    valid += ok
                if not ok:
                    continue
                seen += 1
                sat += any(p >= 1.2 for p in px)
                bad += any(p < -0.05 or p > 1.6 for p in px)
        assert q.glacier_pixels[t] == n
        assert q.valid[t] == pytest.approx(valid / n)
        if seen:
            assert q.saturated[t] == pytest.approx(sat / seen)
            assert q.implausible[t] == pytest.approx(bad / seen)
        else:
            assert np.isnan(q.saturated[t]) and np.isnan(q.implausible[t])
    if margin:
        with pytest.raises(ValueError, match="margin must be a whole number of pixels"):
            scene_quality(cube, outl, margin=-1)


def test_fill_just_outside_the_outlines_rejects_the_scene():
    """-9999 in a ring of 3 px just outside the glacier: within the model's 16 px it is counted."""
    ny = nx = 40
    v = np.full((1, 6, ny, nx), 0.4)
    mask = np.zeros((ny, nx), bool)
    mask[10:30, 10:30] = True
    v[0, :, 7:10, 10:30] = -9999.0
    y, x = 1000.0 - 10.0 * np.arange(ny), 10.0 * np.arange(nx)
    cube = xr.DataArray(v, dims=("time", "band", "y", "x"), coords={
        "time": pd.to_datetime(["2021-08-01"]), "band": BANDS, "y": y, "x": x})
    outl = xr.DataArray(mask.astype(int), dims=("y", "x"), coords={"y": y, "x": x})
    assert float(scene_quality(cube, outl, margin=0).implausible[0]) == 0.0
    q = scene_quality(cube, outl)
    assert float(q.implausible[0]) == pytest.approx(60 / (40 * 40))  # 20 + 2 x 16 px > 40: all seen
    (why,) = rejected_scenes(q).values()
    assert "implausible reflectance on 3.8 %" in why and "undeclared fill" in why


def test_rejected_scenes_thresholds_are_inclusive_and_name_the_reason():
    t = pd.date_range("2021-07-01", periods=6, freq="D")
    q = xr.Dataset({"valid": ("time", [0.0, 0.29, 0.3, 0.9, 0.9, 0.9]),
                    "saturated": ("time", [np.nan, 0.0, 0.0, 0.51, 0.5, 0.0]),
                    "implausible": ("time", [np.nan, 0.0, 0.0, 0.0, 0.0, 0.02])}, coords={"time": t})
    out = rejected_scenes(q, min_valid=0.3, max_saturated=0.5, max_implausible=0.01)
    assert sorted(out) == [t[0], t[1], t[3], t[5]]
    assert out[t[0]].startswith("clouded or no data")
    assert out[t[1]].startswith("partly covered: 29.0 %")
    assert out[t[3]].startswith("saturated on 51.0 %")
    assert "percent or digital numbers" in out[t[5]]
    assert list(rejected_scenes(q, min_valid=0.0, max_saturated=1.0, max_implausible=1.0)) == [t[0]]
    with pytest.raises(ValueError, match="min_valid must be a share within 0..1"):
        rejected_scenes(q, min_valid=30)
    with pytest.raises(ValueError, match="outlines do not cover any pixel"):
        far = xr.DataArray(np.zeros((2, 2)), dims=("y", "x"), coords={"y": [1.0, 0.0], "x": [0.0, 1.0]})
        cube = xr.DataArray(np.zeros((1, 6, 2, 2)), dims=("time", "band", "y", "x"),
                            coords={"time": t[:1], "band": BANDS, "y": [1.0, 0.0], "x": [0.0, 1.0]})
        scene_quality(cube, far)


# --------------------------------------------------------------------------- retries on loopback
@pytest.fixture(scope="module")
def small_catalog(tmp_path_factory):
    d = tmp_path_factory.mktemp("catalog")
    season = synthetic.season(["2021-07-01", "2021-08-01"], size=64, seed=3, n_glaciers=1)
    coll, items = stac_server.synthetic_catalog(season, d)
    with stac_server.serve(coll, items) as url:
        ref = open_stac(season, time=("2021-06-01", "2021-09-01"), sensors=("sentinel-2",), catalog=url,
                        provider="earth-search").compute()
    return d, season, coll, items, ref


def _open(season, url):
    return open_stac(season, time=("2021-06-01", "2021-09-01"), sensors=("sentinel-2",), catalog=url,
                     provider="earth-search")


def test_stac_api_5xx_and_timeouts_are_retried_with_backoff(small_catalog, monkeypatch):
    from xfacies.sources import stac

    d, season, coll, items, ref = small_catalog
    monkeypatch.setattr(stac, "HTTP_TIMEOUT", (2.0, 0.5))
    with stac_server.serve(coll, items) as upstream:
        api = FlakyServer(upstream=upstream, fail_first=2)
        with api.running() as url, xfacies.set_options(retries=3, retry_wait=0.05):
            got = _open(season, url).compute()
        assert api.failures >= 4  # 503 twice on the landing page and twice on /search
        xr.testing.assert_equal(got, ref)
        slow = FlakyServer(upstream=upstream, stall_first=1, stall=1.5)  # longer than the read timeout
        with slow.running() as url, xfacies.set_options(retries=2, retry_wait=0.05):
            got = _open(season, url).compute()
        assert slow.stalls >= 1
        xr.testing.assert_equal(got, ref)
        down = FlakyServer(upstream=upstream, fail_first=2)
        with down.running() as url, xfacies.set_options(retries=0), \
                pytest.raises(ConnectionError, match=f"could not reach the STAC API at {url}"):
            _open(season, url)


def _http_items(d: Path, items: str, base: str) -> Path:
    doc = json.loads(Path(items).read_text())
    for f in doc["features"]:
        for a in f["assets"].values():
            a["href"] = a["href"].replace(d.as_uri(), base)
    out = d / f"items-{base.rsplit(':', 1)[-1]}.json"
    out.write_text(json.dumps(doc))
    return out


def test_remote_asset_5xx_are_retried_with_the_configured_retries(small_catalog):
    """HTTP 503s of remote COGs are retried by GDAL, with xfacies' retries and wait (the driver's
    environment); with retries=0 the read fails and names the file and the option to raise."""
    d, season, coll, items, ref = small_catalog
    files = FlakyServer(root=d, fail_first=2)
    with files.running() as base, stac_server.serve(coll, str(_http_items(d, items, base))) as url:
        with xfacies.set_options(retries=3, retry_wait=0.05):
            got = _open(season, url).compute(scheduler="threads")
    xr.testing.assert_equal(got, ref)
    assert files.failures == 2 * 14  # 2 dates x 7 assets, each failed twice, then read
    files = FlakyServer(root=d, fail_first=1)
    with files.running() as base, stac_server.serve(coll, str(_http_items(d, items, base))) as url:
        with xfacies.set_options(retries=0):
            cube = _open(season, url)
        with pytest.raises(RasterioIOError, match=r"(?s)503.*xfacies: reading http://127.0.0.1:\d+/cogs/.* still "
                                                  r"failed after 1 attempt.*set_options\(retries=...\)"):
            cube.compute(scheduler="synchronous")


class _RestoreOnRetry(logging.Handler):
    """Puts the good file back when the first retry is announced (a transient local failure)."""

    def __init__(self, path: Path, good: bytes) -> None:
        super().__init__(logging.WARNING)
        self.path, self.good, self.messages = path, good, []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self.path.write_bytes(self.good)


def test_a_transient_read_error_is_retried_after_a_backoff_wait(small_catalog, tmp_path):
    d, season, coll, items, ref = small_catalog
    cat = tmp_path / "cat"
    shutil.copytree(d, cat)
    doc = json.loads(Path(items).read_text().replace(d.as_uri(), cat.as_uri()))
    (cat / "items.json").write_text(json.dumps(doc))
    bad = next((cat / "cogs").glob("*_20210801_*")) / "red.tif"
    good = bad.read_bytes()
    bad.write_bytes(good[: len(good) // 3])
    handler = _RestoreOnRetry(bad, good)
    logger = logging.getLogger("xfacies.sources.retry")
    logger.addHandler(handler)
    try:
        with stac_server.serve(coll, str(cat / "items.json")) as url:
            with xfacies.set_options(retries=2, retry_wait=0.3):
                cube = _open(season, url)
            got = cube.compute(scheduler="synchronous")
    finally:
        logger.removeHandler(handler)
    xr.testing.assert_equal(got, ref)
    assert len(handler.messages) == 1 and "red.tif failed (attempt 1 of 3" in handler.messages[0]
    assert handler.messages[0].endswith("retrying in 0.3 s")


# --------------------------------------------------------------------------- bad scenes and persistent failures
def _write(path: Path, fn) -> None:
    import rasterio

    with rasterio.open(path) as src:
        profile, arr = src.profile, src.read(1)
    stac_server.write_cog(path, fn(arr), profile["transform"], profile["crs"], profile["nodata"])


def _store_bytes(store: Path, var: str) -> dict[str, bytes]:
    """The raw stored bytes of a variable per date (every chunk decompressed, as zarr holds them)."""
    import zarr

    g = zarr.open_group(str(store), mode="r")
    days = [str(np.datetime64(int(t), "us"))[:10] for t in g["time"][:]]
    return {d: g[var][i].tobytes() for i, d in enumerate(days)}


def same_content(a: Path, b: Path) -> None:
    """Stores equal: the decoded data of the complete dates, and every date's stored bytes (after
    decompression: zstd may encode the same bytes differently)."""
    da, db = io.open_zarr(a).compute(), io.open_zarr(b).compute()
    xr.testing.assert_identical(da.sortby("time"), db.sortby("time"))
    assert list(io.complete_dates(a)) == list(io.complete_dates(b))
    for var in ("classes", "confidence"):
        assert _store_bytes(a, var) == _store_bytes(b, var)


def maps(store: Path, dates=None) -> xr.Dataset:
    """The stored maps (sorted by date) without the store's run records."""
    ds = io.open_zarr(store)
    ds = (ds if dates is None else ds.sel(time=dates)).sortby("time").compute()
    keep = {k: v for k, v in ds.attrs.items() if k not in (io.FAILED_ATTR, io.REJECTED_ATTR)}
    ds.attrs = keep
    return ds


def test_bad_scenes_are_rejected_and_a_persistent_failure_is_recorded_then_resumed(tmp_path, caplog):
    dates = ["2021-07-01", "2021-07-16", "2021-08-01", "2021-08-16", "2021-09-01", "2021-09-16"]
    cfg = config(tmp_path / "out", area={"synthetic": {"size": 128, "seed": 7, "n_glaciers": 1, "dates": dates}},
                 time={"start": 2021, "end": 2021}, stac={"catalog": "synthetic", "chunks": 64, "retries": 1,
                                                          "retry_wait": 0.01})
    clean = run(config(tmp_path / "clean", **{k: cfg[k] for k in ("area", "time", "stac")}),
                progress=False, verbose=False)
    cogs = prepare_synthetic_catalog(RunConfig.from_dict(cfg)) / "cogs"
    folder = {d: next(cogs.glob(f"*_{d.replace('-', '')}_*")) for d in dates}
    _write(folder[dates[1]] / "scl.tif", lambda a: np.full_like(a, 9))                # fully clouded
    for b in ("blue", "green", "red"):                                                  # saturated: 1.5
        _write(folder[dates[2]] / f"{b}.tif", lambda a: np.where(a > 0, 16000, a).astype(a.dtype))
    _write(folder[dates[3]] / "nir.tif", lambda a: np.where(a > 0, 65535, a).astype(a.dtype))  # DN 6.45
    good = (folder[dates[4]] / "swir1.tif").read_bytes()
    (folder[dates[4]] / "swir1.tif").write_bytes(good[: len(good) // 3])                 # truncated COG
    caplog.set_level(logging.WARNING)
    res = run(cfg, progress=False, verbose=False)
    day = lambda ts: [t.strftime("%Y-%m-%d") for t in ts]  # noqa: E731
    assert day(res.written) == [dates[0], dates[5]]
    assert day(res.rejected) == dates[1:4]
    r = {t.strftime("%Y-%m-%d"): why for t, why in res.rejected.items()}
    assert r[dates[1]].startswith("clouded or no data: 0.0 %")
    assert r[dates[2]].startswith("saturated on 100.0 %")
    assert r[dates[3]].startswith("implausible reflectance on 100.0 %")
    assert day(res.failed) == [dates[4]] and "swir1.tif" in res.failed[pd.Timestamp(dates[4])]
    assert any("retrying in" in m.getMessage() and "swir1.tif" in m.getMessage() for m in caplog.records)
    store = tmp_path / "out" / "facies.zarr"
    assert day(io.recorded_dates(store, "rejected")) == dates[1:4]
    assert day(io.recorded_dates(store, "failed")) == [dates[4]]
    text = (tmp_path / "out" / "report" / "summary.txt").read_text()
    assert "rejected by the quality checks: 3 date(s)" in text and "FAILED (retried by the next run): 1" in text
    scenes = pd.read_csv(tmp_path / "out" / "report" / "scenes.csv")
    assert scenes["status"].tolist() == ["written", "rejected", "rejected", "rejected", "failed", "written"]
    assert scenes["valid"].tolist()[1] == 0.0 and scenes["saturated"].tolist()[2] == 1.0
    assert scenes["implausible"].tolist()[3] == 1.0
    # the series holds only the two good dates, equal to the clean run's
    frac = io.open_zarr(tmp_path / "out" / "fractions.zarr")
    assert day(pd.DatetimeIndex(frac["time"].values)) == [dates[0], dates[5]]
    xr.testing.assert_identical(maps(store), maps(clean.store, [dates[0], dates[5]]))
    # the file comes back: the next run computes that date only, and clears its failure
    (folder[dates[4]] / "swir1.tif").write_bytes(good)
    again = run(cfg, progress=False, verbose=False)
    assert day(again.written) == [dates[4]] and not again.failed and day(again.rejected) == dates[1:4]
    assert io.recorded_dates(store, "failed") == {}
    xr.testing.assert_identical(maps(store), maps(clean.store, [dates[0], dates[4], dates[5]]))
    # a threshold is configurable: accept saturated scenes
    cfg2 = {**cfg, "quality": {"max_saturated": 1.0}}
    third = run(cfg2, progress=False, verbose=False)
    assert day(third.written) == [dates[2]] and day(third.rejected) == [dates[1], dates[3]]
    assert day(io.recorded_dates(store, "rejected")) == [dates[1], dates[3]]


def test_a_run_where_every_scene_is_rejected_says_why(tmp_path):
    cfg = config(tmp_path / "out", quality={"saturation": 0.01, "max_saturated": 0.0})
    with pytest.raises(ValueError, match=r"no date of the run passed the quality checks .*'saturation': 0.01.*"
                                         r"2019-06-20: saturated on 100.0 %.*Relax \[quality\]"):
        run(cfg, progress=False, verbose=False)


# --------------------------------------------------------------------------- fault injection
def fault_config(out: Path) -> dict:
    return config(out, area={"synthetic": {"size": 256, "seed": 7, "n_glaciers": 2, "dates": DATES8}},
                  time={"start": 2021, "end": 2021}, stac={"catalog": "synthetic", "chunks": 128},
                  cluster={"batch_dates": 2})


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "out"
    return run(fault_config(out), progress=False, verbose=False)


def _wait_for(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _n_complete(store: Path) -> int:
    try:
        rec = io.complete_dates(store)
    except Exception:  # noqa: BLE001 - the store is being created
        return 0
    return 0 if rec is None else len(rec)


@pytest.mark.faults
def test_sigkill_of_a_worker_mid_run_loses_nothing(clean_run, tmp_path, attempt):
    """A worker process is SIGKILLed after the first date is complete: the nanny restarts it, the
    scheduler recomputes its tasks, and the store equals the clean run's byte for byte."""
    import distributed

    out = tmp_path / "out"
    store = out / "facies.zarr"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.CRITICAL) as cluster, distributed.Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        killed = []

        def killer() -> None:
            _wait_for(lambda: _n_complete(store) >= 1, 300, "the first date")
            os.kill(pids[attempt % 2], signal.SIGKILL)
            killed.append(_n_complete(store))

        th = threading.Thread(target=killer, daemon=True)
        th.start()
        cfg = fault_config(out)
        cfg["cluster"] = {"scheduler": cluster.scheduler_address, "batch_dates": 2}
        res = run(cfg, progress=False, verbose=False)
        th.join(10)
        assert killed and killed[0] < len(DATES8), "the worker was killed after the run had finished"
        assert len(list(client.run(os.getpid).values())) == 2  # the nanny restarted it
    assert len(res.written) == len(DATES8) and not res.failed and not res.rejected
    same_content(store, clean_run.store)


@pytest.mark.faults
def test_a_cluster_left_without_workers_stops_the_run_with_a_clear_error(clean_run, tmp_path):
    """Every worker is retired after the first date is complete: the run does not wait for ever
    but stops after ``no_worker_timeout`` with an error that says what to do; the re-run on a new
    cluster computes only the missing dates and the store equals the clean run's."""
    import distributed

    out = tmp_path / "out"
    store = out / "facies.zarr"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.CRITICAL) as cluster, distributed.Client(cluster):
        def retire() -> None:
            _wait_for(lambda: _n_complete(store) >= 1, 300, "the first date")
            cluster.scale(0)

        th = threading.Thread(target=retire, daemon=True)
        th.start()
        cfg = fault_config(out)
        cfg["cluster"] = {"scheduler": cluster.scheduler_address, "batch_dates": 2, "no_worker_timeout": 3}
        with pytest.raises(NoWorkersError, match=r"no worker for \d+ s \(\[cluster\] no_worker_timeout = 3\)"
                                                 r".*recorded in .*facies.zarr.*run the same command"):
            run(cfg, progress=False, verbose=False)
        th.join(10)
    done = list(io.complete_dates(store))
    assert 1 <= len(done) < len(DATES8)
    assert not (out / ".xfacies-run.lock").exists()
    res = run(fault_config(out), progress=False, verbose=False)
    assert sorted(res.skipped) == sorted(done) and len(res.written) == len(DATES8) - len(done)
    same_content(store, clean_run.store)


def _default_sigint() -> None:
    """As in a terminal: SIGINT interrupts.  A suite started in the background of a non-interactive
    shell inherits SIGINT ignored, and Python then installs no KeyboardInterrupt for it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(cfg_path: Path, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "xfacies.app.cli", "run", str(cfg_path), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            preexec_fn=_default_sigint, **kw)


@pytest.mark.faults
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_run_resumes_only_the_missing_dates(clean_run, tmp_path, sig, attempt):
    # The signal races the run: on a loaded machine the dates in flight can all finish before it is
    # handled.  A run that ends complete and with exit 0 was not interrupted: start it again (a
    # signal that is never handled fails after three tries).
    for tryno in range(3):
        out = tmp_path / f"out{tryno}"
        store = out / "facies.zarr"
        cfg = fault_config(out)
        cfg["cluster"] = {"scheduler": "threads", "batch_dates": 2}
        path = tmp_path / f"run{tryno}.toml"
        path.write_text(toml(cfg))
        proc = _cli(path)
        try:
            # interrupt at a different point each attempt: after 2, 3 or 4 complete dates
            _wait_for(lambda: _n_complete(store) >= 1 + attempt or proc.poll() is not None, 300, "dates")
            assert proc.poll() is None, proc.communicate()[0]
            proc.send_signal(sig)
            text = proc.communicate(timeout=120)[0]
        finally:
            if proc.poll() is None:
                proc.kill()
        done_before = list(io.complete_dates(store))
        if not (proc.returncode == 0 and len(done_before) == len(DATES8)):
            break
    assert 1 + attempt <= len(done_before) < len(DATES8), (proc.returncode, text[-2000:])
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "interrupted" in text and "run the same command again" in text
        assert not (out / ".xfacies-run.lock").exists()
    else:
        assert proc.returncode == -signal.SIGKILL and (out / ".xfacies-run.lock").exists()
    with pytest.warns(UserWarning, match="no longer running; taking it over") if sig == signal.SIGKILL \
            else contextlib.nullcontext():
        res = run(cfg, progress=False, verbose=False)
    assert sorted(res.written + res.skipped) == [pd.Timestamp(d) for d in DATES8]
    assert sorted(res.skipped) == sorted(done_before) and not set(res.written) & set(done_before)
    raw = xr.open_zarr(store, consolidated=False)
    assert raw.sizes["time"] == len(DATES8) == len(set(raw["time"].values))  # no duplicated date
    same_content(store, clean_run.store)

