"""Model bundles: one self-describing, pickle-free file per trained model.

A bundle (``*.xfacies``) is a zip archive with two members:

``model.json``
    format version, architecture name + config, feature names in input order,
    class names in output order, normalisation (per-feature min/max, or
    ``null`` when inputs must already be normalised), optional confidence
    calibrator (closed form), the xfacies version that wrote it, free-form
    provenance, and the sha256 of the weights member.
``weights.npz``
    the weight arrays in ``keras.Model.get_weights()`` order.

Loading checks the archive, the format, the weights' sha256 and every array
shape, so a truncated or edited file fails loudly instead of classifying.

Examples
--------
>>> import xfacies
>>> model = xfacies.load_model("demo")           # doctest: +SKIP
>>> model.features[:3]                           # doctest: +SKIP
('blue', 'green', 'red')
>>> probs = model.predict_patches(patches)       # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from xfacies import catalog
from xfacies.errors import BundleError, InputError, MovedWarning, XfaciesWarning
from xfacies.model.calibration import Calibrator, calibrator_from_dict
from xfacies.model.runtime import (
    DEFAULT_PRECISION, bucket, check_precision, compiled_dense_block, compiled_exact, compiled_forward,
    default_batch_size, dtype_policy, import_keras, shape_polymorphic,
)

__all__ = ["Model", "BundleError", "NormalisationWarning", "DomainWarning", "FORMAT_VERSION",
           "warn_unnormalised", "warn_out_of_domain", "SYNTHETIC_DOMAIN"]

FORMAT_VERSION = 1
_META = "model.json"
_WEIGHTS = "weights.npz"
#: Largest metadata document and weight archive a bundle may declare (uncompressed), checked before
#: anything is decompressed: a small crafted file must not make xfacies allocate gigabytes.
MAX_META_BYTES = 4 * 2**20
MAX_WEIGHT_BYTES = 512 * 2**20


class NormalisationWarning(XfaciesWarning):
    """A model without stored normalisation is applied to raw features."""


class DomainWarning(XfaciesWarning):
    """A model is applied to imagery unlike what it was trained on (e.g. a model trained on
    synthetic glaciers only, applied to real imagery)."""


#: ``training_domain`` of models trained on :mod:`xfacies.synthetic` glaciers only.
SYNTHETIC_DOMAIN = {"imagery": "synthetic", "sensors": ["sentinel-2 (synthetic spectra)"],
                    "region": "synthetic valley glaciers (xfacies.synthetic)"}


def _read_capped(zf: zipfile.ZipFile, name: str, limit: int, path: Path) -> bytes:
    """A member of the bundle's zip, refused when it declares or yields more than ``limit`` bytes
    (a zip bomb stops at ``limit`` + 1 decompressed bytes)."""
    info = zf.getinfo(name)
    if info.file_size > limit:
        raise BundleError(f"{path}: its {name} declares {info.file_size / 2**20:,.0f} MiB uncompressed, more "
                          f"than a bundle may hold ({limit / 2**20:,.0f} MiB); it is not a model xfacies wrote")
    with zf.open(info) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise BundleError(f"{path}: its {name} decompresses to more than {limit / 2**20:,.0f} MiB; it is not "
                          "a model xfacies wrote")
    return data


def _check_npz_headers(raw: bytes, n: int, path: Path) -> None:
    """Every array header of the weight archive declares no more bytes than the array's member holds,
    checked before any array is allocated (an ``.npy`` header can declare terabytes)."""
    if not 0 <= n <= 10_000:
        raise BundleError(f"{path}: n_weights = {n} is not a plausible number of weight arrays")
    with zipfile.ZipFile(io.BytesIO(raw)) as inner:
        for i in range(n):
            info = inner.getinfo(f"w{i:03d}.npy")
            with inner.open(info) as f:
                version = np.lib.format.read_magic(f)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(f)
            if dtype.hasobject:
                raise BundleError(f"{path}: weight array {i} holds Python objects; bundles hold numbers only")
            declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            if declared > info.file_size:
                raise BundleError(f"{path}: weight array {i} declares shape {shape} ({declared / 2**20:,.0f} MiB) "
                                  f"but holds {info.file_size / 2**20:,.1f} MiB; the file is corrupt or crafted")


def _sha256_arrays(arrays: Sequence[np.ndarray]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


@dataclass
class Model:
    """A trained facies classifier: architecture, weights and everything needed to apply it.

    Parameters
    ----------
    architecture
        Registered architecture name (see :data:`xfacies.model.architecture.ARCHITECTURES`).
    config
        Architecture configuration (e.g. :class:`~xfacies.model.architecture.CNNConfig` fields).
    weights
        Weight arrays in ``keras.Model.get_weights()`` order.
    features
        Input feature names, in channel order (names from :data:`xfacies.FEATURES`).
    classes
        Output class names, in softmax order.
    normalisation
        ``{"min": [...], "max": [...]}`` per feature, or ``None`` if inputs must
        already be normalised to the training range (then applying the model to
        real reflectance emits a :class:`NormalisationWarning`).
    calibrator
        Optional confidence calibrator.
    metadata
        Free-form provenance (training data, scores, source files).

    Examples
    --------
    >>> model = xfacies.load_model("demo")                         # doctest: +SKIP
    >>> model.predict_patches(np.zeros((2, 33, 33, 11), "float32")).shape  # doctest: +SKIP
    (2, 8)
    """

    architecture: str
    config: dict[str, Any]
    weights: list[np.ndarray]
    features: tuple[str, ...]
    classes: tuple[str, ...]
    normalisation: dict[str, list[float]] | None = None
    calibrator: Calibrator | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    xfacies_version: str = ""
    path: Path | None = None

    def __post_init__(self) -> None:
        from xfacies import __version__

        self.features = catalog.band_names(tuple(self.features))
        self.classes = tuple(self.classes)
        self.weights = [np.asarray(w) for w in self.weights]
        self.xfacies_version = self.xfacies_version or __version__
        if self.normalisation is not None:
            lo = np.asarray(self.normalisation["min"], dtype=np.float64)
            hi = np.asarray(self.normalisation["max"], dtype=np.float64)
            if lo.shape != (len(self.features),) or hi.shape != lo.shape:
                raise BundleError(
                    f"normalisation min/max must have one value per feature "
                    f"({len(self.features)}: {list(self.features)}); got {lo.shape} and {hi.shape}"
                )
            if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
                bad = [f for f, a, b in zip(self.features, lo, hi) if not (np.isfinite(a) and np.isfinite(b))]
                raise BundleError(f"normalisation min/max must be finite numbers; not for {bad} "
                                  f"(min {lo.tolist()}, max {hi.tolist()}): every pixel would be mapped to "
                                  "NaN or an extreme; fix the bundle's normalisation")
            if np.any(hi <= lo):
                bad = [f for f, a, b in zip(self.features, lo, hi) if b <= a]
                raise BundleError(f"normalisation max must exceed min for every feature; not for {bad}")
            self.normalisation = {"min": lo.tolist(), "max": hi.tolist()}
        if int(self.config.get("n_features", len(self.features))) != len(self.features):
            raise BundleError(
                f"architecture expects {self.config.get('n_features')} features but the bundle "
                f"lists {len(self.features)}: {list(self.features)}"
            )
        self._check_declared_sizes()
        self._lock = threading.Lock()
        self._keras: dict[tuple[bool, bool, str], Any] = {}
        self._forward: dict[Any, Any] = {}
        # what the file at ``path`` holds (set by save/load): an edited copy (dataclasses.replace,
        # a changed calibrator or weights) no longer matches, so it is never run from the old file
        self._saved: str | None = None

    #: Config entries that size weight arrays: each must be the size of some weight's axis.
    _SIZED = ("filters", "dense_units", "base_filters", "width")

    def _check_declared_sizes(self) -> None:
        """The config's sizes against the weights, before anything is built: a bundle that declares
        ``filters=1024`` over small weights would otherwise allocate the large model first."""
        if int(self.config.get("n_classes", len(self.classes))) != len(self.classes):
            raise BundleError(f"architecture declares n_classes={self.config.get('n_classes')} but the bundle "
                              f"lists {len(self.classes)} classes: {list(self.classes)}")
        if not self.weights:
            return
        sizes = {int(d) for w in self.weights for d in w.shape}
        for key in self._SIZED:
            v = self.config.get(key)
            if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and int(v) not in sizes:
                raise BundleError(
                    f"the config declares {key}={v} but no weight array has an axis of that size "
                    f"(weight shapes {[tuple(w.shape) for w in self.weights[:4]]}...): config and weights "
                    "do not belong together; nothing was built. Fix the config or export the bundle again")
        last = self.weights[-1]
        if last.ndim == 1 and last.shape[0] != len(self.classes):
            raise BundleError(f"the output layer has {last.shape[0]} units but the bundle lists "
                              f"{len(self.classes)} classes: {list(self.classes)}")

    def expects_reflectance(self) -> bool:
        """Whether the model reads its optical bands as surface reflectance (0..1): no stored
        normalisation (inputs normalised, 0..1), or an optical min/max within the plausible
        reflectance range.  Entry points then refuse percent and digital numbers."""
        from xfacies.validation import REFLECTANCE_RANGE

        if not any(f in catalog.OPTICAL_FEATURES for f in self.features):
            return False
        if not self.normalisation:
            return True
        hi = [float(v) for f, v in zip(self.features, self.normalisation["max"]) if f in catalog.OPTICAL_FEATURES]
        return max(hi) <= 1.25 * REFLECTANCE_RANGE[1]

    def fingerprint(self) -> str:
        """sha256 of everything the bundle file holds (weights, metadata, calibrator, normalisation)."""
        return hashlib.sha256(json.dumps(self._metadata_dict(), sort_keys=True, default=str).encode()).hexdigest()

    def matches_file(self) -> bool:
        """True when ``path`` exists and holds exactly this model (as saved or loaded, unedited)."""
        return self.path is not None and Path(self.path).exists() and self._saved == self.fingerprint()

    # ------------------------------------------------------------------ geometry
    @property
    def cnn_config(self):
        from xfacies.model.architecture import ARCHITECTURES

        cfg_cls, _ = ARCHITECTURES[self.architecture]
        return cfg_cls(**self.config)

    @property
    def patch_radius(self) -> int:
        """Halo (pixels) of patch-exact inference: half the patch size."""
        return self.cnn_config.patch_radius

    @property
    def dense_radius(self) -> int:
        """Receptive-field radius (pixels) of the dense form."""
        return self.cnn_config.dense_radius

    @property
    def tiling(self) -> dict[str, int] | None:
        """``{"tile", "overlap", "pool"}`` of a model that runs on whole images or overlapping tiles
        (``"unet"``: its output at a pixel depends on the whole input), else ``None``: the
        windowed models (reference family, dilated network), whose halo'd blocks give the
        whole-image answer."""
        c = self.cnn_config
        if not hasattr(c, "tile"):
            return None
        return {"tile": int(c.tile), "overlap": int(c.overlap), "pool": int(c.pool)}

    def predict_tiled_normalised(self, x: np.ndarray, tta: str | None = None,
                                 precision: str = DEFAULT_PRECISION) -> np.ndarray:
        """Moved to :func:`xfacies.inference.tiles.predict_image` (``predict_image(model, x, tta)``);
        this name works for one more release, with a :class:`~xfacies.errors.MovedWarning`."""
        import importlib
        import warnings

        warnings.warn("Model.predict_tiled_normalised(x) moved to xfacies.inference.tiles.predict_image(model, x); "
                      "the old name goes in the next release", MovedWarning, stacklevel=2)
        tiles = importlib.import_module("xfacies.inference.tiles")  # the layer above, at call time only
        return tiles.predict_image(self, x, tta=tta, precision=precision)

    def halo(self, method: str) -> int:
        """Halo needed around a chunk for ``method`` ("dense" or "exact")."""
        if method == "dense":
            return self.dense_radius
        if method == "exact":
            return self.patch_radius
        raise InputError(f"method must be 'dense' or 'exact', got {method!r}")

    @property
    def training_domain(self) -> dict[str, Any]:
        """What the model was trained on: ``{"imagery": "synthetic" | "real" | "unknown",
        "sensors": [...], "region": "..."}`` (``metadata["training_domain"]``)."""
        d = dict(self.metadata.get("training_domain") or {})
        d.setdefault("imagery", "unknown")
        return d

    @property
    def sha256(self) -> str:
        """Hash of the weights (identifies the model, e.g. in caches)."""
        return _sha256_arrays(self.weights)

    # ------------------------------------------------------------------ keras
    def keras_model(self, dense: bool = False, fused: bool = False, precision: str = DEFAULT_PRECISION):
        """The Keras model (patch or dense form) with this bundle's weights (cached).

        ``fused=True`` gives the inference-only variant with BatchNorm folded into the
        convolutions (what xfacies runs); ``fused=False`` the trainable structure that
        the reference's ``.h5`` files load into.  ``precision="bfloat16"`` builds it with the
        ``mixed_bfloat16`` dtype policy (see :mod:`xfacies.model.runtime`); ``"float32"`` and
        ``"tf32"`` share the float32 model.
        """
        policy = dtype_policy(precision)
        key = (dense, fused, policy)
        import_keras()  # the backend, loaded quietly under the command line
        with self._lock:
            if key not in self._keras:
                from xfacies.model.architecture import build

                plain = build(self.architecture, self.config, dense=dense, dtype_policy=policy)
                expected = [tuple(w.shape) for w in plain.get_weights()]
                got = [tuple(w.shape) for w in self.weights]
                if expected != got:
                    raise BundleError(
                        f"weights do not fit architecture {self.architecture!r} with config "
                        f"{self.config}: expected shapes {expected[:3]}..., got {got[:3]}..."
                    )
                if fused:
                    km = build(self.architecture, self.config, dense=dense, fused=True, dtype_policy=policy)
                    km.set_weights(self.cnn_config.fuse_weights(self.weights))
                else:
                    plain.set_weights(self.weights)
                    km = plain
                self._keras[key] = km
            return self._keras[key]

    def predict_exact_normalised(self, x: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                                 batch_size: int | None = None) -> np.ndarray:
        """Patch-exact probabilities ``(n, C)`` for the pixels ``(rows, cols)`` of a block.

        ``x`` is a normalised ``(H + 2h, W + 2h, F)`` block whose margin ``h`` (the patch
        radius) already holds the neighbours or the zero padding; ``rows``/``cols`` index the
        inner ``H x W`` region.  The patches are gathered inside the backend (on the GPU when
        there is one), batch by batch, so no per-pixel Python runs and only the block crosses
        to the device.  Always in full float32 (``method="exact"`` is the reference's numbers;
        see :func:`xfacies.model.runtime.precision_scope`).
        """
        P = self.cnn_config.patch_size
        Hp, Wp, F = x.shape
        n = rows.size
        bs = batch_size or default_batch_size(self, "exact")
        d = np.arange(P, dtype=np.int64)
        out = np.empty((n, len(self.classes)), dtype=np.float32)
        if "exact" not in self._forward:
            self._forward["exact"] = compiled_exact(self.keras_model(dense=False, fused=True))
        flat = np.ascontiguousarray(x.reshape(Hp * Wp, F), dtype=np.float32)
        polymorphic = shape_polymorphic()
        for i in range(0, n, bs):
            r, c = rows[i:i + bs], cols[i:i + bs]
            m = r.size
            idx = ((r[:, None, None] + d[None, :, None]) * Wp + (c[:, None, None] + d[None, None, :]))
            size = m if polymorphic else min(bs, 1 << max(0, int(np.ceil(np.log2(max(m, 1))))))
            if size != m:  # pad the batch to a bucketed size (repeat pixel 0): few compiled shapes
                idx = np.concatenate([idx, np.repeat(idx[:1], size - m, axis=0)])
            with self._lock:
                out[i:i + m] = self._forward["exact"](flat, idx.astype(np.int32))[:m]
        return out

    def forward(self, x: np.ndarray, dense: bool = True, precision: str = DEFAULT_PRECISION) -> np.ndarray:
        """Inference-mode forward pass of a batch of *normalised* inputs, as they are (no padding):
        ``(N, h, w, F)`` images through the dense form (``dense=True``; sides multiples of the
        pool) or ``(N, P, P, F)`` patches through the patch form; compiled per input shape and
        precision for the active backend.  Tiled whole-image prediction builds on it
        (:func:`xfacies.inference.tiles.predict_image`)."""
        key = (dense, precision)
        if key not in self._forward:
            self._forward[key] = compiled_forward(
                self.keras_model(dense=dense, fused=True, precision=precision), precision)
        with self._lock:
            return self._forward[key](np.ascontiguousarray(x, dtype=np.float32))

    # ------------------------------------------------------------------ numerics
    def normalise(self, x: np.ndarray) -> np.ndarray:
        """Min-max normalise raw features (last axis = features, in model order)."""
        x = np.asarray(x, dtype=np.float32)
        if self.normalisation is None:
            return x
        lo = np.asarray(self.normalisation["min"], dtype=np.float32)
        hi = np.asarray(self.normalisation["max"], dtype=np.float32)
        return (x - lo) / (hi - lo)

    def _check_patches(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if np.issubdtype(x.dtype, np.integer):
            raise TypeError(
                f"patches have integer dtype {x.dtype}; xfacies expects float features "
                "(reflectance as 0..1 floats, not scaled digital numbers). Convert with the "
                "sensor's scale/offset first."
            )
        F = len(self.features)
        P = self.cnn_config.patch_size
        if x.ndim != 4 or x.shape[1:] != (P, P, F):
            raise BundleError(
                f"patches must have shape (N, {P}, {P}, {F}) for this model (features "
                f"{list(self.features)}); got {x.shape}"
            )
        return x

    def predict_patches(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities ``(N, n_classes)`` for raw feature patches ``(N, P, P, F)``.

        The bundle normalises the patches first (unless it has no
        normalisation, in which case they must already be normalised).
        """
        x = self._check_patches(x)
        out = np.empty((x.shape[0], len(self.classes)), dtype=np.float32)
        for i in range(0, x.shape[0], batch_size):
            xb = np.nan_to_num(self.normalise(x[i:i + batch_size]), nan=0.0)
            out[i:i + batch_size] = self.predict_patches_normalised(xb)
        return out

    def _dense_shape(self, H: int, W: int) -> tuple[int, int]:
        """The padded side lengths the compiled dense form runs on for an ``H x W`` input.

        The fused dense form needs sides that are multiples of the pool; backends that
        compile per shape (JAX/XLA) also pad to a bucketed size (see runtime.bucket) so blocks
        of varied shapes share a few compiled programs.
        """
        k = self.cnn_config.pool
        Hp, Wp = (H, W) if shape_polymorphic() else (bucket(H), bucket(W))
        return -(-Hp // k) * k, -(-Wp // k) * k

    def predict_dense_normalised(self, x: np.ndarray, precision: str = DEFAULT_PRECISION) -> np.ndarray:
        """Dense-form probabilities ``(H, W, C)`` for *normalised* features ``(H, W, F)``.

        Outputs within :attr:`dense_radius` of the block's edges depend on what lies beyond
        the block: callers keep that margin as a halo (as :mod:`xfacies.inference` does).
        ``precision`` is ``"float32"`` (default, exact), ``"tf32"`` or ``"bfloat16"`` (see
        :mod:`xfacies.model.runtime`).
        """
        check_precision(precision)
        H, W = x.shape[:2]
        # The zero padding lies beyond the block, where it only changes outputs within the
        # margin callers discard.
        Hp, Wp = self._dense_shape(H, W)
        if (Hp, Wp) != (H, W):
            x = np.pad(x, ((0, Hp - H), (0, Wp - W), (0, 0)))
        return self.forward(x[None], dense=True, precision=precision)[0, :H, :W]

    def predict_dense_block(self, block: np.ndarray, halo: int, *, smooth: bool = False,
                            confidence: bool = False, precision: str = DEFAULT_PRECISION,
                            ) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels of a block of *raw* features in one compiled device call.

        Parameters
        ----------
        block
            float32 ``(F + 1, H + 2 halo, W + 2 halo)``: the raw features in model order (NaN =
            missing) and a mask band (1 = classify this pixel).
        halo
            Margin around the ``H x W`` pixels to label: at least :attr:`dense_radius`, plus one
            with ``smooth``.
        smooth
            Apply the 3 x 3 mode filter (:func:`xfacies.inference.smooth_mode`) on the device.
        confidence
            Also return the maximum probability (uncalibrated; :meth:`confidence` calibrates it).
        precision
            ``"float32"`` (default), ``"tf32"`` or ``"bfloat16"``.

        Returns
        -------
        labels, max_probability
            int8 ``(H, W)`` labels, :data:`xfacies.NODATA` where a feature is missing or the
            mask is not 1, and float32 ``(H, W)`` maximum probabilities (NaN at nodata) or
            ``None``.  Only these cross from the device (6x less than the probabilities).

        Examples
        --------
        >>> import numpy as np, xfacies
        >>> m = xfacies.load_model("demo")
        >>> h = m.dense_radius
        >>> block = np.random.default_rng(0).random((12, 10 + 2 * h, 8 + 2 * h), dtype=np.float32)
        >>> block[11] = 1.0                  # the mask band: classify every pixel
        >>> block[0, h, h] = np.nan          # a missing feature: nodata
        >>> labels, conf = m.predict_dense_block(block, h, confidence=True)
        >>> labels.shape, labels.dtype, int(labels[0, 0]), bool(np.isnan(conf[0, 0]))
        ((10, 8), dtype('int8'), -1, True)
        """
        check_precision(precision)
        F = len(self.features)
        if block.ndim != 3 or block.shape[0] != F + 1:
            raise BundleError(f"block must be (F + 1, H + 2 halo, W + 2 halo) with F = {F} features "
                             f"and a mask band; got shape {block.shape}")
        need = self.dense_radius + int(smooth)
        if halo < need:
            raise InputError(f"halo={halo} is too small: the dense form needs {self.dense_radius} px"
                             f"{' + 1 for smoothing' if smooth else ''} = {need}")
        Hin, Win = block.shape[1:]
        Hp, Wp = self._dense_shape(Hin, Win)
        if (Hp, Wp) != (Hin, Win):  # NaN features and mask 0 beyond: zeros in the network, nodata
            padded = np.full((F + 1, Hp, Wp), np.nan, dtype=np.float32)
            padded[F] = 0.0
            padded[:, :Hin, :Win] = block
            block = padded
        key = ("block", halo, bool(smooth), bool(confidence), precision)
        if key not in self._forward:
            from xfacies import catalog

            norm = self.normalisation
            self._forward[key] = compiled_dense_block(
                self.keras_model(dense=True, fused=True, precision=precision), n_features=F,
                halo=halo, smooth=smooth, confidence=confidence,
                lo=None if norm is None else norm["min"], hi=None if norm is None else norm["max"],
                mode_classes=len(self.classes), nodata=catalog.NODATA, precision=precision)
        with self._lock:
            labels, conf = self._forward[key](np.ascontiguousarray(block, dtype=np.float32))
        H, W = Hin - 2 * halo, Win - 2 * halo
        return labels[:H, :W], None if conf is None else conf[:H, :W]

    def predict_patches_normalised(self, x: np.ndarray) -> np.ndarray:
        """Patch-form probabilities for already normalised patches (no checks)."""
        n = x.shape[0]
        size = n if shape_polymorphic() else 1 << max(0, int(np.ceil(np.log2(max(n, 1)))))
        if size != n:
            x = np.concatenate([x, np.zeros((size - n,) + x.shape[1:], x.dtype)])
        return self.forward(x, dense=False)[:n]

    def confidence(self, probabilities: np.ndarray, axis: int = -1, calibrate: bool = True) -> np.ndarray:
        """Max probability along ``axis``, calibrated if the bundle has a calibrator, in [0, 1]."""
        conf = np.max(probabilities, axis=axis)
        if calibrate and self.calibrator is not None:
            conf = self.calibrator(conf)
        return np.clip(conf, 0.0, 1.0).astype(np.float32)

    # ------------------------------------------------------------------ IO
    def _metadata_dict(self) -> dict[str, Any]:
        return {
            "format": "xfacies-model",
            "format_version": FORMAT_VERSION,
            "xfacies_version": self.xfacies_version,
            "architecture": self.architecture,
            "config": self.config,
            "features": list(self.features),
            "classes": list(self.classes),
            "normalisation": self.normalisation,
            "inputs_normalised": self.normalisation is None,
            "calibrator": None if self.calibrator is None else self.calibrator.to_dict(),
            "metadata": self.metadata,
            "weights_sha256": self.sha256,
            "n_weights": len(self.weights),
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the bundle to ``path`` (conventionally ``*.xfacies``); returns the path.

        The file is written to a temporary name and renamed, so an interrupted
        save never leaves a half-written bundle under the final name.
        """
        path = Path(path)
        buf = io.BytesIO()
        np.savez(buf, **{f"w{i:03d}": w for i, w in enumerate(self.weights)})
        tmp = path.with_name(path.name + ".tmp")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(_META, json.dumps(self._metadata_dict(), indent=1))
            zf.writestr(_WEIGHTS, buf.getvalue())
        os.replace(tmp, path)
        self.path = path
        self._saved = self.fingerprint()
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Model":
        """Read a bundle written by :meth:`save` (see :func:`load_model` for names and URLs)."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"model bundle {path} does not exist")
        fix = "re-download it or save it again with Model.save()"
        if path.suffix == ".h5":
            raise BundleError(
                f"{path} is a Keras .h5 weight file, not an xfacies bundle; turn it into one "
                "with xfacies.import_reference(path, minmax=...)"
            )
        try:
            with zipfile.ZipFile(path) as zf:
                meta = json.loads(_read_capped(zf, _META, MAX_META_BYTES, path))
                raw = _read_capped(zf, _WEIGHTS, MAX_WEIGHT_BYTES, path)
                n = int(meta["n_weights"])
                _check_npz_headers(raw, n, path)
                with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
                    weights = [npz[f"w{i:03d}"] for i in range(n)]
        except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError, EOFError) as err:
            if isinstance(err, BundleError):
                raise
            raise BundleError(f"{path} is not a readable xfacies model bundle ({type(err).__name__}: {err}); "
                              f"{fix}") from err
        if meta.get("format") != "xfacies-model":
            raise BundleError(f"{path} is not an xfacies model bundle (format={meta.get('format')!r})")
        if int(meta.get("format_version", 0)) > FORMAT_VERSION:
            raise BundleError(
                f"{path} was written by xfacies {meta.get('xfacies_version')} in bundle format "
                f"{meta['format_version']}; this xfacies reads up to {FORMAT_VERSION}: upgrade xfacies"
            )
        sha = _sha256_arrays(weights)
        if sha != meta.get("weights_sha256"):
            raise BundleError(f"{path}: weights checksum mismatch (file corrupted or edited); {fix}")
        cal = meta.get("calibrator")
        try:
            if not isinstance(meta.get("config"), dict) or not isinstance(meta.get("metadata", {}), dict):
                raise TypeError("'config' and 'metadata' must be JSON objects")
            if not all(isinstance(v, str) for v in (*meta["features"], *meta["classes"], meta["architecture"])):
                raise TypeError("'architecture', 'features' and 'classes' must be strings")
            model = cls(
                architecture=meta["architecture"],
                config=meta["config"],
                weights=weights,
                features=tuple(meta["features"]),
                classes=tuple(meta["classes"]),
                normalisation=meta.get("normalisation"),
                calibrator=None if cal is None else calibrator_from_dict(cal),
                metadata=meta.get("metadata", {}),
                xfacies_version=meta.get("xfacies_version", ""),
            )
        except BundleError:
            raise
        except (TypeError, KeyError, ValueError, AttributeError) as err:
            raise BundleError(f"{path}: its model.json is not what xfacies writes ({type(err).__name__}: {err}); "
                              f"{fix}") from err
        model.path = path
        model._saved = model.fingerprint()
        return model

    def __repr__(self) -> str:
        norm = "stored" if self.normalisation else "none (inputs must be normalised)"
        return (
            f"<xfacies.Model {self.architecture} features={len(self.features)} "
            f"classes={len(self.classes)} normalisation={norm} "
            f"calibrated={self.calibrator is not None} path={self.path}>"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock", None)
        state["_keras"] = {}
        state["_forward"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()



def warn_unnormalised(model: Model, what: str) -> None:
    """Warn loudly that ``model`` has no normalisation and is applied to ``what``."""
    if model.normalisation is None:
        warnings.warn(
            f"{model!r} has no stored normalisation (min/max) and is being applied to {what}. "
            "Its weights expect features already normalised to the training range; raw "
            "reflectance, elevation or slope give meaningless classes. Import the weights "
            "with xfacies.import_reference(h5, minmax=(mins, maxs)) to fix this.",
            NormalisationWarning,
            stacklevel=3,
        )


def warn_out_of_domain(model: Model, imagery: str | None, what: str) -> None:
    """Warn when a model trained on synthetic imagery only is applied to imagery that did not
    come from :mod:`xfacies.synthetic` (``imagery`` is the input's ``xfacies_imagery`` attribute)."""
    if model.training_domain["imagery"] == "synthetic" and imagery != "synthetic":
        warnings.warn(
            f"{model!r} was trained on synthetic glaciers only (training domain: "
            f"{model.training_domain.get('region', 'xfacies.synthetic')}) and is being applied to {what} "
            "that did not come from xfacies.synthetic. On real imagery it gives confident nonsense (on real "
            "Sentinel-2 of Silvretta it called 99 % of a hand-drawn snow area 'cloud'). Use a model trained "
            "on real imagery: xfacies.reference_model(...) or your own (xfacies.train).",
            DomainWarning, stacklevel=3)
