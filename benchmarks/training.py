"""Training benchmark: how fast training data gets to the trainer (patches/s, peak memory).

    python benchmarks/training.py            # 5,000 reference patches, 5,000 points
    python benchmarks/training.py --quick    # 1,000 of each (about a minute)
    python benchmarks/training.py --n 20000 --keep

Each measurement runs in a fresh process (so that its peak memory, ``ru_maxrss``, is its own)
and is one function ``measure_<name>(args, work) -> Result``, listed in :data:`MEASUREMENTS`;
``main()`` runs them in order and prints one table.  A training-steps/s section is added the
same way (a function and an entry in ``MEASUREMENTS``).

Data measurements:

``write``        ``xfacies.train.reference_patches.write_reference_patches``: N synthetic patches in the
                 reference layout (11-band 33 x 33 GeoTIFFs, ``{fold}_{glacier}_{date}_..._{class}.tif``);
``first read``   ``read_reference_patches`` on that folder with an empty cache: read every file
                 and write the Zarr cache, then load the patches (the files are in the OS page
                 cache, having just been written; the reference read 100-146 patches/s);
``cached read``  the same call again: open the Zarr cache and load the patches;
``points/zarr``  ``patches_from_points`` for N points over a 2-scene, 11-band 1024 x 1024 cube
                 stored as Zarr (chunks 256): the gather alone;
``points/synth`` the same on a lazily generated ``xfacies.synthetic.season`` cube (chunks 256),
                 so the time includes the generator computing the touched chunks.

Training measurements (``n`` = training patches processed in the timed steps; the rate is
patches/s, the note gives steps/s of batch 512 — the recipe's — and the backend):

``fit/exact``    ``xfacies.train.fit``'s compiled training step (focal loss, Adam on the cosine
                 schedule, MeanIoU/F1) on the 64-filter ``"translation-exact"`` model, 11 features;
``fit/ref``      the same on the published ``"reference-cnn"`` architecture.

With ``KERAS_BACKEND=jax`` on a GPU node the same rows give GPU steps/s with the JAX backend.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

warnings.simplefilter("ignore")


@dataclass
class Result:
    """One row of the table: wall and CPU seconds (all threads of the process) of ``n`` patches."""

    name: str
    n: int
    seconds: float
    cpu_seconds: float
    peak_mib: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else float("nan")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Timer:
    """Wall and CPU time of a ``with`` block."""

    def __enter__(self) -> "Timer":
        self.t0, self.c0 = time.perf_counter(), _cpu()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.t0, _cpu() - self.c0


def _reference_folder(work: Path) -> Path:
    return work / "reference-patches"


# --------------------------------------------------------------------------- measurements
def measure_write(args: argparse.Namespace, work: Path) -> Result:
    """Write N synthetic patches in the reference layout (the input of the read measurements)."""
    import numpy as np

    from xfacies import catalog
    from xfacies.train import data as td
    from xfacies.train import reference_patches as rp

    n, p = args.n, rp.REFERENCE_PATCH_SIZE
    rng = np.random.default_rng(0)
    vals = rng.normal(0.3, 0.2, (n, p, p, len(rp.REFERENCE_FEATURES))).astype(np.float32)
    ds = td.patch_set(
        vals, rp.REFERENCE_FEATURES, rng.integers(0, len(catalog.CLASSES), n),
        np.array([f"glacier{g}" for g in rng.integers(0, 31, n)]),
        np.datetime64("2019-06-01") + rng.integers(0, 120, n).astype("timedelta64[D]"),
        rng.integers(0, 6, n), np.arange(n).astype(str),
        630000.0 + 10.0 * rng.integers(0, 2000, n) + 5, 5190000.0 - 10.0 * rng.integers(0, 2000, n) - 5,
        np.full(n, 32632, np.int32), {})
    folder = _reference_folder(work)
    with Timer() as tm:
        rp.write_reference_patches(ds, folder)
    mib = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
    return Result("write", n, tm.wall, tm.cpu, _peak_mib(), f"{mib:.0f} MiB of GeoTIFFs")


def _warm_up(work: Path) -> None:
    """Read a one-file folder first: first-call imports are not part of the measurement."""
    from xfacies.train import reference_patches as rp

    one = work / "warm-up"
    if not one.exists():
        one.mkdir()
        first = sorted(_reference_folder(work).iterdir())[0]
        shutil.copy(first, one / first.name)
    shutil.rmtree(work / "warm-up-cache", ignore_errors=True)
    rp.read_reference_patches(one, cache_dir=work / "warm-up-cache").patches.load()


def _read(name: str, work: Path) -> Result:
    from xfacies.train import reference_patches as rp

    _warm_up(work)
    with Timer() as tm:
        ds = rp.read_reference_patches(_reference_folder(work), cache_dir=work / "cache")
        ds.patches.load()
    store = Path(ds.attrs["cache"])
    mib = sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) / 2**20
    return Result(name, ds.sizes["sample"], tm.wall, tm.cpu, _peak_mib(), f"cache {mib:.0f} MiB")


def measure_first_read(args: argparse.Namespace, work: Path) -> Result:
    """Read the folder with an empty cache (files -> Zarr cache -> memory)."""
    shutil.rmtree(work / "cache", ignore_errors=True)
    return _read("first read", work)


def measure_cached_read(args: argparse.Namespace, work: Path) -> Result:
    """Read the folder again (Zarr cache -> memory)."""
    return _read("cached read", work)


def _points(n: int, cube, seed: int = 0):
    import geopandas as gpd
    import numpy as np

    rng = np.random.default_rng(seed)
    t = rng.integers(0, cube.sizes["time"], n)
    r = rng.integers(0, cube.sizes["y"], n)
    c = rng.integers(0, cube.sizes["x"], n)
    dates = np.asarray(cube["time"].values).astype("datetime64[D]").astype(str)[t]
    pts = gpd.GeoDataFrame({"class": rng.integers(0, 8, n), "date": dates},
                           geometry=gpd.points_from_xy(cube.x.values[c], cube.y.values[r]), crs=32632)
    return pts.to_crs(4326)


def _chunk_grid(cube) -> str:
    ny, nx = (len(c) for c in cube.chunks[2:])
    return f"{cube.sizes['time']} scenes x {ny} x {nx} chunks of {cube.chunks[2][0]} px"


def measure_points_zarr(args: argparse.Namespace, work: Path) -> Result:
    """patches_from_points on a Zarr-stored cube: the gather alone."""
    import importlib

    import dask.array as da
    import numpy as np
    import xarray as xr

    from xfacies.train import data as td
    from xfacies.train import reference_patches as rp

    importlib.import_module("rioxarray")  # registers .rio
    size, nt = 1024, 2
    store = work / "cube.zarr"
    bands = list(rp.REFERENCE_FEATURES)
    if not store.exists():
        data = da.random.default_rng(0).random((nt, len(bands), size, size), chunks=(1, len(bands), 256, 256),
                                               dtype=np.float32)
        cube = xr.DataArray(data, dims=("time", "band", "y", "x"), coords={
            "time": np.array(["2021-07-01", "2021-08-15"], dtype="datetime64[ns]"), "band": bands,
            "y": 5190000.0 - 10.0 * np.arange(size) - 5, "x": 630000.0 + 10.0 * np.arange(size) + 5})
        cube.rio.write_crs("EPSG:32632").to_dataset(name="features").to_zarr(store, mode="w")
    cube = xr.open_zarr(store)  # a Dataset: its spatial_ref variable gives the CRS
    pts = _points(args.n, cube)
    td.patches_from_points(cube, pts.iloc[:10])  # warm-up: first-call imports
    with Timer() as tm:
        ds = td.patches_from_points(cube, pts)
    return Result("points/zarr", ds.sizes["sample"], tm.wall, tm.cpu, _peak_mib(), _chunk_grid(cube["features"]))


def measure_points_synthetic(args: argparse.Namespace, work: Path) -> Result:
    """patches_from_points on a lazily generated synthetic season (generator cost included)."""
    from xfacies import synthetic
    from xfacies.train import data as td

    size = 512 if args.quick else 1024
    cube = synthetic.season(2, size=size, chunks=256).features
    pts = _points(args.n, cube, seed=1)
    small = synthetic.season(2, size=64).features
    td.patches_from_points(small, _points(10, small))  # warm-up: first-call imports
    with Timer() as tm:
        ds = td.patches_from_points(cube, pts)
    return Result("points/synth", ds.sizes["sample"], tm.wall, tm.cpu, _peak_mib(),
                  _chunk_grid(cube) + ", generator included")


def _fit_steps(architecture: str, args: argparse.Namespace) -> Result:
    """Training steps of batch 512 through ``fit``'s own pieces (the first epoch compiles: excluded)."""
    import numpy as np

    from xfacies import catalog
    from xfacies.train.fitting import fit
    from xfacies.train.patches import patch_dataset

    batch = 512
    steps = 4 if args.quick else 12
    rng = np.random.default_rng(0)
    n = batch * steps
    x = rng.random((n, 33, 33, 11), dtype=np.float32)
    y = rng.integers(0, len(catalog.CLASSES), n)
    ds = patch_dataset(x, y, catalog.FEATURE_SETS[4], glacier="g", date="2020-08-01")
    fit(ds.isel(sample=slice(0, batch)), architecture=architecture, epochs=1, batch_size=batch,
        verbose=0)  # first-call imports
    # one epoch and three epochs: the difference is two epochs of steady steps (each fit compiles once)
    with Timer() as one:
        fit(ds, architecture=architecture, epochs=1, batch_size=batch, verbose=0)
    with Timer() as three:
        fit(ds, architecture=architecture, epochs=3, batch_size=batch, verbose=0)
    import keras

    wall, cpu = three.wall - one.wall, three.cpu - one.cpu
    return Result(f"fit/{'exact' if architecture == 'translation-exact' else 'ref'}", 2 * n, wall, cpu,
                  _peak_mib(), f"{2 * steps / wall:.2f} steps/s of {batch} (steady: 3 epochs minus 1), "
                  f"{keras.backend.backend()} backend")


def measure_fit_exact(args: argparse.Namespace, work: Path) -> Result:
    return _fit_steps("translation-exact", args)


def measure_fit_reference(args: argparse.Namespace, work: Path) -> Result:
    return _fit_steps("reference-cnn", args)


#: The measurements, in the order they run (the reads need the folder ``write`` makes).
MEASUREMENTS: dict[str, Callable[[argparse.Namespace, Path], Result]] = {
    "write": measure_write,
    "first-read": measure_first_read,
    "cached-read": measure_cached_read,
    "points-zarr": measure_points_zarr,
    "points-synthetic": measure_points_synthetic,
    "fit-exact": measure_fit_exact,
    "fit-reference": measure_fit_reference,
}


# --------------------------------------------------------------------------- running
def _child(name: str, args: argparse.Namespace, work: Path, queue) -> None:
    try:
        queue.put(MEASUREMENTS[name](args, work))
    except BaseException as err:  # noqa: BLE001 - reported in the table
        queue.put(Result(name, 0, float("nan"), float("nan"), _peak_mib(), f"FAILED: {type(err).__name__}: {err}"))


def run_isolated(name: str, args: argparse.Namespace, work: Path) -> Result:
    """Run one measurement in a fresh (spawned) process."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(name, args, work, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


HEADER = (f"{'measurement':14s} {'patches':>8s} {'wall s':>7s} {'patches/s':>10s} {'CPU s':>7s} "
          f"{'per CPU s':>10s} {'peak MiB':>9s}  note")


def format_row(r: Result) -> str:
    per_cpu = r.n / r.cpu_seconds if r.cpu_seconds > 0 else float("nan")
    return (f"{r.name:14s} {r.n:8d} {r.seconds:7.2f} {r.rate:10,.0f} {r.cpu_seconds:7.2f} {per_cpu:10,.0f} "
            f"{r.peak_mib:9.0f}  {r.note}")


def main(argv: list[str] | None = None) -> list[Result]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=None, help="patches / points (default 5000, --quick 1000)")
    p.add_argument("--quick", action="store_true", help="small sizes")
    p.add_argument("--only", nargs="*", choices=list(MEASUREMENTS), help="run only these measurements")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = p.parse_args(argv)
    if args.n is None:
        args.n = 1000 if args.quick else 5000
    work = Path(tempfile.mkdtemp(prefix="xfacies-bench-training-"))
    print(f"{args.n} patches/points; work folder {work}; {os.cpu_count()} CPU(s), load average "
          f"{os.getloadavg()[0]:.1f}; python {sys.version.split()[0]}.  'per CPU s' = patches per second of "
          "CPU time (all threads): the rate without other jobs competing for the cores", flush=True)
    results: list[Result] = []
    try:
        names = args.only or list(MEASUREMENTS)
        if any(n.endswith("read") for n in names) and "write" not in names:
            names = ["write"] + names
        print(HEADER, flush=True)
        for name in names:
            results.append(run_isolated(name, args, work))
            print(format_row(results[-1]), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
