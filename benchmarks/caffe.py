"""CaFFe zone-model benchmark: segment images/s (plain, ``tta="flips"``, ``"d4"``, tiled), training
steps/s, and peak memory, side by side in one run.

    python benchmarks/caffe.py            # 32 images of 256 px, 1 x 2048 px, 20 training steps
    python benchmarks/caffe.py --quick    # 8 images, 1 x 1024 px, 5 steps (about a minute)
    python benchmarks/caffe.py --model path/to/caffe-zones.xfacies

Each row runs in a fresh process (``ru_maxrss`` is its own); training steps/s is the difference of a
1-step and a (1 + n)-step run, so model building and tracing are not counted.  The model is the shipped
``caffe-zones`` recipe (``xfacies.caffe.train.DEFAULT_CONFIG``): the bundle given by ``--model``, else the
built-in one, else the same architecture with random weights (identical cost).  Images come from
``xfacies.caffe.make_synthetic`` (256 x 256 px, the real derivative's size).  Ratios are against the
plain ``segment`` row of the same run.  ``KERAS_BACKEND=jax`` on a GPU node gives GPU figures.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.simplefilter("ignore")

from suite import measure  # noqa: E402  (benchmarks/suite.py: a fresh process per row, its peak memory)


def _model(path: str | None):
    import xfacies
    from xfacies.caffe.train import DEFAULT_ARCHITECTURE, DEFAULT_CONFIG
    from xfacies.model.architecture import build
    from xfacies.model.bundle import Model

    if path:
        return xfacies.load_model(path), Path(path).name
    try:
        m = xfacies.load_model("caffe-zones")
        if m.architecture == DEFAULT_ARCHITECTURE:
            return m, "shipped caffe-zones"
    except Exception:
        pass
    import keras

    keras.utils.set_random_seed(0)
    km = build(DEFAULT_ARCHITECTURE, DEFAULT_CONFIG)
    return (Model(DEFAULT_ARCHITECTURE, DEFAULT_CONFIG, km.get_weights(), ("sar",),
                  ("NA", "rock", "glacier", "ocean"), normalisation={"min": [0.0], "max": [255.0]}),
            "random weights, shipped architecture")


def _segment(kw: dict) -> tuple[float, int, str]:
    import numpy as np
    import xarray as xr

    import xfacies.caffe as caffe

    m, label = _model(kw["model"])
    if kw["side"]:
        rng = np.random.default_rng(0)
        img = rng.integers(1, 256, (kw["side"], kw["side"])).astype(np.uint8)
        data = xr.DataArray(img, dims=("y", "x"))
        caffe.segment(data[:256, :256], m, tta=kw["tta"]).values  # compile/warm up
        t0 = time.perf_counter()
        caffe.segment(data, m, tta=kw["tta"]).values
        return time.perf_counter() - t0, 1, label
    tree = caffe.open_dataset(kw["root"])
    first = list(tree.children)[0]
    caffe.segment(tree[first].ds, m, tta=kw["tta"]).values  # compile/warm up
    t0 = time.perf_counter()
    pred = caffe.segment(tree, m, tta=kw["tta"])
    for node in pred.children.values():
        node["zones"].values
    return time.perf_counter() - t0, len(tree.children), label


def _train(kw: dict) -> tuple[float, int, str]:
    import xfacies.caffe as caffe
    from xfacies.caffe.train import train_zone_model

    tree = caffe.open_dataset(kw["root"])
    # each call builds and traces a new model: the difference of a 1-step and a (1 + n)-step run is
    # the time of n training steps alone
    train_zone_model(tree, epochs=1, steps_per_epoch=1, verbose=0)  # imports, first trace
    t0 = time.perf_counter()
    train_zone_model(tree, epochs=1, steps_per_epoch=1, verbose=0)
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = train_zone_model(tree, epochs=1, steps_per_epoch=1 + kw["steps"], verbose=0)
    more = time.perf_counter() - t0
    t = m.metadata["training"]
    return more - one, kw["steps"], (f"batch {t['batch_size']} of {t['crop']} px, {t['keras_backend']}; "
                                     f"build + trace + 1 step {one:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model", default=None, help="a zone-model bundle (default: the shipped caffe-zones)")
    a = ap.parse_args()
    n, side, steps = (8, 1024, 5) if a.quick else (32, 2048, 20)
    with tempfile.TemporaryDirectory() as work:
        import xfacies.caffe as caffe

        root = str(caffe.make_synthetic(Path(work) / "c", layout="resized", n=n, seed=0, size=256))
        rows = []
        for name, fn, kw in [
            ("segment", _segment, {"tta": None, "side": 0}),
            ("segment tta=flips", _segment, {"tta": "flips", "side": 0}),
            ("segment tta=d4", _segment, {"tta": "d4", "side": 0}),
            (f"segment {side} px (tiles)", _segment, {"tta": None, "side": side}),
            ("train steps", _train, {"steps": steps}),
        ]:
            (sec, count, note), peak_gib = measure(fn, root=root, model=a.model, **kw)
            rows.append((name, count, sec, peak_gib * 1024, note))
        base = rows[0][1] / rows[0][2]
        print(f"{'measurement':<26}{'n':>5}{'seconds':>9}{'per s':>9}{'ratio':>8}{'peak MiB':>10}  note")
        for name, count, sec, peak, note in rows:
            rate = count / sec
            unit = "steps" if name.startswith("train") else "images"
            ratio = f"{rate / base:.2f}" if unit == "images" and "tiles" not in name else "-"
            print(f"{name:<26}{count:>5}{sec:>9.2f}{rate:>9.2f}{ratio:>8}{peak:>10.0f}  {unit}/s; {note}")


if __name__ == "__main__":
    main()
