"""Backend runtime: compiled forward passes per Keras backend, shape buckets, device memory.

What a bundle needs to run fast on the active backend (TensorFlow, JAX, PyTorch):

- :func:`compiled_forward` / :func:`compiled_exact`: inference-mode forwards, compiled once
  (TensorFlow: one shape-polymorphic ``tf.function``; JAX: ``jax.jit``, one program per
  shape, hence :func:`bucket`; PyTorch: eager without gradients);
- :func:`accelerator_memory` and :func:`default_batch_size`: batches fitted to free GPU memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from xfacies import options

if TYPE_CHECKING:
    from xfacies.model.bundle import Model

__all__ = ["import_keras", "bucket", "shape_polymorphic", "compiled_forward", "compiled_exact",
           "accelerator_memory", "default_batch_size"]


def import_keras() -> Any:
    """Keras with its backend loaded and warmed up.

    TensorFlow's C++ runtime prints a start-up banner (oneDNN, absl) straight to the
    process's standard error, which no environment variable silences.  Where
    ``XFACIES_QUIET_TF=1`` (the command line sets it, and Dask workers it starts inherit it),
    standard error is muted while the backend loads and runs its first operation; elsewhere
    (notebooks, tests) nothing is muted.
    """
    import os
    import sys

    if "keras" in sys.modules or os.environ.get("XFACIES_QUIET_TF") != "1":
        import keras

        return keras
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (e.g. captured)
        import keras

        return keras
    sys.stderr.flush()
    saved, null = os.dup(fd), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    try:
        import keras

        keras.ops.convert_to_numpy(keras.ops.add(keras.ops.ones((1,)), 1.0))
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(null)
    return keras


def bucket(n: int) -> int:
    """Round a block side up to one of a few sizes: multiples of ``3 * 2**k`` with at most
    four sizes per octave (padding <= 25 %), so blocks of varied shapes share compiled code."""
    q = max(24, 3 * 2 ** max(int(np.floor(np.log2(max(n, 1) / 3))) - 2, 0))
    return -(-n // q) * q


def shape_polymorphic() -> bool:
    """Whether one compiled forward serves every input shape for the active Keras backend.

    TensorFlow (one ``tf.function`` traced with unknown batch and spatial sizes) and the eager
    backends do; JAX compiles one XLA program per shape, so callers pad to bucketed sizes
    there.  Per-shape traces cost memory that is never returned (about 5 MB each on
    TensorFlow for the demo model): a worker that met a few hundred block shapes grew by
    gigabytes before the forward became shape-polymorphic.  Even then TensorFlow keeps about
    0.5 MB per distinct shape (kernels and buffers), so :mod:`xfacies.inference` grows cropped
    dense blocks to bucketed sizes too.
    """
    keras = import_keras()

    return keras.backend.backend() != "jax"


def compiled_forward(km: Any):
    """``x -> numpy probabilities`` for a Keras model in inference mode, compiled once.

    TensorFlow: a ``tf.function`` with an input signature whose batch and spatial sizes are
    unknown, traced once for all shapes; JAX: ``jax.jit`` of the stateless call (compiled per
    shape: callers bucket shapes); other backends: an eager call without gradients.
    """
    keras = import_keras()

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        spec = tf.TensorSpec((None,) + tuple(km.inputs[0].shape[1:]), tf.float32)
        f = tf.function(lambda a: km(a, training=False), input_signature=[spec])
        return lambda x: f(tf.constant(x)).numpy()
    if backend == "jax":
        import jax

        tv = [v.value for v in km.trainable_variables]
        ntv = [v.value for v in km.non_trainable_variables]

        @jax.jit
        def g(tv, ntv, a):
            y, _ = km.stateless_call(tv, ntv, a, training=False)
            return y

        return lambda x: np.asarray(g(tv, ntv, x))

    def eager(x):
        if backend == "torch":
            import torch

            with torch.no_grad():
                return keras.ops.convert_to_numpy(km(x, training=False))
        return keras.ops.convert_to_numpy(km(x, training=False))

    return eager


def compiled_exact(km: Any):
    """``(flat block (N, F), patch indices (n, P, P)) -> (n, C)``: gather + model, compiled."""
    keras = import_keras()

    backend = keras.backend.backend()

    def run(flat, idx):
        return km(keras.ops.take(flat, idx, axis=0), training=False)

    if backend == "tensorflow":
        import tensorflow as tf

        P, _, F = km.inputs[0].shape[1:]
        f = tf.function(run, input_signature=[tf.TensorSpec((None, F), tf.float32),
                                              tf.TensorSpec((None, P, P), tf.int32)])
        return lambda flat, idx: f(tf.constant(flat), tf.constant(idx)).numpy()
    if backend == "jax":
        import jax

        tv = [v.value for v in km.trainable_variables]
        ntv = [v.value for v in km.non_trainable_variables]

        @jax.jit
        def g(tv, ntv, flat, idx):
            y, _ = km.stateless_call(tv, ntv, keras.ops.take(flat, idx, axis=0), training=False)
            return y

        return lambda flat, idx: np.asarray(g(tv, ntv, flat, idx))

    def eager(flat, idx):
        if backend == "torch":
            import torch

            with torch.no_grad():
                return keras.ops.convert_to_numpy(run(flat, idx))
        return keras.ops.convert_to_numpy(run(flat, idx))

    return eager


def accelerator_memory() -> int | None:
    """Free memory (bytes) of the first GPU the Keras backend uses, or ``None`` on CPU."""
    keras = import_keras()

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            dev = [d for d in jax.devices() if d.platform == "gpu"]
            if dev:
                stats = dev[0].memory_stats() or {}
                return int(stats.get("bytes_limit", 0) - stats.get("bytes_in_use", 0)) or None
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return int(torch.cuda.mem_get_info()[0])
        elif backend == "tensorflow":
            import tensorflow as tf

            if tf.config.list_physical_devices("GPU"):
                info = tf.config.experimental.get_memory_info("GPU:0")
                total = options.get("gpu_memory")
                return int(total) - int(info["current"]) if total else None
    except Exception:  # pragma: no cover - device queries are best effort
        return None
    return None


def default_batch_size(model: Model, method: str, free_bytes: int | None = -1) -> int:
    """Patches per batch for ``method="exact"``: 1024 on CPU; fitted to free GPU memory.

    On a GPU, a batch is sized so that the largest activations (the scale-1 feature maps,
    ``P x P x filters`` float32 per patch, a few alive at once) use about half the free memory.
    """
    if free_bytes == -1:
        free_bytes = accelerator_memory()
    if not free_bytes:
        return 1024
    cfg = model.cnn_config
    per_patch = cfg.patch_size ** 2 * max(cfg.filters, cfg.n_features) * 4 * 6
    size = int(free_bytes * 0.5 // per_patch)
    return int(max(1024, min(1 << 17, 1 << int(np.log2(max(size, 1))))))


