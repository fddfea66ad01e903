"""Browse the CaFFe benchmark: thumbnails, mask overlays, a static HTML gallery, FiftyOne.

=====================  ========================================================================
:func:`thumbnail`      a SAR preview of fixed height (aspect kept), cached on disk by source
:func:`overlay`        the SAR with the zone colours blended in and the front line drawn;
                       truth | prediction side by side
:func:`gallery`        a static, self-contained HTML gallery (no server, no network) of
                       thumbnail cards with the metadata, filters, text search and overlays
:func:`to_fiftyone`    a FiftyOne dataset (optional extra: ``pip install fiftyone``)
=====================  ========================================================================

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
>>> page = gallery(tree, "explore-demo-site")
>>> page.name, sorted(p.name for p in page.parent.iterdir())
('index.html', ['index.html', 'overlays', 'thumbnails'])
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import html
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import xarray as xr

from xfacies.compat import renamed_keywords
from xfacies.errors import InputError
from xfacies.caffe.metrics import finite_or_none
from xfacies.catalog import ZONES

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image as PILImage

__all__ = ["thumbnail", "overlay", "gallery", "to_fiftyone", "FRONT_COLOR", "FILTER_FIELDS"]

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


def _source_of(*objs: Any) -> Path | None:
    for obj in objs:
        src = (getattr(obj, "attrs", {}) or {}).get("source")
        if src:
            return Path(src)
    return None


def _check_height(height: Any, what: str = "height") -> int:
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
            self.source = _source_of(ds["sar"], ds)
            self._load = lambda: ds["sar"].values
        elif isinstance(obj, xr.DataArray):
            self.name = _name_of(obj) or "sar"
            self.source = _source_of(obj)
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
        return _key([self.source] if self._usable_source() else [self.pixels()], *extra)

    def _usable_source(self) -> bool:
        return self.source is not None and self.source.is_file()


def _key(sources: list[Any], *extra: Any) -> str:
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


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "image"


def _cached(cache_dir: Path, name: str, tag: str, key: str, render: Callable[[], Any]) -> Path:
    """``cache_dir/<name>_<tag>_<key>.png``, rendered only when absent; stale keys are removed."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    base = f"{_safe(name)}_{tag}_"
    target = cache_dir / f"{base}{key}.png"
    if target.is_file():
        return target
    _save(render(), target)
    stale = re.compile(re.escape(base) + r"[0-9a-f]{10}\.png")
    for other in cache_dir.iterdir():
        if other != target and stale.fullmatch(other.name):
            other.unlink(missing_ok=True)
    return target


def _save(image: Any, path: Path) -> Path:
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


def _width_for(height: int, shape: tuple[int, ...]) -> int:
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
    height = _check_height(height)
    if out is not None and cache_dir is not None:
        raise InputError("give either path (write there) or cache_dir (cache by source), not both")
    sar = _Sar(node_or_sar)

    def render() -> Any:
        from PIL import Image

        grey = sar.pixels()
        return Image.fromarray(_resize_grey(grey, height, _width_for(height, grey.shape)), mode="L")

    if cache_dir is not None:
        return _cached(Path(cache_dir), sar.name, f"h{height}", sar.key(height), render)
    image = render()
    if out is not None:
        return _save(image, Path(out))
    return image


# ---------------------------------------------------------------------------------------------
# overlay


def _metres_per_pixel(*attrs: Mapping[str, Any]) -> float | None:
    for a in attrs:
        v = finite_or_none(a.get("pixel_size")) or finite_or_none(a.get("resolution"))
        if v is not None:
            return v
    return None


def _prediction(prediction: Any, truth: xr.Dataset, shape: tuple[int, int]
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
    h = shape[0] if height is None else _check_height(height)
    w = shape[1] if height is None else _width_for(h, shape)
    zones = front = None
    if "zones" in truth.data_vars:
        from xfacies.caffe.postprocess import check_zones

        zones = check_zones(truth["zones"].values, "node zones")
    if "front" in truth.data_vars:
        front = np.asarray(truth["front"].values, dtype=bool)
    panels = [_panel(grey, zones, front, h, w, float(alpha))]
    if prediction is not None:
        pz, pf = _prediction(prediction, truth, shape)
        panels.append(_panel(grey, pz, pf, h, w, float(alpha)))
    if len(panels) == 1:
        rgb = panels[0]
    else:
        rgb = np.full((h, 2 * w + _GAP, 3), 255, dtype=np.uint8)
        rgb[:, :w] = panels[0]
        rgb[:, w + _GAP:] = panels[1]
    image = Image.fromarray(rgb, mode="RGB")
    if out is not None:
        return _save(image, Path(out))
    return image


# ---------------------------------------------------------------------------------------------
# gallery


def _predictions_map(predictions: Any) -> dict[str, Any]:
    if predictions is None:
        return {}
    if isinstance(predictions, xr.DataTree):
        return dict(predictions.children)
    if isinstance(predictions, Mapping):
        return {str(k): v for k, v in predictions.items()}
    raise TypeError("predictions must be a DataTree with one node per image or a mapping stem -> "
                    f"Dataset/DataArray of zones, got {type(predictions).__name__}")


def _scores_table(scores: pd.DataFrame | None) -> pd.DataFrame | None:
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
_SCORE_LABELS: dict[str, tuple[str, str]] = {
    "mde": ("MDE", "{:.0f} {units}"), "hd95": ("HD95", "{:.0f} {units}"), "iou": ("IoU", "{:.3f}"),
}


def _score_columns(scores: pd.DataFrame | None, meta_columns: set[str]) -> list[str]:
    if scores is None:
        return []
    preferred = [c for c in _SCORE_LABELS if c in scores.columns]
    if preferred:
        return preferred
    numeric = [c for c in scores.columns if c not in meta_columns
               and pd.api.types.is_numeric_dtype(scores[c]) and not pd.api.types.is_bool_dtype(scores[c])]
    return numeric[:6]


def _fmt_score(col: str, value: Any, units: Any = None) -> str:
    """A score as shown on a card; distances carry the table's ``units`` (``"m"`` or ``"px"``;
    a table without the column is taken to be in pixels, never labelled metres unasked)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "–"
    fmt = _SCORE_LABELS.get(col, (col, "{:.4g}"))[1]
    units = "px" if units is None or (isinstance(units, float) and math.isnan(units)) else str(units)
    if units == "px":
        fmt = fmt.replace("{:.0f}", "{:.1f}")
    return fmt.format(v, units=units)


def _attr_name(col: str) -> str:
    return "score_" + re.sub(r"[^a-z0-9_]", "_", col.lower())


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _card(stem: str, row: pd.Series, thumb: str, over: str, size: tuple[int, int], has_pred: bool,
          score_cols: list[str], score_row: pd.Series | None) -> str:
    values = {
        "glacier": row["glacier"], "split": row["split"], "satellite": row["satellite"],
        "sensor": row["sensor"], "resolution": int(row["resolution"]), "quality": int(row["quality"]),
        "season": row["season"], "hemisphere": row["hemisphere"], "year": row["date"].year,
    }
    date = row["date"].date().isoformat()
    sat = row["satellite"] if row["sensor"] == row["satellite"] else f"{row['satellite']} ({row['sensor']})"
    meta = [("glacier", row["glacier"]), ("date", date), ("satellite", sat),
            ("resolution", f"{int(row['resolution'])} m"), ("quality", int(row["quality"])),
            ("orbit", row["orbit"]), ("split", row["split"]), ("season", row["season"]),
            ("hemisphere", row["hemisphere"]), ("size", f"{int(row['width'])} × {int(row['height'])} px")]
    attrs = {f"data-{k}": v for k, v in values.items()}
    attrs.update({"data-stem": stem, "data-date": date, "data-orbit": row["orbit"],
                  "data-overlay": over, "data-prediction": "1" if has_pred else "0"})
    search = [stem, date, row["glacier"], row["satellite"], row["sensor"], row["orbit"], row["split"],
              row["season"], row["hemisphere"], f"q{int(row['quality'])}", f"{int(row['resolution'])}m"]
    if score_row is not None:
        for col in score_cols:
            value = score_row.get(col)
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            attrs[f"data-{_attr_name(col)}"] = repr(number) if math.isfinite(number) else ""
            meta.append((_SCORE_LABELS.get(col, (col, ""))[0], _fmt_score(col, value, score_row.get("units"))))
        if bool(score_row.get("no_front", False)):
            meta.append(("front", "none predicted"))
            search.append("nofront")
    attrs["data-search"] = " ".join(str(s) for s in search).lower()
    attr_text = " ".join(f'{k}="{_e(v)}"' for k, v in attrs.items())
    dl = "".join(f'<dt>{_e(k)}</dt><dd class="f-{_e(k.lower())}">{_e(v)}</dd>' for k, v in meta)
    width, height = size
    return (f'<figure class="card" tabindex="0" {attr_text}>'
            f'<img src="{_e(thumb)}" width="{width}" height="{height}" loading="lazy" alt="{_e(stem)}">'
            f'<figcaption><div class="stem">{_e(stem)}</div><dl class="meta">{dl}</dl></figcaption>'
            "</figure>")


def _filters(df: pd.DataFrame) -> str:
    blocks = []
    for field in FILTER_FIELDS:
        col = df["date"].dt.year if field == "year" else df[field]
        counts = col.value_counts()
        values = sorted(counts.index, key=lambda v: (str(type(v)), v))
        boxes = "".join(
            f'<label><input type="checkbox" data-field="{field}" value="{_e(v)}"> {_e(v)}'
            f' <span class="n">{int(counts[v])}</span></label>' for v in values)
        blocks.append(f'<details class="filter" data-field="{field}"><summary>{field}: '
                      f'<span class="chosen" id="chosen-{field}">all</span></summary>'
                      f'<div class="options">{boxes}</div></details>')
    return "".join(blocks)


def _legend() -> str:
    items = [f'<span class="swatch" style="background:{z.color}"></span>{_e(z.name)}' for z in ZONES]
    items.append(f'<span class="swatch line" style="background:{FRONT_COLOR}"></span>front')
    return "".join(f"<span class=\"key\">{i}</span>" for i in items)


_CSS = """
:root{--bg:#f4f5f7;--fg:#1d2330;--muted:#5b6475;--card:#fff;--line:#d6dae2;--accent:#1f4e9c}
*{box-sizing:border-box}
body{margin:0;font:14px/1.35 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--line);padding:10px 16px}
h1{font-size:18px;margin:0 8px 6px 0;display:inline-block}
.legend{display:inline-flex;gap:10px;flex-wrap:wrap;color:var(--muted);font-size:12px;vertical-align:3px}
.key{display:inline-flex;align-items:center;gap:4px}
.swatch{display:inline-block;width:14px;height:14px;border:1px solid #0003;border-radius:2px}
.swatch.line{height:4px}
.bar{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin-top:4px}
#q{flex:1 1 220px;max-width:360px;padding:5px 8px;border:1px solid var(--line);border-radius:4px}
#count{font-weight:600;color:var(--accent);margin-left:auto}
button,select{padding:4px 8px;border:1px solid var(--line);border-radius:4px;background:#fff;font:inherit}
.filter{position:relative}
.filter summary{cursor:pointer;list-style:none;padding:4px 8px;border:1px solid var(--line);border-radius:4px;background:#fff}
.filter summary::-webkit-details-marker{display:none}
.filter[open] summary{border-color:var(--accent)}
.chosen{color:var(--accent)}
.options{position:absolute;z-index:3;top:110%;left:0;min-width:160px;max-height:300px;overflow:auto;background:#fff;
 border:1px solid var(--line);border-radius:4px;box-shadow:0 4px 14px #0002;padding:6px}
.options label{display:block;white-space:nowrap;padding:1px 2px}
.n{color:var(--muted);font-size:11px}
main{padding:14px 16px}
#grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:12px}
.card{margin:0;background:var(--card);border:1px solid var(--line);border-radius:6px;overflow:hidden;cursor:pointer}
.card:hover,.card:focus{outline:2px solid var(--accent)}
.card[hidden]{display:none}
.card img{display:block;width:100%;height:HEIGHTpx;object-fit:contain;background:#000}
figcaption{padding:6px 8px}
.stem{font:11px ui-monospace,Menlo,Consolas,monospace;color:var(--muted);word-break:break-all;margin-bottom:3px}
.meta{display:grid;grid-template-columns:auto 1fr;gap:0 8px;margin:0;font-size:12px;line-height:1.25}
.meta dt{color:var(--muted)}
.meta dd{margin:0}
#empty{color:var(--muted);padding:30px;text-align:center}
dialog{border:none;border-radius:8px;padding:0;max-width:96vw;max-height:96vh;box-shadow:0 10px 40px #0006}
dialog::backdrop{background:#000a}
.viewer{padding:12px 14px}
.viewer .top{display:flex;gap:8px;align-items:center;margin-bottom:8px}
.viewer .top .stem{flex:1;font-size:13px;color:var(--fg)}
#viewer-img{display:block;height:min(68vh,640px);width:auto;max-width:92vw;object-fit:contain;margin:0 auto;
 image-rendering:pixelated;background:#000}
.panels{display:flex;justify-content:space-around;color:var(--muted);font-size:12px;margin:4px 0}
.panels[hidden]{display:none}
.viewer .meta{display:flex;flex-wrap:wrap;gap:2px 0;margin-top:8px;font-size:12.5px;max-width:92vw}
.viewer .meta dt{margin-left:14px}
.viewer .meta dt::after{content:":"}
.viewer .meta dd{margin-left:4px}
footer{color:var(--muted);font-size:11px;padding:10px 16px 24px}
"""

_JS = r"""
(() => {
  const FIELDS = __FIELDS__;
  const grid = document.getElementById('grid');
  const cards = Array.from(grid.querySelectorAll('.card'));
  const total = cards.length;
  const q = document.getElementById('q');
  const sortSel = document.getElementById('sort');
  const count = document.getElementById('count');
  const empty = document.getElementById('empty');
  const dlg = document.getElementById('viewer');
  const img = document.getElementById('viewer-img');
  const sel = {};
  let current = null;

  function boxes(f) { return document.querySelectorAll('input[data-field="' + f + '"]'); }

  function readUrl() {
    const p = new URLSearchParams(location.search);
    for (const f of FIELDS) {
      const vals = p.getAll(f).flatMap(v => v.split(',')).map(v => v.trim().toLowerCase()).filter(Boolean);
      sel[f] = new Set(vals);
      for (const b of boxes(f)) b.checked = sel[f].has(b.value.toLowerCase());
    }
    q.value = p.get('q') || '';
    const s = p.get('sort');
    if (s && Array.from(sortSel.options).some(o => o.value === s)) sortSel.value = s;
    return p.get('open');
  }

  function writeUrl() {
    const p = new URLSearchParams();
    for (const f of FIELDS) if (sel[f].size) p.set(f, Array.from(sel[f]).join(','));
    if (q.value.trim()) p.set('q', q.value.trim());
    if (sortSel.value !== sortSel.options[0].value) p.set('sort', sortSel.value);
    if (current) p.set('open', current.dataset.stem);
    const qs = p.toString();
    try { history.replaceState(null, '', qs ? '?' + qs : location.pathname); } catch (e) { /* file: URLs */ }
  }

  function apply() {
    const terms = q.value.toLowerCase().split(/\s+/).filter(Boolean);
    let n = 0;
    for (const c of cards) {
      let ok = true;
      for (const f of FIELDS) {
        if (sel[f].size && !sel[f].has((c.dataset[f] || '').toLowerCase())) { ok = false; break; }
      }
      if (ok && terms.length) ok = terms.every(t => c.dataset.search.includes(t));
      c.hidden = !ok;
      if (ok) n++;
    }
    count.textContent = n + ' of ' + total + ' images';
    empty.hidden = n > 0;
    for (const f of FIELDS) {
      const chosen = Array.from(boxes(f)).filter(b => b.checked).map(b => b.value);
      const extra = Array.from(sel[f]).filter(v => !Array.from(boxes(f)).some(b => b.value.toLowerCase() === v));
      const all = chosen.concat(extra);
      document.getElementById('chosen-' + f).textContent = all.length ? all.join(', ') : 'all';
    }
  }

  function sortCards() {
    let key = sortSel.value, dir = 1;
    if (key.startsWith('-')) { dir = -1; key = key.slice(1); }
    const val = c => c.dataset[key] || '';
    const numeric = cards.every(c => val(c) === '' || !isNaN(Number(val(c))));
    const sorted = cards.slice().sort((a, b) => {
      const x = val(a), y = val(b);
      if (x === '' || y === '') return (x === '') - (y === '') || a.dataset.stem.localeCompare(b.dataset.stem);
      const d = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return dir * d || a.dataset.stem.localeCompare(b.dataset.stem);
    });
    for (const c of sorted) grid.appendChild(c);
  }

  function show(c) {
    if (!c) return;
    current = c;
    img.src = c.dataset.overlay;
    img.alt = 'overlay of ' + c.dataset.stem;
    document.getElementById('viewer-stem').textContent = c.dataset.stem;
    document.getElementById('viewer-meta').innerHTML = c.querySelector('.meta').innerHTML;
    document.getElementById('viewer-panels').hidden = c.dataset.prediction !== '1';
    if (!dlg.open) dlg.showModal();
    writeUrl();
  }

  function step(d) {
    if (!current) return;
    const visible = Array.from(grid.children).filter(c => c.classList.contains('card') && !c.hidden);
    const i = visible.indexOf(current);
    if (visible.length) show(visible[(i + d + visible.length) % visible.length]);
  }

  for (const f of FIELDS) for (const b of boxes(f)) b.addEventListener('change', () => {
    sel[f] = new Set(Array.from(boxes(f)).filter(x => x.checked).map(x => x.value.toLowerCase()));
    apply(); writeUrl();
  });
  q.addEventListener('input', () => { apply(); writeUrl(); });
  sortSel.addEventListener('change', () => { sortCards(); writeUrl(); });
  document.getElementById('reset').addEventListener('click', () => {
    for (const f of FIELDS) { sel[f] = new Set(); for (const b of boxes(f)) b.checked = false; }
    q.value = ''; sortSel.selectedIndex = 0; sortCards(); apply(); writeUrl();
  });
  grid.addEventListener('click', e => { const c = e.target.closest('.card'); if (c) show(c); });
  grid.addEventListener('keydown', e => {
    const c = e.target.closest('.card');
    if (c && (e.key === 'Enter' || e.key === ' ')) { e.preventDefault(); show(c); }
  });
  document.getElementById('prev').addEventListener('click', () => step(-1));
  document.getElementById('next').addEventListener('click', () => step(1));
  document.getElementById('close').addEventListener('click', () => dlg.close());
  dlg.addEventListener('close', () => { if (current) current.focus(); current = null; writeUrl(); });
  dlg.addEventListener('keydown', e => {
    if (e.key === 'ArrowLeft') step(-1);
    if (e.key === 'ArrowRight') step(1);
  });
  document.addEventListener('click', e => {
    for (const d of document.querySelectorAll('details.filter[open]')) if (!d.contains(e.target)) d.open = false;
  });

  const open = readUrl();
  sortCards();
  apply();
  if (open) show(cards.find(c => c.dataset.stem === open));
  document.body.dataset.ready = '1';
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>__CSS__</style>
</head>
<body>
<header>
<h1>__TITLE__</h1><span class="legend">__LEGEND__</span>
<div class="bar">
<input id="q" type="search" placeholder="search: stem, glacier, date, orbit, sensor…" aria-label="search">
__FILTERS__
<label>sort <select id="sort">__SORT__</select></label>
<button id="reset" type="button">reset</button>
<span id="count" aria-live="polite">__TOTAL__ of __TOTAL__ images</span>
</div>
</header>
<main>
<noscript><p>Filtering and the overlay viewer need JavaScript; the thumbnails link nowhere without it.</p></noscript>
<div id="grid">__CARDS__</div>
<p id="empty" hidden>No image matches these filters.</p>
</main>
<dialog id="viewer"><div class="viewer">
<div class="top"><button id="prev" type="button" title="previous (←)">◀</button>
<button id="next" type="button" title="next (→)">▶</button>
<span class="stem" id="viewer-stem"></span><button id="close" type="button" title="close (Esc)">✕</button></div>
<div class="panels" id="viewer-panels" hidden><span>truth</span><span>prediction</span></div>
<img id="viewer-img" alt="">
<dl class="meta" id="viewer-meta"></dl>
</div></dialog>
<footer>__FOOTER__</footer>
<script>__JS__</script>
</body>
</html>
"""


@renamed_keywords(out_dir="out")
def gallery(dataset: xr.DataTree, out: str | os.PathLike[str], *, predictions: Any = None,
            scores: pd.DataFrame | None = None, height: int = 128, overlay_height: int | None = 512,
            alpha: float = 0.45, title: str = "CaFFe calving-front images") -> Path:
    """Write a static HTML gallery of the images, to filter and browse in any web browser.

    The folder gets one self-contained ``index.html`` (inline CSS and JavaScript, no network),
    ``thumbnails/`` and ``overlays/`` (PNG files, linked relatively: the folder can be moved,
    zipped or served as it is).  Each image is a card with its thumbnail and metadata (glacier,
    date, satellite/sensor, resolution, quality, orbit, split, season, hemisphere, size and the
    scores, if given).  In the browser:

    * a checkbox drop-down per field of :data:`FILTER_FIELDS` and a text search (every word must
      occur in the stem or the metadata) hide the other cards, and the element ``#count`` says
      ``"N of M images"``;
    * a sort menu orders by stem, date, quality or a score;
    * clicking a card (or Enter) opens its overlay (``truth | prediction`` when the image has a
      prediction); arrow keys step through the visible cards, Esc closes.

    The state is read from and written to the URL query, e.g.
    ``index.html?glacier=JAC,Crane&split=train&q=tsx&sort=-score_mde&open=<stem>`` (values are
    case-insensitive, several values of one field as a comma list or repeated keys), so a view
    can be bookmarked, shared and tested headless.

    Parameters
    ----------
    dataset
        A tree of :func:`xfacies.caffe.open_dataset` (or :func:`~xfacies.caffe.select`).
    out
        Folder to write into (created).  Thumbnails and truth-only overlays are cached there by
        source file (see :func:`thumbnail`), so writing the gallery again is quick.
    predictions
        Optional predictions: a DataTree with one node per image or a mapping stem -> node or
        zones (see :func:`overlay`).  Images without a prediction show the truth only;
        predictions of images not in ``dataset`` are ignored.
    scores
        Optional per-image scores: a DataFrame indexed by stem, or the table of
        ``xfacies.caffe.evaluate(..., per_image=True)`` (its ``image`` column is the stem).  The
        columns ``mde``, ``hd95`` and ``iou`` are shown when present (else up to six numeric
        columns) and can be sorted by (``sort=score_<column>``, ``-`` for descending).
    height
        Thumbnail height in pixels.
    overlay_height
        Height of the overlays at most (smaller images keep their size); ``None``: full size.
    alpha
        Opacity of the zone colours in the overlays.
    title
        Page title.

    Returns
    -------
    pathlib.Path
        The ``index.html`` written.

    Examples
    --------
    >>> from xfacies.caffe import make_synthetic, open_dataset
    >>> tree = open_dataset(make_synthetic("explore-gallery", n=5))
    >>> page = gallery(tree, "explore-gallery-site", height=64)
    >>> text = page.read_text()
    >>> text.count('<figure class="card"'), 'id="count"' in text, "http" in text
    (5, True, False)

    Open ``page`` in a browser, or ``page.as_uri() + "?glacier=JAC"`` for the JAC images only.
    """
    from xfacies.caffe.dataset import index

    height = _check_height(height)
    if overlay_height is not None:
        overlay_height = _check_height(overlay_height, "overlay_height")
    if not isinstance(dataset, xr.DataTree):
        raise TypeError(f"dataset must be a DataTree of xfacies.caffe.open_dataset, got "
                        f"{type(dataset).__name__}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    thumbs, overs = out / "thumbnails", out / "overlays"
    df = index(dataset)
    preds = _predictions_map(predictions)
    table = _scores_table(scores)
    score_cols = _score_columns(table, set(df.columns) | {"image", "no_front"})

    cards = []
    for stem, row in df.iterrows():
        node = dataset[stem]
        ds = node.to_dataset(inherit=False)
        thumb = thumbnail(ds.assign_attrs(stem=stem), height=height, cache_dir=thumbs)
        size = (_width_for(height, (int(row["height"]), int(row["width"]))), height)
        oh = int(row["height"]) if overlay_height is None else min(overlay_height, int(row["height"]))
        pred = preds.get(stem)
        if pred is None:
            sources = [_source_of(ds[v], ds) if v in ds.data_vars else None for v in ("sar", "zones", "front")]
            if all(s is None or s.is_file() for s in sources):
                key = _key(sources, oh, float(alpha), [z.color for z in ZONES], FRONT_COLOR)
                over = _cached(overs, stem, f"o{oh}", key,
                               lambda ds=ds, oh=oh: overlay(ds, height=oh, alpha=alpha))
            else:
                over = overlay(ds, height=oh, alpha=alpha, out=overs / f"{_safe(stem)}_o{oh}.png")
        else:
            over = overlay(ds, pred, height=oh, alpha=alpha,
                           out=overs / f"{_safe(stem)}_pred_o{oh}.png")
        score_row = table.loc[stem] if table is not None and stem in table.index else None
        rel = [quote(Path(p).relative_to(out).as_posix()) for p in (thumb, over)]
        cards.append(_card(str(stem), row, rel[0], rel[1], size, pred is not None, score_cols, score_row))

    sort = [("stem", "stem"), ("date", "date ↑"), ("-date", "date ↓"), ("quality", "quality ↑")]
    for col in score_cols:
        label = _SCORE_LABELS.get(col, (col, ""))[0]
        sort += [(_attr_name(col), f"{label} ↑"), ("-" + _attr_name(col), f"{label} ↓")]
    sort_html = "".join(f'<option value="{_e(v)}">{_e(t)}</option>' for v, t in sort)
    attrs = dataset.attrs
    footer = [f"{len(df)} images", f"generated {_dt.datetime.now().isoformat(timespec='seconds')}"]
    if attrs.get("citation"):
        footer.append(f"Data: {attrs['citation']}" + (f" Licence {attrs['license']}." if attrs.get("license") else ""))
    js = _JS.replace("__FIELDS__", json.dumps(list(FILTER_FIELDS)))
    page = (_PAGE.replace("__CSS__", _CSS.replace("HEIGHT", str(height)))
            .replace("__JS__", js)
            .replace("__TITLE__", _e(title))
            .replace("__LEGEND__", _legend())
            .replace("__FILTERS__", _filters(df))
            .replace("__SORT__", sort_html)
            .replace("__TOTAL__", str(len(df)))
            .replace("__FOOTER__", " · ".join(_e(f) for f in footer))
            .replace("__CARDS__", "\n".join(cards)))
    target = out / "index.html"
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".html", dir=out)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, target)
    return target


# ---------------------------------------------------------------------------------------------
# FiftyOne


def _import_fiftyone() -> Any:
    try:
        import fiftyone as fo
    except ImportError as err:
        raise ImportError("to_fiftyone needs FiftyOne, an optional dependency: pip install fiftyone "
                          "(or the extra: pip install 'xfacies[fiftyone]')") from err
    except KeyError:
        fo = _import_fiftyone_with_stdlib_metadata()
    return fo


class _LenientMetadata:
    """Package metadata that answers ``None`` for a missing key, as the standard library does."""

    def __init__(self, metadata: Any) -> None:
        self._metadata = metadata

    def __getitem__(self, key: str) -> Any:
        try:
            return self._metadata[key]
        except KeyError:
            return None

    def __contains__(self, key: object) -> bool:
        return key in self._metadata

    def __iter__(self) -> Any:
        return iter(self._metadata)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._metadata, name)


def _import_fiftyone_with_stdlib_metadata() -> Any:
    """Import FiftyOne with the standard library's answer to a missing package-metadata key.

    FiftyOne's toolkit ``voxel51-eta`` reads metadata keys that its own package lacks
    (``author``): the standard library answers ``None``, but once the ``importlib_metadata``
    backport >= 8 is imported (dask imports it) it serves ``importlib.metadata`` too and raises
    ``KeyError``.  Import again with ``importlib.metadata.metadata`` answering ``None``.
    """
    import importlib
    import importlib.metadata
    import sys

    for mod in [m for m in sys.modules if m.split(".")[0] in ("fiftyone", "eta")]:
        del sys.modules[mod]  # what the failed import left half-initialised
    original = importlib.metadata.metadata
    importlib.metadata.metadata = lambda name: _LenientMetadata(original(name))  # type: ignore[assignment]
    try:
        return importlib.import_module("fiftyone")
    except ImportError as err:
        raise ImportError("to_fiftyone needs FiftyOne, an optional dependency: pip install fiftyone "
                          "(or the extra: pip install 'xfacies[fiftyone]')") from err
    finally:
        importlib.metadata.metadata = original  # type: ignore[assignment]


def _mask_png(array: np.ndarray, path: Path) -> Path:
    from PIL import Image

    return _save(Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)), path)


def to_fiftyone(dataset: xr.DataTree, name: str | None = None, *, predictions: Any = None,
                scores: pd.DataFrame | None = None, thumbnails: bool = True, height: int = 128,
                persistent: bool = False, media_dir: str | os.PathLike[str] | None = None,
                overwrite: bool = False) -> Any:
    """A FiftyOne dataset of the images, to browse and query in the FiftyOne App.

    One sample per image: ``filepath`` is the SAR PNG (the node's ``source``), with the typed
    fields ``glacier, satellite, sensor, orbit, split, season, hemisphere`` (str), ``date``
    (datetime), ``resolution, quality`` (int), ``pixel_size`` (float), the split as a tag, image
    metadata (width, height), and the labels

    ``zones`` / ``pred_zones``
        :class:`fiftyone.Segmentation` with class-id PNG masks and ``mask_targets``
        ``{id: name}`` of :data:`xfacies.catalog.ZONES` (FiftyOne draws no colour for 0 = NA,
        its background), coloured with the catalogue's colours;
    ``front`` / ``pred_front``
        :class:`fiftyone.Segmentation`, 1 on the front line (``pred_front`` computed with
        :func:`~xfacies.caffe.postprocess.zones_to_front` when a prediction has none);

    and, with ``scores``, one float/bool field per numeric score column (e.g. ``mde``).

    Parameters
    ----------
    dataset
        A tree of :func:`xfacies.caffe.open_dataset`.
    name
        Name of the FiftyOne dataset; ``None``: a generated one.
    predictions
        Optional predictions, a DataTree or mapping stem -> node/zones (see :func:`overlay`).
    scores
        Optional per-image scores, as for :func:`gallery`.
    thumbnails
        Write thumbnails of ``height`` pixels and make their field ``thumbnail_path`` the
        App's grid media field (the full image opens in the sample view).
    height
        Thumbnail height in pixels.
    persistent
        Keep the dataset in FiftyOne's database after this Python session.
    media_dir
        Folder for the thumbnails and mask PNGs; default ``<fiftyone default_dataset_dir>/<name>``.
    overwrite
        Delete an existing FiftyOne dataset of this ``name`` first (else that raises).

    Returns
    -------
    fiftyone.core.dataset.Dataset

    Raises
    ------
    ImportError
        When FiftyOne is not installed (``pip install fiftyone``).
    ValueError
        When ``name`` exists and ``overwrite`` is false, or a node has no SAR ``source`` file.

    Examples
    --------
    >>> ds = to_fiftyone(tree, "caffe", thumbnails=True)  # doctest: +SKIP
    >>> ds.match(F("glacier") == "JAC").count()           # doctest: +SKIP
    >>> import fiftyone as fo; fo.launch_app(ds)          # doctest: +SKIP
    """
    fo = _import_fiftyone()
    from xfacies.caffe.dataset import index

    height = _check_height(height)
    if not isinstance(dataset, xr.DataTree):
        raise TypeError(f"dataset must be a DataTree of xfacies.caffe.open_dataset, got "
                        f"{type(dataset).__name__}")
    if name is not None and fo.dataset_exists(name):
        if not overwrite:
            raise InputError(f"a FiftyOne dataset {name!r} exists; pass overwrite=True to replace it "
                             "or choose another name")
        fo.delete_dataset(name)
    df = index(dataset)
    preds = _predictions_map(predictions)
    table = _scores_table(scores)
    name = name if name is not None else fo.get_default_dataset_name()
    media = Path(media_dir) if media_dir is not None else Path(fo.config.default_dataset_dir) / name
    targets = {z.id: z.name for z in ZONES}

    samples = []
    for stem, row in df.iterrows():
        ds = dataset[stem].to_dataset(inherit=False)
        source = _source_of(ds["sar"], ds)
        if source is None or not source.is_file():
            raise InputError(f"image {stem!r} has no SAR file ('source' attr {source}); FiftyOne "
                             "samples need one on disk")
        date = row["date"].to_pydatetime()
        sample = fo.Sample(
            filepath=str(source.resolve()), tags=[row["split"]],
            metadata=fo.ImageMetadata(width=int(row["width"]), height=int(row["height"]),
                                      num_channels=1, mime_type="image/png",
                                      size_bytes=source.stat().st_size),
            stem=str(stem), glacier=row["glacier"], date=_dt.datetime(date.year, date.month, date.day),
            satellite=row["satellite"], sensor=row["sensor"], resolution=int(row["resolution"]),
            quality=int(row["quality"]), orbit=row["orbit"], split=row["split"], season=row["season"],
            hemisphere=row["hemisphere"], pixel_size=finite_or_none(row["pixel_size"]))
        if thumbnails:
            sample["thumbnail_path"] = str(thumbnail(ds.assign_attrs(stem=stem), height=height,
                                                     cache_dir=media / "thumbnails").resolve())
        if "zones" in ds.data_vars:
            zsrc = [_source_of(ds["zones"])]
            zpath = _cached(media / "zones", stem, "zones", _key(zsrc if zsrc[0] else [ds["zones"].values]),
                            lambda ds=ds: _image_of(ds["zones"].values))
            sample["zones"] = fo.Segmentation(mask_path=str(zpath.resolve()))
        if "front" in ds.data_vars:
            fsrc = [_source_of(ds["front"])]
            fpath = _cached(media / "fronts", stem, "front", _key(fsrc if fsrc[0] else [ds["front"].values]),
                            lambda ds=ds: _image_of(ds["front"].values))
            sample["front"] = fo.Segmentation(mask_path=str(fpath.resolve()))
        if stem in preds:
            pz, pf = _prediction(preds[stem], ds, (int(row["height"]), int(row["width"])))
            sample["pred_zones"] = fo.Segmentation(
                mask_path=str(_mask_png(pz, media / "pred_zones" / f"{_safe(stem)}.png").resolve()))
            sample["pred_front"] = fo.Segmentation(
                mask_path=str(_mask_png(pf, media / "pred_fronts" / f"{_safe(stem)}.png").resolve()))
        if table is not None and stem in table.index:
            for col, value in table.loc[stem].items():
                if col in df.columns or col in ("image", "stem"):
                    continue
                if isinstance(value, (bool, np.bool_)):
                    sample[str(col)] = bool(value)
                elif isinstance(value, (int, np.integer)):
                    sample[str(col)] = int(value)
                elif isinstance(value, (float, np.floating)):
                    v = float(value)
                    sample[str(col)] = v if math.isfinite(v) else None
        samples.append(sample)

    fds = fo.Dataset(name)
    fds.add_sample_field("pixel_size", fo.FloatField)  # None (unknown) in the resized layout
    fds.add_samples(samples)

    fds.default_mask_targets = targets
    fds.mask_targets = {"zones": targets, "pred_zones": targets, "front": {1: "front"},
                        "pred_front": {1: "front"}}
    fds.info = {"title": dataset.attrs.get("title", "CaFFe"), "citation": dataset.attrs.get("citation"),
                "license": dataset.attrs.get("license"), "layout": dataset.attrs.get("layout"),
                "root": dataset.attrs.get("root")}
    zone_colors = [{"intTarget": z.id, "color": z.color} for z in ZONES]
    front_colors = [{"intTarget": 1, "color": FRONT_COLOR}]
    fields = [{"path": "zones", "maskTargetsColors": zone_colors},
              {"path": "pred_zones", "maskTargetsColors": zone_colors},
              {"path": "front", "maskTargetsColors": front_colors},
              {"path": "pred_front", "maskTargetsColors": front_colors}]
    fds.app_config.color_scheme = fo.ColorScheme(fields=fields)
    if thumbnails:
        fds.app_config.media_fields = ["filepath", "thumbnail_path"]
        fds.app_config.grid_media_field = "thumbnail_path"
    fds.persistent = bool(persistent)
    fds.save()
    return fds


def _image_of(array: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(np.asarray(array).astype(np.uint8)))
