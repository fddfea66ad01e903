"""Where models come from: built-in names, files, hash-pinned downloads, and the per-process cache.

:func:`load_model` resolves ``"demo"`` (shipped in the package), a bundle path or an
``http(s)://`` URL (downloaded once into :func:`cache_dir`, verified against its sha256).
:func:`load_cached` is xfacies' one piece of global state: the documented per-process
model cache through which every Dask worker loads a bundle once from its path.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from xfacies.errors import BundleError, InputError
from xfacies import options
from xfacies.model.bundle import Model

__all__ = ["BUILTIN", "load_model", "fetch", "cache_dir", "load_cached", "loaded_models", "check_output",
           "inside_package"]

_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
#: Names ``load_model`` resolves to bundles shipped inside the package.
BUILTIN = {"demo": _DATA_DIR / "demo.xfacies", "caffe-zones": _DATA_DIR / "caffe-zones.xfacies"}
#: The command that rebuilds each built-in model.
REBUILD = {"demo": "xfacies make-demo-model, then copy ./demo.xfacies into xfacies/data/",
           "caffe-zones": "xfacies caffe train <CaFFe data>, then copy ./caffe-zones.xfacies into xfacies/data/"}


def inside_package(path: "str | os.PathLike") -> bool:
    """Whether ``path`` lies inside the installed ``xfacies`` package (where nothing is written)."""
    pkg = _DATA_DIR.parent
    p = Path(path).expanduser().resolve()
    return p == pkg or pkg in p.parents


def check_output(out: "str | os.PathLike", overwrite: bool = False) -> Path:
    """The path a trainer may save a bundle to: never inside the installed package, and an existing
    file only with ``overwrite=True``.

    Raises
    ------
    PermissionError
        For a path inside the installed ``xfacies`` package.
    FileExistsError
        For an existing file without ``overwrite``.

    Examples
    --------
    >>> check_output(BUILTIN["demo"], overwrite=True)
    Traceback (most recent call last):
    ...
    PermissionError: ... is inside the installed xfacies package (...); xfacies never writes there. ...
    """
    p = Path(out).expanduser()
    if inside_package(p):
        raise PermissionError(
            f"{p} is inside the installed xfacies package ({_DATA_DIR.parent}); xfacies never writes there. "
            "Save the model elsewhere (e.g. --out ./caffe-zones.xfacies) and load it by path")
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; pass overwrite=True (--overwrite) to replace it, or choose "
                              "another --out")
    return p


def cache_dir() -> Path:
    """Where downloaded bundles and weights are cached: ``set_options(cache_dir=...)``,
    else ``$XFACIES_CACHE``, else the OS cache folder."""
    env = options.get("cache_dir")
    if env:
        return Path(env)
    import pooch

    return Path(pooch.os_cache("xfacies"))


def fetch(url: str, sha256: str | None, *, fname: str | None = None) -> Path:
    """Download ``url`` once into the cache, verifying its pinned sha256."""
    if not sha256:
        raise InputError(
            f"downloading {url} needs its sha256 (pass sha256='...'): xfacies only uses "
            "files pinned by hash"
        )
    import pooch

    try:
        got = pooch.retrieve(url, known_hash=f"sha256:{sha256}", fname=fname,
                             path=cache_dir(), progressbar=False)
    except ValueError as err:  # hash mismatch
        raise BundleError(f"{url}: downloaded file does not match sha256 {sha256} ({err})") from err
    except Exception as err:  # network errors, HTTP errors
        raise ConnectionError(f"could not download {url}: {err}") from err
    return Path(got)


def load_model(source: "str | os.PathLike | Model", *, sha256: str | None = None) -> Model:
    """Load a model bundle by name, path or URL.

    Parameters
    ----------
    source
        ``"demo"`` (the small model shipped with xfacies), a path to a
        ``*.xfacies`` bundle, an ``http(s)://`` URL (downloaded once into
        :func:`cache_dir`, verified against ``sha256``) or a :class:`Model`
        (returned as is).
    sha256
        Required for URLs.

    Examples
    --------
    >>> model = load_model("demo")      # doctest: +SKIP
    >>> model.classes[0]                # doctest: +SKIP
    'ice'
    """
    if isinstance(source, Model):
        return source
    s = str(source)
    if s in BUILTIN:
        if not BUILTIN[s].exists():
            raise BundleError(
                f"the built-in model {s!r} is missing from the installation ({BUILTIN[s]}); "
                f"rebuild it with `{REBUILD[s]}`"
            )
        return load_cached(str(BUILTIN[s]))
    if s.startswith(("http://", "https://")):
        return Model.load(fetch(s, sha256))
    return Model.load(s)


_CACHE: dict[tuple[str, float], Model] = {}
_CACHE_LOCK = threading.Lock()


def load_cached(path: str) -> Model:
    """Load a bundle once per process (keyed by path and mtime); thread-safe.

    This is xfacies' one piece of global state: the documented per-process
    model cache that lets every Dask worker load a bundle once from its path
    instead of receiving the model inside the task graph (workers go through
    :func:`xfacies.inference.distribute.worker_model`, which also finds shipped copies).
    """
    key = (str(Path(path).resolve()), os.path.getmtime(path))
    with _CACHE_LOCK:
        model = _CACHE.get(key)
        if model is None:
            model = Model.load(path)
            _CACHE[key] = model
            _STATS["loads"] += 1
        return model


#: Per-process counters (loads of bundles through the cache), for diagnostics and tests.
_STATS = {"loads": 0}


def loaded_models() -> dict[str, int]:
    """Counters of this process's model cache (``{"loads": n}``)."""
    return dict(_STATS)


