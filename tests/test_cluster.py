"""Inference on a real distributed.LocalCluster: models load once per worker, never in the graph."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xfacies

from conftest import make_tiny_model, random_features

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client(local_cluster):
    with distributed.Client(local_cluster) as c:
        yield c


def _loads(dask_worker=None):
    from xfacies.model.registry import loaded_models

    return loaded_models()["loads"]


def test_each_worker_loads_the_model_once(client, tmp_path):
    m = make_tiny_model(6, seed=4)
    m.save(tmp_path / "m.xfacies")
    feats = random_features((96, 96), seed=3, time=2).chunk(time=1, y=32, x=32)  # 18 blocks
    before = client.run(_loads)
    got = xfacies.classify(feats, m, method="dense").compute()
    after = client.run(_loads)
    new_loads = {w: after[w] - before.get(w, 0) for w in after}
    assert all(n <= 1 for n in new_loads.values()), new_loads
    assert sum(new_loads.values()) >= 1
    # Same answer as the threaded scheduler in this process.
    import dask

    with dask.config.set(scheduler="threads"):
        want = xfacies.classify(feats, m, method="dense").compute()
    xr.testing.assert_identical(got, want)


def test_workers_use_a_shipped_copy_when_they_cannot_see_the_path(client, tmp_path):
    """As on a remote cluster: the client's bundle path does not exist when tasks run."""
    m = make_tiny_model(6, seed=5)
    path = m.save(tmp_path / "gone.xfacies")
    feats = random_features((64, 64), seed=1).chunk(y=32, x=32)  # chunks >= the 28 px halo
    lazy = xfacies.predict_proba(feats, m)  # registers the plugin: bytes go to every worker
    expected = xfacies.predict_proba(feats, m).compute(scheduler="threads")
    path.unlink()
    m.path = None
    got = lazy.compute()
    np.testing.assert_allclose(got.values, expected.values, atol=1e-6)
