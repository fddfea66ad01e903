"""The CaFFe benchmark as a FiftyOne dataset (:func:`to_fiftyone`; optional extra
``pip install xfacies[fiftyone]``): one sample per image with the thumbnail, the zone and front
masks as segmentations, the metadata and the scores as fields.  FiftyOne is imported only here,
with a shim for the package metadata it reads at import time.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xfacies.caffe.explore import (
    FRONT_COLOR, cache_key, cached_png, check_height, predicted_pair, predictions_map, safe_name, save_png, scores_table, source_of, thumbnail,
)
from xfacies.caffe.metrics import finite_or_none
from xfacies.catalog import ZONES
from xfacies.errors import InputError

__all__ = ["to_fiftyone"]


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

    return save_png(Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)), path)


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

    height = check_height(height)
    if not isinstance(dataset, xr.DataTree):
        raise TypeError(f"dataset must be a DataTree of xfacies.caffe.open_dataset, got "
                        f"{type(dataset).__name__}")
    if name is not None and fo.dataset_exists(name):
        if not overwrite:
            raise InputError(f"a FiftyOne dataset {name!r} exists; pass overwrite=True to replace it "
                             "or choose another name")
        fo.delete_dataset(name)
    df = index(dataset)
    preds = predictions_map(predictions)
    table = scores_table(scores)
    name = name if name is not None else fo.get_default_dataset_name()
    media = Path(media_dir) if media_dir is not None else Path(fo.config.default_dataset_dir) / name
    targets = {z.id: z.name for z in ZONES}

    samples = []
    for stem, row in df.iterrows():
        ds = dataset[stem].to_dataset(inherit=False)
        source = source_of(ds["sar"], ds)
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
            zsrc = [source_of(ds["zones"])]
            zpath = cached_png(media / "zones", stem, "zones", cache_key(zsrc if zsrc[0] else [ds["zones"].values]),
                            lambda ds=ds: _image_of(ds["zones"].values))
            sample["zones"] = fo.Segmentation(mask_path=str(zpath.resolve()))
        if "front" in ds.data_vars:
            fsrc = [source_of(ds["front"])]
            fpath = cached_png(media / "fronts", stem, "front", cache_key(fsrc if fsrc[0] else [ds["front"].values]),
                            lambda ds=ds: _image_of(ds["front"].values))
            sample["front"] = fo.Segmentation(mask_path=str(fpath.resolve()))
        if stem in preds:
            pz, pf = predicted_pair(preds[stem], ds, (int(row["height"]), int(row["width"])))
            sample["pred_zones"] = fo.Segmentation(
                mask_path=str(_mask_png(pz, media / "pred_zones" / f"{safe_name(stem)}.png").resolve()))
            sample["pred_front"] = fo.Segmentation(
                mask_path=str(_mask_png(pf, media / "pred_fronts" / f"{safe_name(stem)}.png").resolve()))
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
