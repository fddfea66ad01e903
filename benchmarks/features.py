"""Benchmark: glacier context features for a large lazily generated synthetic scene.

Usage::

    python benchmarks/features.py [--size 10000] [--chunks 2048] [--workers 2] [--keep] [--inputs DIR]

Two timed stages on a ``distributed.LocalCluster(n_workers=W, threads_per_worker=1,
processes=True)``:

1. *inputs*: ``xfacies.synthetic.scene(size=N, chunks=C)``'s six reflectance bands
   and its DEM are written to a Zarr store under /tmp (the generator's cost, not ours;
   ``--inputs DIR`` keeps that store in ``DIR`` and reuses it on later runs of the same size and chunks);
2. *features*: ``xfacies.features.features(cube, dem, outlines)`` (feature set 4,
   11 bands) from that store into another Zarr store in /tmp.

For each stage it prints wall time, pixels per second, and peak memory: the sum
of the workers' peak RSS (sampled every 0.2 s) plus the client's peak RSS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time
import warnings


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


class PeakSampler:
    """Samples the workers' and the client's RSS in a background thread: the peaks, and
    ``samples`` (seconds since start, summed worker RSS) to tell flat memory from growth."""

    def __init__(self, client, every: float = 0.2):
        self.client, self.every = client, every
        self.workers: dict[str, int] = {}
        self.client_peak = 0
        self.client_start = 0  # the client's RSS when sampling began (its growth is the peak above it)
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.perf_counter()
        while not self._stop.is_set():
            try:
                now = self.client.run(_rss)
                for w, r in now.items():
                    self.workers[w] = max(self.workers.get(w, 0), r)
                self.samples.append((time.perf_counter() - t0, sum(now.values())))
            except Exception:  # noqa: BLE001 - a worker restarting must not kill the sampler
                pass
            self.client_peak = max(self.client_peak, _rss())
            self._stop.wait(self.every)

    def __enter__(self) -> "PeakSampler":
        self.client_start = self.client_peak = _rss()
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()

    @property
    def total(self) -> int:
        return sum(self.workers.values()) + self.client_peak

    def _split(self) -> tuple[list[int], list[int]]:
        """Summed worker RSS samples of the first and of the second half of the sampling."""
        end = self.samples[-1][0] if self.samples else 0.0
        return ([v for t, v in self.samples if t <= end / 2] or [0],
                [v for t, v in self.samples if t > end / 2] or [0])

    def halves(self) -> tuple[int, int]:
        """Peak summed worker RSS (bytes) in the first and in the second half of the sampling."""
        first, second = self._split()
        return max(first), max(second)

    def typical(self) -> tuple[float, float]:
        """Median summed worker RSS (bytes) in the first and in the second half of the sampling.

        A peak is the largest of many samples, so it creeps up with the length of a run even when
        nothing grows (rare moments when both workers hold their largest blocks at once); the
        median does not, so a growing median is what growth looks like."""
        first, second = self._split()
        return float(statistics.median(first)), float(statistics.median(second))


def _report(stage: str, seconds: float, pixels: int, s: PeakSampler) -> None:
    gib = 1024.0**3
    per = ", ".join(f"{v / gib:.2f}" for v in s.workers.values())
    print(
        f"{stage:9s} {seconds:8.1f} s  {pixels / seconds / 1e6:7.2f} Mpx/s  peak memory "
        f"{s.total / gib:.2f} GiB (workers {per} GiB; client {s.client_peak / gib:.2f} GiB)",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=10000, help="scene size in pixels (square)")
    p.add_argument("--chunks", type=int, default=2048, help="y/x chunk size in pixels")
    p.add_argument("--workers", type=int, default=2, help="worker processes (1 thread each)")
    p.add_argument("--keep", action="store_true", help="keep the Zarr stores in /tmp")
    p.add_argument("--inputs", default=None,
                   help="folder for the inputs store, kept and reused by later runs of the same --size and --chunks")
    a = p.parse_args(argv)

    import dask
    import xarray as xr
    from distributed import Client, LocalCluster

    import xfacies  # noqa: F401  (registers .rio)
    from xfacies import synthetic
    from xfacies.catalog import OPTICAL_FEATURES
    from xfacies.features import features

    warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
    root = tempfile.mkdtemp(prefix="xfacies-bench-features-", dir="/tmp")
    n = a.size
    pixels = n * n
    print(f"scene {n} x {n} ({pixels / 1e6:.0f} Mpx), chunks {a.chunks}, {a.workers} worker(s) x 1 thread; "
          f"stores in {root}", flush=True)
    try:
        with dask.config.set({"distributed.worker.memory.target": False, "distributed.worker.memory.spill": False}):
            cluster = LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True,
                                   memory_limit=0, dashboard_address=None)
            client = Client(cluster)
            ds = synthetic.scene("2021-08-15", size=n, chunks=a.chunks)
            outl = synthetic.outlines(n)
            inputs = xr.Dataset({
                "reflectance": ds.features.sel(band=list(OPTICAL_FEATURES)),
                "dem": ds.dem,
            })
            inputs = inputs.drop_vars([c for c in inputs.coords if c not in ("x", "y", "band", "spatial_ref")])
            store = os.path.join(root, "inputs.zarr")
            if a.inputs:
                os.makedirs(a.inputs, exist_ok=True)
                store = os.path.join(a.inputs, f"inputs-{n}-{a.chunks}.zarr")
            if os.path.exists(os.path.join(store, "zarr.json")) or os.path.exists(os.path.join(store, ".zmetadata")):
                print(f"inputs    reused from {store}", flush=True)
            else:
                t0 = time.perf_counter()
                with PeakSampler(client) as s:
                    inputs.to_zarr(store, mode="w", consolidated=True)
                _report("inputs", time.perf_counter() - t0, pixels, s)
                # fresh workers, as when the inputs are reused: the generator's heap is not the features'
                client.restart()

            src = xr.open_zarr(store, chunks={"y": a.chunks, "x": a.chunks})
            cube = src.reflectance.assign_coords(sun_azimuth=float(ds.sun_azimuth),
                                                 sun_elevation=float(ds.sun_elevation)).rio.write_crs(outl.crs)
            dem = src.dem.rio.write_crs(outl.crs)
            t0 = time.perf_counter()
            with PeakSampler(client) as s:
                f = features(cube, dem=dem, outlines=outl, feature_set=4)
                t_graph = time.perf_counter() - t0
                f.to_dataset(name="features").to_zarr(os.path.join(root, "features.zarr"), mode="w")
            _report("features", time.perf_counter() - t0, pixels, s)
            print(f"          (graph construction incl. the DEM relief pass: {t_graph:.1f} s; "
                  f"shadow search {f.attrs.get('shadow_max_distance_m')} m)", flush=True)
            client.close()
            cluster.close()
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
