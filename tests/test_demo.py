"""The demo pipeline and the CLI, run for real (small sizes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import xfacies
from xfacies.app.cli import main


def test_demo_runs_end_to_end(tmp_path, capsys):
    from xfacies.app.demo import run_demo

    s = run_demo(tmp_path / "out", size=160, dates=3, chunks=64, progress=False)
    out = capsys.readouterr().out
    assert "macro F1 against the synthetic truth" in out and "AAR proxy" in out
    maps = xfacies.io.open_zarr(s["store"]).compute()
    assert maps.classes.dtype == np.int8 and maps.sizes["time"] == 3
    assert maps.classes.attrs["flag_meanings"].split()[1] == "ice"
    frac = xfacies.io.open_zarr(s["fractions_store"]).compute()
    assert frac.sizes["glacier"] == s["n_glaciers"] >= 1
    np.testing.assert_allclose(frac.fraction.sum("class").values, 1.0, atol=1e-5)
    # The demo model knows synthetic glaciers: it must beat chance by far.
    assert s["macro_f1_vs_truth"] > 0.6
    for png in s["quicklooks"]:
        assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_info_and_errors(capsys, tmp_path):
    assert main(["info", "demo"]) == 0
    out = capsys.readouterr().out
    assert "features: blue, green, red" in out and "macro_f1_dense" in out
    (tmp_path / "bad.xfacies").write_bytes(b"junk")
    assert main(["info", str(tmp_path / "bad.xfacies")]) == 2
    assert "not a readable xfacies model bundle" in capsys.readouterr().err


def test_cli_demo_command(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--size", "96", "--dates", "2",
                 "--chunks", "64", "--no-progress"]) == 0
    assert (tmp_path / "d" / "facies.zarr").exists()


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
    assert 0 <= m.metadata["macro_f1_dense"] <= 1
    assert m.metadata["reproduce"] == "xfacies make-demo-model"

