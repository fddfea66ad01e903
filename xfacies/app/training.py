"""``xfacies train config.toml``: the reference study's whole training recipe as one run.

patches (labelled points on a feature cube, the reference's patch folders, or synthetic points)
→ k-fold cross-validation ("before" models, out-of-fold probabilities) → confident learning
(cleanlab; flagged facies labels removed from train, validation and test) → "after" models →
calibration of each "after" model on its unpruned validation fold → scores on each test fold →
a report folder (CSV tables, PNGs, the models).

.. code-block:: toml

    [data]
    synthetic = {seeds = [100, 101, 102, 103], dates = 4, size = 256, n_per_class = 150, flip = 0.1}
    # or: points = "labels.gpkg" and features = "features.zarr"  (a feature cube store)
    # or: reference = "patches/"  (the study's {fold}_{glacier}_{date}_..._{class}.tif)
    [model]
    architecture = "translation-exact"
    filters = 16
    dropout = 0.2
    # features = ["blue", "green", "red", "nir"]   # a subset of the store's bands (default: all)
    # classes = ["snow", "ice"]                    # your own classes (default: the catalogue's 8)
    [fit]
    epochs = 15
    batch_size = 256
    learning_rate = 0.002
    [cross_validation]
    k = 4
    [confident_learning]
    enabled = true
    [calibration]
    method = "kernel"
    [output]
    dir = "training-run"

This example (4 synthetic glaciers, 4 dates each, 4,595 patches, one glacier per fold, 8 models)
took 1,925 s on 2 CPU cores (TensorFlow) while another training shared them (about half that
alone).  It reached a pooled out-of-fold macro F1 of 0.63 before and 0.64 after confident
learning (unpruned test folds; the pruned ones read 0.68, which is not like for like); cleanlab
flagged 405 labels, 173 of the 300 injected flips (precision 0.43, recall 0.58); the kernel
calibrator took the held-out ECE from 0.27 to 0.10.  Real labels need more epochs: the
reference trains 1000.

The folder holds, per stage (``before``: all labels; ``after``: flagged labels removed):
``scores_{before,after}.csv`` (each fold's model on its test fold), ``scores_after_unpruned.csv``
(the "after" models on the *unpruned* test folds: like for like with ``before``),
``scores_pooled.csv`` (all test folds pooled, both stages), ``confusion_{before,after}.csv|png``
(pooled, unpruned), ``flagged_labels.csv`` (sample, glacier, date, given and suggested class,
self-confidence), ``pruning.csv``, ``calibration.csv`` (ECE on the validation fold the
calibrator was fitted on *and* on the held-out test fold), ``reliability_fold*.png`` (held
out), ``logs/fold*_{before,after}.csv`` (loss and metrics per epoch), ``models/fold*.xfacies``
(calibrated "after" models, with their training domain and held-out scores) and
``models/fold*_before.xfacies``, and ``summary.json``.  When the "before" models are close to
chance, confident learning's flags mean little: the run warns (:class:`WeakModelWarning`) and
says so in ``summary.json``.

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
from pydantic import Field, ValidationError

from xfacies import catalog
from xfacies.app.config import Section
from xfacies.errors import InputError, XfaciesWarning

__all__ = ["TrainConfig", "load_train_config", "run_training", "TrainingResult", "WeakModelWarning"]


class WeakModelWarning(XfaciesWarning):
    """The cross-validated "before" models are close to chance: their out-of-fold probabilities
    cannot tell label errors from model errors, so confident learning's flags mean little."""


class SyntheticPoints(Section):
    """Labelled points on synthetic seasons (one glacier per seed, one fold per seed mod k)."""

    seeds: list[int] = Field(default_factory=lambda: [100, 101, 102])
    dates: int = 3
    size: int = 160
    n_per_class: int = 60
    flip: float = 0.0


class DataConfig(Section):
    """Where the labels come from.  ``points`` and ``features`` may be lists of equal length
    (points file ``i`` is cut from feature store ``i``: glaciers on other grids); the patch sets
    are joined with :func:`xfacies.train.concat_patches`.  A ``fold_column`` in the points is
    used as the cross-validation fold; without it whole glaciers (``glacier_column``) or, lacking
    that, whole scenes (the date, per store) share a fold, so neighbouring pixels of one scene
    never land in training and test."""

    synthetic: SyntheticPoints | None = None
    points: str | list[str] | None = None
    features: str | list[str] | None = None
    reference: str | None = None
    patch_size: int = 33
    fold_column: str = "fold"
    glacier_column: str = "glacier"
    date_column: str = "date"


class ModelSection(Section):
    """The network.  ``features``: the bands of the patches it reads, in your names (default:
    every band of the feature store); ``classes``: the classes it learns (default: the
    catalogue's 8), e.g. ``["snow", "ice"]``: the head, label smoothing and metrics cover those."""

    architecture: str = "translation-exact"
    filters: int = 64
    dropout: float = 0.5
    features: list[str] | None = None
    classes: list[str] | None = None


class FitSection(Section):
    epochs: int = 1000
    batch_size: int = 512
    learning_rate: float = 1e-3
    seed: int = 0


class CrossValidationSection(Section):
    k: int = 6


class ConfidentLearningSection(Section):
    enabled: bool = True


class CalibrationSection(Section):
    method: Literal["kernel", "isotonic", "none"] = "kernel"


class OutputSection(Section):
    dir: str


class TrainConfig(Section):
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
        from xfacies.app.config import readable_error

        try:
            cfg = cls.model_validate(data)
        except ValidationError as err:
            raise readable_error(err, data, cls, "training configuration") from None
        d = cfg.data
        given = [k for k in ("synthetic", "points", "reference") if getattr(d, k) is not None]
        if len(given) != 1:
            raise InputError(f"[data] needs exactly one of 'synthetic', 'points' (with 'features') or "
                             f"'reference'; got {given or 'none'}")
        if d.points is not None and d.features is None:
            raise InputError("[data] points = ... needs features = <a feature cube store (Zarr)> to "
                             "sample the patches from")
        if d.points is not None and len(_as_list(d.points)) != len(_as_list(d.features)):
            raise InputError(f"[data] points and features must pair up: {len(_as_list(d.points))} points "
                             f"file(s) and {len(_as_list(d.features))} feature store(s); give one store per "
                             "points file (points[i] is cut from features[i])")
        if cfg.cross_validation.k < 3:
            raise InputError(f"[cross_validation] k must be >= 3 (test, validation and training "
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

    def resolve(v: str) -> str:
        return v if Path(v).is_absolute() else str(base / v)

    for key in ("points", "features", "reference"):
        v = getattr(cfg.data, key)
        if isinstance(v, list):
            setattr(cfg.data, key, [resolve(x) for x in v])
        elif v is not None:
            setattr(cfg.data, key, resolve(v))
    if not Path(cfg.output.dir).is_absolute():
        cfg.output.dir = str(base / cfg.output.dir)
    return cfg


# --------------------------------------------------------------------------- data
def load_patches(cfg: TrainConfig) -> xr.Dataset:
    """The configured training patches (a patch Dataset with class, glacier, date and fold)."""
    from xfacies.train.data import patches_from_points
    from xfacies.train.reference_patches import read_reference_patches

    d = cfg.data
    if d.reference is not None:
        return read_reference_patches(d.reference)
    if d.points is not None:
        return _patches_from_stores(cfg)
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


def _as_list(v: str | list[str] | None) -> list[str]:
    return [] if v is None else ([v] if isinstance(v, str) else list(v))


def point_folds(tables: list[Any], k: int, *, fold_column: str = "fold", glacier_column: str = "glacier",
                date_column: str = "date", seed: int = 0) -> tuple[list[np.ndarray], str]:
    """Cross-validation folds of the points of several tables (one per feature store), and how
    they were made.

    A ``fold_column`` present in every table is used as it is (integers ``0 .. k-1``); otherwise
    folds are dealt by :func:`xfacies.train.data.assign_folds` over whole groups: the glacier
    (``glacier_column``) where every table has one, else the scene (store and calendar day of
    ``date_column``), so that no glacier (scene) is in two folds.

    Raises
    ------
    ValueError
        A fold column in some tables only, folds outside ``0 .. k-1`` or fewer than 2 folds, or
        tables with neither a glacier nor a date column.
    """
    import pandas as pd

    from xfacies.train.data import assign_folds

    has = [fold_column in t.columns for t in tables]
    if any(has) and not all(has):
        raise InputError(f"the {fold_column!r} column is in points file(s) {[i for i, h in enumerate(has) if h]} "
                         "only: give it in every file, or in none (folds are then dealt by glacier or scene)")
    if all(has):
        folds = []
        for i, t in enumerate(tables):
            f = pd.to_numeric(t[fold_column], errors="coerce").to_numpy()
            bad = ~np.isfinite(f) | (f != np.round(f)) | (f < 0) | (f >= k)
            if bad.any():
                raise InputError(f"points file {i}: column {fold_column!r} holds {np.unique(t[fold_column][bad])[:5].tolist()}; "
                                 f"folds are integers 0..{k - 1} ([cross_validation] k = {k})")
            folds.append(f.astype(np.int64))
        used = np.unique(np.concatenate(folds))
        if used.size < 2:
            raise InputError(f"the {fold_column!r} column holds one fold ({used.tolist()}); cross-validation needs 2 or more")
        return folds, f"the {fold_column!r} column"
    if all(glacier_column in t.columns for t in tables):
        keys = [t[glacier_column].astype(str).to_numpy() for t in tables]
        how = f"whole glaciers ({glacier_column!r})"
    elif all(date_column in t.columns for t in tables):
        keys = [np.array([f"{i}:{d}" for d in pd.to_datetime(t[date_column]).dt.strftime("%Y-%m-%d")])
                for i, t in enumerate(tables)]
        how = f"whole scenes (store and {date_column!r})"
    else:
        raise InputError(f"points need a {fold_column!r}, {glacier_column!r} or {date_column!r} column to make "
                         "folds that do not leak (neighbouring pixels of one scene in training and test)")
    flat = assign_folds(np.concatenate(keys), folds=k, seed=seed)
    if np.unique(flat).size < 2:
        raise InputError(f"the points hold one {how.split()[1]} only: cross-validation by {how} needs 2 or more; "
                         f"add a {fold_column!r} column to choose the folds yourself")
    return list(np.split(flat, np.cumsum([len(x) for x in keys])[:-1])), how


def _patches_from_stores(cfg: TrainConfig) -> xr.Dataset:
    """Patches of every (points, feature store) pair, folds from :func:`point_folds`, joined."""
    import geopandas as gpd

    from xfacies.io import open_zarr
    from xfacies.train.data import concat_patches, patches_from_points

    d = cfg.data
    tables = [gpd.read_file(p) for p in _as_list(d.points)]
    folds, how = point_folds(tables, cfg.cross_validation.k, fold_column=d.fold_column,
                             glacier_column=d.glacier_column, date_column=d.date_column, seed=cfg.fit.seed)
    sets = []
    for table, fold, store in zip(tables, folds, _as_list(d.features)):
        cube = open_zarr(store)
        cube = cube["features"] if isinstance(cube, xr.Dataset) and "features" in cube else cube
        table = table.assign(**{"_xfacies_fold": fold})
        sets.append(patches_from_points(
            cube, table, d.patch_size, fold_column="_xfacies_fold", time_column=d.date_column,
            glacier_column=d.glacier_column if d.glacier_column in table.columns else None))
    out = sets[0] if len(sets) == 1 else concat_patches(*sets)
    out.attrs["folds"] = how
    return out


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
    import warnings

    from xfacies.train.calibration import calibrate
    from xfacies.train.cleaning import label_issues, pruning_report
    from xfacies.train.evaluation import evaluate, predict_probabilities
    from xfacies.train.fitting import class_index, cross_validate

    out = Path(cfg.output.dir)
    (out / "models").mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    t0 = time.perf_counter()
    say = print if verbose else (lambda *a, **k: None)
    patches = load_patches(cfg)
    k = cfg.cross_validation.k
    classes = tuple(cfg.model.classes or catalog.class_names())
    if cfg.model.features is not None:
        have = [str(b) for b in patches["band"].values]
        missing = [f for f in cfg.model.features if f not in have]
        if missing:
            raise InputError(f"[model] features = {cfg.model.features}: {missing} are not bands of the patches; "
                             f"their bands are {have}")
    # the patches' class ids become indices into the trained classes (the models' own)
    labels = class_index(patches, classes, "the training patches")
    patches = patches.assign_coords({"class": ("sample", labels.astype(np.int8)),
                                     "class_name": ("sample", np.asarray(classes, dtype=object)[labels])})
    folds = np.asarray(patches["fold"].values)
    say(f"{patches.sizes['sample']} patches, {k} folds ({patches.attrs.get('folds', 'the fold coordinate')}), "
        f"classes {list(classes)}")
    fit_kw = dict(architecture=cfg.model.architecture, features=cfg.model.features, classes=list(classes),
                  config={"filters": cfg.model.filters, "dropout": cfg.model.dropout},
                  epochs=cfg.fit.epochs, batch_size=cfg.fit.batch_size,
                  learning_rate=cfg.fit.learning_rate, seed=cfg.fit.seed, verbose=min(verbose, 2) and 2)
    tables: dict[str, pd.DataFrame] = {}
    models: dict[str, Any] = {}
    notes: list[str] = []
    before = cross_validate(patches, k=k, progress=bool(verbose), **fit_kw)
    models.update({f"fold{t}_before": m for t, m in before.models.items()})
    _write_logs(before.models, out / "logs", "before")
    tables["scores_before"] = _fold_scores(before.models, patches, evaluate)
    oof_before = before.probabilities.values.argmax(axis=1)
    pooled = [_pooled(labels, oof_before, classes, "before", "all labels")]
    _confusion(labels, oof_before, classes, out / "confusion_before")
    chance = 1.0 / max(np.unique(labels).size, 1)  # macro F1 of guessing by the class frequencies
    f1_before = _overall(pooled[0])
    if f1_before < chance + 0.25 * (1 - chance):
        msg = (f"the 'before' models are close to chance: out-of-fold macro F1 {f1_before:.2f} (chance "
               f"{chance:.2f} for {np.unique(labels).size} classes), so confident learning cannot tell label "
               "errors from model errors and its flags mean little. Train longer ([fit] epochs), on more "
               "labels, or with fewer folds before trusting the flagged labels")
        warnings.warn(msg, WeakModelWarning, stacklevel=2)
        notes.append(msg)
    kept = patches
    if cfg.confident_learning.enabled:
        issues = label_issues(labels, before.probabilities.values)  # catalogue: the 5 facies; yours: all
        report = pruning_report(labels, issues, folds=folds)
        tables["pruning"] = report
        flagged = np.zeros(labels.size, bool)
        flagged[issues] = True
        tables["flagged_labels"] = _flagged_table(patches, labels, issues, before.probabilities.values, classes)
        if "flipped" in patches.coords:  # synthetic label noise: how well the flags find it
            flip = np.asarray(patches["flipped"].values, bool)
            tp = int((flagged & flip).sum())
            tables["noise_recovery"] = pd.DataFrame([{
                "injected": int(flip.sum()), "flagged": int(flagged.sum()), "flagged_and_injected": tp,
                "precision": tp / max(int(flagged.sum()), 1), "recall": tp / max(int(flip.sum()), 1)}])
        kept = patches.isel(sample=np.flatnonzero(~flagged))
        say(f"confident learning flagged {int(flagged.sum())} of {labels.size} labels")
        after = cross_validate(kept, k=k, progress=bool(verbose), **fit_kw)
        models.update({f"fold{t}_after": m for t, m in after.models.items()})
        _write_logs(after.models, out / "logs", "after")
        final = after.models
        tables["scores_after"] = _fold_scores(final, kept, evaluate)
        tables["scores_after_unpruned"] = _fold_scores(final, patches, evaluate)
    else:
        final = dict(before.models)
        tables["scores_after"] = tables["scores_after_unpruned"] = tables["scores_before"]
    # every "after" model on its unpruned test fold: pooled, and the held-out set of calibration
    test_probs = {t: predict_probabilities(m, patches.isel(sample=np.flatnonzero(folds == t)))
                  for t, m in final.items()}
    oof_after = np.full(labels.size, -1)
    for t, p in test_probs.items():
        oof_after[folds == t] = p.argmax(axis=1)
    done = oof_after >= 0
    pooled.append(_pooled(labels[done], oof_after[done], classes, "after", "all labels (unpruned)"))
    tables["scores_pooled"] = pd.concat(pooled, ignore_index=True)
    _confusion(labels[done], oof_after[done], classes, out / "confusion_after")
    if cfg.calibration.method != "none":
        rows = []
        for t, m in final.items():
            v = m.metadata["fold"]["validation"]
            val = patches.isel(sample=np.flatnonzero(folds == v))  # unpruned
            cal, rep = calibrate(m, predict_probabilities(m, val), np.asarray(val["class"].values, dtype=np.int64),
                                 method=cfg.calibration.method,
                                 held_out=(test_probs[t], labels[folds == t]),
                                 plot=out / f"reliability_fold{t}.png")
            final[t] = cal
            rows.append(rep.assign(fold=t))
        tables["calibration"] = pd.concat(rows, ignore_index=True)
    for t, m in final.items():
        test = labels[folds == t]
        s_ = _pooled(test, test_probs[t].argmax(axis=1), classes, "after", "")
        m.metadata["held_out"] = {
            "what": f"test fold {t} (unpruned), never seen in training, validation or calibration",
            "n_samples": int(test.size), "macro_f1": _overall(s_), "accuracy": _overall(s_, "accuracy"),
        }
        if "calibration" in tables:
            c = tables["calibration"]
            m.metadata["held_out"]["ece"] = float(c.loc[(c["fold"] == t) & (c["metric"] == "ece") & (
                c["set"] == "held_out") & (c["calibration"] == "after"), "value"].iloc[0])
        m.save(out / "models" / f"fold{t}.xfacies")
        models[f"fold{t}"] = m
    for t, m in before.models.items():
        m.save(out / "models" / f"fold{t}_before.xfacies")
    for name, table in tables.items():
        table.to_csv(out / f"{name}.csv", index=False)
    summary = {"patches": int(patches.sizes["sample"]), "kept": int(kept.sizes["sample"]), "folds": k,
               "folds_by": patches.attrs.get("folds", "the fold coordinate"), "classes": list(classes),
               "macro_f1_pooled": {"before": f1_before, "after_unpruned": _overall(pooled[1])},
               "warnings": notes, "seconds": round(time.perf_counter() - t0, 1), "tables": sorted(tables),
               "config": json.loads(cfg.model_dump_json())}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    say(f"wrote {out} in {summary['seconds']} s: models/fold*.xfacies (calibrated), scores_pooled.csv "
        f"(macro F1 before {f1_before:.3f}, after {summary['macro_f1_pooled']['after_unpruned']:.3f}, unpruned)")
    return TrainingResult(out, tables, models)


def _pooled(labels: np.ndarray, predicted: np.ndarray, classes: tuple[str, ...], stage: str,
            samples: str) -> pd.DataFrame:
    """Scores of the test folds pooled (each sample predicted by the model that held it out)."""
    from xfacies.train.evaluation import scores

    return scores(labels, predicted, list(classes)).assign(stage=stage, samples=samples)


def _overall(table: pd.DataFrame, metric: str = "macro_f1") -> float:
    """The all-class value of ``metric`` in a :func:`xfacies.train.evaluation.scores` table."""
    return float(table.loc[(table["metric"] == metric) & (table["class"] == "all"), "value"].iloc[0])


def _confusion(labels: np.ndarray, predicted: np.ndarray, classes: tuple[str, ...], stem: Path) -> None:
    """The pooled confusion matrix as counts (CSV) and row-normalised (PNG)."""
    from xfacies.train.evaluation import confusion, confusion_figure

    cm = confusion(labels, predicted, normalize=False, classes=list(classes))
    cm.to_pandas().astype(int).to_csv(stem.with_suffix(".csv"))
    confusion_figure(labels, predicted, stem.with_suffix(".png"), classes=list(classes))


def _write_logs(models: dict[int, Any], folder: Path, stage: str) -> None:
    """Each fold's loss and metrics per epoch (the Keras history the model records)."""
    for t, m in models.items():
        history = m.metadata.get("history") or {}
        if history:
            frame = pd.DataFrame(history)
            frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
            frame.to_csv(folder / f"fold{t}_{stage}.csv", index=False)


def _flagged_table(patches: xr.Dataset, labels: np.ndarray, issues: np.ndarray, probs: np.ndarray,
                   classes: tuple[str, ...]) -> pd.DataFrame:
    """The labels confident learning flagged, most suspicious first: the sample, its glacier,
    date and fold, the given and the suggested class (the out-of-fold argmax) and the
    self-confidence (out-of-fold probability of the given class)."""
    names = np.asarray(classes)
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
