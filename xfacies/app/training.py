"""``xfacies train config.toml``: the reference study's whole training recipe as one run.

patches (labelled points on a feature cube, the reference's patch folders, or synthetic points)
→ k-fold cross-validation ("before" models, out-of-fold probabilities) → confident learning
(cleanlab; flagged facies labels removed from train, validation and test) → "after" models →
calibration of each "after" model on its unpruned validation fold → scores on each test fold →
a report folder (CSV tables, PNGs, the models).

.. code-block:: toml

    [data]
    synthetic = {seeds = [100, 101, 102], dates = 3, size = 160, n_per_class = 60, flip = 0.1}
    # or: points = "labels.gpkg" and features = "features.zarr"  (a feature cube store)
    # or: reference = "patches/"  (the study's {fold}_{glacier}_{date}_..._{class}.tif)
    [model]
    architecture = "translation-exact"
    filters = 16
    [fit]
    epochs = 20
    batch_size = 512
    [cross_validation]
    k = 3
    [confident_learning]
    enabled = true
    [calibration]
    method = "kernel"
    [output]
    dir = "training-run"

Examples
--------
>>> cfg = TrainConfig.from_dict({"data": {"synthetic": {}}, "output": {"dir": "run"}})
>>> cfg.fit.batch_size, cfg.cross_validation.k, cfg.calibration.method
(512, 6, 'kernel')
"""

from __future__ import annotations

import json
import os
import time
import tomllib
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from xfacies import catalog

__all__ = ["TrainConfig", "load_train_config", "run_training", "TrainingResult"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SyntheticPoints(_Section):
    """Labelled points on synthetic seasons (one glacier per seed, one fold per seed mod k)."""

    seeds: list[int] = Field(default_factory=lambda: [100, 101, 102])
    dates: int = 3
    size: int = 160
    n_per_class: int = 60
    flip: float = 0.0


class DataConfig(_Section):
    synthetic: SyntheticPoints | None = None
    points: str | None = None
    features: str | None = None
    reference: str | None = None
    patch_size: int = 33


class ModelSection(_Section):
    architecture: str = "translation-exact"
    filters: int = 64
    dropout: float = 0.5


class FitSection(_Section):
    epochs: int = 1000
    batch_size: int = 512
    learning_rate: float = 1e-3
    seed: int = 0


class CrossValidationSection(_Section):
    k: int = 6


class ConfidentLearningSection(_Section):
    enabled: bool = True


class CalibrationSection(_Section):
    method: Literal["kernel", "isotonic", "none"] = "kernel"


class OutputSection(_Section):
    dir: str


class TrainConfig(_Section):
    """The ``xfacies train`` configuration (strict types, unknown keys are errors)."""

    data: DataConfig
    model: ModelSection = Field(default_factory=ModelSection)
    fit: FitSection = Field(default_factory=FitSection)
    cross_validation: CrossValidationSection = Field(default_factory=CrossValidationSection)
    confident_learning: ConfidentLearningSection = Field(default_factory=ConfidentLearningSection)
    calibration: CalibrationSection = Field(default_factory=CalibrationSection)
    output: OutputSection

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Validate a dict (a parsed TOML file); errors name the key and the valid ones."""
        from xfacies.app.config import _readable

        try:
            cfg = cls.model_validate(data)
        except ValidationError as err:
            raise _readable(err, data, cls, "training configuration") from None
        d = cfg.data
        given = [k for k in ("synthetic", "points", "reference") if getattr(d, k) is not None]
        if len(given) != 1:
            raise ValueError(f"[data] needs exactly one of 'synthetic', 'points' (with 'features') or "
                             f"'reference'; got {given or 'none'}")
        if d.points is not None and d.features is None:
            raise ValueError("[data] points = ... needs features = <a feature cube store (Zarr)> to "
                             "sample the patches from")
        if cfg.cross_validation.k < 3:
            raise ValueError(f"[cross_validation] k must be >= 3 (test, validation and training "
                             f"folds), got {cfg.cross_validation.k}")
        return cfg


def load_train_config(path: str | os.PathLike) -> TrainConfig:
    """Read a TOML training configuration; relative paths are resolved against its folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"training configuration {path} does not exist")
    with open(path, "rb") as f:
        data = tomllib.load(f)
    cfg = TrainConfig.from_dict(data)
    base = path.resolve().parent
    for key in ("points", "features", "reference"):
        v = getattr(cfg.data, key)
        if v is not None and not Path(v).is_absolute():
            setattr(cfg.data, key, str(base / v))
    if not Path(cfg.output.dir).is_absolute():
        cfg.output.dir = str(base / cfg.output.dir)
    return cfg


# --------------------------------------------------------------------------- data
def load_patches(cfg: TrainConfig) -> xr.Dataset:
    """The configured training patches (a patch Dataset with class, glacier, date and fold)."""
    from xfacies.train.data import patches_from_points, read_reference_patches

    d = cfg.data
    if d.reference is not None:
        return read_reference_patches(d.reference)
    if d.points is not None:
        import geopandas as gpd

        from xfacies.io import open_zarr

        cube = open_zarr(d.features)
        cube = cube["features"] if isinstance(cube, xr.Dataset) and "features" in cube else cube
        return patches_from_points(cube, gpd.read_file(d.points), d.patch_size,
                                   folds=cfg.cross_validation.k, seed=cfg.fit.seed)
    from xfacies import synthetic

    s = d.synthetic
    parts = []
    for i, seed in enumerate(s.seeds):
        season = synthetic.season(s.dates, size=s.size, seed=seed)
        pts = synthetic.labelled_points(season, n_per_class=s.n_per_class, flip=s.flip, seed=seed)
        pts["fold"] = i % cfg.cross_validation.k
        ds = patches_from_points(season["features"], pts, d.patch_size, glacier_column="glacier",
                                 fold_column="fold")
        kept = np.asarray(ds["point"].values, dtype=np.int64)  # rows of pts that became patches
        ds = ds.assign_coords(flipped=("sample", pts["flipped"].to_numpy()[kept]),
                              true_class=("sample", _ids(pts["true_class"].to_numpy()[kept])))
        parts.append(ds)
    out = xr.concat(parts, dim="sample", combine_attrs="drop_conflicts")
    out["patches"].attrs["xfacies_imagery"] = "synthetic"
    return out.assign_coords(sample=np.arange(out.sizes["sample"]))


def _ids(names: np.ndarray) -> np.ndarray:
    lookup = {n: i for i, n in enumerate(catalog.class_names())}
    return np.array([lookup[str(n)] for n in names], dtype=np.int8)


# --------------------------------------------------------------------------- run
class TrainingResult:
    """What :func:`run_training` made: the folder, the tables and the models."""

    def __init__(self, out: Path, tables: dict[str, pd.DataFrame], models: dict[str, Any]):
        self.out, self.tables, self.models = out, tables, models

    def __repr__(self) -> str:
        return f"TrainingResult({self.out}, tables={sorted(self.tables)}, models={sorted(self.models)})"


def run_training(cfg: TrainConfig, *, verbose: int = 1) -> TrainingResult:
    """Run the recipe end to end and write the report folder (see the module docstring)."""
    from xfacies.train.calibration import calibrate
    from xfacies.train.cleaning import label_issues, pruning_report
    from xfacies.train.evaluation import evaluate, predict_probabilities
    from xfacies.train.fitting import cross_validate

    out = Path(cfg.output.dir)
    (out / "models").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    say = print if verbose else (lambda *a, **k: None)
    patches = load_patches(cfg)
    k = cfg.cross_validation.k
    say(f"{patches.sizes['sample']} patches, {k} folds")
    fit_kw = dict(architecture=cfg.model.architecture,
                  config={"filters": cfg.model.filters, "dropout": cfg.model.dropout},
                  epochs=cfg.fit.epochs, batch_size=cfg.fit.batch_size,
                  learning_rate=cfg.fit.learning_rate, seed=cfg.fit.seed, verbose=min(verbose, 2) and 2)
    tables: dict[str, pd.DataFrame] = {}
    models: dict[str, Any] = {}
    before = cross_validate(patches, k=k, **fit_kw)
    models.update({f"fold{t}_before": m for t, m in before.models.items()})
    tables["scores_before"] = _fold_scores(before.models, patches, evaluate)
    kept = patches
    if cfg.confident_learning.enabled:
        labels = np.asarray(patches["class"].values, dtype=np.int64)
        issues = label_issues(labels, before.probabilities.values)
        report = pruning_report(labels, issues, folds=np.asarray(patches["fold"].values))
        tables["pruning"] = report
        flagged = np.zeros(labels.size, bool)
        flagged[issues] = True
        tables["flagged_labels"] = _flagged_table(patches, labels, issues, before.probabilities.values)
        if "flipped" in patches.coords:  # synthetic label noise: how well the flags find it
            flip = np.asarray(patches["flipped"].values, bool)
            tp = int((flagged & flip).sum())
            tables["noise_recovery"] = pd.DataFrame([{
                "injected": int(flip.sum()), "flagged": int(flagged.sum()), "flagged_and_injected": tp,
                "precision": tp / max(int(flagged.sum()), 1), "recall": tp / max(int(flip.sum()), 1)}])
        kept = patches.isel(sample=np.flatnonzero(~flagged))
        say(f"confident learning flagged {int(flagged.sum())} of {labels.size} labels")
        after = cross_validate(kept, k=k, **fit_kw)
        models.update({f"fold{t}_after": m for t, m in after.models.items()})
        final = after.models
    else:
        final = before.models
    tables["scores_after"] = _fold_scores(final, kept, evaluate)
    if cfg.calibration.method != "none":
        rows = []
        for t, m in final.items():
            v = m.metadata["fold"]["validation"]
            val = patches.isel(sample=np.flatnonzero(np.asarray(patches["fold"].values) == v))  # unpruned
            probs = predict_probabilities(m, val)
            cal, rep = calibrate(m, probs, np.asarray(val["class"].values, dtype=np.int64),
                                 method=cfg.calibration.method,
                                 plot=out / f"reliability_fold{t}.png")
            final[t] = cal
            rows.append(rep.assign(fold=t))
        tables["calibration"] = pd.concat(rows, ignore_index=True)
    for t, m in final.items():
        m.save(out / "models" / f"fold{t}.xfacies")
        models[f"fold{t}"] = m
    for name, table in tables.items():
        table.to_csv(out / f"{name}.csv", index=False)
    summary = {"patches": int(patches.sizes["sample"]), "kept": int(kept.sizes["sample"]), "folds": k,
               "seconds": round(time.perf_counter() - t0, 1), "tables": sorted(tables),
               "config": json.loads(cfg.model_dump_json())}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    say(f"wrote {out} in {summary['seconds']} s")
    return TrainingResult(out, tables, models)


def _flagged_table(patches: xr.Dataset, labels: np.ndarray, issues: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    """The labels confident learning flagged, most suspicious first: the sample, its glacier,
    date and fold, the given and the suggested class (the out-of-fold argmax) and the
    self-confidence (out-of-fold probability of the given class)."""
    from xfacies.catalog import class_names

    names = np.asarray(class_names())
    idx = np.asarray(issues, dtype=np.int64)
    table = pd.DataFrame({
        "sample": np.asarray(patches["sample"].values)[idx],
        "given": names[labels[idx]],
        "suggested": names[probs[idx].argmax(axis=1)],
        "self_confidence": probs[idx, labels[idx]].round(4),
        "fold": np.asarray(patches["fold"].values)[idx],
    })
    for coord in ("glacier", "date", "point"):
        if coord in patches.coords:
            table.insert(1, coord, np.asarray(patches[coord].values)[idx])
    return table


def _fold_scores(models: dict[int, Any], patches: xr.Dataset, evaluate) -> pd.DataFrame:
    """Each fold's model scored on its own test fold."""
    folds = np.asarray(patches["fold"].values)
    rows = []
    for t, m in models.items():
        test = patches.isel(sample=np.flatnonzero(folds == t))
        if test.sizes["sample"]:
            rows.append(evaluate(m, test).assign(fold=t))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
