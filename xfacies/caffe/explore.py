"""Pictures of the CaFFe benchmark: thumbnails and mask overlays, cached on disk.

=====================  ========================================================================
:func:`thumbnail`      a SAR preview of fixed height (aspect kept), cached on disk by source
:func:`overlay`        the SAR with the zone colours blended in and the front line drawn;
                       truth | prediction side by side
=====================  ========================================================================

The HTML gallery built from them is :func:`xfacies.caffe.webpage.gallery`, the FiftyOne dataset
:func:`xfacies.caffe.fiftyone_export.to_fiftyone` (both also ``xfacies.caffe.gallery`` /
``xfacies.caffe.to_fiftyone``).  The helpers they share (:func:`cache_key`, :func:`cached_png`,
:func:`save_png`, :func:`predicted_pair`, :func:`scores_table`, ...) are public here.

Colours are those of :data:`xfacies.catalog.ZONES`; the front line is drawn in
:data:`FRONT_COLOR`.  Everything here works on the nodes of
:func:`xfacies.caffe.open_dataset` (``sar``, ``zones``, ``front``, optional ``bbox`` and the
metadata attributes) and reads pixels only when it has to.

Examples
--------
>>> from xfacies.caffe import make_synthetic, open_dataset
>>> tree = open_dataset(make_synthetic("explore-demo", n=4))
>>> node = tree["COL_2000-02-09_ERS_20_6_637"]
>>> thumbnail(node, height=64).size[1], overlay(node).mode
(64, 'RGB')
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from xfacies.compat import renamed_keywords
from xfacies.errors import InputError
from xfacies.caffe.metrics import finite_or_none
from xfacies.catalog import ZONES

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image as PILImage

__all__ = ["thumbnail", "overlay", "FRONT_COLOR", "FILTER_FIELDS"]

#: Colour of the calving-front line in overlays (the zone colours are those of ``ZONES``).
FRONT_COLOR = "#ff2020"
#: Metadata fields the gallery can filter on (also the URL query keys), in display order.
FILTER_FIELDS: tuple[str, ...] = ("glacier", "split", "satellite", "sensor", "resolution", "quality",
                                  "season", "hemisphere", "year")

_CACHE_VERSION = "1"  # bump to invalidate every cached picture after a rendering change
_GAP = 4  # pixels between the truth and prediction panels


def _rgb(color: str) -> tuple[int, int, int]:
    value = color.lstrip("#")
    if len(value) != 6:
        raise InputError(f"colour {color!r} is not of the form #rrggbb")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _zone_lut() -> np.ndarray:
    """``(n_classes, 3)`` uint8 RGB of each zone class id."""
    lut = np.zeros((max(z.id for z in ZONES) + 1, 3), dtype=np.uint8)
    for z in ZONES:
        lut[z.id] = _rgb(z.color)
    return lut


_ZONE_RGB = _zone_lut()
_FRONT_RGB = np.array(_rgb(FRONT_COLOR), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# inputs


def _as_dataset(obj: Any, what: str) -> xr.Dataset:
    if isinstance(obj, xr.DataTree):
        return obj.to_dataset(inherit=False)
    if isinstance(obj, xr.Dataset):
        return obj
    raise TypeError(f"{what} must be an image node of xfacies.caffe.open_dataset (a DataTree node or "
                    f"Dataset with a 'sar' variable), got {type(obj).__name__}")


def _name_of(obj: Any) -> str | None:
    attrs = getattr(obj, "attrs", {}) or {}
    name = attrs.get("stem") or getattr(obj, "name", None)
    return str(name) if name not in (None, "") else None


def source_of(*objs: Any) -> Path | None:
    for obj in objs:
        src = (getattr(obj, "attrs", {}) or {}).get("source")
        if src:
            return Path(src)
    return None


def check_height(height: Any, what: str = "height") -> int:
    if isinstance(height, bool) or not isinstance(height, (int, np.integer)) or height < 1:
        raise InputError(f"{what}={height!r}: give a positive number of pixels")
    return int(height)


def _read_grey(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im if im.mode == "L" else im.convert("L"), dtype=np.uint8)


class _Sar:
    """Where a SAR image comes from: a name, maybe a source file, and how to get its pixels."""

    def __init__(self, obj: Any) -> None:
        self.source: Path | None = None
        if isinstance(obj, (str, os.PathLike)):
            path = Path(obj)
            if not path.is_file():
                raise FileNotFoundError(f"SAR image {str(path)!r} does not exist")
            self.name, self.source = path.stem, path
            self._load: Callable[[], Any] = lambda: _read_grey(path)
        elif isinstance(obj, (xr.DataTree, xr.Dataset)):
            ds = _as_dataset(obj, "node_or_sar")
            if "sar" not in ds.data_vars:
                raise InputError(f"node {_name_of(obj)!r} has no 'sar' variable "
                                 f"(it holds {sorted(ds.data_vars)})")
            self.name = _name_of(obj) or "sar"
            self.source = source_of(ds["sar"], ds)
            self._load = lambda: ds["sar"].values
        elif isinstance(obj, xr.DataArray):
            self.name = _name_of(obj) or "sar"
            self.source = source_of(obj)
            self._load = lambda: obj.values
        elif isinstance(obj, np.ndarray):
            self.name, self._load = "sar", lambda: obj
        else:
            raise TypeError("node_or_sar must be an image node, a DataArray, a 2-D array or the path of "
                            f"a SAR PNG, got {type(obj).__name__}")
        self._pixels: np.ndarray | None = None

    def pixels(self) -> np.ndarray:
        if self._pixels is None:
            arr = np.asarray(self._load())
            if arr.ndim != 2:
                raise InputError(f"SAR image {self.name!r} must be 2-D (y, x), got shape {arr.shape}")
            if arr.dtype != np.uint8:
                arr = np.clip(np.nan_to_num(arr.astype(np.float64)), 0, 255).astype(np.uint8)
            self._pixels = arr
        return self._pixels

    def key(self, *extra: Any) -> str:
        """A short hash of the source file's identity (path, size, mtime) or of the pixels."""
        return cache_key([self.source] if self._usable_source() else [self.pixels()], *extra)

    def _usable_source(self) -> bool:
        return self.source is not None and self.source.is_file()


def cache_key(sources: list[Any], *extra: Any) -> str:
    """10 hex digits identifying files (path, size, mtime) or arrays (bytes) and ``extra``."""
    h = hashlib.blake2b(digest_size=5)
    h.update(_CACHE_VERSION.encode())
    for src in sources:
        if src is None:
            h.update(b"\0none")
        elif isinstance(src, np.ndarray):
            h.update(f"\0{src.dtype.str}{src.shape}".encode())
            h.update(np.ascontiguousarray(src).tobytes())
        else:
            st = Path(src).stat()
            h.update(f"\0{Path(src).resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    h.update(repr(extra).encode())
    return h.hexdigest()


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "image"


def cached_png(cache_dir: Path, name: str, tag: str, key: str, render: Callable[[], Any]) -> Path:
    """``cache_dir/<name>_<tag>_<key>.png``, rendered only when absent; stale keys are removed."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    base = f"{safe_name(name)}_{tag}_"
    target = cache_dir / f"{base}{key}.png"
    if target.is_file():
        return target
    save_png(render(), target)
    stale = re.compile(re.escape(base) + r"[0-9a-f]{10}\.png")
    for other in cache_dir.iterdir():
        if other != target and stale.fullmatch(other.name):
            other.unlink(missing_ok=True)
    return target


def save_png(image: Any, path: Path) -> Path:
    """Write a PIL image as PNG atomically (a partial file never has the final name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".png", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            image.save(f, format="PNG", compress_level=3)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def width_for(height: int, shape: tuple[int, ...]) -> int:
    return max(1, round(height * shape[1] / shape[0]))


def _resize_grey(grey: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image

    if grey.shape == (height, width):
        return grey
    im = Image.fromarray(np.ascontiguousarray(grey, dtype=np.uint8))
    return np.asarray(im.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=2.0))


# ---------------------------------------------------------------------------------------------
# thumbnail


@renamed_keywords(path="out")
def thumbnail(node_or_sar: Any, out: str | os.PathLike[str] | None = None, *, height: int = 128,
              cache_dir: str | os.PathLike[str] | None = None) -> Path | PILImage.Image:
    """A greyscale SAR preview of fixed height with the image's aspect ratio.

    Parameters
    ----------
    node_or_sar
        An image node of :func:`xfacies.caffe.open_dataset` (DataTree node or Dataset with
        ``sar``), a SAR DataArray, a 2-D uint8 array or the path of a SAR PNG.
    out
        Write the thumbnail to this PNG file and return its path.
    height
        Height in pixels; the width is ``round(height * W / H)`` for an ``H x W`` image
        (Lanczos resampling; no-data pixels stay black).
    cache_dir
        Keep thumbnails in this folder and return the path of the cached PNG.  Its name is
        ``<stem>_h<height>_<key>.png`` where ``key`` hashes the source file's path, size and
        modification time (the pixels when there is no source file), so a changed source gets a
        new thumbnail (the stale one is deleted) and a cache hit reads no pixels at all.

    Returns
    -------
    pathlib.Path or PIL.Image.Image
        The PNG's path when ``out`` or ``cache_dir`` is given, else the image (mode ``"L"``).

    Raises
    ------
    ValueError
        For a bad ``height``, a node without ``sar``, or both ``out`` and ``cache_dir``.

    Examples
    --------
    >>> from xfacies.caffe import make_synthetic, open_dataset
    >>> tree = open_dataset(make_synthetic("explore-thumbnail", n=2, size=(50, 100)))
    >>> node = tree["COL_2000-02-09_ERS_20_6_637"]
    >>> thumbnail(node, height=32).size  # (width, height)
    (64, 32)
    >>> first = thumbnail(node, height=32, cache_dir="explore-thumbnail-cache")
    >>> first.name
    'COL_2000-02-09_ERS_20_6_637_h32_....png'
    >>> thumbnail(node, height=32, cache_dir="explore-thumbnail-cache") == first  # a cache hit: no pixels read
    True
    """
    height = check_height(height)
    if out is not None and cache_dir is not None:
        raise InputError("give either path (write there) or cache_dir (cache by source), not both")
    sar = _Sar(node_or_sar)

    def render() -> Any:
        from PIL import Image

        grey = sar.pixels()
        return Image.fromarray(_resize_grey(grey, height, width_for(height, grey.shape)), mode="L")

    if cache_dir is not None:
        return cached_png(Path(cache_dir), sar.name, f"h{height}", sar.key(height), render)
    image = render()
    if out is not None:
        return save_png(image, Path(out))
    return image


# ---------------------------------------------------------------------------------------------
# overlay


def _metres_per_pixel(*attrs: Mapping[str, Any]) -> float | None:
    for a in attrs:
        v = finite_or_none(a.get("pixel_size")) or finite_or_none(a.get("resolution"))
        if v is not None:
            return v
    return None


def predicted_pair(prediction: Any, truth: xr.Dataset, shape: tuple[int, int]
                ) -> tuple[np.ndarray, np.ndarray]:
    """Predicted ``(zones, front)``; the front from the zones when the prediction has none."""
    from xfacies.caffe.postprocess import check_zones, zones_to_front

    front = None
    attrs: Mapping[str, Any] = {}
    bbox = truth["bbox"] if "bbox" in truth.data_vars else None
    if isinstance(prediction, (xr.DataTree, xr.Dataset)):
        pred = _as_dataset(prediction, "prediction")
        if "zones" not in pred.data_vars:
            raise InputError(f"the prediction has no 'zones' variable (it holds {sorted(pred.data_vars)})")
        zones = pred["zones"].values
        if "front" in pred.data_vars:
            front = np.asarray(pred["front"].values, dtype=bool)
        attrs = pred.attrs
        if bbox is None and "bbox" in pred.data_vars:
            bbox = pred["bbox"]
    elif isinstance(prediction, xr.DataArray):
        zones, attrs = prediction.values, prediction.attrs
    else:
        zones = np.asarray(prediction)
    zones = check_zones(zones, "prediction zones")
    if zones.shape != shape or (front is not None and front.shape != shape):
        got = zones.shape if zones.shape != shape else front.shape  # type: ignore[union-attr]
        raise InputError(f"the prediction is {got} (y, x) but the image is {shape}")
    if front is None:
        res = _metres_per_pixel(truth.attrs, attrs)
        if res is None:
            raise InputError("the prediction has no 'front' and neither the node nor the prediction "
                             "has a finite 'pixel_size' or 'resolution' attr to compute it with "
                             "zones_to_front; give the prediction a 'front'")
        front = np.asarray(zones_to_front(zones, res, bbox), dtype=bool)
    return zones, front


def _resize_line(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """A thin line mask resized so that no line pixel is lost (nearest + every source pixel)."""
    from PIL import Image

    if mask.shape == (height, width):
        return mask
    H, W = mask.shape
    im = Image.fromarray(mask.astype(np.uint8) * np.uint8(255))
    out = np.asarray(im.resize((width, height), Image.Resampling.NEAREST)) > 0
    out = out.copy()
    rows, cols = np.nonzero(mask)
    out[rows * height // H, cols * width // W] = True  # keep every line pixel when shrinking
    return out


def _panel(grey: np.ndarray, zones: np.ndarray | None, front: np.ndarray | None,
           height: int, width: int, alpha: float) -> np.ndarray:
    """RGB of one panel: ``(1 - alpha) * grey + alpha * zone colour``, rounded; front on top."""
    from PIL import Image

    grey = _resize_grey(grey, height, width)
    rgb = np.repeat(grey[..., None].astype(np.float64), 3, axis=2)
    if zones is not None:
        if zones.shape != (height, width):
            zones = np.asarray(Image.fromarray(zones.astype(np.uint8)).resize(
                (width, height), Image.Resampling.NEAREST))
        rgb = (1.0 - alpha) * rgb + alpha * _ZONE_RGB[zones.astype(np.intp)]
    out = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    if front is not None:
        out[_resize_line(front, height, width)] = _FRONT_RGB
    return out


@renamed_keywords(path="out")
def overlay(node: Any, prediction: Any = None, *, height: int | None = None, alpha: float = 0.45,
            out: str | os.PathLike[str] | None = None) -> Path | PILImage.Image:
    """The SAR image with the zone colours blended in and the calving front drawn.

    Parameters
    ----------
    node
        An image node of :func:`xfacies.caffe.open_dataset` with ``sar`` and, for the truth,
        ``zones`` and ``front`` (a node without them shows the plain SAR).
    prediction
        Optional prediction of the same image: a node/Dataset with ``zones`` (class ids 0..3)
        and optionally ``front``, a zones DataArray or a 2-D array.  Without a ``front`` it is
        :func:`~xfacies.caffe.postprocess.zones_to_front` of the zones with the node's
        ``pixel_size`` attr if finite, else its ``resolution``, and the node's ``bbox``.  The
        result is then ``truth | prediction`` side by side with a 4-pixel white gap.
    height
        Height of each panel in pixels (width keeps the aspect); default the image's own.  The
        SAR is resampled with Lanczos, the zones with nearest neighbour, and no front pixel is
        lost when shrinking.
    alpha
        Opacity of the zone colours: each pixel is
        ``rint((1 - alpha) * sar + alpha * colour)`` per channel with the colours of
        :data:`xfacies.catalog.ZONES`; front pixels are :data:`FRONT_COLOR`.
    out
        Write a PNG there and return its path.

    Returns
    -------
    pathlib.Path or PIL.Image.Image
        The path when ``out`` is given, else an RGB image.

    Examples
    --------
    >>> from xfacies.caffe import make_synthetic, open_dataset
    >>> node = open_dataset(make_synthetic("explore-overlay", n=1, size=(60, 90)))[
    ...     "COL_2000-02-09_ERS_20_6_637"]
    >>> overlay(node).size
    (90, 60)
    >>> shifted = node["zones"].roll(x=3)
    >>> overlay(node, shifted, height=30).size  # truth | prediction, 45 + 4 + 45 px
    (94, 30)
    """
    from PIL import Image

    if not (isinstance(alpha, (int, float)) and 0.0 <= float(alpha) <= 1.0):
        raise InputError(f"alpha={alpha!r}: give an opacity between 0 and 1")
    truth = _as_dataset(node, "node")
    if "sar" not in truth.data_vars:
        raise InputError(f"node {_name_of(node)!r} has no 'sar' variable (it holds "
                         f"{sorted(truth.data_vars)})")
    grey = _Sar(truth).pixels()
    shape = grey.shape
    h = shape[0] if height is None else check_height(height)
    w = shape[1] if height is None else width_for(h, shape)
    zones = front = None
    if "zones" in truth.data_vars:
        from xfacies.caffe.postprocess import check_zones

        zones = check_zones(truth["zones"].values, "node zones")
    if "front" in truth.data_vars:
        front = np.asarray(truth["front"].values, dtype=bool)
    panels = [_panel(grey, zones, front, h, w, float(alpha))]
    if prediction is not None:
        pz, pf = predicted_pair(prediction, truth, shape)
        panels.append(_panel(grey, pz, pf, h, w, float(alpha)))
    if len(panels) == 1:
        rgb = panels[0]
    else:
        rgb = np.full((h, 2 * w + _GAP, 3), 255, dtype=np.uint8)
        rgb[:, :w] = panels[0]
        rgb[:, w + _GAP:] = panels[1]
    image = Image.fromarray(rgb, mode="RGB")
    if out is not None:
        return save_png(image, Path(out))
    return image


# ---------------------------------------------------------------------------------------------
# gallery


def predictions_map(predictions: Any) -> dict[str, Any]:
    if predictions is None:
        return {}
    if isinstance(predictions, xr.DataTree):
        return dict(predictions.children)
    if isinstance(predictions, Mapping):
        return {str(k): v for k, v in predictions.items()}
    raise TypeError("predictions must be a DataTree with one node per image or a mapping stem -> "
                    f"Dataset/DataArray of zones, got {type(predictions).__name__}")


def scores_table(scores: pd.DataFrame | None) -> pd.DataFrame | None:
    if scores is None:
        return None
    if not isinstance(scores, pd.DataFrame):
        raise TypeError(f"scores must be a DataFrame indexed by stem, got {type(scores).__name__}")
    if "image" in scores.columns and scores.index.name not in ("stem", "image"):
        scores = scores.set_index("image")  # evaluate(..., per_image=True) has an 'image' column
    scores = scores.copy()
    scores.index = scores.index.astype(str)
    if scores.index.duplicated().any():
        dup = scores.index[scores.index.duplicated()].unique().tolist()[:3]
        raise InputError(f"scores has several rows for the image(s) {dup}; give one row per stem")
    return scores


#: Score columns shown when present (label, format), in order.
SCORE_LABELS: dict[str, tuple[str, str]] = {
    "mde": ("MDE", "{:.0f} {units}"), "hd95": ("HD95", "{:.0f} {units}"), "iou": ("IoU", "{:.3f}"),
}


# ---------------------------------------------------------------------------------------------
# FiftyOne


