"""``xfacies apply``: classify one scene from GeoTIFFs, as the reference's ``apply.py`` does.

For users coming from the reference study's single-scene script: the same
inputs and outputs, with its defects fixed.

Inputs (all on **one grid**: same CRS, transform and size -- checked, with an
error naming the files that differ)

* a 6-band optical GeoTIFF (blue, green, red, nir, swir1, swir2, in the units
  the model was trained on);
* optionally a DEM, slope (degrees), cast-shadow mask (1 sunlit, 0 shadow),
  hillshade (0..1) and proximity (distance to the outline edges) rasters.
  The feature set follows from which are given, and the pairs are checked
  (each of these raises a clear error instead of being silently ignored):

  ==========================================  ===========
  inputs                                      feature set
  ==========================================  ===========
  optical                                     1
  + dem + slope                               2
  + dem + slope + shadow + hillshade          3
  + all of the above + proximity              4
  ==========================================  ===========

* glacier outlines (shapefile, GeoJSON, GeoPackage, ...), reprojected to the
  raster CRS and repaired (:func:`xfacies.read_outlines`).

Per-scene normalisation, as the reference: the elevation is min-max scaled
with the DEM's minimum and maximum **inside the outlines** (all glaciers
together); the proximity is divided by its maximum over the raster.  Then the
model's own global min/max normalisation applies.  As in :func:`xfacies.features`,
a DEM range inside the outlines below 1 m
(:data:`xfacies.features.compute.MIN_ELEVATION_RANGE`: a glacier of one pixel, a
flat DEM) gives elevation 0.5 everywhere, with an
:class:`~xfacies.features.compute.ElevationRangeWarning` naming the glaciers.

Input checks: the optical values must be plausible surface reflectance when the
model reads reflectance (a model without normalisation, or whose optical
min/max lie within reflectance): more than 1 % of the finite values outside
[-0.05, 1.6] -- reflectance in percent, or digital numbers (integer or float)
without the sensor's scale and offset -- is refused with an error naming the
file and the fix (:func:`xfacies.validation.check_reflectance_values`).  A raster
that cannot be read (truncated, not a raster) is refused with an error naming
the file.  On the command line these errors exit with status 2.

Outputs

* the class GeoTIFF: int16, the catalogue class ids (0 ice, 1 snow, 2 debris,
  3 firn, 4 shadow, 5 refrozen-like, 6 water, 7 cloud), nodata **-9999**
  outside the outlines (and where an input is nodata);
* optionally a float32 confidence GeoTIFF (max class probability, mapped
  through the calibrator when the model has one or ``calibration`` is given;
  nodata -9999).

Fixed defects of the reference script: the paired-input checks fire; no
confidence path is needed; pixels next to the raster edge are classified
(patches are zero-padded in normalised space, the network's own padding);
inference is vectorised and chunked (:func:`xfacies.classify`), with
``method="exact"`` (default) reproducing the reference's per-pixel patch
semantics and ``method="dense"`` ~300 times faster.

Examples
--------
>>> from xfacies.app.apply import apply_scene
>>> res = apply_scene("S2_20200815.tif", "rgi.shp", "facies.tif",
...                   dem="dem.tif", slope="slope.tif", shadow="shadow.tif",
...                   hillshade="hillshade.tif", proximity="proximity.tif",
...                   model="0_cnn_afterconfidentlearning_weights.h5", minmax="minmax.json",
...                   confidence="confidence.tif", smooth=True)          # doctest: +SKIP
>>> res.feature_set, res.n_classified                                   # doctest: +SKIP
(4, 183221)
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rioxarray  # noqa: F401  (registers .rio)

from xfacies import spatial
from xfacies.errors import GridError, InputError, InputWarning

__all__ = ["apply_scene", "ApplyResult", "NODATA_OUT", "scene_features"]

#: Nodata value of the class and confidence GeoTIFFs (the reference's).
NODATA_OUT = -9999

PathLike = str | os.PathLike

_AUX = ("dem", "slope", "shadow", "hillshade", "proximity")
#: The feature each auxiliary raster becomes.
_AUX_FEATURE = {"dem": "elevation", "slope": "slope", "shadow": "shadow_mask",
                "hillshade": "hillshade", "proximity": "proximity"}


@dataclass
class ApplyResult:
    """What :func:`apply_scene` wrote.

    Attributes
    ----------
    output
        The class GeoTIFF.
    confidence
        The confidence GeoTIFF, or ``None``.
    feature_set
        1-4, from the inputs given.
    n_glacier_pixels, n_classified
        Pixels inside the outlines; of those, pixels classified (the others
        had a nodata input).
    counts
        Pixels per class name.
    seconds
        Wall-clock time.
    model
        ``repr`` of the model used.
    """

    output: Path
    confidence: Path | None
    feature_set: int
    n_glacier_pixels: int
    n_classified: int
    counts: dict[str, int]
    seconds: float
    model: str

    def summary(self) -> str:
        lines = [f"xfacies apply: feature set {self.feature_set}, {self.n_classified} of "
                 f"{self.n_glacier_pixels} glacier pixels classified in {self.seconds:.1f} s",
                 f"  model:      {self.model}",
                 f"  classes:    {self.output}  (int16, nodata {NODATA_OUT})"]
        if self.confidence:
            lines.append(f"  confidence: {self.confidence}  (float32, nodata {NODATA_OUT})")
        share = ", ".join(f"{k} {100 * v / max(self.n_classified, 1):.1f} %" for k, v in self.counts.items() if v)
        lines.append(f"  shares:     {share}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- checks
def _feature_set(given: dict[str, Any]) -> int:
    """The feature set implied by the auxiliary inputs; raise on incomplete pairs."""
    has = {k: given.get(k) is not None for k in _AUX}

    def need(what: str, *others: str, why: str) -> None:
        missing = [o for o in others if not has[o]]
        if has[what] and missing:
            raise InputError(
                f"--{what} was given without {' and '.join('--' + m for m in missing)}: {why}. "
                "Feature sets: 1 = optical; 2 = + dem + slope; 3 = + shadow + hillshade; 4 = + proximity")

    need("dem", "slope", why="elevation and slope are used together (feature set 2 and up)")
    need("slope", "dem", why="elevation and slope are used together (feature set 2 and up)")
    need("shadow", "hillshade", why="shadow and hillshade are used together (feature set 3 and up)")
    need("hillshade", "shadow", why="shadow and hillshade are used together (feature set 3 and up)")
    need("shadow", "dem", "slope", why="feature set 3 also needs elevation and slope")
    need("hillshade", "dem", "slope", why="feature set 3 also needs elevation and slope")
    need("proximity", "dem", "slope", "shadow", "hillshade",
         why="proximity is the 11th feature of set 4, which needs all the other inputs")
    if has["proximity"]:
        return 4
    if has["shadow"]:
        return 3
    if has["dem"]:
        return 2
    return 1


def _geobox(src: Any) -> Any:
    """The grid of an open rasterio dataset, from its header."""
    from odc.geo.geobox import GeoBox

    return GeoBox((src.height, src.width), src.transform, src.crs)


def _same_grid(ref: Any, ref_path: str, other: Any, other_path: str, what: str) -> None:
    problems = spatial.geobox_differences(_geobox(other), _geobox(ref))
    if problems:
        raise GridError(
            f"--{what} {other_path} is not on the grid of the optical raster {ref_path}: "
            f"{'; '.join(problems)}. Resample it onto the optical grid first "
            "(e.g. gdalwarp -tr/-te, or rioxarray .rio.reproject_match)")


def _open(path: PathLike, what: str) -> Any:
    """``rasterio.open(path)`` with an error naming the input when it is not a readable raster."""
    import rasterio

    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioError as err:
        raise InputError(f"--{what} {path} cannot be opened as a raster ({_why(err)}); check that it is a "
                         "complete GeoTIFF (a truncated download or copy cannot be read: fetch or "
                         "export it again)") from None


def _why(err: BaseException) -> str:
    """GDAL's message, with the one it points to ("see previous exception")."""
    cause = err.__cause__ or err.__context__
    return f"{err}: {cause}" if cause is not None and str(cause) not in str(err) else str(err)


def _read(src: Any, bands: list[int], what: str = "optical") -> np.ndarray:
    """Bands as float32 with every nodata (declared value, mask) as NaN; for the optical scene also
    the usual fill values (:data:`xfacies.validation.FILL_VALUES`) a file may hold undeclared."""
    import rasterio

    from xfacies.validation import FILL_VALUES

    try:
        arr = src.read(bands, masked=True).astype(np.float32)
    except rasterio.errors.RasterioError as err:
        raise InputError(f"--{what} {src.name} cannot be read ({_why(err)}): the file is damaged or "
                         "truncated; fetch or export it again") from None
    out = np.ma.filled(arr, np.nan)
    if what == "optical":
        out[np.isin(out, np.asarray(FILL_VALUES, np.float32)) | np.isinf(out)] = np.nan
    return out


def _expects_reflectance(model: Any) -> bool:
    """Whether ``model`` reads optical bands as reflectance (:meth:`xfacies.Model.expects_reflectance`;
    a model without optical bands counts as reading them, as apply's optical input always is)."""
    from xfacies.catalog import OPTICAL_FEATURES

    if not any(f in OPTICAL_FEATURES for f in model.features):
        return True
    return model.expects_reflectance()


def _check_paths(paths: dict[str, Any]) -> None:
    for name, p in paths.items():
        if p is not None and not Path(p).exists():
            raise FileNotFoundError(f"--{name} {p} does not exist")


def _check_outputs(outputs: dict[str, Any], inputs: dict[str, Any]) -> None:
    """Refuse an output path that is one of the inputs (or the other output): it would be
    overwritten (``--output`` equal to ``--optical`` destroyed the scene)."""
    seen: dict[Path, str] = {}
    for name, p in inputs.items():
        if p is not None and Path(p).exists():
            seen[Path(p).resolve()] = f"--{name}"
    for name, p in outputs.items():
        if p is None:
            continue
        q = Path(p).resolve()
        if q in seen:
            raise InputError(f"--{name} {p} is also {seen[q]}: writing it would overwrite that input; "
                             "choose another output path")
        seen[q] = f"--{name}"


def _load(model: Any, minmax: Any, calibration: Any) -> Any:
    from xfacies.model.bundle import Model
    from xfacies.model.registry import load_model
    from xfacies.model.calibration import read_reference_calibrator
    from xfacies.model.reference import import_reference

    if isinstance(model, (str, os.PathLike)) and str(model).lower().endswith(".h5"):
        return import_reference(model, minmax, calibrator=calibration)
    if minmax is not None:
        raise InputError("--minmax is for reference .h5 weight files; an xfacies bundle carries its own "
                         "normalisation (import the .h5 with `xfacies import-reference h5 out --minmax ...`)")
    m = model if isinstance(model, Model) else load_model(model)
    if calibration is not None:
        cal = read_reference_calibrator(calibration)
        m = dataclasses.replace(m, calibrator=cal, path=None,
                                metadata={**m.metadata, "calibration": Path(calibration).name})
    return m


# --------------------------------------------------------------------------- features
def scene_features(
    optical: PathLike,
    outlines: Any,
    *,
    dem: PathLike | None = None,
    slope: PathLike | None = None,
    shadow: PathLike | None = None,
    hillshade: PathLike | None = None,
    proximity: PathLike | None = None,
    check_reflectance: bool = True,
) -> tuple[Any, Any]:
    """The feature cube and the glacier raster of a scene given as GeoTIFFs.

    Parameters
    ----------
    optical, outlines, dem, slope, shadow, hillshade, proximity
        As in :func:`apply_scene`.
    check_reflectance
        Refuse optical values that are not plausible surface reflectance
        (:func:`xfacies.validation.check_reflectance_values`); :func:`apply_scene`
        decides from the model instead.

    Returns
    -------
    (xarray.DataArray, xarray.DataArray)
        float32 features ``(band, y, x)`` named as :data:`xfacies.FEATURES`
        (NaN where an input is nodata), and the int32 glacier index ``(y, x)``
        (:func:`xfacies.outlines.rasterize`), both with the raster's CRS.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing files; incomplete input pairs; rasters not on one grid; a
        rotated grid; outlines that miss the raster; unreadable (truncated)
        rasters; implausible reflectance (percent, digital numbers).

    Warns
    -----
    ElevationRangeWarning
        The DEM range inside the outlines is below 1 m: elevation 0.5.

    Examples
    --------
    >>> feats, glaciers = scene_features("scene.tif", "outlines.geojson")   # doctest: +SKIP
    >>> list(feats.band.values)                                             # doctest: +SKIP
    ['blue', 'green', 'red', 'nir', 'swir1', 'swir2']
    """
    import xarray as xr

    from xfacies.catalog import FEATURE_SETS, OPTICAL_FEATURES
    from xfacies.features.assemble import stack_features
    from xfacies.features.elevation import elevation_inside
    from xfacies.features.proximity import normalise_proximity
    from xfacies.outlines import rasterize, read_outlines
    from xfacies.validation import check_reflectance_values

    aux = {"dem": dem, "slope": slope, "shadow": shadow, "hillshade": hillshade, "proximity": proximity}
    _check_paths({"optical": optical, "outlines": outlines if isinstance(outlines, (str, os.PathLike)) else None,
                  **aux})
    fs = _feature_set(aux)
    with _open(optical, "optical") as src:
        if src.count != 6:
            raise InputError(f"the optical raster {optical} has {src.count} band(s); it must have 6 "
                             "(blue, green, red, nir, swir1, swir2, in this order)")
        tr = src.transform
        if tr.b != 0 or tr.d != 0:
            raise GridError(f"the optical raster {optical} has a rotated grid {tuple(tr)[:6]}; "
                             "warp it to a north-up grid first")
        if src.crs is None:
            raise GridError(f"the optical raster {optical} has no CRS")
        optical_dtype = str(src.dtypes[0])
        crs = src.crs
        h, w = src.height, src.width
        layers = list(_read(src, [1, 2, 3, 4, 5, 6]))
        if check_reflectance:
            check_reflectance_values(np.stack(layers), f"--optical {optical}")
        for name, p in aux.items():
            if p is None:
                continue
            with _open(p, name) as other:
                _same_grid(src, str(optical), other, str(p), name)
                if other.count != 1:
                    raise InputError(f"--{name} {p} has {other.count} bands; it must have one")
                aux[name] = _read(other, [1], name)[0]
    x = tr.c + tr.a * (np.arange(w) + 0.5)
    y = tr.f + tr.e * (np.arange(h) + 0.5)
    coords = {"y": y, "x": x}
    like = xr.DataArray(np.zeros((h, w), np.float32), dims=("y", "x"), coords=coords).rio.write_crs(crs)
    gdf = read_outlines(outlines, crs=crs)
    glaciers = rasterize(gdf, like)
    inside = glaciers.values > 0
    if not inside.any():
        raise GridError(f"the outlines ({len(gdf)} glaciers) cover no pixel of the optical raster {optical}; "
                         "check that they overlap the scene (they were reprojected to its CRS)")
    names = list(FEATURE_SETS[fs])
    given = {_AUX_FEATURE[k]: v for k, v in aux.items() if v is not None}
    if "elevation" in given:
        given["elevation"] = elevation_inside(given["elevation"], glaciers.values,
                                              [str(i) for i in gdf["glacier_id"]], stacklevel=3)
    if "proximity" in given:
        given["proximity"] = normalise_proximity(given["proximity"], np.nanmax(given["proximity"]))
    # as the reference script: the features where an input is nodata are NaN (the optical ones
    # mark the pixel as unobserved; a NaN terrain layer stays NaN in its own band)
    stack = stack_features(names, {**dict(zip(OPTICAL_FEATURES, layers)), **given})
    feats = xr.DataArray(stack, dims=("band", "y", "x"), coords={"band": names, **coords}, name="features",
                         attrs={"optical_dtype": optical_dtype}).rio.write_crs(crs)
    return feats, glaciers


# --------------------------------------------------------------------------- main
def apply_scene(
    optical: PathLike,
    outlines: Any,
    out: PathLike,
    *,
    dem: PathLike | None = None,
    slope: PathLike | None = None,
    shadow: PathLike | None = None,
    hillshade: PathLike | None = None,
    proximity: PathLike | None = None,
    model: Any = "demo",
    minmax: Any = None,
    confidence: PathLike | None = None,
    calibration: PathLike | None = None,
    smooth: bool = False,
    method: Literal["exact", "dense"] = "exact",
    batch_size: int | None = None,
    chunks: int = 1024,
    progress: bool = False,
) -> ApplyResult:
    """Classify the glacier facies of one scene given as GeoTIFFs; write GeoTIFFs.

    Parameters
    ----------
    optical
        6-band optical GeoTIFF (blue, green, red, nir, swir1, swir2).
    outlines
        Glacier outlines: a vector file (shp, geojson, gpkg, ...) or a GeoDataFrame.
    out
        Output class GeoTIFF (int16, nodata -9999 outside the outlines).
    dem, slope, shadow, hillshade, proximity
        Optional single-band GeoTIFFs on the optical grid; which are given
        decides the feature set (see the module docstring; incomplete pairs
        are errors).
    model
        An xfacies bundle path, ``"demo"``, a :class:`xfacies.Model`, or a
        reference ``*_weights.h5`` file (then ``minmax`` and ``calibration``
        are those of the reference).
    minmax
        The reference's min/max pickle, for ``.h5`` weights only.
    confidence
        Optional output confidence GeoTIFF (float32, nodata -9999).
    calibration
        A reference ``*_calibration_model.pickle``: the confidence is mapped
        through it (a bundle's own calibrator is used otherwise).
    smooth
        3 x 3 mode filter of the class map (ignores nodata; ties to the lowest id).
    method
        ``"exact"`` (the reference's per-pixel 33 x 33 patches, zero-padded at
        the raster edge) or ``"dense"`` (fully convolutional, ~300 x faster).
    batch_size
        Patches per batch for ``"exact"`` (default: chosen for the device).
    chunks
        Spatial chunk size of the chunked inference (pixels).
    progress
        Show a progress bar.

    Returns
    -------
    ApplyResult

    Raises
    ------
    FileNotFoundError
        An input does not exist.
    ValueError
        Incomplete input pairs (e.g. slope without DEM), rasters not on one
        grid (names the files and what differs), an optical raster without 6
        bands, a model that reads another feature set than the inputs make,
        outlines that miss the raster, ``minmax`` with a bundle, a raster or
        outline file that cannot be read (truncated, malformed), optical values
        that are not plausible reflectance for a model that reads reflectance
        (percent; digital numbers without scale/offset, integer or float).

    Examples
    --------
    >>> res = apply_scene("scene.tif", "outlines.shp", "facies.tif", model="demo-set1.xfacies")  # doctest: +SKIP
    >>> print(res.summary())                                                                   # doctest: +SKIP
    """
    import contextlib

    import dask
    import rasterio

    from xfacies.catalog import FEATURE_SETS
    from xfacies.inference import classify
    from xfacies.validation import check_reflectance_values

    t0 = time.perf_counter()
    if method not in ("exact", "dense"):
        raise InputError(f"method must be 'exact' or 'dense', got {method!r}")
    _check_paths({"model": model if isinstance(model, (str, os.PathLike)) and str(model) != "demo" else None,
                  "minmax": minmax if isinstance(minmax, (str, os.PathLike)) else None,
                  "calibration": calibration})
    _check_outputs({"output": out, "confidence": confidence},
                   {"optical": optical, "outlines": outlines if isinstance(outlines, (str, os.PathLike)) else None,
                    "dem": dem, "slope": slope, "shadow": shadow, "hillshade": hillshade, "proximity": proximity,
                    "model": model if isinstance(model, (str, os.PathLike)) else None,
                    "minmax": minmax if isinstance(minmax, (str, os.PathLike)) else None,
                    "calibration": calibration})
    feats, glaciers = scene_features(optical, outlines, dem=dem, slope=slope, shadow=shadow,
                                     hillshade=hillshade, proximity=proximity, check_reflectance=False)
    fs = next(k for k, v in FEATURE_SETS.items() if v == tuple(feats.band.values))
    m = _load(model, minmax, calibration)
    if _expects_reflectance(m):
        check_reflectance_values(feats.isel(band=slice(0, 6)).values, f"--optical {optical}")
    elif np.issubdtype(np.dtype(feats.attrs.get("optical_dtype", "float32")), np.integer):
        import warnings

        warnings.warn(f"{optical} holds integers ({feats.attrs['optical_dtype']}): they are used as they "
                      "are, in the units of the model's normalisation (its optical min/max are not "
                      "reflectance)", InputWarning, stacklevel=2)
    if tuple(m.features) != tuple(feats.band.values):
        given = next((k for k, v in FEATURE_SETS.items() if v == tuple(m.features)), None)
        raise InputError(
            f"the model reads {len(m.features)} features "
            f"({'feature set ' + str(given) if given else ', '.join(m.features)}) but the inputs make "
            f"feature set {fs} ({', '.join(map(str, feats.band.values))}); give the matching inputs "
            "(set 2: --dem --slope; set 3: + --shadow --hillshade; set 4: + --proximity) or another model")
    ch = {"y": chunks, "x": chunks}
    result = classify(feats.chunk(ch), m, glaciers.chunk(ch), method=method, smooth=smooth,
                      confidence=confidence is not None, batch_size=batch_size)
    if progress:
        from tqdm.dask import TqdmCallback

        bar: Any = TqdmCallback(desc="classify")
    else:
        bar = contextlib.nullcontext()
    with bar, dask.config.set(scheduler="threads"):
        if confidence is not None:
            (cls, conf) = dask.compute(result["classes"].data, result["confidence"].data)
        else:
            (cls,) = dask.compute(result.data)
            conf = None
    cls = np.asarray(cls)
    valid = cls >= 0
    classes16 = np.where(valid, cls.astype(np.int16), np.int16(NODATA_OUT))
    with _open(optical, "optical") as src:
        profile = {"driver": "GTiff", "height": src.height, "width": src.width, "count": 1,
                   "crs": src.crs, "transform": src.transform, "compress": "deflate",
                   "tiled": True, "blockxsize": 256, "blockysize": 256}
    if profile["width"] < 256 or profile["height"] < 256:
        profile.update(tiled=False)
        profile.pop("blockxsize")
        profile.pop("blockysize")
    names = list(m.classes)  # the model's classes, in its softmax order
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(out, "w", dtype="int16", nodata=NODATA_OUT, **profile) as dst:
        dst.write(classes16, 1)
        dst.update_tags(1, **{f"class_{i}": n for i, n in enumerate(names)},
                        model=repr(m), method=method, smoothed=str(int(smooth)))
        dst.set_band_description(1, "glacier facies class")
    conf_path = None
    if conf is not None:
        conf_path = Path(confidence)
        conf_path.parent.mkdir(parents=True, exist_ok=True)
        c32 = np.where(valid, np.asarray(conf, dtype=np.float32), np.float32(NODATA_OUT)).astype(np.float32)
        with rasterio.open(conf_path, "w", dtype="float32", nodata=NODATA_OUT, **profile) as dst:
            dst.write(c32, 1)
            dst.update_tags(1, calibrated=str(int(m.calibrator is not None)))
            dst.set_band_description(1, "classification confidence")
    counts = {n: int((cls == i).sum()) for i, n in enumerate(names)}
    return ApplyResult(output=out, confidence=conf_path, feature_set=int(fs),
                       n_glacier_pixels=int((glaciers.values > 0).sum()), n_classified=int(valid.sum()),
                       counts=counts, seconds=round(time.perf_counter() - t0, 2), model=repr(m))
