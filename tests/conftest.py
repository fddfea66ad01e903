"""Shared fixtures: paths to ../shared (skipped when absent), tiny models, small scenes."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import xarray as xr

from hypothesis import settings as _hyp_settings

# Hypothesis: derandomised in CI (the same examples every run, so a red CI is reproducible), random
# elsewhere; a failure prints the blob that replays it (@reproduce_failure) either way.
_hyp_settings.register_profile("ci", derandomize=True, print_blob=True)
_hyp_settings.register_profile("dev", print_blob=True)
_hyp_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

#: CI sets CI=true: there, what a test needs (a browser, FiftyOne) must be installed, not skipped.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
REF_WEIGHTS = SHARED / "weights" / "reference"


def skip_unless_ci(reason: str) -> None:
    """Skip on a developer's machine; in CI, fail: CI installs what the suite needs (.ci/run)."""
    if IN_CI:
        pytest.fail(f"CI must run this test, but: {reason}", pytrace=False)
    pytest.skip(reason)


def needs_shared(*parts: str):
    """Skip marker for tests that read ../shared (third-party weights/data, never in git)."""
    path = SHARED.joinpath(*parts)
    return pytest.mark.skipif(
        not path.exists(),
        reason=f"{path} is absent: ../shared (reference weights and real data, not part of the "
        "repository) is only available on the project's development machines",
    )


def pytest_collection_modifyitems(config, items):
    """Every test that skips without ../shared carries the ``shared`` marker (so ``-m shared``
    selects exactly the tests that read it, and ``-m "not shared"`` is the core suite)."""
    for item in items:
        for mark in item.iter_markers("skipif"):
            reason = str(mark.kwargs.get("reason", ""))
            if "../shared" in reason or str(SHARED) in reason:
                item.add_marker(pytest.mark.shared)
                break


def pytest_generate_tests(metafunc):
    """Fault tests take an ``attempt`` argument: one attempt by default, three when the run
    selects them with ``-m faults`` (each attempt interrupts the run at another point)."""
    if "attempt" in metafunc.fixturenames:
        markexpr = metafunc.config.getoption("markexpr") or ""
        n = 3 if "faults" in markexpr and "not faults" not in markexpr else 1
        metafunc.parametrize("attempt", range(1, n + 1))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Never write to the user's cache during tests; every test starts with an empty one."""
    monkeypatch.setenv("XFACIES_CACHE", str(tmp_path / "xfacies-cache"))


@pytest.fixture(scope="session", autouse=True)
def _fiftyone_offline(tmp_path_factory):
    """FiftyOne (when a test uses it) keeps its database in a scratch folder and sends nothing."""
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("FIFTYONE_DATABASE_DIR", str(tmp_path_factory.mktemp("fiftyone-db")))
    os.environ.setdefault("FIFTYONE_DEFAULT_DATASET_DIR", str(tmp_path_factory.mktemp("fiftyone-data")))


@pytest.fixture(scope="session")
def local_cluster():
    """The one real ``distributed.LocalCluster`` of the cluster tests: 2 worker processes, its
    dashboard on a free loopback port.  Tests that kill or retire workers start their own."""
    import logging

    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as cluster:
        yield cluster


class BackendWorker:
    """A session-long Python process with ``KERAS_BACKEND=backend`` (see backend_worker.py).

    ``run(script, *argv)`` answers like ``subprocess.run([python, "-c", script, *argv])``: an
    object with ``returncode``, ``stdout`` and ``stderr``."""

    def __init__(self, backend: str, log: Path):
        import subprocess
        import sys

        env = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="",
                   PYTHONUNBUFFERED="1")
        self.log = log
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("backend_worker.py"))],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log.open("w"),
                                     text=True, env=env, cwd=REPO)

    def run(self, script: str, *argv: str, timeout: float = 900):
        import json
        import select
        import time
        from types import SimpleNamespace

        from backend_worker import MARK

        self.proc.stdin.write(json.dumps({"script": script, "argv": [str(a) for a in argv]}) + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError(f"the backend worker gave no answer in {timeout} s; log: {self.log}")
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the backend worker died: {self.log.read_text()[-3000:]}")
            if line.startswith(MARK):
                return SimpleNamespace(**json.loads(line[len(MARK):]))

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="session")
def backend_worker(tmp_path_factory):
    """``backend_worker("jax")``: the session's one process on that Keras backend (skipped where
    the backend is not installed; JAX is a test extra, so CI always has it)."""
    import importlib.util

    workers: dict[str, BackendWorker] = {}

    def get(backend: str) -> BackendWorker:
        if importlib.util.find_spec(backend) is None:
            pytest.skip(f"{backend} is not installed (pip install -e '.[{backend}]')")
        if backend not in workers:
            workers[backend] = BackendWorker(backend, tmp_path_factory.mktemp("backend") / f"{backend}.log")
        return workers[backend]

    yield get
    for w in workers.values():
        w.close()


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
