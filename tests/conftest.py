"""Shared fixtures: paths to ../shared (skipped when absent), tiny models, small scenes."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import xarray as xr

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
REF_WEIGHTS = SHARED / "weights" / "reference"


def needs_shared(*parts: str):
    """Skip marker for tests that read ../shared (third-party weights/data, never in git)."""
    path = SHARED.joinpath(*parts)
    return pytest.mark.skipif(
        not path.exists(),
        reason=f"{path} is absent: ../shared (reference weights and real data, not part of the "
        "repository) is only available on the project's development machines",
    )


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Never write to the user's cache during tests; every test starts with an empty one."""
    monkeypatch.setenv("XFACIES_CACHE", str(tmp_path / "xfacies-cache"))


def make_tiny_model(n_features: int = 11, seed: int = 0, normalised: bool = True, **config):
    """A small randomly initialised reference-architecture model with min/max normalisation."""
    import keras

    import xfacies
    from xfacies.model.architecture import CNNConfig, reference_cnn

    keras.utils.set_random_seed(seed)
    cfg = CNNConfig(n_features=n_features, filters=config.pop("filters", 6),
                    dense_units=config.pop("dense_units", 8), **config)
    km = reference_cnn(config=cfg)
    # Random BN statistics, so that the test exercises every weight.
    rng = np.random.default_rng(seed)
    weights = [w if w.ndim > 1 else (rng.random(w.shape).astype(np.float32) + 0.5)
               for w in km.get_weights()]
    feats = xfacies.FEATURES[:n_features]
    norm = None
    if normalised:
        norm = {"min": [-0.1] * n_features, "max": [1.2] * n_features}
    return xfacies.Model("reference-cnn", cfg.to_dict(), weights, tuple(f.name for f in feats),
                         tuple(xfacies.catalog.class_names()), normalisation=norm)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny 6-feature model saved as a bundle (so tasks can load it by path)."""
    m = make_tiny_model(6)
    m.save(tmp_path_factory.mktemp("models") / "tiny.xfacies")
    return m


def random_features(shape=(40, 36), n_features: int = 6, seed: int = 0, smooth: int = 5,
                    time: int | None = None) -> xr.DataArray:
    """Smooth random features on a 10 m UTM grid, labelled by feature name."""
    import rioxarray  # noqa: F401  (registers .rio)
    from scipy.ndimage import uniform_filter

    import xfacies

    rng = np.random.default_rng(seed)
    full = ((time,) if time else ()) + (n_features,) + tuple(shape)
    x = rng.random(full, dtype=np.float32)
    size = (1,) * (len(full) - 2) + (smooth, smooth)
    x = uniform_filter(x, size).astype(np.float32)
    ny, nx = shape
    dims = (("time",) if time else ()) + ("band", "y", "x")
    coords = {"band": [f.name for f in xfacies.FEATURES[:n_features]],
              "y": 5190000.0 - 10 * np.arange(ny) - 5, "x": 630000.0 + 10 * np.arange(nx) + 5}
    if time:
        coords["time"] = np.array([f"2021-0{6 + i % 4}-15" for i in range(time)], dtype="datetime64[ns]")
    da = xr.DataArray(x, dims=dims, coords=coords, name="features")
    return da.rio.write_crs("EPSG:32632")
