"""Lazy access to a package's submodules (``xfacies.sources.outlines`` without importing them all)."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def submodules(package: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) that imports ``package.<name>`` on first access."""

    def __getattr__(name: str) -> Any:
        try:
            return importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{package}.{name}":
                raise
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None

    return __getattr__
