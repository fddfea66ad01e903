"""Lazy access to a package's submodules (``xfacies.outlines`` without importing them all)
and to public names defined in them (``xfacies.caffe.open_dataset``)."""

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


def names(package: str, table: dict[str, str], namespace: dict[str, Any]
          ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for a package whose public names live in submodules.

    ``table`` maps each public name to the module that defines it (imported on first access);
    other names resolve to submodules (:func:`submodules`).  Name a module differently from the
    functions it defines: importing ``package.fit`` would set the attribute ``fit`` to the module.
    """
    sub = submodules(package)

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            return sub(name)
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
