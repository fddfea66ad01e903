"""A translation-exact dilated fully convolutional network (the CaFFe zone segmenter).

Every layer is an *unpadded* 3 x 3 convolution (with a dilation), so the output at a pixel
depends only on the ``(2R + 1) x (2R + 1)`` window around it, ``R = sum(dilations)``, and on
nothing else: no pooling phase, no global term, no border padding inside the network.  The
patch form classifies the window's centre; the dense form pads the input by ``R`` zeros once
and runs the same convolutions over the whole block.  Both give the same numbers at every
pixel, scene edges included (there the window holds zeros in normalised space, as the
engine's halo does), so ``method="dense"`` and ``method="exact"`` are one answer.

The weights (kernel, bias per convolution, then the 1 x 1 classifier) are in the same order in
both forms.  Layers use :mod:`keras` only (TensorFlow, JAX and PyTorch backends).

Examples
--------
>>> from xfacies.model.dilated import DilatedConfig
>>> c = DilatedConfig(n_features=1, n_classes=4, filters=8, dilations=(1, 2, 4))
>>> c.patch_radius, c.patch_size
(7, 15)
>>> c.macs_per_pixel(dense=True)
1256
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from xfacies.errors import InputError

__all__ = ["DilatedConfig", "dilated_fcn"]


@dataclass(frozen=True)
class DilatedConfig:
    """Hyper-parameters of the dilated fully convolutional network.

    Parameters
    ----------
    n_features, n_classes
        Input channels and output classes.
    filters
        Channels of every hidden convolution.
    dilations
        Dilation of each unpadded 3 x 3 convolution; the receptive-field radius is their sum.
    """

    n_features: int = 1
    n_classes: int = 4
    filters: int = 16
    dilations: tuple[int, ...] = (1, 1, 2, 4, 8, 16, 32, 1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dilations", tuple(int(d) for d in self.dilations))
        if not self.dilations or min(self.dilations) < 1:
            raise InputError(f"dilations must be positive integers, got {self.dilations}")
        if self.n_features < 1 or self.n_classes < 2 or self.filters < 1:
            raise InputError("n_features and filters must be >= 1 and n_classes >= 2")

    @property
    def patch_radius(self) -> int:
        """Receptive-field radius ``R`` (pixels): the halo of both methods."""
        return sum(self.dilations)

    @property
    def dense_radius(self) -> int:
        """The same as :attr:`patch_radius`: the dense form is exact."""
        return self.patch_radius

    @property
    def patch_size(self) -> int:
        """Side of the window one output pixel sees, ``2R + 1``."""
        return 2 * self.patch_radius + 1

    @property
    def pool(self) -> int:
        """No pooling: blocks of any size (the bundle pads dense blocks to multiples of this)."""
        return 1

    def macs_per_pixel(self, dense: bool) -> int:
        """Multiply-adds per classified pixel (dense form), or per patch (``dense=False``)."""
        F, f, C = self.n_features, self.filters, self.n_classes
        per = 9 * F * f + 9 * f * f * (len(self.dilations) - 1) + f * C
        if dense:
            return per
        # the patch form evaluates every layer on the shrinking window
        side, total = self.patch_size, 0
        for i, d in enumerate(self.dilations):
            side -= 2 * d
            total += side * side * 9 * (F if i == 0 else f) * f
        return total + f * C

    def fuse_weights(self, weights: list) -> list:
        """Inference weights: the same (there is no BatchNorm to fold)."""
        return list(weights)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["dilations"] = list(self.dilations)
        return d


def dilated_fcn(config: DilatedConfig, dense: bool = False, fused: bool = False,
                dtype_policy: str | None = None):
    """Build the patch form (``(P, P, F) -> (C,)``) or the dense form (``(H, W, F) -> (H, W, C)``).

    ``fused`` is accepted for the architecture registry's signature; the network has nothing to
    fuse.  ``dtype_policy`` (e.g. ``"mixed_bfloat16"``) applies to the hidden layers; the
    classifier and its softmax stay float32.
    """
    from xfacies.model.runtime import load_keras

    keras = load_keras()
    layers = keras.layers
    c = config
    dt = {} if dtype_policy is None else {"dtype": dtype_policy}
    R, P = c.patch_radius, c.patch_size
    shape = (None, None, c.n_features) if dense else (P, P, c.n_features)
    x_in = keras.Input(shape=shape, name="features")
    h = layers.ZeroPadding2D(R, name="edge_zeros", **dt)(x_in) if dense else x_in
    for i, d in enumerate(c.dilations):
        h = layers.Conv2D(c.filters, 3, dilation_rate=d, padding="valid", activation="relu",
                          name=f"conv_{i}", **dt)(h)
    out = layers.Conv2D(c.n_classes, 1, activation="softmax", name="probabilities", dtype="float32")(h)
    if not dense:
        out = layers.Reshape((c.n_classes,), name="centre")(out)
    return keras.Model(x_in, out, name="dilated_fcn_dense" if dense else "dilated_fcn")
