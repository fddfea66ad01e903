"""Import the reference study's published weights and calibrators into bundles.

The reference (Maslov et al., EarthArXiv 2026, doi:10.31223/X5QN1V; code
GPL-2.0) published legacy Keras-2 HDF5 weight files for six folds and four
feature sets, and scikit-learn calibration pickles.  xfacies never ships them;
:func:`reference_model` downloads them on demand, pinned by sha256.

Its global min/max normalisation file is **not public**: without it the
weights cannot be applied faithfully to real imagery.  Bundles imported without
``minmax`` record that inputs must already be normalised, and xfacies warns
whenever such a bundle classifies real features.

Examples
--------
>>> model = import_reference("0_cnn_afterconfidentlearning_weights.h5")  # doctest: +SKIP
>>> model.features                                                         # doctest: +SKIP
('blue', 'green', 'red', 'nir', 'swir1', 'swir2', 'elevation', 'slope', 'shadow_mask', 'hillshade', 'proximity')
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from xfacies.errors import BundleError, InputError
from xfacies import catalog
from xfacies.model.bundle import Model
from xfacies.model.registry import fetch
from xfacies.model.calibration import (
    Calibrator, calibrator_from_sklearn, read_calibrator, read_json_file, read_reference_calibrator,
    unpickle_trusted,
)

__all__ = ["import_reference", "reference_model", "convert_reference_file", "read_minmax", "REFERENCE_COMMIT",
           "REFERENCE_SHA256"]

REFERENCE_COMMIT = "b81cdc8589439e7599d45d32ec9bd4d2e9f20ac5"
REFERENCE_BASE_URL = (
    "https://raw.githubusercontent.com/konstantin-a-maslov/glacier_facies_classification/"
    + REFERENCE_COMMIT
)
#: sha256 of the published files, by (feature set, fold, stage) and ("calibration", fold).
REFERENCE_SHA256: dict[tuple, str] = {
    (1, 0, "after"): "912598f4f43ddc82d8c9b8c20158e612263985344070acc41bc3e5aa8e7cac69",
    (1, 0, "before"): "2f7ee0d02eb193b58d964f162049e979d9b358ec8d607544315c1188857c8cac",
    (2, 0, "after"): "3193c33af2ec566fd699904afd16c5b80db34b439b35002beeb221e8fbec3a38",
    (2, 0, "before"): "ba2801f86943c514c8064698a074a26fbd0076a89ee2f79a96462375ffa88b20",
    (3, 0, "after"): "739053e1f29b2c26b32a60fceb54eb9b9c498c7d9b44ca3ccc42d0d1384390e2",
    (3, 0, "before"): "256ea3f5dedc0ec536dcc0257d289fbfd3732787c0d6d3d13d66be4abcd25f67",
    (4, 0, "after"): "95abeb4ef21f7e09bd9f7c625669d3170662b1f8a6d9a4c4a529f58385049fff",
    (4, 0, "before"): "b520e14a252cad47e0f9b5776e39052d478214e8c96d5b031c9f38f7f1cf7e2f",
    ("calibration", 0): "e0942a3009dc2c67b9a132c57a1a3f4179e1566b0740f84f89d389990286d7f6",
    ("calibration", 1): "dccd2619c182b308be99e578bb956458bc574b30c995c5a55f2f966c8dda85dd",
    ("calibration", 2): "083fb8f1d2ea518addf72f045c1d2d1cfe582d44fcdd46846b2cab3407921f5d",
    ("calibration", 3): "b7678a35c689a69cfe24a08c224d914fe414550d9376d4079d7981abd7264140",
    ("calibration", 4): "0436a67c5d46f624c9ed3c8a1a08dc17f56b5b2e48e5c01f867d10d5a8ec36cb",
    ("calibration", 5): "da1fc43ad5f47f44bbb178bfb018994cadabacf96878f3f5526a6d9a6ed59dba",
}

_SET_BY_N = {len(v): k for k, v in catalog.FEATURE_SETS.items()}


def h5_n_features(path: str | os.PathLike) -> int:
    """Input depth of the first convolution kernel in a legacy Keras .h5 weight file."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
            for name in names:
                g = f[name]
                wn = [w.decode() if isinstance(w, bytes) else w for w in g.attrs.get("weight_names", [])]
                kernels = [w for w in wn if w.endswith("kernel:0") or w.endswith("kernel")]
                if kernels:
                    k = g[kernels[0]]
                    if k.ndim != 4:
                        break
                    return int(k.shape[2])
    except (OSError, KeyError) as err:
        raise BundleError(f"{path} is not a readable Keras .h5 weight file ({err})") from err
    raise BundleError(f"{path}: no convolution kernel found; is this a reference CNN weight file?")


def read_minmax(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(mins, maxs)`` from a min/max JSON file ``{"min": [...], "max": [...]}`` (as
    :func:`convert_reference_file` writes the reference's ``globalminmax`` pickle); a pickle is
    refused unread (:class:`~xfacies.errors.UnsafeFileError`).

    Examples
    --------
    >>> import json, tempfile
    >>> p = tempfile.mkdtemp() + "/minmax.json"
    >>> _ = open(p, "w").write(json.dumps({"min": [0, 0], "max": [1, 2]}))
    >>> read_minmax(p)
    (array([0., 0.]), array([1., 2.]))
    """
    d = read_json_file(path, "min/max file")
    if not (isinstance(d, dict) and {"min", "max"} <= set(d)):
        raise InputError(f"min/max file {path} must hold a JSON object with 'min' and 'max' lists")
    try:
        return np.asarray(d["min"], dtype=np.float64).ravel(), np.asarray(d["max"], dtype=np.float64).ravel()
    except (TypeError, ValueError) as err:
        raise InputError(f"min/max file {path}: 'min' and 'max' must be lists of numbers ({err})") from err


def _read_minmax(minmax: Any, features: Sequence[str]) -> dict[str, list[float]]:
    """Accept a min/max JSON path or (mins, maxs) of length 11 (all features) or len(features)."""
    if isinstance(minmax, (str, os.PathLike)):
        minmax = read_minmax(minmax)
    try:
        lo, hi = (np.asarray(a, dtype=np.float64).ravel() for a in minmax)
    except (TypeError, ValueError) as err:
        raise InputError("minmax must be a min/max JSON path or a pair (mins, maxs) of arrays") from err
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise InputError(f"minmax holds non-finite values (min {lo.tolist()}, max {hi.tolist()}): every "
                         "feature needs a finite range")
    n_all = len(catalog.FEATURES)
    idx = [catalog.feature_set(4).index(f) for f in features]
    if lo.size == n_all and hi.size == n_all:
        lo, hi = lo[idx], hi[idx]
    elif not (lo.size == len(features) and hi.size == len(features)):
        raise InputError(
            f"minmax arrays have {lo.size} and {hi.size} values; expected {n_all} (all reference "
            f"features) or {len(features)} (this model's features {list(features)})"
        )
    return {"min": lo.tolist(), "max": hi.tolist()}


def import_reference(
    h5_path: str | os.PathLike,
    minmax: Any = None,
    *,
    calibrator: str | os.PathLike | Calibrator | None = None,
    features: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Model:
    """Turn a reference weight file (+ optional min/max and calibrator) into a :class:`~xfacies.Model`.

    Parameters
    ----------
    h5_path
        A ``<fold>_cnn_<before|after>confidentlearning_weights.h5`` file.  The
        feature set is read from the first convolution kernel (6, 8, 10, 11
        channels -> feature sets 1-4).
    minmax
        The reference's global normalisation: a min/max JSON file (:func:`read_minmax`; convert
        the reference's pickle once with :func:`convert_reference_file`) or the two arrays
        (mins, maxs) themselves (length 11 or the model's feature count).  ``None`` records
        that inputs must be normalised already.
    calibrator
        A calibrator JSON file (:func:`convert_reference_file` of a reference
        ``*_calibration_model.pickle``) or a calibrator object.
    features
        Override the feature names (must have as many entries as the kernel's depth).

    Examples
    --------
    >>> m = import_reference("fs4/0_cnn_afterconfidentlearning_weights.h5")  # doctest: +SKIP
    >>> m.save("reference-fs4-fold0.xfacies")                                 # doctest: +SKIP
    """
    from xfacies.model.architecture import CNNConfig, reference_cnn

    # the small inputs first (a pickle is refused before anything else is read)
    if isinstance(calibrator, (str, os.PathLike)):
        calibrator = read_calibrator(calibrator)
    if isinstance(minmax, (str, os.PathLike)):
        minmax = read_minmax(minmax)
    h5_path = Path(h5_path)
    n = h5_n_features(h5_path)
    if features is None:
        if n not in _SET_BY_N:
            raise BundleError(
                f"{h5_path}: first conv kernel has {n} input channels, which matches no reference "
                f"feature set ({ {k: len(v) for k, v in catalog.FEATURE_SETS.items()} }); pass "
                "features=[...] naming its inputs"
            )
        features = catalog.FEATURE_SETS[_SET_BY_N[n]]
    features = catalog.feature_set(tuple(features))
    if len(features) != n:
        raise BundleError(
            f"{h5_path} expects {n} input features but {len(features)} were named: {list(features)}"
        )
    config = CNNConfig(n_features=n)
    km = reference_cnn(config=config)
    try:
        km.load_weights(str(h5_path))
    except Exception as err:  # shape mismatches, truncated files
        raise BundleError(f"{h5_path}: weights do not load into the reference CNN ({err})") from err
    meta = {"source": "reference weights (Maslov et al. 2026, GPL-2.0)", "file": h5_path.name,
            "training_domain": {"imagery": "real", "sensors": ["landsat", "sentinel-2"],
                                "region": "31 European glaciers, 92 scenes (pan-European dataset)"}}
    meta.update(metadata or {})
    return Model(
        architecture="reference-cnn",
        config=config.to_dict(),
        weights=km.get_weights(),
        features=features,
        classes=tuple(catalog.class_names()),
        normalisation=None if minmax is None else _read_minmax(minmax, features),
        calibrator=calibrator,
        metadata=meta,
    )


def reference_model(
    feature_set: int = 4,
    fold: int = 0,
    stage: str = "after",
    minmax: Any = None,
    *,
    calibrate: bool = True,
    base_url: str = REFERENCE_BASE_URL,
    sha256: str | None = None,
) -> Model:
    """Download (once, hash-pinned) and import a reference model.

    Parameters
    ----------
    feature_set, fold, stage
        Which published file: feature set 1-4, fold 0-5, ``"before"`` or
        ``"after"`` confident learning.  Hashes are pinned for fold 0 of every
        feature set and every fold's calibrator; other folds need ``sha256=``.
    minmax
        The (non-public) global min/max; see :func:`import_reference`.
    calibrate
        Also fetch that fold's confidence calibrator.
    base_url
        Where the reference repository's files are served (tests use a local server).

    Examples
    --------
    >>> model = reference_model(4, fold=0, minmax="globalminmax.json")  # doctest: +SKIP
    """
    if stage not in ("before", "after"):
        raise InputError(f"stage must be 'before' or 'after', got {stage!r}")
    if feature_set not in catalog.FEATURE_SETS:
        raise InputError(f"feature_set must be one of {sorted(catalog.FEATURE_SETS)}, got {feature_set!r}")
    if not 0 <= int(fold) <= 5:
        raise InputError(f"fold must be 0..5, got {fold!r}")
    key = (int(feature_set), int(fold), stage)
    sha = sha256 or REFERENCE_SHA256.get(key)
    if sha is None:
        pinned = sorted(k for k in REFERENCE_SHA256 if k[0] != "calibration")
        raise InputError(
            f"no pinned sha256 for feature set {feature_set}, fold {fold}, stage {stage!r} "
            f"(pinned: {pinned}); pass sha256='...' for that file"
        )
    name = f"{fold}_cnn_{stage}confidentlearning_weights.h5"
    h5 = fetch(f"{base_url}/weights/{feature_set}/{name}", sha, fname=f"reference-fs{feature_set}-{name}")
    cal = None
    if calibrate:
        cname = f"{fold}_calibration_model.pickle"
        # fetch() has checked the file against the pinned sha256: the reference's own pickle
        cal = read_reference_calibrator(
            fetch(f"{base_url}/confidence_calibration_models/{cname}",
                  REFERENCE_SHA256[("calibration", int(fold))], fname=f"reference-{cname}"),
            trust_pickle=True,
        )
    return import_reference(h5, minmax, calibrator=cal,
                            metadata={"feature_set": feature_set, "fold": fold, "stage": stage})


def convert_reference_file(src: str | os.PathLike, out: str | os.PathLike, *, trust_pickle: bool = False) -> Path:
    """Convert one of the reference's pickles -- a ``*_calibration_model.pickle`` (scikit-learn
    ``KernelRidge``) or the global min/max (two arrays) -- into the JSON xfacies reads.

    Unpickling runs whatever code the file holds, so this is the one conversion that needs the
    explicit opt-in ``trust_pickle=True`` (``xfacies convert-reference SRC OUT --trust-pickle``):
    do it once, for a file you trust, and use the JSON everywhere after.

    Returns
    -------
    pathlib.Path
        ``out``: a calibrator's ``to_dict()`` (:func:`~xfacies.model.calibration.read_calibrator`)
        or ``{"min": [...], "max": [...]}`` (:func:`read_minmax`).

    Raises
    ------
    xfacies.errors.UnsafeFileError
        Without ``trust_pickle`` (the file is not opened).

    Examples
    --------
    >>> convert_reference_file("0_calibration_model.pickle", "0_calibration.json",
    ...                        trust_pickle=True)  # doctest: +SKIP
    """
    out = Path(out)
    if Path(src).resolve() == out.resolve():
        raise InputError(f"the output {out} is the input: write the JSON to another file")
    obj = unpickle_trusted(src, trust_pickle=trust_pickle)
    if hasattr(obj, "dual_coef_"):
        doc = calibrator_from_sklearn(obj).to_dict()
    else:
        try:
            lo, hi = (np.asarray(a, dtype=np.float64).ravel() for a in obj)
        except (TypeError, ValueError) as err:
            raise InputError(f"{src} holds a {type(obj).__name__}: neither a KernelRidge calibrator nor a "
                             "(mins, maxs) pair") from err
        doc = {"min": lo.tolist(), "max": hi.tolist()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1))
    return out
