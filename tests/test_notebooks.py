"""The notebooks in notebooks/ execute end to end (in a scratch folder) and are committed without outputs."""

from __future__ import annotations

import pytest

from conftest import REPO, SHARED

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_the_three_notebooks_exist():
    assert {p.stem for p in NOTEBOOKS} >= {"quickstart", "massbalance", "scaling", "oetztal", "own_labels"}


@pytest.mark.parametrize("nb_path", [pytest.param(p, marks=[pytest.mark.shared] if p.stem == "oetztal" else [])
                                     for p in NOTEBOOKS], ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(nb_path, tmp_path, monkeypatch):
    if nb_path.stem == "oetztal" and not (SHARED / "data" / "oetztal").exists():
        pytest.skip(f"{SHARED / 'data'} is absent: the Ötztal tutorial runs on the real outlines, DEM and "
                    "WGMS records in ../shared (the project's development machines only)")
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, \
                f"{nb_path.name} is committed with outputs: strip them"
    monkeypatch.chdir(tmp_path)
    # the mass-balance notebook finds ../shared/data/wgms next to the repository (or falls back)
    monkeypatch.setenv("XFACIES_REPO", str(REPO))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv("XFACIES_QUICK", "1")  # the training notebook's small budget
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    pngs = list(tmp_path.glob("*.png"))
    assert pngs, "the notebook should save its figures"
