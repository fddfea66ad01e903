"""GPU benchmark: what fraction of the card xfacies reaches, per Keras backend, and at what parity.

    python benchmarks/gpu.py                 # full sizes (a GPU node; minutes)
    python benchmarks/gpu.py --quick         # small sizes (under 3 minutes on a 2-core CPU)
    python benchmarks/gpu.py --backends jax,torch,tensorflow --json results.json

Every backend runs in a subprocess of its own (``KERAS_BACKEND`` is fixed when Keras loads);
a backend that is not installed is reported as skipped.  Per backend it prints:

ceiling
    a plain Keras ``Conv2D`` 3x3, 64 -> 64 channels on one large image, in each precision
    (float32, tf32, bfloat16): the multiply-add rate this device reaches on the network's
    dominant operation.  Every other rate is also given as a fraction of this ceiling.
dense blocks
    per block size (512, 1024, 2048 px) and precision: the network alone on a normalised
    block (:meth:`xfacies.Model.predict_dense_normalised`) and the device-resident block (raw
    features in, labels + confidence + 3x3 mode filter out, :meth:`~xfacies.Model.predict_dense_block`).
exact batches
    per batch size: patch-exact probabilities (:meth:`~xfacies.Model.predict_exact_normalised`).
pipeline
    the whole ``xfacies.classify(...).compute()`` on an in-memory dask cube, per chunk size,
    precision and ``device_blocks``; and ``method="exact"`` on a smaller cube.
parity
    ``method="exact"`` against a float64 NumPy forward of the same network (and against the
    reference's published outputs when ``../shared/weights/reference/reference_outputs.json``
    exists); dense labels and probabilities of tf32 and bfloat16 against float32.

The node needs numpy, xarray, dask, keras and the backends only: features are built with
NumPy, no GDAL stack is imported (``--block-gdal`` makes importing it an error, to prove it).
Weights: the reference's feature-set-4 fold-0 weights from ../shared when present, otherwise
the reference architecture with seeded random weights (the same cost).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "weights" / "reference"
REF_NAME = "fs4/0_cnn_afterconfidentlearning_weights.h5"
#: What --block-gdal refuses to import (the list of tests/test_layout.py).
GDAL_STACK = ("rasterio", "rioxarray", "pyproj", "geopandas", "shapely", "odc", "pystac",
              "pystac_client", "pyogrio", "fiona", "osgeo")
PRECISIONS = ("float32", "tf32", "bfloat16")

SIZES = {
    #          blocks              exact batches                 cube  pipeline chunks  exact cube  reps
    "full": ((512, 1024, 2048), (1024, 4096, 16384, 65536), 4096, (512, 1024, 2048), 256, 3),
    "quick": ((128, 256), (64, 256), 256, (128, 256), 24, 2),
    "smoke": ((48,), (32,), 96, (48,), 8, 1),
}


# ----------------------------------------------------------------------------- parent
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (a CPU, under 3 minutes)")
    p.add_argument("--smoke", action="store_true", help="smallest sizes (seconds; for tests)")
    p.add_argument("--backends", default="jax,torch", help="comma-separated (default: jax,torch)")
    p.add_argument("--json", help="also write all numbers to this file")
    p.add_argument("--block-gdal", action="store_true",
                   help="make importing rasterio, pyproj, geopandas, shapely, odc, pystac... an error")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    size = "smoke" if a.smoke else "quick" if a.quick else "full"
    if a.child:
        return child(a.child, size, a.json, a.block_gdal)
    print(f"xfacies GPU benchmark ({size}), python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    results: dict = {}
    for backend in [b.strip() for b in a.backends.split(",") if b.strip()]:
        if importlib.util.find_spec(backend) is None:
            print(f"\n== {backend}: not installed, skipped")
            results[backend] = {"skipped": "not installed"}
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "r.json"
            cmd = [sys.executable, __file__, "--child", backend, "--json", str(out)]
            cmd += [f"--{size}"] if size != "full" else []
            cmd += ["--block-gdal"] if a.block_gdal else []
            env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
            sys.stdout.flush()
            rc = subprocess.run(cmd, env=env).returncode
            if rc or not out.exists():
                print(f"== {backend}: failed (exit status {rc})")
                results[backend] = {"failed": rc}
                continue
            results[backend] = json.loads(out.read_text())
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return 1 if any("failed" in r for r in results.values()) else 0


# ----------------------------------------------------------------------------- child
def _block_gdal() -> None:
    import importlib.abc

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in GDAL_STACK:
                raise ImportError(f"{name} is blocked (--block-gdal): the benchmark must not need it")

    sys.meta_path.insert(0, Block())


def _device(backend: str) -> str:
    if backend == "jax":
        import jax

        d = jax.devices()[0]
        return f"{d.platform} ({getattr(d, 'device_kind', d)})"
    if backend == "torch":
        import torch

        return f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"gpu ({gpus[0].name})" if gpus else "cpu"


def _best(fn, reps: int) -> float:
    """Seconds of the fastest of ``reps`` calls, after one untimed call (compiles)."""
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _model():
    import keras

    import xfacies
    from xfacies.model.architecture import CNNConfig, reference_cnn

    if (SHARED / REF_NAME).exists():
        return xfacies.import_reference(SHARED / REF_NAME), f"reference {REF_NAME} (../shared)"
    keras.utils.set_random_seed(0)
    cfg = CNNConfig(n_features=11)
    km = reference_cnn(config=cfg)
    m = xfacies.Model("reference-cnn", cfg.to_dict(), km.get_weights(), xfacies.FEATURE_SETS[4],
                      tuple(xfacies.catalog.class_names()))
    return m, "reference architecture, random weights (seed 0; ../shared absent)"


def macs_per_pixel(cfg, dense: bool) -> int:
    """Multiply-adds per classified pixel of the reference architecture family."""
    return cfg.macs_per_pixel(dense)


def features_cube(n: int, n_features: int, seed: int = 0):
    """Smooth random features ``(band, y, x)`` in 0..1 from NumPy alone (a separable box blur),
    with a few missing pixels, labelled with the demo/reference feature names."""
    import xarray as xr

    import xfacies

    rng = np.random.default_rng(seed)
    x = rng.random((n_features, n, n), dtype=np.float32)
    for axis in (1, 2):  # 5-px box blur, so that the scene has structure
        c = np.cumsum(np.pad(x, [(0, 0)] * axis + [(2, 3)] + [(0, 0)] * (2 - axis), mode="edge"),
                      axis=axis, dtype=np.float64)
        x = ((np.take(c, range(5, n + 5), axis=axis) - np.take(c, range(0, n), axis=axis)) / 5).astype(np.float32)
    x[:, rng.integers(0, n, 20), rng.integers(0, n, 20)] = np.nan
    names = list(xfacies.FEATURE_SETS[4])[:n_features]
    return xr.DataArray(x, dims=("band", "y", "x"),
                        coords={"band": names, "y": -10.0 * np.arange(n), "x": 10.0 * np.arange(n)})


def numpy_patch_forward(model, patches: np.ndarray) -> np.ndarray:
    """The patch CNN in float64 NumPy (BatchNorm folded): an independent, device-free reference.
    Both members of the family: 'same' convolutions (the reference), or unpadded ones
    (``translation_exact``: every map shrinks by 2 px per convolution)."""
    from xfacies.model.architecture import fold_batchnorm

    cfg = model.cnn_config
    w = [np.asarray(a, np.float64) for a in fold_batchnorm(model.weights, cfg)]
    elu = lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0)))  # noqa: E731

    valid = getattr(cfg, "translation_exact", False)

    def conv(h, k, b):  # 3x3, 'same' or unpadded: (N, H, W, Ci) x (3, 3, Ci, Co)
        p = h if valid else np.pad(h, ((0, 0), (1, 1), (1, 1), (0, 0)))
        H, W = p.shape[1] - 2, p.shape[2] - 2
        return sum(p[:, dy:dy + H, dx:dx + W] @ k[dy, dx] for dy in range(3) for dx in range(3)) + b

    h = patches.astype(np.float64)
    n, k = cfg.convs_per_scale, cfg.pool
    for i in range(n):
        h = elu(conv(h, w[2 * i], w[2 * i + 1]))
    c1 = h.shape[1] // 2
    tap1 = h[:, c1, c1]
    m = h.shape[1] // k
    h = h[:, :m * k, :m * k].reshape(len(h), m, k, m, k, -1).max(axis=(2, 4))
    for i in range(n, 2 * n):
        h = elu(conv(h, w[2 * i], w[2 * i + 1]))
    c2 = h.shape[1] // 2
    z = np.concatenate([tap1, h[:, c2, c2], h.max(axis=(1, 2))], axis=-1)
    rest = w[4 * n:]
    for i in range(cfg.n_dense):
        z = elu(z @ rest[2 * i] + rest[2 * i + 1])
    z = z @ rest[-2] + rest[-1]
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def child(backend: str, size: str, json_path: str | None, block_gdal: bool) -> int:
    if block_gdal:
        _block_gdal()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.simplefilter("ignore")
    import dask
    import keras

    import xfacies
    from xfacies.model.runtime import compiled_forward

    assert keras.backend.backend() == backend, (keras.backend.backend(), backend)
    dask.config.set(scheduler="threads")
    blocks, batches, cube_n, chunks, exact_n, reps = SIZES[size]
    model, label = _model()
    cfg = model.cnn_config
    F, h = cfg.n_features, model.dense_radius
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "bench.xfacies")  # tasks name the model by path
        res = {"backend": backend, "device": _device(backend), "model": label, "size": size,
               "blocked_gdal_stack": block_gdal}
        print(f"\n== {backend} on {res['device']}; weights: {label}; keras {keras.__version__}")
        macs_d, macs_e = macs_per_pixel(cfg, True), macs_per_pixel(cfg, False)

        # ceiling: plain Conv2D 64 -> 64 on one large image, per precision
        side = max(blocks) + 2 * h
        ceiling = {}
        for prec in PRECISIONS:
            policy = "mixed_bfloat16" if prec == "bfloat16" else "float32"
            km = keras.Sequential([keras.Input((None, None, 64)),
                                   keras.layers.Conv2D(64, 3, padding="same", dtype=policy)])
            fwd = compiled_forward(km, prec)
            x = np.random.default_rng(0).random((1, side, side, 64), dtype=np.float32)
            t = _best(lambda: fwd(x), reps)
            ceiling[prec] = side * side * 9 * 64 * 64 / t
        res["ceiling"] = ceiling
        print(f"ceiling, Keras Conv2D 3x3 64->64 on {side}x{side}: "
              + ", ".join(f"{p} {r / 1e9:.1f}" for p, r in ceiling.items()) + " G MAC/s")

        def row(rate_px: float, macs: int, prec: str) -> dict:
            return {"px_per_s": rate_px, "gmac_per_s": rate_px * macs / 1e9,
                    "of_ceiling": rate_px * macs / ceiling[prec]}

        # dense blocks: network alone and the device-resident block, per size and precision
        rng = np.random.default_rng(1)
        res["dense"] = []
        print(f"\ndense blocks (halo {h}; MACs/px {macs_d:,}; rates per output pixel)")
        print(f"{'block':>6s} {'precision':>9s} {'path':>22s} {'ms':>9s} {'M px/s':>8s} {'G MAC/s':>8s} "
              f"{'of ceiling':>10s}")
        for b in blocks:
            n = b + 2 * h
            xn = rng.random((n, n, F), dtype=np.float32)
            raw = np.concatenate([np.moveaxis(xn, -1, 0), np.ones((1, n, n), np.float32)])
            for prec in PRECISIONS:
                for path, fn in (("network (normalised)", lambda: model.predict_dense_normalised(xn, prec)),
                                 ("device block (+smooth)", lambda: model.predict_dense_block(
                                     raw, h + 1, smooth=True, confidence=True, precision=prec))):
                    t = _best(fn, reps)
                    out_px = b * b if path.startswith("network") else (b - 2) ** 2
                    r = {"block": b, "precision": prec, "path": path, "seconds": t, **row(out_px / t, macs_d, prec)}
                    res["dense"].append(r)
                    print(f"{b:6d} {prec:>9s} {path:>22s} {1e3 * t:9.1f} {r['px_per_s'] / 1e6:8.2f} "
                          f"{r['gmac_per_s']:8.1f} {100 * r['of_ceiling']:9.1f} %")

        # exact batches
        res["exact"] = []
        print(f"\nexact batches (patch {cfg.patch_size}; MACs/px {macs_e:,})")
        print(f"{'batch':>7s} {'pixels':>7s} {'s':>8s} {'px/s':>9s} {'G MAC/s':>8s} {'of ceiling':>10s}")
        side_e = int(np.ceil(np.sqrt(2 * max(batches))))
        xe = np.pad(rng.random((side_e, side_e, F), dtype=np.float32), ((16, 16), (16, 16), (0, 0)))
        for bs in batches:
            rows, cols = np.divmod(np.arange(2 * bs), side_e)
            t = _best(lambda: model.predict_exact_normalised(xe, rows, cols, batch_size=bs), reps)
            r = {"batch": bs, "pixels": 2 * bs, "seconds": t, **row(2 * bs / t, macs_e, "float32")}
            res["exact"].append(r)
            print(f"{bs:7d} {2 * bs:7d} {t:8.3f} {r['px_per_s']:9.0f} {r['gmac_per_s']:8.1f} "
                  f"{100 * r['of_ceiling']:9.1f} %")

        # pipeline: classify(...).compute() on an in-memory dask cube
        res["pipeline"] = []
        cube = features_cube(cube_n, F)
        path = str(Path(tmp) / "bench.xfacies")
        print(f"\npipeline: classify(...).compute() on a {cube_n}x{cube_n}x{F} in-memory dask cube "
              "(smoothing and confidence on)")
        print(f"{'method':>6s} {'chunk':>6s} {'precision':>9s} {'device_blocks':>13s} {'s':>8s} {'M px/s':>8s} "
              f"{'of ceiling':>10s}")
        labels = {}
        for c in chunks:
            fc = cube.chunk(y=c, x=c)
            for prec in PRECISIONS if c == max(chunks) else ("float32",):
                for dev in (False, True):
                    run = lambda: xfacies.classify(fc, path, method="dense", confidence=True,  # noqa: E731
                                                   precision=prec, device_blocks=dev).compute()
                    t = _best(run, reps)
                    if c == max(chunks) and not dev:
                        labels[prec] = xfacies.classify(fc, path, smooth=False, precision=prec).values
                    r = {"method": "dense", "chunk": c, "precision": prec, "device_blocks": dev, "seconds": t,
                         **row(cube_n ** 2 / t, macs_d, prec)}
                    res["pipeline"].append(r)
                    print(f"{'dense':>6s} {c:6d} {prec:>9s} {str(dev):>13s} {t:8.2f} {r['px_per_s'] / 1e6:8.3f} "
                          f"{100 * r['of_ceiling']:9.1f} %")
        small = cube.isel(y=slice(0, exact_n), x=slice(0, exact_n)).chunk(y=exact_n, x=exact_n)
        t = _best(lambda: xfacies.classify(small, path, method="exact").compute(), reps)
        r = {"method": "exact", "chunk": exact_n, "precision": "float32", "device_blocks": False, "seconds": t,
             **row(exact_n ** 2 / t, macs_e, "float32")}
        res["pipeline"].append(r)
        print(f"{'exact':>6s} {exact_n:6d} {'float32':>9s} {'False':>13s} {t:8.2f} {r['px_per_s'] / 1e6:8.3f} "
              f"{100 * r['of_ceiling']:9.1f} %")

        # parity
        par: dict = {}
        pr = np.random.default_rng(2).random((6, 33, 33, F), dtype=np.float32)
        par["patches_vs_float64"] = float(np.abs(model.predict_patches_normalised(pr)
                                                 - numpy_patch_forward(model, pr)).max())
        xe2 = np.pad(np.moveaxis(cube.values[:, :8, :8], 0, -1), ((16, 16), (16, 16), (0, 0)))
        xe2 = np.nan_to_num(xe2)
        rr, cc = np.divmod(np.arange(64), 8)
        patches = np.stack([xe2[i:i + 33, j:j + 33] for i, j in zip(rr, cc)])
        par["exact_vs_float64"] = float(np.abs(model.predict_exact_normalised(xe2, rr, cc)
                                                   - numpy_patch_forward(model, patches)).max())
        ref_json = SHARED / "reference_outputs.json"
        if ref_json.exists() and (SHARED / REF_NAME).exists():
            ref = json.loads(ref_json.read_text())["models"][REF_NAME]
            x = np.random.default_rng(0).random((4, 33, 33, ref["n_features"]), dtype=np.float32)
            par["reference_outputs"] = float(np.abs(model.predict_patches(x) - np.array(ref["probabilities"])).max())
        ok = labels["float32"] >= 0
        par["dense_labels"] = {p: float(np.mean(labels[p][ok] == labels["float32"][ok])) for p in PRECISIONS}
        res["parity"] = par
        ref_txt = (f"; vs the reference's published outputs: {par['reference_outputs']:.1e}"
                   if "reference_outputs" in par else "; reference outputs absent")
        print("\nparity, max |probability difference| in the float32 policy vs a float64 NumPy forward: "
              f"exact {par['exact_vs_float64']:.1e}, patch form {par['patches_vs_float64']:.1e}" + ref_txt)
        print("dense labels vs float32 (cube, no smoothing): "
              + ", ".join(f"{p} {100 * v:.2f} %" for p, v in par["dense_labels"].items()))
        res["gdal_modules_loaded"] = sorted({m.split(".")[0] for m in sys.modules} & set(GDAL_STACK))
        if json_path:
            Path(json_path).write_text(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
