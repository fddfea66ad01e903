"""An encoder-decoder (U-Net with an ASPP bottleneck) for zone segmentation with wide context.

The CaFFe benchmark's baseline design: ``depth`` levels of two 3 x 3 convolutions with batch
normalisation and ReLU, each followed by 2 x 2 max pooling; an atrous spatial pyramid pooling
(ASPP) bottleneck (a 1 x 1 branch and dilated 3 x 3 branches, concatenated and projected); a
decoder that upsamples, concatenates the skip connection and convolves twice; a 1 x 1 softmax
classifier.  Unlike :mod:`xfacies.model.dilated` it is **not** translation-exact (pooling phase,
zero padding at every level), so the inference engine runs it on whole images, or on
overlapping tiles merged with a smooth weight (:mod:`xfacies.inference.tiles`); the tile side
and overlap are part of the config, so they travel with the bundle.

Layers are :mod:`keras` only (TensorFlow, JAX and PyTorch backends).

Examples
--------
>>> from xfacies.model.unet import UNetConfig
>>> c = UNetConfig(n_features=1, n_classes=4, base_filters=16, depth=4)
>>> c.pool, c.widths
(16, (16, 32, 64, 128, 256))
>>> c.n_params()
2243268
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from xfacies.errors import InputError

__all__ = ["UNetConfig", "unet"]


@dataclass(frozen=True)
class UNetConfig:
    """Hyper-parameters of the U-Net.

    Parameters
    ----------
    n_features, n_classes
        Input channels and output classes.
    base_filters
        Channels of the first level; each level below doubles them (the bottleneck too).
    depth
        Pooling steps (levels below the first); inputs are padded to multiples of ``2**depth``.
    aspp_rates
        Dilations of the bottleneck's 3 x 3 branches (a 1 x 1 branch is always there).
    dropout
        Dropout before the classifier (training only).
    tile, overlap
        Inference: images up to ``tile`` pixels a side run whole; larger ones run as ``tile``
        tiles overlapping by ``overlap`` pixels, merged with a Hann weight.
    downsample
        The network runs on the input averaged over ``downsample x downsample`` pixels and its
        class scores are upsampled back (bilinear, x2 per step) before the softmax: ``downsample**2`` times
        fewer operations, twice the context per level, at the price of sub-pixel detail.
    normalise
        ``"none"``: the input as it is; ``"image"``: each image (each tile, when tiled) is
        standardised per channel over its valid pixels (value > 0), ``(x - mean) / std``, no data
        staying 0, so that scenes of different brightness and contrast look alike to the network.
    """

    n_features: int = 1
    n_classes: int = 4
    base_filters: int = 16
    depth: int = 4
    aspp_rates: tuple[int, ...] = (2, 4, 6)
    dropout: float = 0.1
    tile: int = 512
    overlap: int = 128
    downsample: int = 1
    normalise: str = "none"

    def __post_init__(self) -> None:
        object.__setattr__(self, "aspp_rates", tuple(int(r) for r in self.aspp_rates))
        if self.n_features < 1 or self.n_classes < 2 or self.base_filters < 1:
            raise InputError("n_features and base_filters must be >= 1 and n_classes >= 2")
        if self.normalise not in ("none", "image"):
            raise InputError(f"normalise must be 'none' or 'image', got {self.normalise!r}")
        if self.downsample not in (1, 2, 4):
            raise InputError(f"downsample must be 1, 2 or 4, got {self.downsample}")
        if not 1 <= self.depth <= 6:
            raise InputError(f"depth must be 1..6 pooling steps, got {self.depth}")
        if self.tile % self.pool or self.tile < 2 * self.pool:
            raise InputError(f"tile={self.tile} must be a multiple of 2**depth = {self.pool} (and >= {2 * self.pool})")
        if not 0 <= self.overlap <= self.tile // 2:
            raise InputError(f"overlap={self.overlap} must be between 0 and tile / 2 = {self.tile // 2}")
        if any(r < 1 for r in self.aspp_rates) or not 0 <= self.dropout < 1:
            raise InputError("aspp_rates must be positive and dropout in [0, 1)")

    @property
    def pool(self) -> int:
        """Input sides must be multiples of this (``downsample * 2**depth``); the engine pads to it."""
        return self.downsample * 2 ** self.depth

    @property
    def widths(self) -> tuple[int, ...]:
        """Channels per level, the bottleneck last."""
        return tuple(self.base_filters * 2 ** i for i in range(self.depth + 1))

    @property
    def translation_exact(self) -> bool:
        return False

    @property
    def patch_radius(self) -> int:
        """The engine's halo for this model: the tile overlap (outputs near a tile's edge are
        down-weighted by the Hann merge, not exact)."""
        return self.overlap

    @property
    def dense_radius(self) -> int:
        return self.overlap

    def n_params(self) -> int:
        """Trainable and batch-norm parameters (what the bundle stores)."""
        w, F, C = self.widths, self.n_features, self.n_classes

        def conv(i: int, o: int, k: int = 3, bias: bool = False) -> int:
            return k * k * i * o + (o if bias else 0)

        bn = 4  # gamma, beta, moving mean, moving variance
        n, c_in = 0, F
        for c in w[:-1]:  # encoder: two conv + BN each
            n += conv(c_in, c) + conv(c, c) + 2 * bn * c
            c_in = c
        b = w[-1]
        n += conv(c_in, b, 1) + bn * b + len(self.aspp_rates) * (conv(c_in, b) + bn * b)
        n += conv((1 + len(self.aspp_rates)) * b, b, 1) + bn * b
        c_in = b
        for c in reversed(w[:-1]):  # decoder: 2x2 transposed conv, then two conv + BN on the concat
            n += conv(c_in, c, 2, bias=True)
            n += conv(2 * c, c) + conv(c, c) + 2 * bn * c
            c_in = c
        return n + conv(c_in, C, 1, bias=True)

    def macs_per_pixel(self, dense: bool = True) -> int:
        """Multiply-adds per output pixel of a whole image (convolutions only; level ``i`` runs on
        ``4**-i`` of the pixels, all of them on ``downsample**-2``)."""
        w, total, c_in = self.widths, 0.0, self.n_features
        for i, c in enumerate(w[:-1]):
            total += (9 * c_in * c + 9 * c * c) / 4 ** i
            c_in = c
        b = w[-1]
        total += (c_in * b + 9 * c_in * b * len(self.aspp_rates) + (1 + len(self.aspp_rates)) * b * b) / 4 ** self.depth
        c_in = b
        for i in reversed(range(self.depth)):
            c = w[i]
            total += (c_in * c + 18 * c * c + 9 * c * c) / 4 ** i  # 2x2 transposed conv: c_in*c per output pixel
            c_in = c
        return int((total + c_in * self.n_classes) / self.downsample ** 2)

    def fuse_weights(self, weights: list) -> list:
        """Inference weights: the same (batch norm runs in inference mode)."""
        return list(weights)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["aspp_rates"] = list(self.aspp_rates)
        return d


def _bilinear_layer(keras):
    """``x2`` bilinear upsampling (half-pixel centres, edges clamped, as
    ``UpSampling2D(2, interpolation="bilinear")``) written as a nearest ``x2`` repeat followed by
    the separable ``[1/4, 1/2, 1/4]`` filter: no weights, and no shape arithmetic, so it traces
    once for every input size on every backend."""

    class Bilinear2x(keras.layers.Layer):
        def call(self, x):
            ops = keras.ops
            y = ops.repeat(ops.repeat(x, 2, axis=1), 2, axis=2)
            y = ops.pad(y, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="symmetric")
            y = 0.25 * y[:, :-2] + 0.5 * y[:, 1:-1] + 0.25 * y[:, 2:]
            return 0.25 * y[:, :, :-2] + 0.5 * y[:, :, 1:-1] + 0.25 * y[:, :, 2:]

        def compute_output_shape(self, input_shape):
            b, h, w, c = input_shape
            return (b, None if h is None else 2 * h, None if w is None else 2 * w, c)

    return Bilinear2x


def _standardise_layer(keras):
    """Per image and channel: ``(x - mean) / std`` over the valid pixels (``x > 0``); no data stays 0."""

    class ImageStandardise(keras.layers.Layer):
        def call(self, x):
            ops = keras.ops
            valid = ops.cast(x > 0, x.dtype)
            n = ops.maximum(ops.sum(valid, axis=(1, 2), keepdims=True), 1.0)
            mean = ops.sum(x * valid, axis=(1, 2), keepdims=True) / n
            var = ops.sum(ops.square(x - mean) * valid, axis=(1, 2), keepdims=True) / n
            return (x - mean) / ops.sqrt(var + 1e-6) * valid

        def compute_output_shape(self, input_shape):
            return input_shape

    return ImageStandardise


def unet(config: UNetConfig, dense: bool = True, fused: bool = False, dtype_policy: str | None = None):
    """Build the U-Net, ``(H, W, F) -> (H, W, C)`` softmax, for any ``H, W`` multiple of ``2**depth``.

    ``dense`` and ``fused`` are accepted for the architecture registry's signature: there is one
    form.  ``dtype_policy`` (e.g. ``"mixed_bfloat16"``) applies to the hidden layers; the
    classifier and its softmax stay float32.
    """
    from xfacies.model.runtime import load_keras

    keras = load_keras()
    L = keras.layers
    c = config
    dt = {} if dtype_policy is None else {"dtype": dtype_policy}

    def block(h, filters: int, name: str):
        for j in (1, 2):
            h = L.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{j}", **dt)(h)
            h = L.BatchNormalization(name=f"{name}_bn{j}", **dt)(h)
            h = L.Activation("relu", name=f"{name}_relu{j}", **dt)(h)
        return h

    x_in = keras.Input(shape=(None, None, c.n_features), name="features")
    h, skips = x_in, []
    if c.normalise == "image":
        h = _standardise_layer(keras)(name="standardise", dtype="float32")(h)
    if c.downsample > 1:
        h = L.AveragePooling2D(c.downsample, name="downsample", **dt)(h)
    for i, f in enumerate(c.widths[:-1]):
        h = block(h, f, f"enc{i}")
        skips.append(h)
        h = L.MaxPooling2D(2, name=f"pool{i}", **dt)(h)
    b = c.widths[-1]

    def branch(h, k: int, rate: int, name: str):
        h = L.Conv2D(b, k, dilation_rate=rate, padding="same", use_bias=False, name=f"{name}_conv", **dt)(h)
        h = L.BatchNormalization(name=f"{name}_bn", **dt)(h)
        return L.Activation("relu", name=f"{name}_relu", **dt)(h)

    parts = [branch(h, 1, 1, "aspp_1x1")] + [branch(h, 3, r, f"aspp_r{r}") for r in c.aspp_rates]
    h = L.Concatenate(name="aspp_concat", **dt)(parts)
    h = branch(h, 1, 1, "aspp_project")
    for i in reversed(range(c.depth)):
        f = c.widths[i]
        h = L.Conv2DTranspose(f, 2, strides=2, name=f"up{i}", **dt)(h)
        h = L.Concatenate(name=f"skip{i}", **dt)([h, skips[i]])
        h = block(h, f, f"dec{i}")
    if c.dropout:
        h = L.SpatialDropout2D(c.dropout, name="dropout", **dt)(h)
    if c.downsample > 1:
        h = L.Conv2D(c.n_classes, 1, name="scores", dtype="float32")(h)
        Bilinear2x = _bilinear_layer(keras)
        for i in range(c.downsample.bit_length() - 1):
            h = Bilinear2x(name=f"upsample{i}", dtype="float32")(h)
        out = L.Activation("softmax", name="probabilities", dtype="float32")(h)
    else:
        out = L.Conv2D(c.n_classes, 1, activation="softmax", name="probabilities", dtype="float32")(h)
    return keras.Model(x_in, out, name="unet")
