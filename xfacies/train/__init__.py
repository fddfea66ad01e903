"""Training: patch sampling and a Keras fit loop (:mod:`~xfacies.train.patches`), and the
recipe of the shipped demo model (:mod:`~xfacies.train.demo_model`)."""

from xfacies._lazy import submodules as _submodules

__getattr__ = _submodules(__name__)  # xfacies.train.<module>, imported on first access
