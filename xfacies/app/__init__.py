"""Applications: the run configuration (:mod:`~xfacies.app.config`), the pipeline
(:mod:`~xfacies.app.pipeline`) and its report (:mod:`~xfacies.app.report`), the demo preset
(:mod:`~xfacies.app.demo`), the reference's single-scene command (:mod:`~xfacies.app.apply`)
and the command line (:mod:`~xfacies.app.cli`)."""

from xfacies._lazy import submodules as _submodules

__getattr__ = _submodules(__name__)  # xfacies.app.<module>, imported on first access
