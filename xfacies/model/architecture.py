"""The reference patch CNN and its fully convolutional (dense) twin, in Keras 3.

Both builders create *the same weights in the same order* (conv/BN pairs of
scale 1, conv/BN pairs of scale 2, then the three Dense layers), so

* the reference's legacy Keras-2 ``*_weights.h5`` files load into the patch
  model unchanged with ``model.load_weights(path)``, and
* ``dense.set_weights(patch.get_weights())`` gives the fully convolutional
  form with identical weights.

Custom operations use :mod:`keras.ops` only, so the models run on the
TensorFlow, JAX and PyTorch backends.

Construction of the dense form (for a patch of size ``P = 33`` and pool
``k = 3``): the stride-``k`` max pool becomes a stride-1 ``k x k`` max pool,
the scale-2 convolutions become convolutions with dilation ``k``, the two
centre taps become the identity (every pixel is a centre), and the global max
over the ``P/k x P/k`` pooled map becomes a max over the lattice of offsets
``-15, -12, ..., 15`` around each pixel.  Taps 1 and 2 are exact; the global
max term is not (inside a patch the 'same' zero padding at the patch border
changes most cells), which is why :mod:`xfacies.inference` offers both
``method="dense"`` and ``method="exact"``.  The fused (inference) dense form
computes scale 2 on the ``k x k`` interleaved sub-lattices as a batch, where
the dilated convolutions are plain ones: the same numbers, faster.

Examples
--------
>>> from xfacies.model.architecture import reference_cnn
>>> m = reference_cnn(n_features=6)            # doctest: +SKIP
>>> m.input_shape                               # doctest: +SKIP
(None, 33, 33, 6)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from xfacies.model.runtime import load_keras
from xfacies.errors import InputError

__all__ = ["CNNConfig", "reference_cnn", "ARCHITECTURES", "build"]


@dataclass(frozen=True)
class CNNConfig:
    """Hyper-parameters of the reference CNN family.

    The published model is ``CNNConfig(n_features=11)`` (197k parameters); the
    demo model uses fewer filters.
    """

    n_features: int
    n_classes: int = 8
    filters: int = 64
    convs_per_scale: int = 3
    pool: int = 3
    patch_size: int = 33
    dense_units: int = 32
    n_dense: int = 2
    dropout: float = 0.5
    bn_epsilon: float = 1e-3
    translation_exact: bool = False

    def __post_init__(self) -> None:
        n, k, P = self.convs_per_scale, self.pool, self.patch_size
        if self.translation_exact:
            s1 = P - 2 * n  # unpadded scale-1 map
            if s1 <= 0 or s1 % k or (s1 // k) % 2 == 0 or s1 // k - 2 * n < 1:
                raise InputError(
                    f"translation_exact: patch_size={P} minus 2 x {n} unpadded convolutions must be an "
                    f"odd multiple of pool={k} that leaves >= 1 cell after {n} more (e.g. 33 with 3 and 3)")
        elif P % k or (P // k) % 2 == 0:
            raise InputError(
                f"patch_size={P} must be an odd multiple of pool={k}"
            )
        if self.n_features < 1 or self.n_classes < 2:
            raise InputError("n_features must be >= 1 and n_classes >= 2")

    @property
    def patch_radius(self) -> int:
        """Half the patch size: the halo of ``method="exact"``."""
        return self.patch_size // 2

    @property
    def scale2_cells(self) -> int:
        """Side of the scale-2 map of a patch, over which the global max is taken (11 for the
        reference, 3 for the translation-exact member)."""
        n, k, P = self.convs_per_scale, self.pool, self.patch_size
        return (P - 2 * n) // k - 2 * n if self.translation_exact else P // k

    @property
    def dense_radius(self) -> int:
        """Receptive-field radius of the dense form (28 px for the reference, the patch radius
        16 for the translation-exact member)."""
        if self.translation_exact:
            return self.patch_radius
        n, k = self.convs_per_scale, self.pool
        lattice = (self.patch_size // k - 1) // 2
        return n + k // 2 + n * k + lattice * k

    def macs_per_pixel(self, dense: bool) -> int:
        """Multiply-adds per classified pixel: of the dense form, or of one 33 x 33 patch.

        Examples
        --------
        >>> CNNConfig(n_features=11).macs_per_pixel(dense=True)
        198080
        """
        F, f, n, k, P, d, C = (self.n_features, self.filters, self.convs_per_scale, self.pool,
                               self.patch_size, self.dense_units, self.n_classes)
        s1 = 9 * (F * f + f * f * (n - 1))
        s2 = 9 * f * f * n
        head = 3 * f * d + d * d * (self.n_dense - 1) + d * C
        if dense:
            return s1 + s2 + head
        if not self.translation_exact:
            return P * P * s1 + (P // k) ** 2 * s2 + head
        # unpadded: every convolution of the patch runs on a map 2 px smaller than its input
        total, side = 0, P
        for i in range(n):
            side -= 2
            total += side * side * 9 * (F if i == 0 else f) * f
        side //= k
        for _ in range(n):
            side -= 2
            total += side * side * 9 * f * f
        return total + head

    def fuse_weights(self, weights: list) -> list:
        """Inference weights: each BatchNorm folded into its convolution (:func:`fold_batchnorm`)."""
        return fold_batchnorm(weights, self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _make_layers():
    """Custom layers, defined lazily so that importing xfacies never imports keras."""
    keras = load_keras()
    ops = keras.ops

    class CentreTap(keras.layers.Layer):
        """Take the feature vector at one (row, col) of a (N, H, W, C) map."""

        def __init__(self, row: int, col: int, **kwargs):
            super().__init__(**kwargs)
            self.row, self.col = int(row), int(col)

        def call(self, x):
            return x[:, self.row, self.col, :]

        def compute_output_shape(self, input_shape):
            return (input_shape[0], input_shape[-1])

        def get_config(self):
            return {**super().get_config(), "row": self.row, "col": self.col}

    class LatticeMax(keras.layers.Layer):
        """Max over the lattice ``{-r*s, ..., r*s}^2`` of offsets around every pixel.

        Positions outside the map are ignored (as the global max of a patch
        ignores what lies outside the patch).  Separable: rows then columns.  Step 1 (the
        fused dense form, on sub-lattices) is a stride-1 ``keras.ops.max_pool`` per axis;
        larger steps (the dilated dense form) take maxima of shifted slices.
        """

        def __init__(self, radius: int, step: int, **kwargs):
            super().__init__(**kwargs)
            self.radius, self.step = int(radius), int(step)

        def call(self, x):
            r, s = self.radius, self.step
            if s == 1:
                # One window-max op per axis (a reduce-window: XLA, cuDNN and TF each have one):
                # 'same' padding pads with -inf, which ignores what lies outside the map, so the
                # numbers are those of the slicing below, bit for bit, with 2 ops instead of ~10.
                x = ops.max_pool(x, (2 * r + 1, 1), strides=1, padding="same")
                return ops.max_pool(x, (1, 2 * r + 1), strides=1, padding="same")
            return self._max_along(self._max_along(x, 1), 2)

        def _max_along(self, x, axis):
            # Max over offsets {-r*s, ..., r*s} (2r+1 taps) by doubling on a shrinking array:
            # after each step `out[i]` is the max over offsets {0, s, ..., (m-1)*s} from i, for
            # m = 1, 2, 4, ...; a last step tops it up to 2r+1 taps.  log2(2r+1) + 1 maxima
            # instead of 2r, and a single padding copy.
            r, s = self.radius, self.step
            taps = 2 * r + 1
            widths = [[0, 0]] * 4
            widths[axis] = [r * s, r * s]
            out = ops.pad(x, widths, constant_values=-3.0e38)

            def step(t, k):
                lo = [slice(None)] * 4
                hi = [slice(None)] * 4
                lo[axis] = slice(0, -k)
                hi[axis] = slice(k, None)
                return ops.maximum(t[tuple(lo)], t[tuple(hi)])

            m = 1
            while 2 * m <= taps:
                out = step(out, m * s)
                m *= 2
            if m < taps:
                out = step(out, (taps - m) * s)
            return out

        def get_config(self):
            return {**super().get_config(), "radius": self.radius, "step": self.step}

    class ToLattice(keras.layers.Layer):
        """``(N, k*H, k*W, C) -> (k*k*N, H, W, C)``: the ``k x k`` interleaved sub-lattices of a
        map as a batch, so that a convolution with dilation ``k`` becomes a plain convolution
        of each sub-lattice (faster on CPU) and a max over lattice offsets a max over
        neighbours.  Height and width must be multiples of ``k``."""

        def __init__(self, step: int, **kwargs):
            super().__init__(**kwargs)
            self.step = int(step)

        def call(self, x):
            k = self.step
            s = ops.shape(x)
            h, w, c = s[1] // k, s[2] // k, s[3]
            x = ops.reshape(x, (-1, h, k, w, k, c))
            x = ops.transpose(x, (2, 4, 0, 1, 3, 5))
            return ops.reshape(x, (-1, h, w, c))

        def compute_output_shape(self, input_shape):
            n, h, w, c = input_shape
            k = self.step
            return (None if n is None else n * k * k, None if h is None else h // k,
                    None if w is None else w // k, c)

        def get_config(self):
            return {**super().get_config(), "step": self.step}

    class FromLattice(ToLattice):
        """The inverse of :class:`ToLattice`: ``(k*k*N, H, W, C) -> (N, k*H, k*W, C)``."""

        def call(self, x):
            k = self.step
            s = ops.shape(x)
            h, w, c = s[1], s[2], s[3]
            x = ops.reshape(x, (k, k, -1, h, w, c))
            x = ops.transpose(x, (2, 3, 0, 4, 1, 5))
            return ops.reshape(x, (-1, h * k, w * k, c))

        def compute_output_shape(self, input_shape):
            n, h, w, c = input_shape
            k = self.step
            return (None if n is None else n // (k * k), None if h is None else h * k,
                    None if w is None else w * k, c)

    return CentreTap, LatticeMax, ToLattice, FromLattice


def reference_cnn(
    n_features: int | None = None,
    *,
    config: CNNConfig | None = None,
    dense: bool = False,
    fused: bool = False,
    dtype_policy: str | None = None,
    **kwargs: Any,
):
    """Build the reference patch CNN (or its dense twin) as a ``keras.Model``.

    Parameters
    ----------
    n_features
        Number of input channels (6, 8, 10 or 11 for the reference sets).
    config
        A full :class:`CNNConfig`; alternative to ``n_features`` + keyword overrides.
    dense
        ``False``: input ``(N, P, P, F)`` patches -> ``(N, n_classes)`` softmax.
        ``True``: input ``(N, H, W, F)`` -> ``(N, H, W, n_classes)``: the fully
        convolutional form (same weights, same order).
    fused
        Inference-only variant with every BatchNorm folded into its convolution
        (fewer passes over memory); load it with :func:`fold_batchnorm` weights.
        The fused dense form runs scale 2 on the pool's sub-lattices and needs a
        height and width that are multiples of ``pool``
        (:meth:`xfacies.Model.predict_dense_normalised` pads to them).
    dtype_policy
        Keras dtype policy of every layer but the last (``None``: the global policy, float32 by
        default).  ``"mixed_bfloat16"`` computes in bfloat16 with float32 weights; the last
        Dense layer and its softmax stay float32 either way, so probabilities are float32.

    Examples
    --------
    >>> patch = reference_cnn(11)                                  # doctest: +SKIP
    >>> patch.load_weights("0_cnn_afterconfidentlearning_weights.h5")  # doctest: +SKIP
    >>> dense = reference_cnn(11, dense=True)                      # doctest: +SKIP
    >>> dense.set_weights(patch.get_weights())                     # doctest: +SKIP
    """
    if config is None:
        if n_features is None:
            raise TypeError("reference_cnn() needs n_features or config")
        config = CNNConfig(n_features=int(n_features), **kwargs)
    keras = load_keras()
    layers = keras.layers
    CentreTap, LatticeMax, ToLattice, FromLattice = _make_layers()
    dt = {} if dtype_policy is None else {"dtype": dtype_policy}
    c = config
    P, k = c.patch_size, c.pool
    if dense:
        x_in = keras.Input(shape=(None, None, c.n_features), name="features")
    else:
        x_in = keras.Input(shape=(P, P, c.n_features), name="features")
    if c.translation_exact:
        return _translation_exact(keras, c, x_in, dense=dense, fused=fused, dt=dt)

    block = _conv_block(layers, c, "same", fused, dt)

    h = x_in
    for i in range(c.convs_per_scale):
        h = block(h, 1, f"s1_{i}")
    centre1 = P // 2
    tap1 = h if dense else CentreTap(centre1, centre1, name="tap1", **dt)(h)
    if dense:
        h = layers.MaxPooling2D(k, strides=1, padding="same", name="pool", **dt)(h)
    else:
        h = layers.MaxPooling2D(k, strides=k, padding="valid", name="pool", **dt)(h)
    n2 = P // k
    # The fused (inference) dense form runs scale 2 on the k x k sub-lattices as a batch:
    # plain convolutions instead of dilated ones and a max over neighbours instead of lattice
    # offsets (same numbers, ~13 % less time for the whole model on CPU).  Needs height and
    # width multiples of k.
    lattice = dense and fused
    if lattice:
        h = ToLattice(k, name="to_lattice", **dt)(h)
    for i in range(c.convs_per_scale):
        h = block(h, k if dense and not lattice else 1, f"s2_{i}")
    if lattice:
        tap2 = FromLattice(k, name="tap2", **dt)(h)
        gmax = FromLattice(k, name="from_lattice", **dt)(
            LatticeMax((n2 - 1) // 2, 1, name="global_max", **dt)(h))
    elif dense:
        tap2 = h
        gmax = LatticeMax((n2 - 1) // 2, k, name="global_max", **dt)(h)
    else:
        tap2 = CentreTap(n2 // 2, n2 // 2, name="tap2", **dt)(h)
        gmax = layers.GlobalMaxPooling2D(name="global_max", **dt)(h)
    out = _head(layers, c, tap1, tap2, gmax, dt)
    name = ("reference_cnn_dense" if dense else "reference_cnn") + ("_fused" if fused else "")
    return keras.Model(x_in, out, name=name)


def _conv_block(layers, c: CNNConfig, padding: str, fused: bool, dt: dict):
    """The family's convolution block, Conv2D 3 x 3 (``padding``, a dilation) -> BatchNorm (folded
    away when ``fused``) -> ELU, as a function ``block(h, dilation, name)``."""

    def block(h, dilation: int, name: str):
        h = layers.Conv2D(c.filters, 3, padding=padding, dilation_rate=dilation,
                          use_bias=True, name=f"{name}_conv", **dt)(h)
        if not fused:
            h = layers.BatchNormalization(epsilon=c.bn_epsilon, name=f"{name}_bn", **dt)(h)
        return layers.ELU(alpha=1.0, name=f"{name}_elu", **dt)(h)

    return block


def _head(layers, c: CNNConfig, tap1, tap2, gmax, dt: dict):
    """The family's head: [tap 1, tap 2, global max] -> dropout -> Dense/ELU/dropout x n -> softmax.
    Per pixel in the dense forms (``Dense`` acts on the last axis)."""
    z = layers.Concatenate(axis=-1, name="concat", **dt)([tap1, tap2, gmax])
    z = layers.Dropout(c.dropout, name="dropout_0", **dt)(z)
    for i in range(c.n_dense):
        z = layers.Dense(c.dense_units, name=f"dense_{i}", **dt)(z)
        z = layers.ELU(alpha=1.0, name=f"dense_{i}_elu", **dt)(z)
        z = layers.Dropout(c.dropout, name=f"dropout_{i + 1}", **dt)(z)
    # float32 whatever the policy: logits and softmax of reduced-precision activations
    return layers.Dense(c.n_classes, activation="softmax", name="probabilities", dtype="float32")(z)


def _translation_exact(keras, c: CNNConfig, x_in, *, dense: bool, fused: bool, dt: dict):
    """The translation-exact member of the reference family (``CNNConfig(translation_exact=True)``).

    The same layers, weights and order as :func:`reference_cnn`, with *unpadded* convolutions: a
    33 x 33 patch gives a 27 x 27 scale-1 map (tap 1 at its centre), pooled 3 x 3 / stride 3 to
    9 x 9, a 3 x 3 scale-2 map (tap 2 at its centre) and the global max over those 9 cells.  No
    layer sees padding, so every number depends only on the patch.  The dense form pads the
    scene by the patch radius once (zeros in normalised space, as a patch at the scene edge is),
    runs the scale-1 convolutions unpadded, the pool with stride 1, the scale-2 convolutions
    unpadded with dilation 3, and takes the max over the lattice offsets {-3, 0, 3}^2: the cells
    the patch pools.  Taps are crops that align every map on the output pixel.  Its outputs equal
    the patch model's at every pixel, scene edges included.
    """
    layers = keras.layers
    CentreTap, LatticeMax, ToLattice, FromLattice = _make_layers()
    n, k = c.convs_per_scale, c.pool
    R = c.patch_radius

    block = _conv_block(layers, c, "valid", fused, dt)

    h = layers.ZeroPadding2D(R, name="scene_edge", **dt)(x_in) if dense else x_in
    for i in range(n):
        h = block(h, 1, f"s1_{i}")
    m1 = R - n  # margin of the scale-1 map around the output pixels (dense) / its centre (patch)
    if dense:
        tap1 = layers.Cropping2D(m1, name="tap1", **dt)(h)
        h = layers.MaxPooling2D(k, strides=1, padding="valid", name="pool", **dt)(h)
    else:
        tap1 = CentreTap(m1, m1, name="tap1", **dt)(h)
        h = layers.MaxPooling2D(k, strides=k, padding="valid", name="pool", **dt)(h)
    # The fused (inference) dense form runs scale 2 on the pool's k x k sub-lattices as a batch:
    # plain unpadded convolutions instead of dilated ones, the same numbers (as the reference's
    # fused form).  The sides are multiples of k there when the input's are (the bundle pads).
    lattice = dense and fused
    if lattice:
        h = ToLattice(k, name="to_lattice", **dt)(h)
    for i in range(n):
        h = block(h, k if dense and not lattice else 1, f"s2_{i}")
    cells = c.scale2_cells
    if dense:
        m2 = (cells // 2) * k  # the scale-2 map's margin: the lattice offsets of the global max
        if lattice:
            g = FromLattice(k, name="from_lattice", **dt)(LatticeMax(cells // 2, 1, name="global_max", **dt)(h))
            h = FromLattice(k, name="scale2", **dt)(h)
        else:
            g = LatticeMax(cells // 2, k, name="global_max", **dt)(h)
        tap2 = layers.Cropping2D(m2, name="tap2", **dt)(h)
        gmax = layers.Cropping2D(m2, name="global_max_crop", **dt)(g)
    else:
        tap2 = CentreTap(cells // 2, cells // 2, name="tap2", **dt)(h)
        gmax = layers.GlobalMaxPooling2D(name="global_max", **dt)(h)
    out = _head(layers, c, tap1, tap2, gmax, dt)
    name = ("translation_exact_cnn_dense" if dense else "translation_exact_cnn") + ("_fused" if fused else "")
    return keras.Model(x_in, out, name=name)


def fold_batchnorm(weights: list, config: CNNConfig) -> list:
    """Fold each BatchNorm into the convolution before it (inference only).

    ``y = gamma (conv(x) + b - mean) / sqrt(var + eps) + beta`` equals a convolution
    with kernel ``k * s`` and bias ``(b - mean) * s + beta``, ``s = gamma / sqrt(var + eps)``.
    Takes and returns weight lists in ``get_weights()`` order (unfused -> fused model).
    """
    import numpy as np

    out = []
    n_blocks = 2 * config.convs_per_scale
    for i in range(n_blocks):
        k, b, gamma, beta, mean, var = weights[6 * i:6 * i + 6]
        scale = gamma / np.sqrt(var + config.bn_epsilon)
        out += [(k * scale).astype(k.dtype), ((b - mean) * scale + beta).astype(b.dtype)]
    return out + list(weights[6 * n_blocks:])


#: Architecture registry: name -> (config class, builder).  Bundles store the
#: name and the config, so new architectures are added here, not in the bundle.
def _dilated(config, dense: bool = False, fused: bool = False, dtype_policy: str | None = None):
    from xfacies.model.dilated import dilated_fcn

    return dilated_fcn(config, dense=dense, fused=fused, dtype_policy=dtype_policy)


def _dilated_config(**config):
    from xfacies.model.dilated import DilatedConfig

    return DilatedConfig(**config)


def _unet(config, dense: bool = True, fused: bool = False, dtype_policy: str | None = None):
    from xfacies.model.unet import unet

    return unet(config, dense=dense, fused=fused, dtype_policy=dtype_policy)


def _unet_config(**config):
    from xfacies.model.unet import UNetConfig

    return UNetConfig(**config)


def _exact_config(**config) -> CNNConfig:
    return CNNConfig(**{**config, "translation_exact": True})


ARCHITECTURES: dict[str, tuple[Any, Any]] = {
    "reference-cnn": (CNNConfig, reference_cnn),
    # the reference family with unpadded convolutions: dense == exact at every pixel
    "translation-exact": (_exact_config, reference_cnn),
    "dilated-fcn": (_dilated_config, _dilated),
    # an encoder-decoder with wide context; not translation-exact (tiled inference)
    "unet": (_unet_config, _unet),
}


def build(name: str, config: dict[str, Any], *, dense: bool = False, fused: bool = False,
          dtype_policy: str | None = None):
    """Build a registered architecture from its name and config dict.

    ``dtype_policy`` (e.g. ``"mixed_bfloat16"``) is passed to builders that take it; ``None``
    and ``"float32"`` build the plain float32 model.
    """
    if name not in ARCHITECTURES:
        raise InputError(
            f"unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}. "
            "The bundle may come from a newer xfacies: upgrade xfacies."
        )
    cfg_cls, builder = ARCHITECTURES[name]
    kw = {} if dtype_policy in (None, "float32") else {"dtype_policy": dtype_policy}
    return builder(config=cfg_cls(**config), dense=dense, fused=fused, **kw)
