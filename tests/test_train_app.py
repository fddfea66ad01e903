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


def _store_and_points(tmp_path, name: str, seed: int, fold=None, drop=()):
    """A synthetic two-scene feature store (Zarr on disk) and its labelled points (GeoPackage)."""
    from xfacies import synthetic

    season = synthetic.season(2, size=64, seed=seed)
    store = tmp_path / f"{name}.zarr"
    season[["features"]].to_zarr(store, mode="w")
    pts = synthetic.labelled_points(season, n_per_class=6, seed=seed).drop(columns=["true_class", "flipped", *drop])
    if fold is not None:
        pts["fold"] = fold(len(pts))
    path = tmp_path / f"{name}.gpkg"
    pts.to_file(path)
    return store, path, pts


def test_train_points_from_several_stores_respect_the_fold_column(tmp_path):
    """Two feature stores (two glaciers), each with its points file: one patch set, and the
    given fold column is the fold of every patch (it was silently replaced before)."""
    from xfacies.train.data import patches_from_points

    k = 4
    s1, p1, t1 = _store_and_points(tmp_path, "a", 1, fold=lambda n: np.arange(n) % 3)
    s2, p2, t2 = _store_and_points(tmp_path, "b", 2, fold=lambda n: np.full(n, 3))
    cfg = TrainConfig.from_dict({"data": {"points": [str(p1), str(p2)], "features": [str(s1), str(s2)]},
                                 "cross_validation": {"k": k}, "output": {"dir": str(tmp_path / "o")}})
    ds = load_patches(cfg)
    one = patches_from_points(xfacies.io.open_zarr(s1)["features"], t1, 33, fold_column="fold")
    two = patches_from_points(xfacies.io.open_zarr(s2)["features"], t2, 33, fold_column="fold")
    assert ds.sizes["sample"] == one.sizes["sample"] + two.sizes["sample"] > 0
    expected = np.concatenate([t1["fold"].to_numpy()[one["point"].values], t2["fold"].to_numpy()[two["point"].values]])
    np.testing.assert_array_equal(ds["fold"].values, expected)
    assert ds.attrs["folds"] == "the 'fold' column"
    np.testing.assert_array_equal(ds["patches"].values[: one.sizes["sample"]], one["patches"].values)


def test_train_points_without_folds_keep_scenes_and_glaciers_whole(tmp_path):
    """Without a fold column: whole glaciers per fold where the points name them, else whole
    scenes (store and day), so neighbouring pixels of one scene never sit in training and test."""
    from xfacies.train.data import patches_from_points

    s1, p1, t1 = _store_and_points(tmp_path, "a", 1, drop=("glacier",))
    s2, p2, t2 = _store_and_points(tmp_path, "b", 2, drop=("glacier",))
    cfg = TrainConfig.from_dict({"data": {"features": [str(s1), str(s2)], "points": [str(p1), str(p2)]},
                                 "cross_validation": {"k": 3}, "output": {"dir": "o"}})
    ds = load_patches(cfg)
    assert ds.attrs["folds"].startswith("whole scenes")
    n1 = patches_from_points(xfacies.io.open_zarr(s1)["features"], t1, 33, fold_column=None).sizes["sample"]
    store = np.r_[np.zeros(n1, int), np.ones(ds.sizes["sample"] - n1, int)]
    scene = [f"{s}:{d}" for s, d in zip(store, pd.to_datetime(ds["date"].values).strftime("%Y-%m-%d"))]
    frame = pd.DataFrame({"scene": scene, "fold": ds["fold"].values})
    assert frame.scene.nunique() == 4
    assert (frame.groupby("scene").fold.nunique() == 1).all()  # no scene in two folds
    assert frame.fold.nunique() >= 2

    g1, q1, u1 = _store_and_points(tmp_path, "c", 1)
    g2, q2, u2 = _store_and_points(tmp_path, "d", 2)
    cfg = TrainConfig.from_dict({"data": {"features": [str(g1), str(g2)], "points": [str(q1), str(q2)]},
                                 "cross_validation": {"k": 3}, "output": {"dir": "o"}})
    ds = load_patches(cfg)
    assert ds.attrs["folds"].startswith("whole glaciers")
    by = pd.DataFrame({"glacier": ds["glacier"].values, "fold": ds["fold"].values})
    assert (by.groupby("glacier").fold.nunique() == 1).all()

    with pytest.raises(ValueError, match="pair up"):
        TrainConfig.from_dict({"data": {"features": [str(s1)], "points": [str(p1), str(p2)]}, "output": {"dir": "o"}})
    bad = tmp_path / "bad.gpkg"
    t1.assign(fold=7).to_file(bad)
    cfg = TrainConfig.from_dict({"data": {"features": str(s1), "points": str(bad)}, "cross_validation": {"k": 3},
                                 "output": {"dir": "o"}})
    with pytest.raises(ValueError, match="0..2"):
        load_patches(cfg)
