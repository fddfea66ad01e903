"""The CaFFe SAR calving-front benchmark, the xarray way.

*Calving Fronts and where to Find thEm* (Gourmelon et al. 2022, Earth Syst. Sci. Data 14,
4287-4313, doi:10.5194/essd-14-4287-2022; data doi:10.1594/PANGAEA.940950, CC BY 4.0): 681 SAR
images of seven marine-terminating glaciers with zone masks (NA, rock, glacier, ocean) and
calving-front lines.

=====================================  ===========================================================
:func:`open_dataset`                   the benchmark (or its resized derivative) as a lazy DataTree
:func:`index`, :func:`select`          a DataFrame of the images' metadata; a sub-tree
:func:`parse_stem`, :class:`Stem`      the file-name fields (glacier, date, sensor, season, ...)
:func:`make_synthetic`                 a small fake benchmark on disk for tests and demos
:func:`segment`                        zone maps from SAR images with a zone model
:func:`zones_to_front`                 the benchmark's post-processing, zones to a front line
:func:`front_errors`, :func:`evaluate` mean distance error and zone IoU, with breakdowns
:func:`thumbnail`, :func:`overlay`,    browsing: previews, mask overlays, a contact sheet,
:func:`gallery`, :func:`to_fiftyone`   a FiftyOne dataset
=====================================  ===========================================================

Importing ``xfacies.caffe`` imports none of its modules: each name is imported on first use
(so neither Keras nor PIL is loaded until needed).

Examples
--------
>>> import xfacies.caffe as caffe
>>> caffe.parse_stem("Crane_2002-11-09_ERS_20_2_061_zones.png").season
'summer'
>>> df = caffe.index(caffe.open_dataset(caffe.make_synthetic("caffe-demo", n=7)))
>>> df.groupby("split").size().to_dict()
{'test': 2, 'train': 5}
"""

from __future__ import annotations

from xfacies._lazy import names as _lazy_names

#: Public name -> module that defines it (imported on first access).
_LAZY: dict[str, str] = {
    "parse_stem": "xfacies.caffe.names",
    "Stem": "xfacies.caffe.names",
    "open_dataset": "xfacies.caffe.dataset",
    "index": "xfacies.caffe.dataset",
    "select": "xfacies.caffe.dataset",
    "read_metadata": "xfacies.caffe.dataset",
    "make_synthetic": "xfacies.caffe.synthetic",
    "zones_to_front": "xfacies.caffe.postprocess",
    "front_errors": "xfacies.caffe.metrics",
    "evaluate": "xfacies.caffe.metrics",
    "summarize": "xfacies.caffe.metrics",
    "zone_scores": "xfacies.caffe.metrics",
    "sar_features": "xfacies.caffe.segmentation",
    "segment": "xfacies.caffe.segmentation",
    "train_zone_model": "xfacies.caffe.train",
    "leave_one_glacier_out": "xfacies.caffe.train",
    "thumbnail": "xfacies.caffe.explore",
    "overlay": "xfacies.caffe.explore",
    "gallery": "xfacies.caffe.webpage",
    "to_fiftyone": "xfacies.caffe.fiftyone_export",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = _lazy_names(__name__, _LAZY, globals())
