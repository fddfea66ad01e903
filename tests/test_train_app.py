"""``xfacies train config.toml``: the configuration schema and the whole recipe end to end."""

from __future__ import annotations

import json

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
def test_cli_train_runs_the_recipe(tmp_path):
    (tmp_path / "cfg.toml").write_text(CONFIG)
    assert main(["train", str(tmp_path / "cfg.toml"), "--quiet"]) == 0
    out = tmp_path / "run"
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
    assert main(["train", str(tmp_path / "missing.toml")]) == 2
