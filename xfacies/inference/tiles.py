"""Whole-image and overlapping-tile inference for models that are not translation-exact.

A U-Net's output at a pixel depends on the whole input (pooling phase, zero padding at every
level), so it cannot be cut into halo'd blocks exactly as the translation-exact models are.
:func:`predict_tiled` runs it on the whole image when the image fits in one ``tile``; otherwise
on ``tile x tile`` windows that overlap by ``overlap`` pixels, merged with a Hann (raised-cosine)
weight so that each pixel's probabilities come mostly from tiles where it lies far from the
edge, and no seam shows.  ``tta`` averages the softmax over flips (``"flips"``: 4 views) or
over the 8 rotations and flips (``"d4"``).

Everything here is NumPy around a ``predict(x) -> p`` callable (``(n, H, W, F) -> (n, H, W, C)``),
so it runs inside a dask block like every engine kernel.

Examples
--------
>>> import numpy as np
>>> tile_starts(1000, 512, 128)
[0, 384, 488]
>>> ident = lambda x: np.repeat(x[..., :1], 2, axis=-1)
>>> x = np.random.default_rng(0).random((700, 900, 1)).astype("float32")
>>> p = predict_tiled(ident, x, tile=256, overlap=64, pool=16)
>>> bool(np.allclose(p[..., 0], x[..., 0]))
True
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from xfacies.errors import InputError
from xfacies.model.runtime import DEFAULT_PRECISION, check_precision

__all__ = ["TTA", "tile_starts", "hann_weight", "predict_tiled", "predict_image", "check_tta"]

#: Test-time augmentation modes: the views averaged (``None`` = the image as is).
TTA = (None, "flips", "d4")


def check_tta(tta: str | None) -> str | None:
    """``tta`` if it is a known mode, else a ``ValueError`` listing them."""
    if tta not in TTA:
        raise InputError(f"tta must be one of {list(TTA)}, got {tta!r}: 'flips' averages 4 flipped views, "
                         "'d4' the 8 rotations and flips")
    return tta


def tile_starts(n: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of side ``tile`` covering ``0..n`` with at least ``overlap`` shared
    pixels between neighbours; the last tile ends at ``n``."""
    if n <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, n - tile, step))
    return starts + [n - tile]


def hann_weight(tile: int, overlap: int) -> np.ndarray:
    """``(tile,)`` weights: a raised-cosine ramp over the ``overlap`` pixels at each end, 1 between
    (never 0, so a pixel covered by one tile only keeps its value)."""
    w = np.ones(tile, dtype=np.float64)
    if overlap > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(overlap) + 0.5) / overlap)
        w[:overlap] = ramp
        w[tile - overlap:] = ramp[::-1]
    return np.maximum(w, 1e-3)


def _views(tta: str | None) -> list[tuple[Callable, Callable]]:
    """(forward, inverse) pairs on ``(..., H, W, C)`` arrays."""
    def flip(axes):
        return (lambda a: np.flip(a, axes)), (lambda a: np.flip(a, axes))

    out = [flip(())]
    if tta in ("flips", "d4"):
        out += [flip((-2,)), flip((-3,)), flip((-3, -2))]
    if tta == "d4":
        def rot(k: int, then_flip: bool):
            def fwd(a):
                a = np.rot90(a, k, axes=(-3, -2))
                return np.flip(a, -2) if then_flip else a

            def inv(a):
                a = np.flip(a, -2) if then_flip else a
                return np.rot90(a, -k, axes=(-3, -2))
            return fwd, inv
        out += [rot(1, False), rot(3, False), rot(1, True), rot(3, True)]
    return out


def _pad_to(x: np.ndarray, pool: int) -> np.ndarray:
    H, W = x.shape[:2]
    Hp, Wp = -(-H // pool) * pool, -(-W // pool) * pool
    if (Hp, Wp) == (H, W):
        return x
    return np.pad(x, ((0, Hp - H), (0, Wp - W), (0, 0)))


def _predict_window(predict: Callable, x: np.ndarray, pool: int, tta: str | None) -> np.ndarray:
    """Probabilities ``(H, W, C)`` of one window, padded with zeros (no data) to the pool, TTA-averaged."""
    H, W = x.shape[:2]
    xp = _pad_to(x, pool)
    acc = None
    views = _views(tta)
    for fwd, inv in views:
        v = np.ascontiguousarray(fwd(xp[None]))
        if v.shape[1] % pool or v.shape[2] % pool:  # rotated non-square: pad again
            v = _pad_to(v[0], pool)[None]
        p = inv(np.asarray(predict(v), dtype=np.float64))[0][:xp.shape[0], :xp.shape[1]]
        acc = p if acc is None else acc + p
    return (acc / len(views))[:H, :W].astype(np.float32)


def predict_tiled(predict: Callable, x: np.ndarray, *, tile: int, overlap: int, pool: int = 1,
                  tta: str | None = None) -> np.ndarray:
    """Class probabilities ``(H, W, C)`` of a normalised ``(H, W, F)`` image.

    Parameters
    ----------
    predict
        ``(1, h, w, F) -> (1, h, w, C)`` softmax of the network, for ``h, w`` multiples of ``pool``.
    x
        The normalised image (no data as 0).
    tile, overlap
        Images up to ``tile`` a side run whole; larger ones in ``tile`` windows overlapping by at
        least ``overlap``, merged with :func:`hann_weight` in both directions.
    pool
        Windows are zero-padded to multiples of it (``2**depth`` for a U-Net).
    tta
        ``None``, ``"flips"`` or ``"d4"`` (see :data:`TTA`).

    Returns
    -------
    numpy.ndarray
        float32 probabilities; each pixel's rows sum to 1 (a weighted mean of softmax outputs).
    """
    check_tta(tta)
    H, W = x.shape[:2]
    if H <= tile and W <= tile:
        return _predict_window(predict, x, pool, tta)
    rows, cols = tile_starts(H, tile, overlap), tile_starts(W, tile, overlap)
    th, tw = min(tile, H), min(tile, W)
    wr = hann_weight(th, overlap if len(rows) > 1 else 0)
    wc = hann_weight(tw, overlap if len(cols) > 1 else 0)
    w2 = wr[:, None] * wc[None, :]
    acc = None
    norm = np.zeros((H, W), dtype=np.float64)
    for r in rows:
        for c in cols:
            p = _predict_window(predict, x[r:r + th, c:c + tw], pool, tta).astype(np.float64)
            if acc is None:
                acc = np.zeros((H, W, p.shape[-1]), dtype=np.float64)
            acc[r:r + th, c:c + tw] += p * w2[..., None]
            norm[r:r + th, c:c + tw] += w2
    return (acc / norm[..., None]).astype(np.float32)


def predict_image(model: Any, x: np.ndarray, tta: str | None = None,
                  precision: str = DEFAULT_PRECISION) -> np.ndarray:
    """Probabilities ``(H, W, C)`` of a normalised ``(H, W, F)`` image through a model bundle.

    :func:`predict_tiled` with the bundle's own tiling (``model.tiling``: whole when the image
    fits the tile, else overlapping tiles with a Hann-weighted merge) and its forward pass
    (:meth:`xfacies.Model.forward`); translation-exact models, which have no tiling, run as one
    whole window through their dense form.  ``tta`` ``"flips"`` or ``"d4"`` averages the softmax
    over flipped/rotated views.

    Examples
    --------
    >>> import xfacies                                                      # doctest: +SKIP
    >>> model = xfacies.load_model("caffe-zones")                           # doctest: +SKIP
    >>> predict_image(model, np.zeros((300, 300, 1), "float32")).shape      # doctest: +SKIP
    (300, 300, 4)
    """
    check_precision(precision)
    t = model.tiling

    def forward(v: np.ndarray) -> np.ndarray:
        return model.forward(v, dense=True, precision=precision)

    if t is None:
        return predict_tiled(forward, x, tile=max(x.shape[:2]), overlap=0, pool=model.cnn_config.pool, tta=tta)
    return predict_tiled(forward, x, tile=t["tile"], overlap=t["overlap"], pool=t["pool"], tta=tta)
