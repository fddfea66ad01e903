"""Package options, as xarray's and rioxarray's ``set_options``: global or as a context manager.

=============== ======================================================= ===================
option          meaning                                                  environment default
=============== ======================================================= ===================
``cache_dir``   folder for downloaded bundles and weights, and for       ``XFACIES_CACHE``
                in-memory models saved so that Dask tasks can carry a
                path (default: the OS cache folder, via pooch)
``gpu_memory``  total memory (bytes) of the GPU TensorFlow runs on.      ``XFACIES_GPU_MEMORY``
                TensorFlow reports only what it uses, so without this
                exact-inference batches stay at the CPU size (1024);
                JAX and PyTorch report free memory themselves
``retries``     how many times a transient failure (an asset read     ``XFACIES_RETRIES``
                error, a STAC server 5xx, a timeout) is retried, with
                exponential backoff, before it counts as persistent
                (default 3)
``retry_wait``  the first backoff wait in seconds; it doubles with     ``XFACIES_RETRY_WAIT``
                every retry, up to 60 s (default 1.0)
``progress``    progress bars (with an ETA) of long library steps that  ``XFACIES_PROGRESS``
                take no ``progress=`` argument, e.g. patch reads from
                dask cubes (default True; ``0``/``false`` quiet)
=============== ======================================================= ===================

An option set here wins over its environment variable.  Options live in the
process that sets them: Dask worker processes read the environment variables
(set them before starting the workers) or need ``client.run(xfacies.set_options, ...)``.

Examples
--------
>>> from xfacies import options
>>> with options.set_options(cache_dir="/tmp/xfacies-cache"):
...     options.get("cache_dir")
'/tmp/xfacies-cache'
>>> options.set_options(colour="red")
Traceback (most recent call last):
...
xfacies.errors.InputError: unknown option 'colour'; valid options: cache_dir, gpu_memory, retries, retry_wait, progress
"""

from __future__ import annotations

import os
from typing import Any

from xfacies.errors import InputError

__all__ = ["set_options", "get"]

_ENV = {"cache_dir": "XFACIES_CACHE", "gpu_memory": "XFACIES_GPU_MEMORY", "retries": "XFACIES_RETRIES",
        "retry_wait": "XFACIES_RETRY_WAIT", "progress": "XFACIES_PROGRESS"}
_DEFAULT: dict[str, Any] = {"retries": 3, "retry_wait": 1.0, "progress": True}
_SET: dict[str, Any] = {}


def get(name: str) -> Any:
    """The value of option ``name``: set with :class:`set_options`, else its environment
    variable, else ``None``."""
    if name not in _ENV:
        raise InputError(f"unknown option {name!r}; valid options: {', '.join(_ENV)}")
    if _SET.get(name) is not None:
        return _SET[name]
    env = os.environ.get(_ENV[name])
    if not env:
        return _DEFAULT.get(name)
    if name == "gpu_memory":
        try:
            return int(float(env))
        except ValueError:
            raise InputError(f"${_ENV[name]}={env!r} is not a number of bytes (e.g. 80e9)") from None
    if name == "progress":
        if env.strip().lower() in ("0", "false", "no", "off"):
            return False
        if env.strip().lower() in ("1", "true", "yes", "on"):
            return True
        raise InputError(f"${_ENV[name]}={env!r}: use 1/true or 0/false")
    if name in ("retries", "retry_wait"):
        try:
            return _check(name, float(env) if name == "retry_wait" else int(env))
        except ValueError:
            raise InputError(f"${_ENV[name]}={env!r} is not a valid {name} (a number >= 0)") from None
    return env


def _check(name: str, value: Any) -> Any:
    if name == "retries" and (int(value) != value or value < 0):
        raise InputError(f"retries must be a whole number >= 0, got {value!r}")
    if name == "retry_wait" and not (float(value) >= 0):
        raise InputError(f"retry_wait must be a number of seconds >= 0, got {value!r}")
    return value


class set_options:  # noqa: N801  (a function-like context manager, as in xarray)
    """Set options globally, or within a ``with`` block (restored on exit).

    Parameters
    ----------
    cache_dir : str or os.PathLike, optional
        Folder for downloaded and saved models.
    gpu_memory : int, optional
        Total GPU memory in bytes, for TensorFlow on a GPU.
    retries : int, optional
        Retries of a transient read or STAC failure (default 3).
    retry_wait : float, optional
        First backoff wait in seconds (default 1.0; doubles per retry).
    progress : bool, optional
        Progress bars of long steps without a ``progress=`` argument (default True).
    """

    def __init__(self, **kwargs: Any) -> None:
        unknown = [k for k in kwargs if k not in _ENV]
        if unknown:
            raise InputError(f"unknown option {unknown[0]!r}; valid options: {', '.join(_ENV)}")
        if kwargs.get("gpu_memory") is not None and int(kwargs["gpu_memory"]) <= 0:
            raise InputError(f"gpu_memory must be a positive number of bytes, got {kwargs['gpu_memory']!r}")
        for k in ("retries", "retry_wait"):
            if kwargs.get(k) is not None:
                _check(k, kwargs[k])
        self._old = {k: _SET.get(k) for k in kwargs}
        _SET.update({k: (str(v) if k == "cache_dir" and v is not None else v) for k, v in kwargs.items()})

    def __enter__(self) -> "set_options":
        return self

    def __exit__(self, *exc: Any) -> None:
        _SET.update(self._old)
