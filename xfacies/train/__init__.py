"""Training: patch sampling and a Keras fit loop (:mod:`~xfacies.train.patches`), and the
recipe of the shipped demo model (:mod:`~xfacies.train.demo_model`)."""
