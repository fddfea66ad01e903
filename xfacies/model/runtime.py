"""Backend runtime: compiled forward passes per Keras backend, precision, shape buckets, device memory.

What a bundle needs to run fast on the active backend (TensorFlow, JAX, PyTorch):

- :func:`compiled_forward` / :func:`compiled_exact`: inference-mode forwards, compiled once
  (TensorFlow: one shape-polymorphic ``tf.function``; JAX: ``jax.jit``, one program per
  shape, hence :func:`bucket`; PyTorch: eager without gradients);
- :func:`compiled_dense_block`: the device-resident dense block, raw features in, int8
  labels (and the maximum probability) out, in one compiled call;
- :func:`precision_scope`: the floating-point policy of a call (full float32, TF32 or
  bfloat16) without changing the process's settings;
- :func:`accelerator_memory` and :func:`default_batch_size`: batches fitted to free GPU memory.

Precision
---------
GPUs of the Ampere generation and later run float32 convolutions in TF32 (10-bit
mantissa) by default in JAX, PyTorch and TensorFlow, which moves probabilities by
~1e-4 (measured on an H200: 2.2e-4 for ``method="exact"``).  Every call here runs in
a named precision:

``"float32"`` (the default)
    full IEEE float32 (JAX ``default_matmul_precision("highest")``; PyTorch and
    TensorFlow with TF32 off).  ``method="exact"`` always runs so.
``"tf32"``
    TF32 matrix units where the device has them (the same numbers as float32 on CPUs).
``"bfloat16"``
    the network computes in bfloat16 (Keras ``mixed_bfloat16`` policy: float32 weights,
    bfloat16 activations), its last layer and softmax in float32.

Examples
--------
>>> from xfacies.model.runtime import check_precision
>>> check_precision("tf32")
'tf32'
>>> check_precision("fp16")
Traceback (most recent call last):
...
xfacies.errors.InputError: precision='fp16' is not one of 'float32', 'tf32', 'bfloat16' (float32, the default, is exact; tf32 and bfloat16 are faster on GPUs and round the network's arithmetic)
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from xfacies.errors import InputError
from xfacies import options

if TYPE_CHECKING:
    from xfacies.model.bundle import Model

__all__ = ["import_keras", "load_keras", "bucket", "shape_polymorphic", "compiled_forward", "compiled_exact",
           "compiled_dense_block", "accelerator_memory", "default_batch_size", "PRECISIONS",
           "DEFAULT_PRECISION", "check_precision", "precision_scope", "dtype_policy", "mode3x3"]

#: Precisions a dense call can run in (see the module's notes).
PRECISIONS = ("float32", "tf32", "bfloat16")
#: What every call runs in unless told otherwise: exact float32.
DEFAULT_PRECISION = "float32"
# JAX's names for the matmul/convolution precision of float32 operands.
_JAX_PRECISION = {"float32": "highest", "tf32": "tensorfloat32", "bfloat16": "bfloat16"}
# TF32 switches of PyTorch and TensorFlow are process-wide: scopes that set them hold this lock.
_GLOBAL_SWITCH = threading.RLock()
_QUIET_IMPORT = threading.Lock()  # import_keras: one stderr mute at a time


def check_precision(precision: Any, method: str = "dense") -> str:
    """``precision`` if it names one of :data:`PRECISIONS` and ``method`` accepts it.

    ``method="exact"`` (the reference's semantics, 1e-5 parity) runs in float32 only.

    Raises
    ------
    ValueError
        An unknown precision, or a reduced one with ``method="exact"``.

    Examples
    --------
    >>> check_precision("float32", method="exact")
    'float32'
    >>> check_precision("bfloat16", method="exact")
    Traceback (most recent call last):
    ...
    xfacies.errors.InputError: method='exact' always runs in full float32 (the reference's numbers to 1e-5); got precision='bfloat16': leave precision at 'float32' or use method='dense'
    """
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise InputError(
            f"precision={precision!r} is not one of {', '.join(map(repr, PRECISIONS))} (float32, the "
            "default, is exact; tf32 and bfloat16 are faster on GPUs and round the network's "
            "arithmetic)")
    if method == "exact" and precision != "float32":
        raise InputError(
            f"method='exact' always runs in full float32 (the reference's numbers to 1e-5); got "
            f"precision={precision!r}: leave precision at 'float32' or use method='dense'")
    return precision


def dtype_policy(precision: str) -> str:
    """The Keras dtype policy a model is built with for ``precision``.

    Examples
    --------
    >>> dtype_policy("tf32"), dtype_policy("bfloat16")
    ('float32', 'mixed_bfloat16')
    """
    return "mixed_bfloat16" if check_precision(precision) == "bfloat16" else "float32"


@contextlib.contextmanager
def precision_scope(precision: str = DEFAULT_PRECISION) -> Iterator[None]:
    """Run the enclosed backend calls in ``precision``; the process's settings are restored.

    - JAX: ``jax.default_matmul_precision`` (a thread-local setting read when a function is
      traced and compiled: compiled functions are therefore kept per precision, see
      :func:`compiled_forward`); ``"float32"`` is ``"highest"``.
    - PyTorch: ``torch.backends.cuda.matmul.allow_tf32`` and ``torch.backends.cudnn.allow_tf32``,
      off for ``"float32"``, on otherwise; restored on exit.
    - TensorFlow: ``tf.config.experimental.enable_tensor_float_32_execution``, likewise.

    The PyTorch and TensorFlow switches are process-wide, so scopes that change them hold a
    lock: threads that run models in other precisions wait for each other (GPU calls are
    serial anyway).  On CPUs only the bfloat16 policy changes numbers, and it is a property
    of the model built (:func:`dtype_policy`), not of this scope.

    Examples
    --------
    >>> import numpy as np, xfacies
    >>> m = xfacies.load_model("demo")
    >>> with precision_scope("float32"):          # what the exact path does around its calls
    ...     p = m.keras_model()(np.zeros((1, 33, 33, 11), "float32"))
    >>> tuple(p.shape)
    (1, 8)

    Under JAX (``KERAS_BACKEND=jax``) the scope is JAX's own, and leaves no trace:

    >>> import jax                                                   # doctest: +SKIP
    >>> with precision_scope("float32"):                             # doctest: +SKIP
    ...     jax.config.jax_default_matmul_precision
    'highest'
    >>> jax.config.jax_default_matmul_precision is None              # doctest: +SKIP
    True
    """
    precision = check_precision(precision)
    keras = import_keras()
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        with jax.default_matmul_precision(_JAX_PRECISION[precision]):
            yield
        return
    allow = precision != "float32"
    if backend == "torch":
        import torch

        flags = (torch.backends.cuda.matmul, torch.backends.cudnn)
        with _GLOBAL_SWITCH:
            saved = [f.allow_tf32 for f in flags]
            try:
                for f in flags:
                    f.allow_tf32 = allow
                yield
            finally:
                for f, v in zip(flags, saved):
                    f.allow_tf32 = v
        return
    if backend == "tensorflow":
        import tensorflow as tf

        with _GLOBAL_SWITCH:
            saved = tf.config.experimental.tensor_float_32_execution_enabled()
            try:
                if saved != allow:
                    tf.config.experimental.enable_tensor_float_32_execution(allow)
                yield
            finally:
                if tf.config.experimental.tensor_float_32_execution_enabled() != saved:
                    tf.config.experimental.enable_tensor_float_32_execution(saved)
        return
    yield


def _scoped(fn: Callable[..., Any], precision: str) -> Callable[..., Any]:
    """``fn`` run inside :func:`precision_scope` (for JAX also traced there, on first call)."""

    def call(*args: Any) -> Any:
        with precision_scope(precision):
            return fn(*args)

    return call


def load_keras() -> Any:
    """Keras for building and fitting models: :func:`import_keras` with TensorFlow's C++ and
    Python logs quiet (``TF_CPP_MIN_LOG_LEVEL=2`` unless set, the ``tensorflow`` logger at ERROR).

    Examples
    --------
    >>> keras = load_keras()                                   # doctest: +SKIP
    >>> keras.ops.convert_to_numpy(keras.ops.add(1.0, 1.0))    # doctest: +SKIP
    array(2., dtype=float32)
    """
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    keras = import_keras()
    if keras.backend.backend() == "tensorflow":
        import logging

        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return keras


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
    # One thread mutes at a time: two threads of a Dask threaded scheduler that both found
    # Keras unimported would each save "the" standard error, and the second would save (and
    # restore for good) the muted one, losing every later error message of the process.
    with _QUIET_IMPORT:
        if "keras" in sys.modules:
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


def compiled_forward(km: Any, precision: str = DEFAULT_PRECISION) -> Callable[[np.ndarray], np.ndarray]:
    """``x -> numpy probabilities`` for a Keras model in inference mode, compiled once.

    TensorFlow: a ``tf.function`` with an input signature whose batch and spatial sizes are
    unknown, traced once for all shapes; JAX: ``jax.jit`` of the stateless call (compiled per
    shape: callers bucket shapes); other backends: an eager call without gradients.  Every
    call (and, for JAX, every trace) runs in :func:`precision_scope` ``(precision)``: keep one
    compiled forward per precision.
    """
    keras = import_keras()
    check_precision(precision)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        spec = tf.TensorSpec((None,) + tuple(km.inputs[0].shape[1:]), tf.float32)
        f = tf.function(lambda a: km(a, training=False), input_signature=[spec])
        return _scoped(lambda x: f(tf.constant(x)).numpy(), precision)
    if backend == "jax":
        import jax

        tv = [v.value for v in km.trainable_variables]
        ntv = [v.value for v in km.non_trainable_variables]

        @jax.jit
        def g(tv, ntv, a):
            y, _ = km.stateless_call(tv, ntv, a, training=False)
            return y

        return _scoped(lambda x: np.asarray(g(tv, ntv, x)), precision)

    def eager(x):
        if backend == "torch":
            import torch

            with torch.no_grad():
                return keras.ops.convert_to_numpy(km(x, training=False))
        return keras.ops.convert_to_numpy(km(x, training=False))

    return _scoped(eager, precision)


def compiled_exact(km: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``(flat block (N, F), patch indices (n, P, P)) -> (n, C)``: gather + model, compiled.

    Always in full float32 (:func:`precision_scope` ``("float32")``): ``method="exact"`` is
    the reference's numbers, which TF32 convolutions move by ~2e-4.
    """
    keras = import_keras()

    backend = keras.backend.backend()

    def run(flat, idx):
        return km(keras.ops.take(flat, idx, axis=0), training=False)

    if backend == "tensorflow":
        import tensorflow as tf

        P, _, F = km.inputs[0].shape[1:]
        f = tf.function(run, input_signature=[tf.TensorSpec((None, F), tf.float32),
                                              tf.TensorSpec((None, P, P), tf.int32)])
        return _scoped(lambda flat, idx: f(tf.constant(flat), tf.constant(idx)).numpy(), "float32")
    if backend == "jax":
        import jax

        tv = [v.value for v in km.trainable_variables]
        ntv = [v.value for v in km.non_trainable_variables]

        @jax.jit
        def g(tv, ntv, flat, idx):
            y, _ = km.stateless_call(tv, ntv, keras.ops.take(flat, idx, axis=0), training=False)
            return y

        return _scoped(lambda flat, idx: np.asarray(g(tv, ntv, flat, idx)), "float32")

    def eager(flat, idx):
        if backend == "torch":
            import torch

            with torch.no_grad():
                return keras.ops.convert_to_numpy(run(flat, idx))
        return keras.ops.convert_to_numpy(run(flat, idx))

    return _scoped(eager, "float32")


def mode3x3(labels: Any, n_classes: int, nodata: int = -1) -> Any:
    """The 3 x 3 mode filter of :func:`xfacies.inference.smooth_mode` in ``keras.ops``.

    ``labels`` is an integer ``(H, W)`` tensor; beyond its edges lies nodata.  Class counts
    are one-hot sums over the 3 x 3 box (separable: rows, then columns; exact small integers
    in float32), the mode is the first maximum (ties to the lowest class id, as the
    reference), nodata stays nodata and is never counted (nor are ids >= ``n_classes``).

    Examples
    --------
    >>> import numpy as np
    >>> from xfacies.model.runtime import import_keras, mode3x3
    >>> keras = import_keras()
    >>> lab = np.array([[0, 0, 0], [0, 1, 0], [0, 0, -1]], dtype=np.int32)
    >>> keras.ops.convert_to_numpy(mode3x3(keras.ops.convert_to_tensor(lab), 8)).tolist()
    [[0, 0, 0], [0, 0, 0], [0, 0, -1]]
    """
    ops = import_keras().ops
    counted = ops.where(ops.less(labels, n_classes), labels, ops.cast(nodata, "int32"))
    counts = ops.pad(ops.one_hot(counted, n_classes, dtype="float32"), [[1, 1], [1, 1], [0, 0]])
    counts = counts[:-2] + counts[1:-1] + counts[2:]
    counts = counts[:, :-2] + counts[:, 1:-1] + counts[:, 2:]
    mode = ops.cast(ops.argmax(counts, axis=-1), "int32")
    return ops.where(ops.equal(labels, nodata), ops.cast(nodata, "int32"), mode)


def _divide_exactly(a: Any, d: Any) -> Any:
    """``a / d`` (``d`` broadcast along the last axis), correctly rounded as NumPy's division.

    XLA's simplifier turns a division by a broadcast into a multiplication by the broadcast
    reciprocal (1 ulp off in a third of the pixels), so under JAX the denominator is
    broadcast behind an optimisation barrier, which it cannot see through.
    """
    keras = import_keras()
    if keras.backend.backend() == "jax":
        import jax

        return a / jax.lax.optimization_barrier(jax.numpy.broadcast_to(d, a.shape))
    return a / d


def compiled_dense_block(km: Any, *, n_features: int, halo: int, smooth: bool, confidence: bool,
                         lo: np.ndarray | None = None, hi: np.ndarray | None = None,
                         mode_classes: int = 8, nodata: int = -1,
                         precision: str = DEFAULT_PRECISION,
                         ) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]:
    """One compiled call per dense block: raw features + mask band in, labels out.

    The call takes a float32 ``(F + 1, Hp, Wp)`` block (``F`` raw features, NaN = missing, and
    the glacier mask band, 1 = classify) and, on the device, normalises (``(x - lo) / (hi - lo)``
    in float32, as :meth:`xfacies.Model.normalise`), replaces non-finite values by 0, runs the
    dense network ``km`` (fused, height and width multiples of its pool), takes the argmax,
    sets nodata (``nodata``) where a feature is missing or the mask is not 1, optionally
    applies the 3 x 3 mode filter (:func:`mode3x3`) and crops the ``halo``.  It returns the
    int8 ``(Hp - 2 halo, Wp - 2 halo)`` labels and, with ``confidence``, the float32 maximum
    probability there (NaN at nodata); only these cross back to the host.

    Outputs within the network's receptive field of the block's edges depend on what lies
    beyond them, so ``halo`` must be at least the dense radius (plus one with ``smooth``:
    the mode filter reads the labels one pixel around each pixel it keeps).
    """
    keras = import_keras()
    ops = keras.ops
    check_precision(precision)
    backend = keras.backend.backend()
    F, h = int(n_features), int(halo)
    # As Model.normalise: (x - lo) / (hi - lo), hi - lo in float32.  Without normalisation the
    # identity (lo = 0, den = 1: exact).  lo and den are arguments of the compiled call, not
    # constants: graph optimisers turn a division by a constant into a multiplication by its
    # reciprocal (TensorFlow's does), which is not the same float32 number (see _divide_exactly).
    lo = np.zeros(F, np.float32) if lo is None else np.asarray(lo, dtype=np.float32)
    den = np.ones(F, np.float32) if hi is None else np.asarray(hi, dtype=np.float32) - lo

    def graph(forward: Callable[[Any], Any], block: Any, lo: Any, den: Any) -> tuple[Any, Any]:
        x = ops.transpose(block[:F], (1, 2, 0))
        valid = ops.logical_and(ops.equal(block[F], 1.0), ops.all(ops.isfinite(x), axis=-1))
        x = _divide_exactly(x - lo, den)
        x = ops.where(ops.isfinite(x), x, ops.zeros_like(x))
        p = ops.cast(forward(x[None])[0], "float32")
        labels = ops.where(valid, ops.cast(ops.argmax(p, axis=-1), "int32"), ops.cast(nodata, "int32"))
        if smooth:
            labels = mode3x3(labels, mode_classes, nodata)
        inner = (slice(h, -h), slice(h, -h)) if h else (slice(None), slice(None))
        labels = ops.cast(labels[inner], "int8")
        if not confidence:
            return labels, None
        conf = ops.where(valid, ops.max(p, axis=-1), ops.full_like(p[..., 0], np.nan))
        return labels, conf[inner]

    def to_numpy(out: tuple[Any, Any]) -> tuple[np.ndarray, np.ndarray | None]:
        lab, conf = out
        return (keras.ops.convert_to_numpy(lab),
                None if conf is None else keras.ops.convert_to_numpy(conf))

    if backend == "tensorflow":
        import tensorflow as tf

        f = tf.function(lambda b, lo, den: graph(lambda x: km(x, training=False), b, lo, den),
                        input_signature=[tf.TensorSpec((F + 1, None, None), tf.float32),
                                         tf.TensorSpec((F,), tf.float32), tf.TensorSpec((F,), tf.float32)])
        lo_t, den_t = tf.constant(lo), tf.constant(den)
        return _scoped(lambda b: to_numpy(f(tf.constant(b), lo_t, den_t)), precision)
    if backend == "jax":
        import jax

        tv = [v.value for v in km.trainable_variables]
        ntv = [v.value for v in km.non_trainable_variables]

        @jax.jit
        def g(tv, ntv, b, lo, den):
            return graph(lambda x: km.stateless_call(tv, ntv, x, training=False)[0], b, lo, den)

        lo_j, den_j = jax.numpy.asarray(lo), jax.numpy.asarray(den)
        return _scoped(lambda b: to_numpy(g(tv, ntv, b, lo_j, den_j)), precision)

    def eager(b):
        args = [ops.convert_to_tensor(a) for a in (b, lo, den)]
        if backend == "torch":
            import torch

            with torch.no_grad():
                return to_numpy(graph(lambda x: km(x, training=False), *args))
        return to_numpy(graph(lambda x: km(x, training=False), *args))

    return _scoped(eager, precision)


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


