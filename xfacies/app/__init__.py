"""Applications: the run configuration (:mod:`~xfacies.app.config`), the pipeline
(:mod:`~xfacies.app.pipeline`) and its report (:mod:`~xfacies.app.report`), the demo preset
(:mod:`~xfacies.app.demo`), the reference's single-scene command (:mod:`~xfacies.app.apply`)
and the command line (:mod:`~xfacies.app.cli`)."""

import importlib as _importlib


def __getattr__(name: str):  # submodules on first access (xfacies.app.<module>), imported lazily
    try:
        return _importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
