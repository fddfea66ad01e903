"""The demo pipeline and the CLI, run for real (small sizes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import xfacies
from xfacies.app.cli import main


PRESET = dict(size=160, dates=3, chunks=64)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    from xfacies.app.demo import run_demo

    out = tmp_path_factory.mktemp("demo") / "out"
    import contextlib
    import io as _io

    buf = _io.StringIO()
    with contextlib.redirect_stdout(buf):
        s = run_demo(out, progress=False, **PRESET)
    return s, buf.getvalue()


def test_demo_runs_end_to_end(demo_run):
    s, out = demo_run
    assert "macro F1 against the synthetic truth" in out and "AAR proxy" in out
    maps = xfacies.io.open_zarr(s["store"]).compute()
    assert maps.classes.dtype == np.int8 and maps.sizes["time"] == 3
    assert maps.classes.attrs["flag_meanings"].split()[1] == "ice"
    frac = xfacies.io.open_zarr(s["fractions_store"]).compute()
    assert frac.sizes["glacier"] == s["n_glaciers"] >= 1
    np.testing.assert_allclose(frac.fraction.sum("class").values, 1.0, atol=1e-5)
    for png in s["quicklooks"]:
        assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_score_is_scikit_learns_macro_f1_against_the_synthetic_truth(demo_run):
    """The F1 the demo prints, recomputed here with scikit-learn from the stored maps and the
    generator's truth for the same dates (classes present in the truth, nodata left out)."""
    from sklearn.metrics import f1_score

    from xfacies import synthetic

    s, out = demo_run
    maps = xfacies.io.open_zarr(s["store"])["classes"].compute()
    truth = synthetic.season(list(maps["time"].values), size=PRESET["size"], seed=7)["truth"].values
    pred = maps.values
    ok = (truth >= 0) & (pred >= 0)
    assert ok.sum() > 1000
    f1 = f1_score(truth[ok], pred[ok], labels=np.unique(truth[ok]), average="macro")
    assert s["macro_f1_vs_truth"] == pytest.approx(f1, abs=1e-3)
    assert f"macro F1 against the synthetic truth: {f1:.3f}" in out
    # the demo model knows synthetic glaciers: far above chance (about 1 / 8 for 8 classes)
    assert f1 > 0.6, f1


def test_cli_demo_stores_equal_run_demo_called_directly(demo_run, tmp_path):
    """``xfacies demo`` with the same preset writes the same maps and fractions as ``run_demo``."""
    s, _ = demo_run
    assert main(["demo", "--out", str(tmp_path / "d"), "--size", str(PRESET["size"]), "--dates",
                 str(PRESET["dates"]), "--chunks", str(PRESET["chunks"]), "--no-progress"]) == 0
    for key, name in (("store", "facies.zarr"), ("fractions_store", "fractions.zarr")):
        xr.testing.assert_identical(xfacies.io.open_zarr(tmp_path / "d" / name).compute(),
                                    xfacies.io.open_zarr(s[key]).compute())


def test_cli_info_and_errors(capsys, tmp_path):
    assert main(["info", "demo"]) == 0
    out = capsys.readouterr().out
    assert "features: blue, green, red" in out and "macro_f1_dense" in out
    (tmp_path / "bad.xfacies").write_bytes(b"junk")
    assert main(["info", str(tmp_path / "bad.xfacies")]) == 2
    assert "not a readable xfacies model bundle" in capsys.readouterr().err


def test_make_demo_model_trains_a_working_bundle(tmp_path, monkeypatch):
    """The demo-model recipe runs (tiny settings) and writes a loadable, scored bundle."""
    from xfacies.train import demo_model as demo

    monkeypatch.setattr(demo, "SIZE", 96)
    monkeypatch.setattr(demo, "DATES", 2)
    monkeypatch.setattr(demo, "TRAIN_SEEDS", (100,))
    monkeypatch.setattr(demo, "TEST_SEEDS", (200,))
    path = demo.make_demo_model(tmp_path / "d.xfacies", n_per_class=80, epochs=1, verbose=0)
    m = xfacies.load_model(path)
    assert m.features == xfacies.FEATURE_SETS[4]
    # the held-out score it records, recomputed with scikit-learn on the held-out season
    from sklearn.metrics import f1_score

    from xfacies import synthetic

    ds = synthetic.season(2, size=96, seed=200)
    pred = xfacies.classify(ds["features"], m, ds["glacier"], method="dense", smooth=False).values
    truth = ds["truth"].values
    ok = (truth >= 0) & (pred >= 0)
    f1 = f1_score(truth[ok], pred[ok], labels=np.unique(truth[ok]), average="macro")
    assert m.metadata["macro_f1_dense"] == pytest.approx(f1, abs=1e-4)
    assert m.metadata["reproduce"] == "xfacies make-demo-model"



def test_make_demo_model_never_writes_inside_the_package(tmp_path, monkeypatch):
    from xfacies.model.registry import BUILTIN
    from xfacies.train import demo_model as demo

    with pytest.raises(PermissionError, match="installed xfacies package"):
        demo.make_demo_model(BUILTIN["demo"], overwrite=True, epochs=1)
    (tmp_path / "demo.xfacies").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileExistsError, match="overwrite"):
        demo.make_demo_model(epochs=1)  # the default, ./demo.xfacies, exists


def test_sampled_patches_know_their_scene():
    """``sample_patches(..., return_time=True)``: each patch's time index is the scene its centre
    label came from (checked against the labels and the features at the centre)."""
    import numpy as np
    import xarray as xr

    from xfacies.train.patches import sample_patches

    rng = np.random.default_rng(0)
    f = xr.DataArray(rng.random((3, 2, 20, 20), dtype=np.float32), dims=("time", "band", "y", "x"),
                     coords={"band": ["a", "b"]})
    lab = xr.DataArray(np.full((3, 20, 20), -1, np.int8), dims=("time", "y", "x"))
    lab[0, 5, 5] = 0
    lab[2, 10, 12] = 1
    lab[1, 3, 17] = 1
    X, y, t = sample_patches(f, lab, patch_size=5, return_time=True)
    centre = {(0, 0): (5, 5), (2, 1): (10, 12), (1, 1): (3, 17)}
    assert sorted(zip(t.tolist(), y.tolist())) == sorted(centre)
    for i in range(len(y)):
        r, c = centre[(int(t[i]), int(y[i]))]
        np.testing.assert_array_equal(X[i, 2, 2], f.values[t[i], :, r, c])
