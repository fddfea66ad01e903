"""``xfacies train config.toml``: the configuration schema and the whole recipe end to end."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import xfacies
from xfacies.app.cli import main
from xfacies.app.training import TrainConfig, load_patches, load_train_config

CONFIG = """
[data]
synthetic = {seeds = [100, 101, 102], dates = 2, size = 112, n_per_class = 40, flip = 0.15}
[model]
architecture = "translation-exact"
filters = 8
dropout = 0.2
[fit]
epochs = 3
batch_size = 128
learning_rate = 0.003
[cross_validation]
k = 3
[calibration]
method = "isotonic"
[output]
dir = "run"
"""


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="epoch"):
        TrainConfig.from_dict({"data": {"synthetic": {}}, "fit": {"epoch": 3}, "output": {"dir": "x"}})
    with pytest.raises(ValueError, match="exactly one of"):
        TrainConfig.from_dict({"data": {}, "output": {"dir": "x"}})
    with pytest.raises(ValueError, match="features"):
        TrainConfig.from_dict({"data": {"points": "p.gpkg"}, "output": {"dir": "x"}})
    with pytest.raises(ValueError, match="k must be >= 3"):
        TrainConfig.from_dict({"data": {"synthetic": {}}, "cross_validation": {"k": 2}, "output": {"dir": "x"}})


def test_relative_paths_resolve_against_the_config(tmp_path):
    (tmp_path / "c.toml").write_text('[data]\nreference = "patches"\n[output]\ndir = "out"\n')
    cfg = load_train_config(tmp_path / "c.toml")
    assert cfg.data.reference == str(tmp_path / "patches") and cfg.output.dir == str(tmp_path / "out")


@pytest.mark.slow
def test_cli_train_runs_the_recipe(tmp_path, capsys):
    from xfacies.app.training import WeakModelWarning

    (tmp_path / "cfg.toml").write_text(CONFIG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["train", str(tmp_path / "cfg.toml"), "--quiet"]) == 0
    out = tmp_path / "run"
    # 3 epochs of 3 batches is a smoke budget: the run must say that its "before" models are near
    # chance exactly when their pooled score is (chance: 1 / the number of classes present)
    summary = json.loads((out / "summary.json").read_text())
    present = pd.read_csv(out / "confusion_before.csv", index_col=0).sum(axis=1).gt(0).sum()
    chance = 1 / present
    weak = [w for w in caught if issubclass(w.category, WeakModelWarning)]
    assert bool(weak) == (summary["macro_f1_pooled"]["before"] < chance + 0.25 * (1 - chance)) == bool(summary["warnings"])
    for name in ("scores_before", "scores_after", "pruning", "calibration", "noise_recovery", "flagged_labels"):
        assert (out / f"{name}.csv").exists(), name
    summary = json.loads((out / "summary.json").read_text())
    noise = pd.read_csv(out / "noise_recovery.csv").iloc[0]
    # 15 % of the facies labels flipped; everything flagged was removed before the "after" models
    assert noise.injected > 0 and summary["kept"] == summary["patches"] - noise.flagged
    # precision and recall recomputed here: the flagged samples the run lists, against the flips
    # the synthetic generator injected into the same patches
    flagged = pd.read_csv(out / "flagged_labels.csv")
    patches = load_patches(load_train_config(tmp_path / "cfg.toml"))
    flipped = set(np.asarray(patches["sample"].values)[np.asarray(patches["flipped"].values, bool)])
    hits = int(flagged["sample"].isin(flipped).sum())
    assert len(flagged) == noise.flagged and len(flipped) == noise.injected
    assert noise.precision == pytest.approx(hits / len(flagged)) and noise.recall == pytest.approx(hits / len(flipped))
    assert (flagged["given"] != flagged["suggested"]).mean() > 0.5  # flags point at another class
    assert flagged["self_confidence"].is_monotonic_increasing  # ranked by self-confidence
    base_rate = len(flipped) / summary["patches"]
    # even this tiny budget (3 epochs) finds flips far better than flagging at random
    assert noise.precision > 2 * base_rate and noise.recall > 0.3, (noise.precision, noise.recall, base_rate)
    pruning = pd.read_csv(out / "pruning.csv")
    assert set(pruning[pruning["fold"] == "all"]["class"]) >= {"ice", "snow"}
    for t in range(3):
        m = xfacies.load_model(out / "models" / f"fold{t}.xfacies")
        assert m.architecture == "translation-exact" and m.calibrator is not None
        assert m.metadata["fold"]["validation"] == (t - 1) % 3
        assert (out / f"reliability_fold{t}.png").stat().st_size > 10_000
    _check_report(out, patches, capsys)
    assert main(["train", str(tmp_path / "missing.toml")]) == 2


def _check_report(out, patches, capsys):
    """The report's files against checks made here: scikit-learn's scores of the saved models'
    own predictions, the test folds' sizes, the patches' label counts."""
    from sklearn.metrics import f1_score

    from xfacies.train.evaluation import predict_probabilities

    folds = np.asarray(patches["fold"].values)
    labels = np.asarray(patches["class"].values).astype(int)
    pred = np.full(labels.size, -1)
    for t in range(3):
        m = xfacies.load_model(out / "models" / f"fold{t}.xfacies")
        test = folds == t
        pred[test] = predict_probabilities(m, patches.isel(sample=np.flatnonzero(test))).argmax(axis=1)
        before = xfacies.load_model(out / "models" / f"fold{t}_before.xfacies")
        assert before.calibrator is None and before.metadata["fold"]["test"] == t
        for stage in ("before", "after"):
            log = pd.read_csv(out / "logs" / f"fold{t}_{stage}.csv")
            assert log["epoch"].tolist() == [1, 2, 3] and {"loss", "val_loss", "f1"} <= set(log.columns)
        held = m.metadata["held_out"]
        assert held["n_samples"] == int(test.sum())
        assert held["macro_f1"] == pytest.approx(f1_score(labels[test], pred[test], average="macro",
                                                          labels=np.unique(labels[test])), abs=1e-6)
        dom = m.training_domain
        train_folds = m.metadata["fold"]["train"]
        seen = np.isin(folds, train_folds)
        # trained on the kept (unflagged) samples of its training folds
        assert sum(dom["labels"].values()) <= int(seen.sum()) and set(dom["glaciers"]) <= set(patches.glacier.values)
        assert dom["dates"]["n"] == 2
        assert main(["info", str(out / "models" / f"fold{t}.xfacies")]) == 0
        text = capsys.readouterr().out
        assert f"held-out scores (test fold {t} (unpruned)" in text and f"macro F1 {held['macro_f1']:.3f}" in text
        assert "labels: " in text and "dates: " in text
    pooled = pd.read_csv(out / "scores_pooled.csv")
    after = pooled[(pooled.stage == "after") & (pooled.metric == "macro_f1") & (pooled["class"] == "all")]
    present = np.unique(labels)
    assert after["value"].iloc[0] == pytest.approx(f1_score(labels, pred, average="macro", labels=present), abs=1e-6)
    cm = pd.read_csv(out / "confusion_after.csv", index_col=0)
    assert int(cm.values.sum()) == labels.size and int(np.trace(cm.values)) == int((pred == labels).sum())
    assert (out / "confusion_after.png").stat().st_size > 10_000
    unpruned = pd.read_csv(out / "scores_after_unpruned.csv")
    assert set(unpruned["fold"]) == {0, 1, 2}
    support = unpruned[(unpruned.metric == "support") & (unpruned.glacier == "all")].groupby("fold")["value"].sum()
    assert support.tolist() == [int((folds == t).sum()) for t in range(3)]  # every test sample, none pruned
    cal = pd.read_csv(out / "calibration.csv")
    held = cal[(cal.metric == "ece") & (cal.set == "held_out")]
    assert sorted(held.groupby("fold")["n_samples"].first().tolist()) == sorted(
        int((folds == t).sum()) for t in range(3))


@pytest.mark.slow
def test_near_chance_before_models_warn(tmp_path):
    """Models that learned nothing (one epoch at a learning rate of 1e-7): the run says the flags
    mean little, in a warning and in summary.json.  The config's own classes and feature subset
    reach the models."""
    from xfacies.app.training import WeakModelWarning, run_training

    classes = ["snow", "debris", "shadow", "cloud"]   # what the synthetic points of these seeds hold
    bands = ["blue", "green", "red", "nir", "swir1"]
    cfg = TrainConfig.from_dict({
        "data": {"synthetic": {"seeds": [1, 2, 3], "dates": 1, "size": 96, "n_per_class": 8}},
        "model": {"filters": 4, "classes": classes, "features": bands},
        "fit": {"epochs": 1, "batch_size": 64, "learning_rate": 1e-7},
        "cross_validation": {"k": 3}, "confident_learning": {"enabled": False}, "calibration": {"method": "none"},
        "output": {"dir": str(tmp_path / "o")}})
    # recorded, not pytest.warns: that re-emits every other warning under the file's bare name, so the
    # third-party filters of pyproject.toml (by module) no longer match
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_training(cfg, verbose=0)
    assert any(issubclass(w.category, WeakModelWarning) and "close to chance" in str(w.message) for w in caught)
    summary = json.loads((result.out / "summary.json").read_text())
    assert summary["warnings"] and summary["macro_f1_pooled"]["before"] < 0.25 + 0.75 / 4
    m = xfacies.load_model(result.out / "models" / "fold0.xfacies")
    assert list(m.classes) == classes and list(m.features) == bands
    assert set(m.training_domain["labels"]) == set(classes)
    cm = pd.read_csv(result.out / "confusion_before.csv", index_col=0)
    assert list(cm.index) == classes and list(cm.columns) == classes
    bad = cfg.model_copy(deep=True)
    bad.model.features = ["blue", "B8A"]
    with pytest.raises(ValueError, match="B8A"):
        run_training(bad, verbose=0)


def test_the_documented_example_config_is_valid_and_sensible():
    """The module docstring's example parses, uses 4 or more folds, and gives each training run
    of a fold at least 100 optimiser steps (the old example trained ~345 patches for 3 steps)."""
    import textwrap
    import tomllib

    import xfacies.app.training as training

    doc = training.__doc__
    block = doc[doc.index("    [data]"):doc.index('dir = "training-run"') + len('dir = "training-run"')]
    cfg = TrainConfig.from_dict(tomllib.loads(textwrap.dedent(block)))
    assert cfg.cross_validation.k >= 4
    s = cfg.data.synthetic
    patches = load_patches(cfg)
    k = cfg.cross_validation.k
    train = int(np.isin(patches["fold"].values, range(1, k - 1)).sum())  # test fold 0, validation k - 1
    steps = cfg.fit.epochs * int(np.ceil(train / cfg.fit.batch_size))
    assert steps >= 100 and len(s.seeds) >= cfg.cross_validation.k, (steps, train)
    assert f"{patches.sizes['sample']:,} patches" in doc  # the cost note describes this config
