"""The demo model: trained by xfacies on synthetic glaciers, shipped in the package.

Reproduce it with one command::

    xfacies make-demo-model            # writes xfacies/data/demo.xfacies

It is a small member of the reference architecture family (16 filters instead
of 64), its translation-exact member (unpadded convolutions: ``method="dense"``
equals ``method="exact"``), trained by :func:`xfacies.train.fit` (the
reference recipe, fewer epochs) on class-balanced 33 x 33 patches from synthetic
melt seasons (seeds 100-103) and scored on held-out seasons (seeds 200-201).  It knows
synthetic glaciers only: for real imagery, train on real labels or import the
reference weights.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from xfacies import catalog

__all__ = ["make_demo_model", "train_demo", "DEMO_ARCHITECTURE", "DEMO_CONFIG", "TRAIN_SEEDS", "TEST_SEEDS"]

DEMO_ARCHITECTURE = "translation-exact"
DEMO_CONFIG: dict[str, Any] = {"filters": 16, "dense_units": 32, "dropout": 0.2}
#: The demo's training budget (the recipe's 1000 epochs of batch 512 are for real data).
DEMO_FIT: dict[str, Any] = {"batch_size": 256, "learning_rate": 2e-3}
TRAIN_SEEDS = (100, 101, 102, 103)
TEST_SEEDS = (200, 201)
SIZE = 320
DATES = 6


def _season(seed: int):
    from xfacies import synthetic

    return synthetic.season(DATES, size=SIZE, seed=seed)


def evaluate(model, seeds: Any = None, *, exact_sample: int = 3000, seed: int = 0) -> dict[str, Any]:
    """Macro F1 of ``model`` on held-out synthetic seasons (dense on every glacier pixel,
    exact on a random sample of glacier pixels); ``seeds`` default to :data:`TEST_SEEDS`
    (read when called)."""
    seeds = TEST_SEEDS if seeds is None else seeds
    from xfacies.inference import classify
    from xfacies.train.patches import macro_f1

    rng = np.random.default_rng(seed)
    truths, dense_preds, ex_t, ex_p = [], [], [], []
    for s in seeds:
        ds = _season(s)
        truth = ds["truth"].values
        mask = ds["glacier"]
        dense = classify(ds["features"], model, mask, method="dense", smooth=False).values
        truths.append(truth.ravel())
        dense_preds.append(dense.ravel())
        # exact on a sample: build a sparse mask per date
        for t in range(truth.shape[0]):
            rows, cols = np.nonzero(truth[t] >= 0)
            pick = rng.choice(rows.size, size=min(exact_sample // (len(seeds) * truth.shape[0]), rows.size),
                              replace=False)
            sparse = np.zeros(truth.shape[1:], np.int32)
            sparse[rows[pick], cols[pick]] = 1
            ex = classify(ds["features"].isel(time=t), model, mask.copy(data=sparse), method="exact",
                          smooth=False).values
            ex_t.append(truth[t][rows[pick], cols[pick]])
            ex_p.append(ex[rows[pick], cols[pick]])
    t_all, d_all = np.concatenate(truths), np.concatenate(dense_preds)
    f1_dense, per_class = macro_f1(t_all, d_all)
    f1_exact, per_class_exact = macro_f1(np.concatenate(ex_t), np.concatenate(ex_p))
    ok = (t_all >= 0) & (d_all >= 0)
    return {
        "macro_f1_dense": round(f1_dense, 4),
        "macro_f1_exact_sample": round(f1_exact, 4),
        "per_class_f1_dense": {c.name: (None if np.isnan(v) else round(float(v), 4))
                               for c, v in zip(catalog.CLASSES, per_class)},
        "overall_accuracy_dense": round(float(np.mean(t_all[ok] == d_all[ok])), 4),
        "n_test_pixels": int(ok.sum()),
        "n_exact_sample": int(sum(len(a) for a in ex_t)),
        "test_seeds": list(seeds),
    }


def train_demo(*, architecture: str = DEMO_ARCHITECTURE, n_per_class: int = 1200, epochs: int = 12,
               seed: int = 0, verbose: int = 1):
    """Train (not save) a demo-recipe model of ``architecture`` and score it on the held-out seasons.

    The same patches, budget and seed for every architecture, so two architectures compare fairly.
    """
    from xfacies.model.bundle import SYNTHETIC_DOMAIN
    from xfacies.train.fitting import fit
    from xfacies.train.patches import patch_dataset, sample_patches

    t0 = time.perf_counter()
    parts = []
    for i, s in enumerate(TRAIN_SEEDS):
        ds = _season(s)
        X, y, t = sample_patches(ds["features"], ds["truth"], n_per_class=n_per_class // len(TRAIN_SEEDS) * 2,
                                 seed=i, return_time=True)
        date = np.asarray(ds["time"].values)[t]  # each patch's own scene (the recipe's scene weights)
        parts.append(patch_dataset(X, y, catalog.FEATURE_SETS[4], glacier=f"synthetic-{s}", date=date,
                                   fold=i, imagery="synthetic"))
    import xarray as xr

    patches = xr.concat(parts, dim="sample")
    patches = patches.assign_coords(sample=np.arange(patches.sizes["sample"]))
    if verbose:
        counts = np.bincount(patches["class"].values, minlength=len(catalog.CLASSES))
        print(f"patches: {patches.sizes['sample']} ({dict(zip(catalog.class_names(), counts.tolist()))}), "
              f"sampling took {time.perf_counter() - t0:.0f} s")
    if len(TRAIN_SEEDS) > 1:
        val = patches["fold"].values == len(TRAIN_SEEDS) - 1  # the last season validates
    else:  # one season: every tenth patch
        val = np.arange(patches.sizes["sample"]) % 10 == 0
    t1 = time.perf_counter()
    model = fit(patches.isel(sample=np.flatnonzero(~val)), patches.isel(sample=np.flatnonzero(val)),
                architecture=architecture, config=DEMO_CONFIG, epochs=epochs, seed=seed,
                verbose=2 if verbose else 0, **DEMO_FIT)
    model.metadata.update({"source": "xfacies demo model (synthetic glaciers only)",
                           "training_domain": SYNTHETIC_DOMAIN, "train_seeds": list(TRAIN_SEEDS),
                           "season": {"size": SIZE, "dates": DATES}, "reproduce": "xfacies make-demo-model",
                           "train_seconds": round(time.perf_counter() - t1, 1)})
    model.metadata.update(evaluate(model))
    return model


def make_demo_model(out: str | Path = "demo.xfacies", *, n_per_class: int = 1200, epochs: int = 12,
                    verbose: int = 1, overwrite: bool = False) -> Path:
    """Train the demo model from scratch on synthetic seasons and save it to ``out`` (default
    ``./demo.xfacies``; never inside the installed package, an existing file only with
    ``overwrite``).  The shipped copy is replaced by copying the result in a development checkout."""
    from xfacies.model.registry import check_output

    out = check_output(out, overwrite)
    t0 = time.perf_counter()
    model = train_demo(n_per_class=n_per_class, epochs=epochs, verbose=verbose)
    model.save(out)
    if verbose:
        print(f"saved {out} ({out.stat().st_size / 1024:.0f} KiB); held-out macro F1: dense "
              f"{model.metadata['macro_f1_dense']:.3f}, exact (sample) "
              f"{model.metadata['macro_f1_exact_sample']:.3f}; total {time.perf_counter() - t0:.0f} s")
    return out
