"""Running xfacies on Dask clusters: models reach workers by path, never inside the graph.

Inference tasks carry a bundle *path* (:func:`model_path` turns any model into one).
Each worker process loads the bundle once (:func:`worker_model`, through the per-process
cache :func:`xfacies.model.registry.load_cached`).  For clusters whose workers
do not see the client's file system (``Client("tcp://scheduler:8786")``), the
first inference under a ``distributed.Client`` also registers a
:class:`ModelPlugin` that copies the bundle's bytes to every worker, present
and future; a worker that cannot open the path uses its copy.

Examples
--------
>>> from distributed import Client, LocalCluster
>>> client = Client(LocalCluster(n_workers=2, threads_per_worker=1))      # doctest: +SKIP
>>> facies = season.features.facies.classify("demo", outlines).compute()  # doctest: +SKIP

GPU clusters: install the optional ``gpu`` extra (``dask-cuda``, which pins
``dask``/``distributed`` to slightly older releases) and start
``dask_cuda.LocalCUDACluster()`` with one worker per GPU; inference then runs
on each worker's GPU with a batch size fitted to its memory.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from xfacies.errors import InputError

__all__ = ["ModelPlugin", "ship_model", "resolve_model_path", "worker_model", "model_path"]

#: original path -> local copy, filled on workers by ModelPlugin (per process).
_COPIES: dict[str, str] = {}
_SHIPPED: set[tuple[Any, ...]] = set()
_LOCK = threading.Lock()


def _plugin_base():
    from distributed.diagnostics.plugin import WorkerPlugin

    return WorkerPlugin


class ModelPlugin(_plugin_base()):  # type: ignore[misc]
    """Copy a model bundle to every worker's local directory (registered once per bundle)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        self.data = Path(path).read_bytes()
        digest = hashlib.sha256(self.data).hexdigest()[:16]
        self.name = f"xfacies-model-{digest}"
        self.filename = f"{digest}-{Path(path).name}"

    def setup(self, worker: Any) -> None:
        d = Path(worker.local_directory) / "xfacies-models"
        d.mkdir(parents=True, exist_ok=True)
        target = d / self.filename
        if not target.exists():
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(self.data)
            os.replace(tmp, target)
        with _LOCK:
            _COPIES[self.path] = str(target)


def ship_model(path: str) -> None:
    """Under an active ``distributed.Client``, make sure its workers can load ``path``."""
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        return  # no distributed client: threaded/synchronous schedulers share this process
    key = (client.id, path, os.path.getmtime(path))
    with _LOCK:
        if key in _SHIPPED:
            return
    client.register_plugin(ModelPlugin(path))
    with _LOCK:
        _SHIPPED.add(key)


def resolve_model_path(path: str) -> str:
    """``path`` if this process can open it, else the worker's shipped copy."""
    if os.path.exists(path):
        return path
    with _LOCK:
        copy = _COPIES.get(path)
    if copy and os.path.exists(copy):
        return copy
    raise FileNotFoundError(
        f"model bundle {path} is not readable on this worker and was not shipped to it; run "
        "inference under the distributed.Client of this cluster (xfacies then copies the "
        "bundle to every worker), or put the bundle on storage all workers can read"
    )


def worker_model(path: str) -> Any:
    """The model a task names by ``path``, loaded once per process (the shipped copy where
    this worker cannot open ``path``)."""
    from xfacies.model.registry import load_cached

    return load_cached(resolve_model_path(path))


def model_path(model: Any) -> tuple[str, Any]:
    """A path that workers can load ``model`` from, and the model itself.

    ``model`` is a :class:`xfacies.Model`, a bundle path or a built-in name (``"demo"``).
    An in-memory model (no file behind it) is saved once, content-addressed, into
    ``cache_dir()/models`` so that tasks can carry its path.

    Examples
    --------
    >>> path, m = model_path("demo")
    >>> path.endswith("demo.xfacies"), m.classes[0]
    (True, 'ice')
    >>> model_path("demo2")
    Traceback (most recent call last):
    ...
    FileNotFoundError: model 'demo2' is neither a built-in model (demo, caffe-zones) nor an existing bundle file; pass xfacies.load_model(...) a built-in name, a *.xfacies path, or an http(s) URL with its sha256
    """
    from xfacies.model.bundle import Model
    from xfacies.model.registry import BUILTIN, cache_dir

    if isinstance(model, (str, os.PathLike)):
        s = str(model)
        if s.startswith(("http://", "https://")):
            raise InputError("load URL models with xfacies.load_model(url, sha256=...) first")
        path = str(BUILTIN[s]) if s in BUILTIN else s
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"model {s!r} is neither a built-in model ({', '.join(BUILTIN)}) nor an existing "
                "bundle file; pass xfacies.load_model(...) a built-in name, a *.xfacies path, or an "
                "http(s) URL with its sha256")
        return path, worker_model(path)
    if isinstance(model, Model):
        if model.matches_file():  # an edited copy still names the old file: saved anew below
            return str(model.path), model
        d = cache_dir() / "models"
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError:
            d = Path(tempfile.gettempdir()) / "xfacies-models"
            d.mkdir(parents=True, exist_ok=True)
        key = hashlib.sha256((model.sha256 + repr(model._metadata_dict())).encode()).hexdigest()[:20]
        path = d / f"{key}.xfacies"
        if not path.exists():
            model.save(path)
        else:
            model.path, model._saved = path, model.fingerprint()
        return str(path), model
    raise TypeError(f"model must be an xfacies.Model, a bundle path or 'demo'; got {type(model).__name__}")
