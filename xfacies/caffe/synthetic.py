"""A small fake CaFFe benchmark on disk, in the real naming scheme and pixel values.

:func:`make_synthetic` writes images of plausible calving-front scenes for tests, notebooks and
demos: rock along the coast, a glacier tongue flowing into the ocean, a radar-shadow patch and a
no-data corner (NA), speckled SAR amplitudes, the front as the one-pixel line of ocean pixels
next to the glacier, bounding boxes around the front, a train/test split by glacier (test
glaciers COL and Mapple) and optionally the ``meta_data.csv`` that georeferences them.  Every
image has its own non-square size and orientation (ocean at any side).  The same arguments
always give the same files.

Examples
--------
>>> from xfacies.caffe.synthetic import make_synthetic
>>> root = make_synthetic("fake-caffe", n=3, seed=2)
>>> sorted(p.name for p in (root / "data_raw" / "sar_images" / "train").iterdir())
['JAC_2010-01-25_PALSAR_17_2_414.png']
"""

from __future__ import annotations

import csv
import datetime as _dt
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xfacies.errors import InputError
from xfacies.caffe.names import SATELLITES, TEST_GLACIERS, Stem
from xfacies.catalog import ZONES

__all__ = ["make_synthetic", "DEFAULT_GLACIERS"]

#: Glaciers drawn by default for each layout (the resized derivative holds four training glaciers).
DEFAULT_GLACIERS: dict[str, tuple[str, ...]] = {
    "raw": ("COL", "JAC", "Mapple", "Crane", "Jorum", "DBE", "SI"),
    "resized": ("Crane", "DBE", "JAC", "Jorum"),
}

#: Years each satellite flew (for plausible dates).
_YEARS: dict[str, tuple[int, int]] = {
    "ERS": (1995, 2004), "RSAT": (1997, 2008), "ENVISAT": (2003, 2011), "PALSAR": (2006, 2010),
    "TSX": (2008, 2020), "TDX": (2011, 2020), "S1": (2015, 2020),
}
_RESOLUTIONS: dict[str, tuple[int, ...]] = {
    "ERS": (20,), "RSAT": (12, 20), "ENVISAT": (20,), "PALSAR": (17,), "TSX": (7,), "TDX": (7,),
    "S1": (20,),
}
#: Glacier names as the metadata CSV spells them (latin-1).
_CSV_NAMES: dict[str, str] = {
    "COL": "Columbia", "JAC": "Jakobshavn Isbr\u00e6", "Mapple": "Mapple", "Crane": "Crane",
    "Jorum": "Jorum", "DBE": "Dinsmoor-Bombardier-Edgeworth", "SI": "Sj\u00f6gren-Inlet",
}
#: Coordinate system (spelt three ways, as user files do) and a scene centre (x, y) per hemisphere.
_CRS: dict[str, tuple[str, float, float]] = {
    "COL": ("32606", 497000.0, 6773000.0),
    "JAC": ("WGS 84 / UTM zone 22N", 530000.0, 7668000.0),
}
_CRS_SOUTH = ("EPSG:3031", -2370000.0, 1270000.0)
_CSV_COLUMNS = ("image_name", "date", "glacier_name", "sensor", "resolution (m)", "Coordinate system",
                "Bounding box coordinates")
_FOLDERS = ("sar_images", "zones", "fronts", "bounding_boxes")


def _stems(rng: np.random.Generator, n: int, glaciers: Sequence[str]) -> list[Stem]:
    stems: list[Stem] = []
    seen: set[str] = set()
    for i in range(n):
        glacier = glaciers[i % len(glaciers)]
        satellite = SATELLITES[(3 * i + i // len(glaciers)) % len(SATELLITES)]
        if satellite == "TSX" and glacier == "JAC":
            resolution = 6
        else:
            resolution = int(rng.choice(_RESOLUTIONS[satellite]))
        y0, y1 = _YEARS[satellite]
        quality, orbit = int(rng.integers(1, 7)), f"{int(rng.integers(1, 1000)):03d}"
        first = _dt.date(y0, 1, 1)
        while True:
            date = first + _dt.timedelta(days=int(rng.integers(0, 365 * (y1 - y0 + 1))))
            stem = Stem(glacier, date, satellite, resolution, quality, orbit)
            if stem.stem not in seen:
                break
        seen.add(stem.stem)
        stems.append(stem)
    return stems


def _wave(n: int, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A smooth random curve of length ``n`` (two sines)."""
    t = np.arange(n) / max(n - 1, 1)
    f1, f2 = rng.uniform(0.5, 1.5), rng.uniform(2.0, 4.0)
    p1, p2 = rng.uniform(0, 2 * np.pi, 2)
    return amplitude * (0.7 * np.sin(2 * np.pi * f1 * t + p1) + 0.3 * np.sin(2 * np.pi * f2 * t + p2))


def _front_of(zones: np.ndarray) -> np.ndarray:
    """Ocean pixels with a 4-neighbour glacier pixel (border padded with NA)."""
    glacier = np.pad(zones == ZONES[2].id, 1)
    near = glacier[:-2, 1:-1] | glacier[2:, 1:-1] | glacier[1:-1, :-2] | glacier[1:-1, 2:]
    return (zones == ZONES[3].id) & near


def _scene(rng: np.random.Generator, height: int, width: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(sar uint8, zone ids int8, front bool, bbox (4, 2))`` of one image of ``height x width``."""
    na, rock, glacier, ocean = (z.id for z in ZONES)
    turns = int(rng.integers(0, 4))
    H, W = (height, width) if turns % 2 == 0 else (width, height)  # canonical: ocean at the bottom
    r = np.arange(H)[:, None]
    c = np.arange(W)[None, :]

    coast = H * rng.uniform(0.45, 0.6) + _wave(W, rng, 0.05 * H)[None, :]
    centre = W * rng.uniform(0.35, 0.65) + _wave(H, rng, 0.04 * W)[:, None]
    half = W * rng.uniform(0.12, 0.22)
    front_row = coast + H * rng.uniform(0.08, 0.2) + _wave(W, rng, 0.04 * H)[None, :]
    in_channel = np.abs(c - centre) <= half

    zones = np.where(r < coast, rock, ocean).astype(np.int8)
    zones[in_channel & (r < front_row)] = glacier
    shadow = (((r - H * rng.uniform(0.1, 0.3)) / (0.12 * H)) ** 2
              + ((c - W * rng.uniform(0.05, 0.25)) / (0.1 * W)) ** 2) < 1
    zones[shadow & (zones == rock)] = na
    nodata = (r / H + c / W) < rng.uniform(0.12, 0.25)  # a corner without data
    zones[nodata] = na

    level = np.choose(zones, [18, 95, 165, 45]).astype(np.float32)  # zone id order: NA rock glacier ocean
    speckle = rng.gamma(4.0, 0.25, size=(H, W)).astype(np.float32)
    sar = np.clip(level * speckle + 10 * (c / W), 1, 255).astype(np.uint8)
    sar[nodata] = 0

    sar, zones = np.rot90(sar, turns), np.rot90(zones, turns)
    front = _front_of(zones)
    rows, cols = np.nonzero(front)
    if rows.size:
        margin = 3
        y0, y1 = max(int(rows.min()) - margin, 0), min(int(rows.max()) + margin, height - 1)
        x0, x1 = max(int(cols.min()) - margin, 0), min(int(cols.max()) + margin, width - 1)
    else:  # pragma: no cover - the geometry always has a front
        y0, y1, x0, x1 = 0, height - 1, 0, width - 1
    bbox = np.array([[x0, y0], [x0, y1], [x1, y1], [x1, y0]], dtype=np.int64)
    return np.ascontiguousarray(sar), np.ascontiguousarray(zones), front, bbox


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(path, compress_level=1)


def _size(rng: np.random.Generator, size: int | tuple[int, int] | None) -> tuple[int, int]:
    if size is None:
        height, width = (int(v) for v in rng.integers(40, 121, size=2))
        if height == width:
            width = width + 7 if width < 110 else width - 7
        return height, width
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    height, width = size
    return int(height), int(width)


def make_synthetic(root: str | os.PathLike[str], *, layout: str = "raw", n: int = 12, seed: int = 0,
                   glaciers: Sequence[str] | None = None, with_bbox: bool = True,
                   metadata: bool = False, size: int | tuple[int, int] | None = None,
                   overwrite: bool = False) -> Path:
    """Write a small fake CaFFe benchmark and return the folder to open.

    Parameters
    ----------
    root
        Folder to write into (created).  The raw layout goes to ``root/data_raw``, the resized
        one to ``root`` itself; ``meta_data.csv`` goes to ``root``.
    layout
        ``"raw"`` (``{train,test}`` sub-folders, zone grey values 0/64/127/254, bounding boxes)
        or ``"resized"`` (flat folders, zone class ids 1..4, no bounding boxes; each image's split
        is its glacier's benchmark split).
    n
        Number of images.  Glaciers are drawn in turn, satellites in a fixed cycle, so that a
        dozen images cover every glacier and satellite.
    seed
        Seed of everything random (sizes, dates, geometry, speckle).
    glaciers
        Glacier tokens to draw from; default all seven (raw) or Crane, DBE, JAC and Jorum
        (resized, as the real 256-px derivative).  In the raw layout COL and Mapple are test
        images, the others training images.
    with_bbox
        Write ``bounding_boxes/<stem>_bbox.txt`` (raw layout only): a header line, then the
        corners upper-left, lower-left, lower-right, upper-right as ``x,y`` pixels around the
        front.
    metadata
        Also write ``root/meta_data.csv`` (``;``-separated, latin-1, the published columns) with
        a coordinate system and bounds for every image: pixels of ``resolution`` metres (raw),
        or of a made-up original size (resized).
    size
        ``None`` (default): each image gets its own random non-square size of 40-120 px per side;
        an int or ``(height, width)`` for one size for all (e.g. 256 as the real derivative).
    overwrite
        Delete the benchmark folders (and ``meta_data.csv``) already in ``root`` first; without
        it, a ``root`` that already holds them raises ``FileExistsError``.

    Returns
    -------
    pathlib.Path
        ``root``, ready for :func:`xfacies.caffe.open_dataset`.

    Examples
    --------
    >>> from xfacies.caffe import open_dataset
    >>> root = make_synthetic("synthetic-caffe", layout="resized", n=4, metadata=True)
    >>> tree = open_dataset(root, metadata=root / "meta_data.csv")
    >>> node = tree["Crane_2000-02-09_ERS_20_6_637"]
    >>> node["zones"].shape, node["sar"].rio.crs.to_epsg(), round(node.attrs["pixel_size"], 1)
    ((80, 89), 3031, 319.4)
    """
    if layout not in ("raw", "resized"):
        raise InputError(f"layout={layout!r}: use 'raw' (the benchmark's data_raw) or 'resized' "
                         "(flat folders, as the 256-px derivative)")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n={n!r}: give a positive number of images")
    glaciers = tuple(DEFAULT_GLACIERS[layout] if glaciers is None else glaciers)
    if not glaciers or not all(isinstance(g, str) and g.isalnum() for g in glaciers):
        raise InputError(f"glaciers={glaciers!r}: give alphanumeric glacier tokens, e.g. "
                         f"{DEFAULT_GLACIERS['raw']}")
    root = Path(root)
    base = root / "data_raw" if layout == "raw" else root
    targets = [base / f for f in _FOLDERS] + [root / "meta_data.csv"]
    existing = [p for p in targets if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{root} already holds {[str(p) for p in existing]}; choose an empty "
                              "folder or pass overwrite=True")
    for p in existing:
        shutil.rmtree(p) if p.is_dir() else p.unlink()

    rng = np.random.default_rng(seed)
    stems = _stems(rng, int(n), glaciers)
    grey = np.zeros(len(ZONES), dtype=np.uint8)
    for z in ZONES:
        grey[z.id] = z.grey
    rows = []
    for stem in stems:
        height, width = _size(rng, size)
        sar, zones, front, bbox = _scene(rng, height, width)
        split = "test" if layout == "raw" and stem.glacier in TEST_GLACIERS else "train"
        sub = (split,) if layout == "raw" else ()
        folders = {kind: base.joinpath(kind, *sub) for kind in _FOLDERS[:3]}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        _save_png(sar, folders["sar_images"] / f"{stem.stem}.png")
        codes = grey[zones] if layout == "raw" else zones.astype(np.uint8) + 1
        _save_png(codes, folders["zones"] / f"{stem.stem}_zones.png")
        _save_png(front.astype(np.uint8) * 255, folders["fronts"] / f"{stem.stem}_front.png")
        if with_bbox and layout == "raw":
            (base / "bounding_boxes").mkdir(parents=True, exist_ok=True)
            lines = ["x,y"] + [f"{x},{y}" for x, y in bbox.tolist()]
            (base / "bounding_boxes" / f"{stem.stem}_bbox.txt").write_text("\n".join(lines) + "\n")
        if metadata:
            rows.append(_metadata_row(rng, stem, height, width, layout))
    if metadata:
        with open(root / "meta_data.csv", "w", encoding="latin-1", newline="") as f:
            writer = csv.writer(f, delimiter=";")
            writer.writerow(_CSV_COLUMNS)
            writer.writerows(rows)
    return root


def _metadata_row(rng: np.random.Generator, stem: Stem, height: int, width: int,
                  layout: str) -> list[str]:
    crs, x0, y0 = _CRS.get(stem.glacier, _CRS_SOUTH)
    if layout == "raw":
        orig_h, orig_w = height, width
    else:  # a made-up original size of 8-20 times the resized one, per axis
        orig_h, orig_w = (int(v * rng.integers(8, 21)) for v in (height, width))
    left = x0 + 10.0 * int(rng.integers(-100, 100))
    top = y0 + 10.0 * int(rng.integers(-100, 100))
    right, bottom = left + orig_w * stem.resolution, top - orig_h * stem.resolution
    bounds = f"left={left:.1f}, bottom={bottom:.1f}, right={right:.1f}, top={top:.1f}"
    return [stem.stem, stem.date.strftime("%d.%m.%Y"), _CSV_NAMES.get(stem.glacier, stem.glacier),
            stem.satellite, str(stem.resolution), crs, bounds]
