"""Training: patch sampling and a Keras fit loop (:mod:`~xfacies.train.patches`), and the
recipe of the shipped demo model (:mod:`~xfacies.train.demo_model`)."""

import importlib as _importlib


def __getattr__(name: str):  # submodules on first access (xfacies.train.<module>), imported lazily
    try:
        return _importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
