"""Open the CaFFe benchmark as a lazy :class:`xarray.DataTree`, one node per SAR image.

Two folder layouts are recognised:

``raw``
    The published ``data_raw`` folder (given itself or its parent)::

        data_raw/sar_images/{train,test}/<stem>.png
        data_raw/zones/{train,test}/<stem>_zones.png       grey values 0, 64, 127, 254
        data_raw/fronts/{train,test}/<stem>_front.png      0 / 255
        data_raw/bounding_boxes/<stem>...txt               optional

``resized``
    A flat derivative whose images were resized (e.g. to 256 x 256)::

        sar_images/<stem>.png
        zones/<stem>_zones.png                              class ids 1..4 = NA, rock, glacier, ocean
        fronts/<stem>_front.png                             0 / 255

    The derivative's own folder names are read as they are (``sar_256/``,
    ``zones_processed_256/``, ``fronts_256/``; masks named ``<stem>_zones.png`` or ``<stem>.png``).
    An image's split is its benchmark split, known from the glacier (COL and Mapple are the test
    glaciers), else ``"unknown"``.

Nothing is decoded when the tree is opened: sizes come from the PNG headers and every
variable is a dask array whose single task decodes one file (and checks its values).

Node contract
-------------
Each child node is named by the image's stem and holds

``sar`` (y, x) uint8
    The SAR image; 0 = no data.
``zones`` (y, x) int8
    Zone class ids of :data:`xfacies.catalog.ZONES` (0 NA, 1 rock, 2 glacier, 3 ocean) with
    :func:`xfacies.catalog.zone_flag_attrs`.  The encoding is fixed by the layout: grey values
    0/64/127/254 in ``raw``, 1..4 in ``resized``; any other value raises a ``ValueError``
    naming the file when the array is computed.
``front`` (y, x) bool
    The calving-front line (PNG value 255; any value but 0 and 255 raises when computed).
``bbox`` (corner, xy) int64, only when a bounding-box file exists
    Pixel corners ``upper_left, lower_left, lower_right, upper_right`` as ``(x, y)``.

Masks are optional per *folder*: when the whole ``zones`` (or ``fronts``) folder of a split
is absent (images only, e.g. for inference), the nodes have no ``zones`` (``front``)
variable; when the folder exists, every image must have its mask.

The arrays have no ``y``/``x`` coordinates unless ``metadata`` georeferences them (pixel
centres from the bounding coordinates, ``x`` increasing and ``y`` decreasing, north-up; CRS
written with rioxarray).  Node attributes: ``stem, glacier, date`` (ISO), ``satellite,
sensor, resolution`` (m/px of the *original* image, the file-name token), ``quality, orbit,
split, hemisphere, season, layout, pixel_size, pixel_size_x, pixel_size_y`` (m/px of *this*
array) and ``source`` (the SAR file; every variable has its own ``source``).

In the ``raw`` layout ``pixel_size`` is the resolution.  A resized image's pixel size is, per
axis, the extent its pixels cover divided by its size: from the bounds in ``metadata``, else from
the fixed area every image of a benchmark glacier covers
(:data:`xfacies.caffe.names.GLACIER_EXTENT_KM`, e.g. Crane 19 x 25 km: 74.2 x 97.7 m at 256 px);
NaN for other glaciers, whose scores then stay in pixels.  ``pixel_size`` is the geometric mean
of the two axes (resized images of non-square originals have non-square pixels).

Examples
--------
>>> from xfacies.caffe import make_synthetic, open_dataset, index
>>> tree = open_dataset(make_synthetic("caffe-module", n=4, seed=1))
>>> node = tree[list(tree.children)[0]]
>>> sorted(node.data_vars), node["zones"].dtype, node.attrs["layout"]
(['bbox', 'front', 'sar', 'zones'], dtype('int8'), 'raw')
>>> index(tree)[["glacier", "split"]].sort_values("glacier").to_numpy().tolist()
[['COL', 'test'], ['Crane', 'train'], ['JAC', 'train'], ['Mapple', 'test']]
"""

from __future__ import annotations

import importlib
import math
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xfacies.caffe.names import GLACIER_EXTENT_KM, Stem, benchmark_split, parse_stem
from xfacies.catalog import ZONES, zone_flag_attrs
from xfacies.errors import CorruptFileError, GridError, InputError, XfaciesWarning

__all__ = [
    "open_dataset",
    "index",
    "select",
    "read_metadata",
    "SPLITS",
    "LAYOUTS",
    "CORNERS",
    "CITATION",
    "MissingGeoreferenceWarning",
]

#: The benchmark's splits.
SPLITS: tuple[str, ...] = ("train", "test")
#: Folder layouts :func:`open_dataset` recognises.
LAYOUTS: tuple[str, ...] = ("raw", "resized")
#: Corner order of the bounding-box files.
CORNERS: tuple[str, ...] = ("upper_left", "lower_left", "lower_right", "upper_right")

CITATION = (
    "Gourmelon, N., Seehaus, T., Braun, M., Maier, A. and Christlein, V. (2022): Calving fronts and "
    "where to find them: a benchmark dataset and methodology for automatic glacier calving front "
    "extraction from synthetic aperture radar imagery, Earth Syst. Sci. Data 14, 4287-4313, "
    "doi:10.5194/essd-14-4287-2022. Data: doi:10.1594/PANGAEA.940950, licence CC BY 4.0.")

#: Folder and file suffix of each variable read from a PNG.
_FILES: dict[str, tuple[str, str]] = {"sar": ("sar_images", ""), "zones": ("zones", "_zones"),
                                      "front": ("fronts", "_front")}
#: Folder names of each variable in the flat resized layout: the benchmark's, and the resized
#: derivative's own (``sar_256/``, ``zones_processed_256/``, ``fronts_256/``, any side).
_FLAT_FOLDERS: dict[str, re.Pattern[str]] = {
    "sar": re.compile(r"^sar(_images)?(_[0-9]+)?$"),
    "zones": re.compile(r"^zones(_processed)?(_[0-9]+)?$"),
    "front": re.compile(r"^fronts?(_processed)?(_[0-9]+)?$"),
}
#: Zone codes in the PNGs of each layout -> xfacies class id.
_ZONE_CODES: dict[str, dict[int, int]] = {
    "raw": {z.grey: z.id for z in ZONES},
    "resized": {z.id + 1: z.id for z in ZONES},
}
_FRONT_VALUES = (0, 255)
#: PIL modes read as they are ("1" is bilevel, read as 0/255); colour modes are converted to grey.
_MODES = ("L", "1", "P", "LA", "RGB", "RGBA")
_DTYPES = {"sar": np.dtype(np.uint8), "zones": np.dtype(np.int8), "front": np.dtype(bool)}


class MissingGeoreferenceWarning(XfaciesWarning):
    """Some images are not listed in the metadata CSV and stay without coordinates."""


@dataclass(frozen=True)
class _Image:
    """Where one image's files are (``None``: the layout has no such folder)."""

    stem: Stem
    split: str
    sar: Path
    zones: Path | None
    front: Path | None
    bbox: Path | None


# ---------------------------------------------------------------------------------------------
# layout


def _listing(folder: Path, limit: int = 12) -> str:
    try:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    except OSError:
        return "(unreadable)"
    if not names:
        return "nothing"
    more = f", ... ({len(names)} entries)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _pngs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() == ".png" and not p.name.startswith(".") and p.is_file())


def _find_layout(root: Path) -> tuple[Path, str]:
    """``(base, layout)``: the folder holding ``sar_images/`` and the layout's name."""
    if not root.is_dir():
        raise FileNotFoundError(f"CaFFe root {str(root)!r} is not a directory: give the benchmark's "
                                "data_raw folder (or its parent), or a folder with sar_images/, "
                                "zones/ and fronts/")
    for base in (root, root / "data_raw"):
        if any((base / "sar_images" / s).is_dir() for s in SPLITS):
            return base, "raw"
    sar = _flat_folders(root).get("sar", root / "sar_images")
    if sar.is_dir() and _pngs(sar):
        return root, "resized"
    raise InputError(
        f"{str(root)!r} holds neither CaFFe layout. Expected either the raw benchmark, "
        "data_raw/ (or this folder itself) with sar_images/{train,test}/<stem>.png, "
        "zones/{train,test}/<stem>_zones.png and fronts/{train,test}/<stem>_front.png, or the "
        "flat resized layout sar_images/<stem>.png, zones/<stem>_zones.png, "
        "fronts/<stem>_front.png (or the derivative's sar_256/, zones_processed_256/, fronts_256/). "
        f"Found: {_listing(root)}"
        + (f"; sar_images/ holds: {_listing(sar)}" if sar.is_dir() else ""))


def _flat_folders(base: Path) -> dict[str, Path]:
    """The flat layout's folder of each variable (benchmark or derivative names).

    Raises
    ------
    ValueError
        When two folders match one variable (e.g. ``sar_images/`` and ``sar_256/``).
    """
    found: dict[str, Path] = {}
    try:
        entries = sorted(p for p in base.iterdir() if p.is_dir())
    except OSError:
        return found
    for kind, pattern in _FLAT_FOLDERS.items():
        hits = [p for p in entries if pattern.match(p.name)]
        if len(hits) > 1:
            raise InputError(f"{base} has {len(hits)} folders of {kind} images ({', '.join(p.name for p in hits)}); "
                             "keep one, or open each copy from its own folder")
        if hits:
            found[kind] = hits[0]
    return found


def _bbox_files(base: Path) -> dict[str, Path]:
    """Bounding-box files by the stem their name starts with."""
    folder = base / "bounding_boxes"
    if not folder.is_dir():
        return {}
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() != ".txt" or p.name.startswith("."):
            continue
        key = "_".join(p.stem.split("_")[:6])
        if key in found:
            raise InputError(f"two bounding-box files for image {key!r}: {found[key]} and {p}; "
                             "keep one")
        found[key] = p
    return found


def _images(base: Path, layout: str, splits: Iterable[str]) -> list[_Image]:
    bboxes = _bbox_files(base)
    images: list[_Image] = []
    seen: dict[str, Path] = {}
    flat = _flat_folders(base) if layout == "resized" else {}
    for split in (splits if layout == "raw" else ("all",)):
        sub = (split,) if layout == "raw" else ()
        if layout == "raw":
            sar_dir = base.joinpath("sar_images", *sub)
            mask_dirs = {kind: base.joinpath(folder, *sub) for kind, (folder, _) in _FILES.items()
                         if kind != "sar"}
        else:
            sar_dir = flat.get("sar", base / "sar_images")
            mask_dirs = {kind: flat.get(kind, base / folder) for kind, (folder, _) in _FILES.items()
                         if kind != "sar"}
        if not sar_dir.is_dir():
            continue
        for sar in _pngs(sar_dir):
            try:
                stem = parse_stem(sar)
            except ValueError as err:
                raise InputError(f"{sar}: {err}; rename or remove the file") from None
            if stem.stem in seen:
                raise InputError(f"image {stem.stem!r} appears twice: {seen[stem.stem]} and {sar}")
            seen[stem.stem] = sar
            masks: dict[str, Path | None] = {}
            for kind, folder in mask_dirs.items():
                if not folder.is_dir():
                    masks[kind] = None
                    continue
                path = folder / f"{stem.stem}{_FILES[kind][1]}.png"
                if not path.is_file() and layout == "resized" and (folder / f"{stem.stem}.png").is_file():
                    path = folder / f"{stem.stem}.png"  # a derivative naming masks by the bare stem
                if not path.is_file():
                    raise FileNotFoundError(
                        f"{kind} mask of image {stem.stem!r} is missing: expected {path} "
                        f"(masks are optional only when the whole folder {folder} is absent)")
                masks[kind] = path
            true_split = split if layout == "raw" else benchmark_split(stem.glacier)
            if true_split not in splits:
                continue
            images.append(_Image(stem, true_split, sar, masks["zones"], masks["front"],
                                 bboxes.get(stem.stem)))
    return images


# ---------------------------------------------------------------------------------------------
# readers


@contextmanager
def _damaged(path: Any, what: str) -> Iterator[None]:
    """PIL's errors of a damaged or truncated file (which name no file) as a :class:`CorruptFileError`
    that names it; a missing or unreadable file keeps its own error."""
    from PIL import UnidentifiedImageError

    try:
        yield
    except (FileNotFoundError, PermissionError):
        raise
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise CorruptFileError(f"{path} {what} ({type(err).__name__}: {err}): the file is damaged or truncated; "
                               "copy or download it again, or move it out of the dataset folder") from None


def _header(path: Path) -> tuple[int, int]:
    """``(height, width)`` from the PNG header (no pixels decoded)."""
    from PIL import Image

    with _damaged(path, "is not a readable PNG"), Image.open(path) as im:
        width, height = im.size
        mode = im.mode
    if mode not in _MODES:
        raise InputError(f"{path}: unsupported PNG mode {mode!r}; CaFFe images and masks are "
                         f"8-bit greyscale (mode 'L')")
    return height, width


def _grey(im: Any) -> np.ndarray:
    if im.mode == "L":
        return np.asarray(im, dtype=np.uint8)
    if im.mode == "1":
        return np.asarray(im, dtype=bool).astype(np.uint8) * np.uint8(255)
    return np.asarray(im.convert("L"), dtype=np.uint8)


def _decode_zones(grey: np.ndarray, path: str, layout: str) -> np.ndarray:
    codes = _ZONE_CODES[layout]
    lut = np.full(256, -1, dtype=np.int8)
    for code, zone_id in codes.items():
        lut[code] = zone_id
    zones = lut[grey]
    if (zones < 0).any():
        bad = np.unique(grey[zones < 0]).tolist()
        what = "grey values" if layout == "raw" else "class ids 1..4"
        raise InputError(
            f"{path}: zone values {bad} are not in the allowed set {sorted(codes)} of the "
            f"{layout} layout ({what} of {', '.join(z.name for z in ZONES)})")
    return zones


def _decode_front(grey: np.ndarray, path: str) -> np.ndarray:
    bad = (grey != _FRONT_VALUES[0]) & (grey != _FRONT_VALUES[1])
    if bad.any():
        raise InputError(f"{path}: front values {np.unique(grey[bad]).tolist()[:10]} are not in the "
                         f"allowed set {list(_FRONT_VALUES)} (255 = front line)")
    return grey == _FRONT_VALUES[1]


def _read_png(path: str, kind: str, layout: str, shape: tuple[int, int]) -> np.ndarray:
    """Decode one PNG into the variable ``kind`` (``sar``, ``zones`` or ``front``)."""
    from PIL import Image

    with _damaged(path, "cannot be decoded"), Image.open(path) as im:
        grey = _grey(im)
    if grey.shape != tuple(shape):
        raise InputError(f"{path} is {grey.shape[1]} x {grey.shape[0]} px but was "
                         f"{shape[1]} x {shape[0]} px when the dataset was opened; open it again")
    if kind == "zones":
        return _decode_zones(grey, path, layout)
    if kind == "front":
        return _decode_front(grey, path)
    return grey


def _lazy(path: Path, kind: str, layout: str, shape: tuple[int, int], chunks: Any) -> Any:
    import dask
    import dask.array as da

    task = dask.delayed(_read_png, pure=True)(str(path), kind, layout, shape)
    arr = da.from_delayed(task, shape=shape, dtype=_DTYPES[kind])
    if chunks is not None:
        arr = arr.rechunk(chunks)
    return arr


def _read_bbox(path: Path) -> np.ndarray:
    """``(4, 2)`` integer ``(x, y)`` corners from a bounding-box file."""
    lines = [ln.strip() for ln in path.read_text(encoding="latin-1").splitlines() if ln.strip()]
    rows = lines[1:]
    try:
        if len(rows) != 4:
            raise ValueError
        corners = [[int(round(float(v))) for v in re.split(r"[,;\s]+", row) if v] for row in rows]
        if any(len(c) != 2 for c in corners):
            raise ValueError
    except ValueError:
        raise InputError(
            f"{path}: a bounding-box file holds 1 header line then 4 lines 'x,y' (corners "
            f"{', '.join(CORNERS)}); found {len(lines)} line(s): {lines[:6]}") from None
    return np.asarray(corners, dtype=np.int64)


def _chunks(chunks: Any) -> Any:
    if chunks is None or not isinstance(chunks, Mapping):
        return chunks
    unknown = set(chunks) - {"y", "x"}
    if unknown:
        raise InputError(f"chunks may name the dims 'y' and 'x', got {sorted(map(str, unknown))}")
    return {0: chunks.get("y", -1), 1: chunks.get("x", -1)}


# ---------------------------------------------------------------------------------------------
# metadata


def _parse_crs(text: str, where: str) -> Any:
    import pyproj

    s = str(text).strip()
    m = re.fullmatch(r"(?:epsg\W*)?([0-9]{4,6})", s, flags=re.IGNORECASE)
    try:
        return pyproj.CRS.from_epsg(int(m.group(1))) if m else pyproj.CRS.from_user_input(s)
    except pyproj.exceptions.CRSError:
        utm = re.search(r"utm\s*zone\s*([0-9]{1,2})\s*([NS])", s, flags=re.IGNORECASE)
        if utm:
            return pyproj.CRS.from_epsg((32600 if utm.group(2).upper() == "N" else 32700)
                                        + int(utm.group(1)))
    raise GridError(f"{where}: coordinate system {s!r} is not a CRS; use e.g. 'EPSG:3031', "
                     "'3031' or 'WGS 84 / UTM zone 22N'")


def _parse_bounds(text: str, where: str) -> tuple[float, float, float, float]:
    found = dict(re.findall(r"(left|bottom|right|top)\s*[=:]\s*([-+0-9.eE]+)", str(text)))
    try:
        left, bottom, right, top = (float(found[k]) for k in ("left", "bottom", "right", "top"))
    except (KeyError, ValueError):
        raise InputError(f"{where}: bounding box {str(text)!r} is not 'left=..., bottom=..., "
                         "right=..., top=...'") from None
    if not (right > left and top > bottom) or not all(map(math.isfinite, (left, bottom, right, top))):
        raise InputError(f"{where}: bounding box {str(text)!r} must have right > left and top > bottom")
    return left, bottom, right, top


def _column(columns: Iterable[str], *keys: str) -> str | None:
    for col in columns:
        norm = " ".join(str(col).strip().lower().replace("_", " ").split())
        if any(norm.startswith(k) for k in keys):
            return col
    return None


def read_metadata(path: str | os.PathLike[str]) -> dict[str, tuple[Any, tuple[float, float, float, float]]]:
    """Read the published ``meta_data.csv``: ``{stem: (pyproj.CRS, (left, bottom, right, top))}``.

    The file is ``;``-separated and latin-1 encoded, with the columns ``image_name``, ``date``
    (DD.MM.YYYY), ``glacier_name``, ``sensor``, ``resolution (m)``, ``Coordinate system`` and
    ``Bounding box coordinates`` (``left=..., bottom=..., right=..., top=...``).  Only the
    image name, the coordinate system and the bounding box are used.

    Raises
    ------
    ValueError
        For a missing column or an unparseable row (the message names the line).

    Examples
    --------
    >>> from xfacies.caffe import make_synthetic
    >>> meta = read_metadata(make_synthetic("caffe-meta", n=2, metadata=True) / "meta_data.csv")
    >>> crs, bounds = meta["COL_2000-02-09_ERS_20_6_637"]
    >>> crs.to_epsg(), bounds[2] - bounds[0]  # EPSG 32606, 41 pixels of 20 m
    (32606, 820.0)
    """
    path = Path(path)
    table = pd.read_csv(path, sep=";", encoding="latin-1", dtype=str, keep_default_na=False)
    cols = {"image_name": _column(table.columns, "image"),
            "Coordinate system": _column(table.columns, "coordinate system", "crs"),
            "Bounding box coordinates": _column(table.columns, "bounding box", "bounds")}
    missing = [k for k, v in cols.items() if v is None]
    if missing:
        raise InputError(f"{path}: metadata CSV lacks column(s) {missing}; found "
                         f"{list(table.columns)} (is it ';'-separated?)")
    out: dict[str, tuple[Any, tuple[float, float, float, float]]] = {}
    crs_cache: dict[str, Any] = {}
    for i, row in enumerate(table.itertuples(index=False)):
        rec = dict(zip(table.columns, row))
        name = str(rec[cols["image_name"]]).strip()
        if not name:
            continue
        where = f"{path}, line {i + 2} ({name})"
        try:
            stem = parse_stem(name).stem
        except ValueError as err:
            raise InputError(f"{where}: {err}") from None
        crs_text = str(rec[cols["Coordinate system"]]).strip()
        if crs_text not in crs_cache:
            crs_cache[crs_text] = _parse_crs(crs_text, where)
        out[stem] = (crs_cache[crs_text], _parse_bounds(rec[cols["Bounding box coordinates"]], where))
    return out


def _georeference(ds: xr.Dataset, crs: Any, bounds: tuple[float, float, float, float]) -> xr.Dataset:
    importlib.import_module("rioxarray")  # registers the .rio accessor

    left, bottom, right, top = bounds
    height, width = ds.sizes["y"], ds.sizes["x"]
    dx, dy = (right - left) / width, (top - bottom) / height
    units = "metre" if crs.is_projected else "degree"
    x = xr.Variable("x", left + (np.arange(width) + 0.5) * dx,
                    {"standard_name": "projection_x_coordinate", "long_name": "x of pixel centre",
                     "units": units})
    y = xr.Variable("y", top - (np.arange(height) + 0.5) * dy,
                    {"standard_name": "projection_y_coordinate", "long_name": "y of pixel centre",
                     "units": units})
    return ds.assign_coords(x=x, y=y).rio.write_crs(crs)


# ---------------------------------------------------------------------------------------------
# public API


def open_dataset(root: str | os.PathLike[str], split: str | None = None,
                 metadata: str | os.PathLike[str] | None = None, *, chunks: Any = None) -> xr.DataTree:
    """Open the CaFFe benchmark (or its resized derivative) lazily as a DataTree.

    Parameters
    ----------
    root
        The benchmark's ``data_raw`` folder or its parent (``raw`` layout), or a folder with
        flat ``sar_images/``, ``zones/`` and ``fronts/`` (``resized`` layout).
    split
        ``"train"``, ``"test"`` or ``None`` for both.  In the flat (resized) layout an image's
        split is its benchmark split, known from its glacier (COL and Mapple are the test
        glaciers, the other five the training ones); other glaciers' images are ``"unknown"``
        and come with ``None`` only.
    metadata
        Path of the published ``meta_data.csv`` to georeference the images listed there
        (``x``/``y`` pixel-centre coordinates, CRS via rioxarray).  Images not listed stay
        without coordinates (a :class:`MissingGeoreferenceWarning` gives their count); rows
        of other images are ignored.  In the raw layout ``pixel_size`` stays the file name's
        resolution; in the resized layout it comes from these bounds, else from the fixed area
        each benchmark glacier's images cover (:data:`xfacies.caffe.names.GLACIER_EXTENT_KM`),
        per axis (``pixel_size_x``, ``pixel_size_y``; ``pixel_size`` their geometric mean); NaN
        for other glaciers (their scores stay in pixels).
    chunks
        Dask chunks of every (y, x) array (``int``, ``tuple``, ``{"y": ..., "x": ...}`` or
        ``"auto"``); default one chunk per image.

    Returns
    -------
    xarray.DataTree
        One child per image, named by its stem; see the module docstring for the contract.
        The root's attributes name the folder, the layout and the citation.

    Raises
    ------
    ValueError
        For a bad ``split``, a folder in neither layout, a badly named PNG, an image whose
        masks differ in size (checked from the headers), a bad bounding-box file or
        metadata row, or a selection without images.
    FileNotFoundError
        When ``root`` is missing, or an image lacks its mask in an existing mask folder.

    Examples
    --------
    >>> from xfacies.caffe import make_synthetic
    >>> tree = open_dataset(make_synthetic("caffe-open", n=6), split="test")
    >>> sorted(tree.children)
    ['COL_2000-02-09_ERS_20_6_637', 'Mapple_2016-01-19_S1_20_1_017']
    >>> node = tree["COL_2000-02-09_ERS_20_6_637"]
    >>> node["sar"].dims, node["sar"].chunks is not None, node.attrs["season"]
    (('y', 'x'), True, 'winter')
    >>> open_dataset("caffe-open", split="validation")
    Traceback (most recent call last):
    ...
    xfacies.errors.InputError: split='validation' is not a CaFFe split; use 'train', 'test' or None (both)
    """
    if split is not None and split not in SPLITS:
        raise InputError(f"split={split!r} is not a CaFFe split; use 'train', 'test' or None (both)")
    root = Path(root).expanduser()
    base, layout = _find_layout(root)
    base = base.resolve()  # absolute paths in the tasks: computing works from any directory
    splits = SPLITS if split is None else (split,)
    if layout == "resized" and split is None:
        splits = SPLITS + ("unknown",)
    images = sorted(_images(base, layout, splits), key=lambda im: im.stem.stem)
    if not images:
        raise InputError(f"no CaFFe images for split={split!r} under {base} (sar_images/ holds: "
                         f"{_listing(base / 'sar_images')})")
    geo = read_metadata(metadata) if metadata is not None else {}
    rechunk = _chunks(chunks)

    nodes: dict[str, xr.Dataset] = {}
    for image in images:
        nodes[image.stem.stem] = _node(image, layout, geo.get(image.stem.stem), rechunk)
    if metadata is not None:
        unlisted = [s for s in nodes if s not in geo]
        if unlisted:
            warnings.warn(
                f"{len(unlisted)} of {len(nodes)} images are not in {metadata} and stay without "
                f"coordinates (e.g. {unlisted[:3]})", MissingGeoreferenceWarning, stacklevel=2)
    attrs = {
        "title": "CaFFe: Calving Fronts and where to Find thEm, SAR calving-front benchmark",
        "root": str(base),
        "layout": layout,
        "split": split if split is not None else "train+test",
        "n_images": len(nodes),
        "citation": CITATION,
        "references": "https://doi.org/10.5194/essd-14-4287-2022",
        "data_doi": "doi:10.1594/PANGAEA.940950",
        "license": "CC BY 4.0",
    }
    if metadata is not None:
        attrs["metadata"] = str(Path(metadata).resolve())
    return xr.DataTree.from_dict({"/": xr.Dataset(attrs=attrs), **nodes}, name="caffe")


def _node(image: _Image, layout: str, geo: tuple[Any, tuple[float, float, float, float]] | None,
          chunks: Any) -> xr.Dataset:
    stem = image.stem
    paths = {"sar": image.sar, "zones": image.zones, "front": image.front}
    shapes = {kind: _header(p) for kind, p in paths.items() if p is not None}
    sar_shape = shapes["sar"]
    for kind, shape in shapes.items():
        if shape != sar_shape:
            raise InputError(
                f"image {stem.stem!r}: the {kind} mask is {shape[1]} x {shape[0]} px (width x height) "
                f"but the SAR image is {sar_shape[1]} x {sar_shape[0]} px ({paths[kind]}, "
                f"{image.sar}); image and masks must have the same size")
    variables: dict[str, xr.DataArray] = {}
    for kind, path in paths.items():
        if path is None:
            continue
        if kind == "sar":
            attrs: dict[str, Any] = {"long_name": "SAR backscatter amplitude, 8-bit grey value",
                                     "units": "1", "nodata": 0, "comment": "0 = no data"}
        elif kind == "zones":
            encoding = "grey values 0/64/127/254" if layout == "raw" else "class ids 1..4"
            attrs = {**zone_flag_attrs(), "comment": f"class ids mapped from the PNG's {encoding}"}
        else:
            attrs = {"long_name": "calving front",
                     "comment": "True on the calving-front line (PNG value 255)"}
        attrs["source"] = str(path)
        data = _lazy(path, kind, layout, sar_shape, chunks)
        variables[kind] = xr.DataArray(data, dims=("y", "x"), attrs=attrs)
    if image.bbox is not None:
        variables["bbox"] = xr.DataArray(
            _read_bbox(image.bbox), dims=("corner", "xy"),
            coords={"corner": list(CORNERS), "xy": ["x", "y"]},
            attrs={"long_name": "bounding box corners in pixels (x = column, y = row)",
                   "source": str(image.bbox)})

    height, width = sar_shape
    if layout == "raw":
        px = py = float(stem.resolution)
    elif geo is not None:
        left, bottom, right, top = geo[1]
        px, py = (right - left) / width, (top - bottom) / height
    elif stem.glacier in GLACIER_EXTENT_KM:  # each glacier's images cover one fixed area
        w_km, h_km = GLACIER_EXTENT_KM[stem.glacier]
        px, py = 1000.0 * w_km / width, 1000.0 * h_km / height
    else:
        px = py = math.nan
    attrs = {
        "stem": stem.stem,
        "glacier": stem.glacier,
        "date": stem.date.isoformat(),
        "satellite": stem.satellite,
        "sensor": stem.sensor,
        "resolution": stem.resolution,
        "quality": stem.quality,
        "orbit": stem.orbit,
        "split": image.split,
        "hemisphere": stem.hemisphere,
        "season": stem.season,
        "layout": layout,
        "pixel_size": math.sqrt(px * py) if math.isfinite(px * py) else math.nan,
        "pixel_size_x": px,
        "pixel_size_y": py,
        "source": str(image.sar),
    }
    ds = xr.Dataset(variables, attrs=attrs)
    if geo is not None:
        ds = _georeference(ds, *geo)
    return ds


_INDEX_COLUMNS = ("glacier", "date", "satellite", "sensor", "resolution", "quality", "orbit", "split",
                  "hemisphere", "season", "height", "width", "pixel_size", "has_bbox")


def index(tree: xr.DataTree) -> pd.DataFrame:
    """One row per image of a CaFFe tree, from attributes and sizes only (no pixels are read).

    Parameters
    ----------
    tree
        A tree from :func:`open_dataset` (or :func:`select`).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``stem``, with the columns ``glacier, date`` (datetime64), ``satellite,
        sensor, resolution, quality, orbit, split, hemisphere, season, height, width,
        pixel_size, has_bbox``.

    Examples
    --------
    >>> from xfacies.caffe import make_synthetic, open_dataset
    >>> df = index(open_dataset(make_synthetic("caffe-index", n=12)))
    >>> df[(df.split == "test") & (df.satellite == "S1")].index.tolist()
    ['Mapple_2016-01-19_S1_20_1_017']
    >>> df.groupby("hemisphere").size().to_dict()
    {'north': 4, 'south': 8}
    """
    rows = []
    for name, node in tree.children.items():
        a = node.attrs
        if "stem" not in a or "sar" not in node.data_vars:
            raise InputError(f"node {name!r} is not a CaFFe image node (no 'stem' attribute or 'sar' "
                             "variable); build the tree with xfacies.caffe.open_dataset")
        height, width = node["sar"].shape
        rows.append({
            "stem": name, "glacier": a["glacier"], "date": pd.Timestamp(a["date"]),
            "satellite": a["satellite"], "sensor": a["sensor"], "resolution": int(a["resolution"]),
            "quality": int(a["quality"]), "orbit": a["orbit"], "split": a["split"],
            "hemisphere": a["hemisphere"], "season": a["season"], "height": int(height),
            "width": int(width), "pixel_size": float(a["pixel_size"]),
            "has_bbox": "bbox" in node.data_vars,
        })
    df = pd.DataFrame(rows, columns=["stem", *_INDEX_COLUMNS]).set_index("stem")
    return df.astype({"date": "datetime64[ns]", "resolution": "int64", "quality": "int64",
                      "height": "int64", "width": "int64", "pixel_size": "float64",
                      "has_bbox": "bool"})


def _stems(which: Any, tree: xr.DataTree) -> list[str]:
    names = list(tree.children)
    if isinstance(which, pd.DataFrame):
        return [str(s) for s in which.index]
    if isinstance(which, pd.Series) and pd.api.types.is_bool_dtype(which.dtype):
        return [str(s) for s in which.index[which.to_numpy(dtype=bool)]]
    if isinstance(which, (str, Stem)):
        return [str(which)]
    values = list(which)
    if values and all(isinstance(v, (bool, np.bool_)) for v in values):
        if len(values) != len(names):
            raise InputError(f"a boolean selection must have one value per image ({len(names)}), "
                             f"got {len(values)}; or pass a boolean Series indexed by stem")
        return [n for n, keep in zip(names, values) if keep]
    return [str(v) for v in values]


def select(tree: xr.DataTree, which: Any) -> xr.DataTree:
    """A tree of some of the images, in the order given (still lazy).

    Parameters
    ----------
    tree
        A tree from :func:`open_dataset`.
    which
        A DataFrame (its index, e.g. a filtered :func:`index`), a boolean Series indexed by
        stem, or stems (a list, an Index, or one string).

    Raises
    ------
    KeyError
        For stems that are not in the tree (the message lists a few valid ones).

    Examples
    --------
    >>> from xfacies.caffe import make_synthetic, open_dataset
    >>> tree = open_dataset(make_synthetic("caffe-select", n=12))
    >>> df = index(tree)
    >>> sub = select(tree, df.glacier == "JAC")
    >>> len(sub.children), sub.attrs["n_images"]
    (2, 2)
    >>> select(tree, ["JAC_1999-01-01_ERS_20_1_001"])
    Traceback (most recent call last):
    ...
    KeyError: "1 stem(s) not in the tree: ['JAC_1999-01-01_ERS_20_1_001']; valid stems include ['COL_2000-02-09_ERS_20_6_637', ...] (12 images)"
    """
    stems = list(dict.fromkeys(_stems(which, tree)))
    children = tree.children
    unknown = [s for s in stems if s not in children]
    if unknown:
        valid = list(children)
        raise KeyError(f"{len(unknown)} stem(s) not in the tree: {unknown[:5]}"
                       f"{' ...' if len(unknown) > 5 else ''}; valid stems include {valid[:3]} "
                       f"({len(valid)} images)")
    root = tree.to_dataset(inherit=False)
    root = root.assign_attrs(n_images=len(stems))
    nodes: dict[str, Any] = {"/": root}
    nodes.update({s: children[s].to_dataset(inherit=False) for s in stems})
    return xr.DataTree.from_dict(nodes, name=tree.name)
