"""Inference benchmark: the reference pipeline vs xfacies exact vs xfacies dense, in one run.

    python benchmarks/inference.py            # full run (about 20 minutes on 2 cores)
    python benchmarks/inference.py --quick    # smaller sizes (about 3 minutes)
    python benchmarks/inference.py --reuse-inputs   # later runs: skip writing the 10,000² inputs (7 min)

Prints one table per part:

(a) throughput of a faithful re-implementation of the reference's whole-scene pipeline (one
    zero-padded 33x33 patch per glacier pixel from a Python generator, batches of 1024,
    ``model.predict``) vs xfacies ``method="exact"`` and ``method="dense"`` (whole pipeline: dask
    graph, map_overlap halos, 3x3 smoothing), same scene, same weights, and the bare model on
    pre-extracted patches (the exact pipeline's overhead);
(b) a plain Keras convolution giving this machine's achievable multiply-adds/s, and the
    fraction of it each method reaches;
(c) dense-vs-exact label agreement on synthetic seasons;
(d) peak memory of classify on a lazily generated 10,000 x 10,000 scene with 2 workers
    (run in a fresh process, so that the client's memory is its own);
(e) 1 vs 2 workers.

Weights: the reference's fold-0 feature-set-4 weights from ../shared when present, otherwise a
randomly initialised model of the same architecture (identical cost).  The synthetic features
are already on 0..1-like scales; the reference weights are applied to them as normalised
inputs (accuracy is not the point here: speed and agreement are).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.simplefilter("ignore")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED_H5 = REPO.parent / "shared" / "weights" / "reference" / "fs4" / "0_cnn_afterconfidentlearning_weights.h5"


def macs_per_pixel(cfg, dense: bool) -> int:
    """Multiply-adds per classified pixel of the reference architecture family."""
    return cfg.macs_per_pixel(dense)


def reference_model():
    import xfacies
    from xfacies.model.architecture import CNNConfig, reference_cnn

    if SHARED_H5.exists():
        return xfacies.import_reference(SHARED_H5), "reference fs4 fold 0 (after CL)"
    import keras

    keras.utils.set_random_seed(0)  # the same random weights in every run, so runs compare
    cfg = CNNConfig(n_features=11)
    km = reference_cnn(config=cfg)
    m = xfacies.Model("reference-cnn", cfg.to_dict(), km.get_weights(), xfacies.FEATURE_SETS[4],
                      tuple(xfacies.catalog.class_names()))
    return m, "random init, reference architecture (../shared absent)"


def scene_inputs(size: int, seed: int = 11):
    from xfacies import synthetic

    ds = synthetic.scene("2021-08-20", size=size, seed=seed)
    return ds["features"], ds["glacier"]


# ----------------------------------------------------------------------------- (a)
def reference_pipeline(model, feats: np.ndarray, mask: np.ndarray, max_pixels: int) -> tuple[float, int]:
    """The reference's apply loop, re-implemented: generator of patches -> batches -> predict."""
    km = model.keras_model(dense=False)
    x = np.moveaxis(feats, 0, -1).astype(np.float32)
    x = np.pad(x, ((16, 16), (16, 16), (0, 0)))  # the reference crashes at edges; we pad
    rows, cols = np.nonzero(mask)
    rows, cols = rows[:max_pixels], cols[:max_pixels]

    def generator():
        batch = []
        for r, c in zip(rows, cols):  # per-pixel Python, as in the reference
            batch.append(x[r:r + 33, c:c + 33, :])
            if len(batch) == 1024:
                yield np.array(batch)
                batch = []
        if batch:
            yield np.array(batch)

    km.predict(np.zeros((1024, 33, 33, x.shape[-1]), np.float32), verbose=0, batch_size=1024)  # warm-up
    t = time.perf_counter()
    out = np.full(mask.shape, -1, np.int16)
    k = 0
    for b in generator():
        p = km.predict(b, verbose=0, batch_size=1024)
        out[rows[k:k + len(b)], cols[k:k + len(b)]] = p.argmax(1)
        k += len(b)
    return time.perf_counter() - t, len(rows)


def crop_with_pixels(mask: np.ndarray, n: int) -> tuple[slice, slice]:
    """A square crop around the glacier centre holding about ``n`` glacier pixels."""
    rows, cols = np.nonzero(mask)
    cy, cx = int(np.median(rows)), int(np.median(cols))
    for half in range(8, max(mask.shape), 4):
        ys = slice(max(cy - half, 0), cy + half)
        xs = slice(max(cx - half, 0), cx + half)
        if mask[ys, xs].sum() >= n:
            return ys, xs
    return slice(None), slice(None)


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def part_a_b(args) -> dict:
    import keras

    import xfacies

    model, label = reference_model()
    model.save(Path(args.tmp) / "bench-ref.xfacies")
    feats, glacier = scene_inputs(args.size)
    mask = glacier.values > 0
    f = feats.values
    everything = np.ones(mask.shape, bool)
    print(f"\n(a) throughput — weights: {label}; synthetic scene {args.size}x{args.size} px "
          f"({mask.sum()} glacier px); backend {keras.backend.backend()}.\n    Same work for every "
          "method: classify every pixel (no outlines); rates are pixels classified per second.")

    # This machine's speed drifts by 10-20 % over minutes, so the methods run in alternation,
    # three rounds, and each rate is the best of its three runs (the reference's too).
    side = int(np.sqrt(args.exact_pixels))
    fe = feats.isel(y=slice(0, side), x=slice(0, side))
    n_ex = side * side
    # bare model on pre-extracted patches (same pixels, same batch size)
    x = np.pad(np.moveaxis(fe.values, 0, -1), ((16, 16), (16, 16), (0, 0)))
    patches = np.stack([x[i:i + 33, j:j + 33] for i in range(side) for j in range(side)]).astype(np.float32)
    chunked = feats.chunk(y=args.chunk, x=args.chunk)
    runs = {
        "ref": lambda: reference_pipeline(model, f, everything, args.ref_pixels),
        "exact": lambda: xfacies.classify(fe.chunk(y=256, x=256), model, method="exact", smooth=True).compute(),
        "bare": lambda: np.concatenate([model.predict_patches_normalised(patches[i:i + 1024])
                                        for i in range(0, len(patches), 1024)]),
        "dense": lambda: xfacies.classify(chunked, model, method="dense", smooth=True).compute(),
        "dense_gl": lambda: xfacies.classify(chunked, model, glacier, method="dense", smooth=True).compute(),
    }
    for key in ("exact", "bare", "dense", "dense_gl"):
        runs[key]()  # compile
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(3):
        for key, fn in runs.items():
            dt, out = _timed(fn)
            if key == "ref":
                dt, n_ref = out  # the pipeline times its own loop (after its warm-up)
            if key == "bare":
                bare = out
            times[key].append(dt)
    t_ref, t_ex, t_bare, t_dense, t_dense_gl = (min(times[k]) for k in runs)
    p_ex = xfacies.predict_proba(fe.chunk(y=256, x=256), model, method="exact").values
    p_ex = np.moveaxis(p_ex, 0, -1).reshape(-1, p_ex.shape[0])
    same_labels = np.mean(p_ex.argmax(-1) == bare.argmax(-1))
    max_diff = float(np.abs(p_ex - bare).max())
    n_scene = f.shape[1] * f.shape[2]

    cfg = model.cnn_config
    rate = {"reference pipeline": n_ref / t_ref, "xfacies exact": n_ex / t_ex,
            "xfacies dense": n_scene / t_dense}
    print(f"{'method (best of 3 alternating runs)':44s} {'pixels':>9s} {'seconds':>8s} {'pixels/s':>10s} {'x reference':>11s}")
    for name, n, tt in [("reference pipeline (generator, batches 1024)", n_ref, t_ref),
                        ("xfacies exact (whole pipeline)", n_ex, t_ex),
                        ("bare model on pre-extracted patches", n_ex, t_bare),
                        (f"xfacies dense (whole pipeline, chunks {args.chunk})", n_scene, t_dense),
                        ("xfacies dense, glacier pixels only", int(mask.sum()), t_dense_gl)]:
        print(f"{name:44s} {n:9d} {tt:8.2f} {n / tt:10.0f} {n / tt / rate['reference pipeline']:11.1f}")
    print(f"exact pipeline overhead over the bare model: {100 * (t_ex / t_bare - 1):+.1f} %; same labels as "
          f"the bare model on {100 * same_labels:.2f} % of pixels (max probability difference {max_diff:.1e})")

    # (b) achievable multiply-adds per second: the best of several plain Conv2D workloads
    peak, best = achievable_rate(model)
    m_exact, m_dense = macs_per_pixel(cfg, False), macs_per_pixel(cfg, True)
    print(f"\n(b) achievable rate: best plain Keras Conv2D 3x3 (tried 64->64 and 128->128 on an image "
          f"and on a batch of 33x33 patches, and the model's own channel widths on 1024 patches): "
          f"{peak / 1e9:.1f} G multiply-adds/s, reached by {best}")
    print(f"{'method':38s} {'MACs/px':>12s} {'G MAC/s':>9s} {'of achievable':>14s}")
    for name, macs, pxs in [("reference pipeline", m_exact, rate["reference pipeline"]),
                            ("xfacies exact", m_exact, rate["xfacies exact"]),
                            ("xfacies dense", m_dense, rate["xfacies dense"])]:
        print(f"{name:38s} {macs:12,d} {macs * pxs / 1e9:9.2f} {100 * macs * pxs / peak:13.1f} %")
    return {"model": model}


def achievable_rate(model) -> tuple[float, str]:
    """The best multiply-add rate of plain 3x3 ``Conv2D`` layers on this machine, and its shape."""
    import keras

    from xfacies.model.runtime import compiled_forward as _compiled_forward

    widths = {(int(layer.input.shape[-1]), int(layer.filters))
              for layer in model.keras_model().layers if isinstance(layer, keras.layers.Conv2D)}
    work = [((1, 384, 384, 64), 64), ((512, 33, 33, 64), 64), ((1, 256, 256, 128), 128),
            ((256, 33, 33, 128), 128)] + [((1024, 33, 33, cin), cout) for cin, cout in sorted(widths)]
    peak, best = 0.0, ""
    for shape, cout in work:
        kmodel = keras.Sequential([keras.Input(shape[1:]), keras.layers.Conv2D(cout, 3, padding="same")])
        fwd = _compiled_forward(kmodel)
        inp = np.random.default_rng(0).random(shape, dtype=np.float32)
        fwd(inp)
        t = time.perf_counter()
        for _ in range(3):
            fwd(inp)
        rate = np.prod(shape[:3]) * 9 * shape[3] * cout / ((time.perf_counter() - t) / 3)
        if rate > peak:
            peak, best = rate, f"{shape[3]}->{cout} on {'x'.join(map(str, shape[:3]))}"
    return float(peak), best


# ----------------------------------------------------------------------------- (c)
def part_c(args, model) -> None:
    import xfacies
    from xfacies import synthetic

    print("\n(c) dense vs exact label agreement (glacier pixels, smoothing off)")
    print(f"{'model':34s} {'season':>8s} {'pixels':>8s} {'agreement':>10s}")
    demo = xfacies.load_model("demo")
    for seed in args.seasons:
        ds = synthetic.season(3, size=args.agree_size, seed=seed)
        d = xfacies.classify(ds.features, demo, ds.glacier, method="dense", smooth=False).values
        e = xfacies.classify(ds.features, demo, ds.glacier, method="exact", smooth=False).values
        ok = d >= 0
        print(f"{'demo (16 filters)':34s} {seed:8d} {ok.sum():8d} {100 * np.mean(d[ok] == e[ok]):9.2f} %")
    ds = synthetic.scene("2021-08-20", size=args.size, seed=11)
    mask = ds.glacier.values > 0
    ys, xs = crop_with_pixels(mask, args.exact_pixels)
    f, g = ds.features.isel(y=ys, x=xs), ds.glacier.isel(y=ys, x=xs)
    d = xfacies.classify(f, model, g, method="dense", smooth=False).values
    e = xfacies.classify(f, model, g, method="exact", smooth=False).values
    ok = d >= 0
    print(f"{'reference weights':34s} {'scene':>8s} {ok.sum():8d} {100 * np.mean(d[ok] == e[ok]):9.2f} %")


# ----------------------------------------------------------------------------- (d), (e)
class PeakRSS:
    """Sample the memory of this process and its children (the workers).

    ``peak``: the summed resident set sizes (RSS), which counts the shared library pages
    (TensorFlow's ~440 MB) once per process; ``peak_pss``: the summed proportional set sizes,
    which count shared pages once in all: the physical memory the processes use;
    ``peak_workers``: the summed RSS of the children alone (the worker processes).
    """

    def __init__(self, interval: float = 0.3):
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.peak = self.peak_pss = self.peak_workers = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            rss = pss = workers = 0
            for p in [self.proc] + self.proc.children(recursive=True):
                try:
                    mi = p.memory_full_info()
                    rss, pss = rss + mi.rss, pss + mi.pss
                    workers += mi.rss if p.pid != self.proc.pid else 0
                except Exception:
                    pass
            self.peak, self.peak_pss = max(self.peak, rss), max(self.peak_pss, pss)
            self.peak_workers = max(self.peak_workers, workers)
            time.sleep(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def _cluster(workers: int):
    from distributed import Client, LocalCluster

    os.environ.update({"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"})
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=40, memory_limit=None)
    return cluster, Client(cluster)


def make_inputs(size: int, chunk: int, tmp: str, store_chunk: int) -> tuple[str, float, float]:
    """Stage 1 (the synthetic generator's cost, not classify's): features + glacier raster to Zarr.

    The generator works in ``chunk`` blocks; the store is written in ``store_chunk`` blocks, the
    chunking classify computes in (reading at another chunking would make every task hold a band
    of source chunks).
    """
    import shutil

    from xfacies import synthetic

    store = str(Path(tmp) / f"xfacies-bench-inputs-{size}.zarr")
    shutil.rmtree(store, ignore_errors=True)
    cluster, client = _cluster(2)
    with cluster, client:
        ds = synthetic.scene("2021-08-20", size=size, seed=3, chunks=chunk)[["features", "glacier"]]
        ds = ds.drop_vars([c for c in ds.coords if c not in ("band", "y", "x", "spatial_ref")])
        ds = ds.chunk({"y": store_chunk, "x": store_chunk})
        with PeakRSS() as mem:
            t = time.perf_counter()
            ds.to_zarr(store, mode="w", consolidated=False)
            dt = time.perf_counter() - t
    (Path(store) / "complete").write_text(f"size {size} chunk {store_chunk}\n")
    return store, dt, mem.peak / 2**30


def run_cluster(store: str, workers: int, size: int | None = None) -> tuple[float, PeakRSS, int]:
    """Stage 2: classify (dense, smoothing) from the Zarr inputs, reduced to per-glacier fractions.

    The store is opened lazily (``chunks=None``): each block reads its own window + halo, so no
    worker holds neighbouring chunks (memory bounded by the block size, not the scene's width).
    """
    import xarray as xr

    import xfacies
    from xfacies import synthetic

    cluster, client = _cluster(workers)
    with cluster, client:
        ds = xr.open_zarr(store, consolidated=False, chunks=None)
        if size is not None:
            ds = ds.isel(y=slice(0, size), x=slice(0, size))
        ds = ds.rio.write_crs("EPSG:32632")
        outlines = synthetic.outlines(int(xr.open_zarr(store, consolidated=False).sizes["x"]), seed=3)
        facies = xfacies.classify(ds.features, "demo", ds.glacier, method="dense")
        frac = xfacies.fractions(facies, outlines)
        with PeakRSS() as mem:
            t = time.perf_counter()
            frac.compute()
            dt = time.perf_counter() - t
    return dt, mem, ds.sizes["y"] * ds.sizes["x"]


def _mem(m: PeakRSS) -> str:
    g = 2**30
    return (f"RSS sum {m.peak / g:.2f} GiB, PSS sum {m.peak_pss / g:.2f} GiB ({m.peak_pss / 1e9:.2f} GB); "
            f"workers alone RSS {m.peak_workers / g:.2f} GiB")


def part_d_e(args) -> None:
    print(f"\n(d) classify a lazily generated {args.big}x{args.big} scene (demo model, dense, smoothing, "
          f"blocks of {args.big_chunk} px read lazily from Zarr, 2 worker processes x 1 thread), reduced to "
          "per-glacier fractions")
    store = str(Path(args.tmp) / f"xfacies-bench-inputs-{args.big}.zarr")
    if args.reuse_inputs and (Path(store) / "complete").exists():
        print(f"    stage 1 skipped: reusing {store}")
    else:
        store, t_in, m_in = make_inputs(args.big, 1024, args.tmp, args.big_chunk)
        print(f"    stage 1, synthetic generator -> Zarr (not xfacies inference): {t_in:.0f} s, "
              f"peak memory {m_in:.2f} GiB")
    dt, mem, px = run_cluster(store, 2)
    print(f"    stage 2, classify + fractions: {px / 1e6:.0f} M px in {dt:.0f} s = {px / dt / 1e3:.0f} k px/s; "
          f"peak memory (client + 2 workers): {_mem(mem)}")
    print(f"\n(e) 1 vs 2 workers, classify + fractions of {args.scale}x{args.scale} px of the same inputs")
    t1, m1, _ = run_cluster(store, 1, args.scale)
    t2, m2, _ = run_cluster(store, 2, args.scale)
    print(f"    1 worker: {t1:.1f} s ({_mem(m1)})\n    2 workers: {t2:.1f} s ({_mem(m2)})\n"
          f"    speed-up {t1 / t2:.2f}x")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes, a few minutes")
    p.add_argument("--parts", default="abcde", help="which parts to run (default: abcde)")
    p.add_argument("--reuse-inputs", action="store_true",
                   help="(d)/(e): reuse the Zarr inputs a previous run left in $TMPDIR (skips stage 1)")
    a = p.parse_args(argv)
    a.tmp = os.environ.get("TMPDIR", "/tmp")
    if a.quick:
        a.size, a.ref_pixels, a.exact_pixels, a.chunk = 512, 1024, 1024, 256
        a.agree_size, a.seasons = 160, (200,)
        a.big, a.big_chunk, a.scale = 3000, 512, 2000
    else:
        a.size, a.ref_pixels, a.exact_pixels, a.chunk = 1024, 8192, 4096, 512
        a.agree_size, a.seasons = 256, (200, 201)
        a.big, a.big_chunk, a.scale = 10000, 512, 5000
    if not os.environ.get("XFACIES_BENCH_CHILD"):
        print(f"xfacies inference benchmark ({'quick' if a.quick else 'full'}), python {sys.version.split()[0]}, "
              f"{os.cpu_count()} CPUs")
    model = None
    if "a" in a.parts or "b" in a.parts:
        model = part_a_b(a)["model"]
    if "c" in a.parts:
        model = model or reference_model()[0]
        part_c(a, model)
    de = "".join(c for c in a.parts if c in "de")
    if de and model is not None:
        # a fresh process: this one holds TensorFlow and the models of (a)-(c), which would
        # count as the client's memory
        import subprocess

        sys.stdout.flush()
        cmd = [sys.executable, __file__, "--parts", de] + (["--quick"] if a.quick else []) \
            + (["--reuse-inputs"] if a.reuse_inputs else [])
        return subprocess.run(cmd, check=False, env=dict(os.environ, XFACIES_BENCH_CHILD="1")).returncode
    if de:
        part_d_e(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
