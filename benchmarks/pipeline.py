"""Benchmark: a whole ``xfacies run`` (STAC read -> quality -> features -> classify -> fractions ->
Zarr -> products) over a long synthetic record, on a ``distributed.LocalCluster``.

Usage::

    python benchmarks/pipeline.py [--dates 12,48,192] [--size 1024] [--chunks 1024] [--glaciers 5]
                                  [--workers 2] [--quick] [--catalogue DIR]

It first writes the synthetic area's imagery for the longest record (12 dates a year) as COGs with a
STAC catalogue (``prepare_synthetic_catalog``; the generator's cost is reported, not timed); every
shorter record takes its first years from it (``--catalogue DIR`` keeps it for later runs).
For every record length N it then times
``xfacies.app.pipeline.run`` from a fresh output folder, the catalogue served on loopback, on a
cluster of ``--workers`` worker processes (1 thread each), and prints:

* wall time, time per date, pixels per second end to end;
* tasks per date (from the cluster's task stream) and the split of worker time: read, quality,
  features, classify, reduce (fractions, products), write, other;
* peak RSS per worker, and the peak and the median of all workers' RSS in the first and in the
  second half of the run (a flat median means no growth with the number of dates done; a peak
  creeps up with the length of a run even then), and of the client with its growth during the run;
* bytes written.

Then, on the same cluster and cube, the rate of dense classification alone (features computed and
held in worker memory first), and end to end as a share of it.  The default (1024² px in one
1024-px chunk per date, 12/48/192 dates) takes 10-15 minutes of timed runs on 2 cores, depending on
the CPU (plus 5-10 minutes for the catalogue the first time); ``--quick`` runs 256 px and 4, 8 and
16 dates (about 1 minute).  This is also the soak run of the reliability
issue: ``--dates 200``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from features import PeakSampler  # noqa: E402  (the same RSS sampler as the features benchmark)

GIB = 1024.0**3

# task-name prefixes -> step of the run (checked in order; the first match wins)
STEPS = (
    ("write", ("store-map", "finalize-store", "_finalize_store")),
    ("quality", ("xfacies-scene-quality",)),
    ("classify", ("xfacies-proba", "xfacies-labels", "xfacies-confidence", "xfacies-smooth")),
    ("reduce", ("open_dataset", "xfacies-fractions", "bincount", "fractions", "counts", "snowline")),
    ("features", ("xfacies-", "assemble", "shadow", "slope", "proximity", "hillshade", "elevation")),
    ("read", ("blue", "green", "red", "nir", "swir", "scl", "valid", "concatenate-where", "transpose",
              "original-", "load", "odc")),
)


def step_of(prefix: str) -> str:
    p = prefix.lower()
    for step, keys in STEPS:
        if any(p.startswith(k) for k in keys):
            return step
    for step, keys in STEPS:
        if any(k in p for k in keys):
            return step
    return "other"


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def run_config(n: int, a: argparse.Namespace, out: Path, cluster) -> Any:
    """The run's configuration: ``n`` dates, ``a.per_year`` a year (the same area and dates for
    every record length, so the longest record's catalogue serves them all)."""
    from xfacies.app.pipeline import RunConfig

    years = max(1, -(-n // a.per_year))
    return RunConfig.from_dict({
        "area": {"synthetic": {"size": a.size, "seed": 11, "n_glaciers": a.glaciers, "dates": a.per_year}},
        "time": {"start": 2000, "end": 2000 + years - 1},
        "stac": {"catalog": "synthetic", "chunks": a.chunks},
        "dem": {"source": "synthetic"},
        "products": {"window": ["06-01", "10-15"], "min_coverage": 0.3},
        "quality": {"min_valid": 0.0},  # keep every date: the benchmark measures the work, not the weather
        "cluster": {"scheduler": cluster.scheduler_address},
        "output": {"dir": str(out)},
    })


def one_run(n: int, a: argparse.Namespace, root: Path, cluster, client) -> dict:
    from distributed import get_task_stream

    from xfacies.app.pipeline import prepare_synthetic_catalog, run

    out = root / f"run-{n}"
    cfg = run_config(n, a, out, cluster)
    shared = a.catalogue / "stac"
    if shared.exists():  # the longest record's catalogue, written once (see main)
        out.mkdir(parents=True, exist_ok=True)
        (out / "stac").symlink_to(shared, target_is_directory=True)
    t0 = time.perf_counter()
    prepare_synthetic_catalog(cfg)
    t_gen = time.perf_counter() - t0
    client.run(lambda: __import__("gc").collect())
    with PeakSampler(client, every=0.5) as peak, get_task_stream(client) as ts:
        t0 = time.perf_counter()
        res = run(cfg, progress=False, verbose=False)
        wall = time.perf_counter() - t0
    dates = len(res.written)
    split: dict[str, float] = defaultdict(float)
    prefixes: dict[str, float] = defaultdict(float)
    for rec in ts.data:
        secs = sum(s["stop"] - s["start"] for s in rec.get("startstops", ()) if s.get("action") == "compute")
        prefix = rec["key"][0] if isinstance(rec["key"], tuple) else str(rec["key"])
        prefix = prefix.rsplit("-", 1)[0] if len(prefix) > 33 and prefix[-33] == "-" else prefix
        prefixes[prefix] += secs
        split[step_of(prefix)] += secs
    h1, h2 = (v / GIB for v in peak.halves())
    m1, m2 = (v / GIB for v in peak.typical())
    return {
        "n": n, "dates": dates, "wall": wall, "gen": t_gen, "tasks": len(ts.data),
        "px": dates * a.size * a.size, "split": dict(split), "prefixes": dict(prefixes),
        "workers": {w: v / GIB for w, v in peak.workers.items()}, "client": peak.client_peak / GIB,
        "client_growth": (peak.client_peak - peak.client_start) / GIB,
        "half1": h1, "half2": h2, "median1": m1, "median2": m2,
        "bytes": sum(du(out / s) for s in ("facies.zarr", "fractions.zarr", "products.zarr", "static.zarr")),
        "out": out,
    }


def warm_worker(path: str) -> float:
    """On a worker (``client.run``): import the framework, load the model through the workers'
    cache and classify a small scene once; the seconds it took."""
    import dask

    from xfacies import catalog, synthetic
    from xfacies.inference import classify
    from xfacies.inference.distribute import worker_model

    t0 = time.perf_counter()
    model = worker_model(path)
    scene = synthetic.scene(size=64, seed=1)
    with dask.config.set(scheduler="sync"):
        classify(scene["features"].sel(band=list(catalog.feature_set(model.features))), model,
                 synthetic.outlines(64, seed=1), method="dense", confidence=True).compute()
    return time.perf_counter() - t0


def classify_rate(cfg: Any, client, n_dates: int = 8) -> float:
    """Dense classification alone on the benchmark's cube (features first computed into worker
    memory): pixels per second of the second of two identical calls (the first traces the network
    for the block shape)."""
    import numpy as np
    from distributed import wait

    from xfacies.app.pipeline import _area, _imagery
    from xfacies.features import features
    from xfacies.inference import classify
    from xfacies.model.registry import load_model

    season, outlines, where = _area(cfg)
    cube, dem = _imagery(cfg, season, where)
    cube = cube.isel(time=slice(0, n_dates))
    model = load_model(cfg.model.path)
    feats = features(cube, dem=dem, outlines=outlines, feature_set=model.features).persist()
    wait(feats)
    secs = []
    for _ in range(2):
        t0 = time.perf_counter()
        lab = client.persist(classify(feats, model, outlines, method="dense", confidence=True))
        wait(lab)
        secs.append(time.perf_counter() - t0)
        del lab
    del feats
    return float(np.prod([cube.sizes[d] for d in ("time", "y", "x")])) / secs[1]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dates", default="12,48,192", help="record lengths, comma-separated")
    p.add_argument("--size", type=int, default=1024, help="area size in pixels (square, 10 m)")
    p.add_argument("--glaciers", type=int, default=5)
    p.add_argument("--chunks", type=int, default=1024, help="spatial chunk size (pixels)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (1 thread each)")
    p.add_argument("--quick", action="store_true", help="256 px, 4/8/16 dates")
    p.add_argument("--keep", action="store_true", help="keep the output folders in /tmp")
    p.add_argument("--catalogue", type=Path, default=None,
                   help="folder for the synthetic catalogue, kept and reused by later runs of the same area "
                        "and a record no longer than the one it holds")
    a = p.parse_args(argv)
    if a.quick:
        a.size, a.chunks, a.dates = 256, 256, "4,8,16"
    lengths = [int(x) for x in a.dates.split(",")]
    a.per_year = min(12, min(lengths))

    import dask
    from distributed import Client, LocalCluster

    warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    root = Path(tempfile.mkdtemp(prefix="xfacies-bench-pipeline-", dir="/tmp"))
    a.catalogue = a.catalogue.resolve() if a.catalogue else root / "catalogue"
    print(f"area {a.size} x {a.size} px, {a.glaciers} glaciers, chunks {a.chunks}, {a.workers} worker(s) x 1 thread; "
          f"record lengths {lengths}; output in {root}", flush=True)
    rows = []
    try:
        with dask.config.set({"distributed.worker.memory.target": False, "distributed.worker.memory.spill": False}):
            cluster = LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True,
                                   memory_limit=0, dashboard_address=None)
            client = Client(cluster)
            from xfacies.app.pipeline import prepare_synthetic_catalog

            t0 = time.perf_counter()
            prepare_synthetic_catalog(run_config(max(lengths), a, a.catalogue, cluster))
            print(f"catalogue of {max(lengths)} dates ready in {time.perf_counter() - t0:.1f} s in {a.catalogue} "
                  "(not timed; the shorter records take their dates from it)", flush=True)
            from xfacies.inference.distribute import model_path

            cfg0 = run_config(max(lengths), a, a.catalogue, cluster)
            t0 = time.perf_counter()
            client.run(warm_worker, model_path(cfg0.model.path)[0])
            print(f"workers started (framework import, model load, first call) in {time.perf_counter() - t0:.1f} s, "
                  "once per cluster (not timed)", flush=True)
            for n in lengths:
                r = one_run(n, a, root, cluster, client)
                rows.append(r)
                tot = sum(r["split"].values()) or 1.0
                split = "  ".join(f"{k} {100 * r['split'].get(k, 0) / tot:.0f}%" for k in
                                  ("read", "quality", "features", "classify", "reduce", "write", "other"))
                per = ", ".join(f"{v:.2f}" for v in r["workers"].values())
                print(f"\n{r['n']} dates ({r['dates']} written): {r['wall']:.1f} s = {r['wall'] / r['dates']:.2f} s/date, "
                      f"{r['px'] / r['wall'] / 1e6:.3f} Mpx/s end to end; {r['tasks'] / r['dates']:.0f} tasks/date; "
                      f"catalogue ready in {r['gen']:.1f} s (not timed)", flush=True)
                print(f"  worker time: {split}", flush=True)
                top = sorted(r["prefixes"].items(), key=lambda kv: -kv[1])[:8]
                print("  top task prefixes: " + ", ".join(f"{k} {v:.1f}s [{step_of(k)}]" for k, v in top), flush=True)
                print(f"  peak RSS: workers {per} GiB (all workers, 1st half {r['half1']:.2f} / 2nd half "
                      f"{r['half2']:.2f} GiB; median {r['median1']:.2f} / {r['median2']:.2f} GiB); "
                      f"client {r['client']:.2f} GiB (+{r['client_growth']:.2f} during the run); "
                      f"written {r['bytes'] / 1e6:.1f} MB "
                      f"({r['bytes'] / r['dates'] / 1e6:.2f} MB/date)", flush=True)
            rate = classify_rate(cfg0, client)
            client.close()
            cluster.close()
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)
    print("\n| dates | wall s | s/date | Mpx/s end to end | share of classify alone | tasks/date | "
          "worker peak GiB (max) | all workers, 1st/2nd half: peak, median GiB | "
          "client GiB (growth in the run) | MB written |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']} | {r['wall']:.1f} | {r['wall'] / r['dates']:.2f} | {r['px'] / r['wall'] / 1e6:.3f} | "
              f"{100 * r['px'] / r['wall'] / rate:.0f} % | "
              f"{r['tasks'] / r['dates']:.0f} | {max(r['workers'].values()):.2f} | "
              f"{r['half1']:.2f} / {r['half2']:.2f}, {r['median1']:.2f} / {r['median2']:.2f} | "
              f"{r['client']:.2f} (+{r['client_growth']:.2f}) | {r['bytes'] / 1e6:.1f} |")
    best = max(r["px"] / r["wall"] for r in rows)
    print(f"\ndense classify alone on the same cube: {rate / 1e6:.3f} Mpx/s; end to end (best) is "
          f"{100 * best / rate:.0f} % of it")
    if len(rows) > 1:
        import numpy as np

        n = np.array([r["dates"] for r in rows], float)
        for what, ys, unit in (("wall time", [r["wall"] for r in rows], "s"),
                               ("tasks", [r["tasks"] for r in rows], "")):
            b, c = np.polyfit(n, np.array(ys, float), 1)  # y = c + b N: linear means small residuals
            dev = max(abs(y - (c + b * k)) / y for y, k in zip(ys, n))
            print(f"{what} = {c:.1f}{unit} + {b:.2f}{unit} x dates (largest deviation from the line "
                  f"{100 * dev:.1f} %)")
        a0, a1 = rows[0], rows[-1]
        print(f"growth from {a0['n']} to {a1['n']} dates (x{a1['n'] / a0['n']:.0f}): time x{a1['wall'] / a0['wall']:.2f}, "
              f"tasks x{a1['tasks'] / a0['tasks']:.2f}, client growth {a0['client_growth']:.2f} -> "
              f"{a1['client_growth']:.2f} GiB, "
              f"worker peak x{max(a1['workers'].values()) / max(a0['workers'].values()):.2f}, "
              f"worker median x{a1['median2'] / a0['median2']:.2f} (2nd halves)")


if __name__ == "__main__":
    main()
