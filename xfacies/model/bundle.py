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
from xfacies.model.calibration import KernelCalibrator

__all__ = ["Model", "load_model", "BundleError", "NormalisationWarning", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_META = "model.json"
_WEIGHTS = "weights.npz"
_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
#: Names ``load_model`` resolves to bundles shipped inside the package.
BUILTIN = {"demo": _DATA_DIR / "demo.xfacies"}


class BundleError(ValueError):
    """A model bundle is missing, corrupted or inconsistent."""


class NormalisationWarning(UserWarning):
    """A model without stored normalisation is applied to raw features."""


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
    calibrator: KernelCalibrator | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    xfacies_version: str = ""
    path: Path | None = None

    def __post_init__(self) -> None:
        from xfacies import __version__

        self.features = catalog.feature_set(tuple(self.features))
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
            if np.any(hi <= lo):
                bad = [f for f, a, b in zip(self.features, lo, hi) if b <= a]
                raise BundleError(f"normalisation max must exceed min for every feature; not for {bad}")
            self.normalisation = {"min": lo.tolist(), "max": hi.tolist()}
        if int(self.config.get("n_features", len(self.features))) != len(self.features):
            raise BundleError(
                f"architecture expects {self.config.get('n_features')} features but the bundle "
                f"lists {len(self.features)}: {list(self.features)}"
            )
        self._lock = threading.Lock()
        self._keras: dict[tuple[bool, bool], Any] = {}
        self._forward: dict[bool, Any] = {}

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

    def halo(self, method: str) -> int:
        """Halo needed around a chunk for ``method`` ("dense" or "exact")."""
        if method == "dense":
            return self.dense_radius
        if method == "exact":
            return self.patch_radius
        raise ValueError(f"method must be 'dense' or 'exact', got {method!r}")

    @property
    def sha256(self) -> str:
        """Hash of the weights (identifies the model, e.g. in caches)."""
        return _sha256_arrays(self.weights)

    # ------------------------------------------------------------------ keras
    def keras_model(self, dense: bool = False, fused: bool = False):
        """The Keras model (patch or dense form) with this bundle's weights (cached).

        ``fused=True`` gives the inference-only variant with BatchNorm folded into the
        convolutions (what xfacies runs); ``fused=False`` the trainable structure that
        the reference's ``.h5`` files load into.
        """
        key = (dense, fused)
        with self._lock:
            if key not in self._keras:
                from xfacies.model.architecture import build, fold_batchnorm

                plain = build(self.architecture, self.config, dense=dense)
                expected = [tuple(w.shape) for w in plain.get_weights()]
                got = [tuple(w.shape) for w in self.weights]
                if expected != got:
                    raise BundleError(
                        f"weights do not fit architecture {self.architecture!r} with config "
                        f"{self.config}: expected shapes {expected[:3]}..., got {got[:3]}..."
                    )
                if fused:
                    km = build(self.architecture, self.config, dense=dense, fused=True)
                    km.set_weights(fold_batchnorm(self.weights, self.cnn_config))
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
        to the device.
        """
        P = self.cnn_config.patch_size
        Hp, Wp, F = x.shape
        n = rows.size
        bs = batch_size or default_batch_size(self, "exact")
        d = np.arange(P, dtype=np.int64)
        out = np.empty((n, len(self.classes)), dtype=np.float32)
        if "exact" not in self._forward:
            self._forward["exact"] = _compiled_exact(self.keras_model(dense=False, fused=True))
        flat = np.ascontiguousarray(x.reshape(Hp * Wp, F), dtype=np.float32)
        polymorphic = _shape_polymorphic()
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

    def _predict(self, x: np.ndarray, dense: bool) -> np.ndarray:
        """Inference-mode forward pass, compiled per input shape for the active backend."""
        if dense not in self._forward:
            self._forward[dense] = _compiled_forward(self.keras_model(dense=dense, fused=True))
        with self._lock:
            return self._forward[dense](np.ascontiguousarray(x, dtype=np.float32))

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
            raise ValueError(
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

    def predict_dense_normalised(self, x: np.ndarray) -> np.ndarray:
        """Dense-form probabilities ``(H, W, C)`` for *normalised* features ``(H, W, F)``.

        Outputs within :attr:`dense_radius` of the block's edges depend on what lies beyond
        the block: callers keep that margin as a halo (as :mod:`xfacies.inference` does).
        """
        H, W = x.shape[:2]
        # The compiled (fused) dense form needs sides that are multiples of the pool; backends
        # that compile per shape (JAX/XLA) also pad to a bucketed size (see _bucket) so blocks
        # of varied shapes share a few compiled programs.  The zero padding lies beyond the
        # block, where it only changes outputs within the margin callers discard.
        k = self.cnn_config.pool
        Hp, Wp = (H, W) if _shape_polymorphic() else (_bucket(H), _bucket(W))
        Hp, Wp = -(-Hp // k) * k, -(-Wp // k) * k
        if (Hp, Wp) != (H, W):
            x = np.pad(x, ((0, Hp - H), (0, Wp - W), (0, 0)))
        return self._predict(x[None], dense=True)[0, :H, :W]

    def predict_patches_normalised(self, x: np.ndarray) -> np.ndarray:
        """Patch-form probabilities for already normalised patches (no checks)."""
        n = x.shape[0]
        size = n if _shape_polymorphic() else 1 << max(0, int(np.ceil(np.log2(max(n, 1)))))
        if size != n:
            x = np.concatenate([x, np.zeros((size - n,) + x.shape[1:], x.dtype)])
        return self._predict(x, dense=False)[:n]

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
                meta = json.loads(zf.read(_META))
                with np.load(io.BytesIO(zf.read(_WEIGHTS)), allow_pickle=False) as npz:
                    weights = [npz[f"w{i:03d}"] for i in range(int(meta["n_weights"]))]
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as err:
            raise BundleError(f"{path} is not a readable xfacies model bundle ({err}); {fix}") from err
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
        model = cls(
            architecture=meta["architecture"],
            config=meta["config"],
            weights=weights,
            features=tuple(meta["features"]),
            classes=tuple(meta["classes"]),
            normalisation=meta.get("normalisation"),
            calibrator=None if cal is None else KernelCalibrator.from_dict(cal),
            metadata=meta.get("metadata", {}),
            xfacies_version=meta.get("xfacies_version", ""),
        )
        model.path = path
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


def _bucket(n: int) -> int:
    """Round a block side up to one of a few sizes: multiples of ``3 * 2**k`` with at most
    four sizes per octave (padding <= 25 %), so blocks of varied shapes share compiled code."""
    q = max(24, 3 * 2 ** max(int(np.floor(np.log2(max(n, 1) / 3))) - 2, 0))
    return -(-n // q) * q


def _shape_polymorphic() -> bool:
    """Whether one compiled forward serves every input shape for the active Keras backend.

    TensorFlow (one ``tf.function`` traced with unknown batch and spatial sizes) and the eager
    backends do; JAX compiles one XLA program per shape, so callers pad to bucketed sizes
    there.  Per-shape traces cost memory that is never returned (about 5 MB each on
    TensorFlow for the demo model): a worker that met a few hundred block shapes grew by
    gigabytes before the forward became shape-polymorphic.  Even then TensorFlow keeps about
    0.5 MB per distinct shape (kernels and buffers), so :mod:`xfacies.inference` grows cropped
    dense blocks to bucketed sizes too.
    """
    import keras

    return keras.backend.backend() != "jax"


def _compiled_forward(km: Any):
    """``x -> numpy probabilities`` for a Keras model in inference mode, compiled once.

    TensorFlow: a ``tf.function`` with an input signature whose batch and spatial sizes are
    unknown, traced once for all shapes; JAX: ``jax.jit`` of the stateless call (compiled per
    shape: callers bucket shapes); other backends: an eager call without gradients.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        spec = tf.TensorSpec((None,) + tuple(km.inputs[0].shape[1:]), tf.float32)
        f = tf.function(lambda a: km(a, training=False), input_signature=[spec])
        return lambda x: f(tf.constant(x)).numpy()
    if backend == "jax":
        import jax

        tv = [v.value for v in km.trainable_variables]
        ntv = [v.value for v in km.non_trainable_variables]

        @jax.jit
        def g(tv, ntv, a):
            y, _ = km.stateless_call(tv, ntv, a, training=False)
            return y

        return lambda x: np.asarray(g(tv, ntv, x))

    def eager(x):
        if backend == "torch":
            import torch

            with torch.no_grad():
                return keras.ops.convert_to_numpy(km(x, training=False))
        return keras.ops.convert_to_numpy(km(x, training=False))

    return eager


def _compiled_exact(km: Any):
    """``(flat block (N, F), patch indices (n, P, P)) -> (n, C)``: gather + model, compiled."""
    import keras

    backend = keras.backend.backend()

    def run(flat, idx):
        return km(keras.ops.take(flat, idx, axis=0), training=False)

    if backend == "tensorflow":
        import tensorflow as tf

        P, _, F = km.inputs[0].shape[1:]
        f = tf.function(run, input_signature=[tf.TensorSpec((None, F), tf.float32),
                                              tf.TensorSpec((None, P, P), tf.int32)])
        return lambda flat, idx: f(tf.constant(flat), tf.constant(idx)).numpy()
    if backend == "jax":
        import jax

        tv = [v.value for v in km.trainable_variables]
        ntv = [v.value for v in km.non_trainable_variables]

        @jax.jit
        def g(tv, ntv, flat, idx):
            y, _ = km.stateless_call(tv, ntv, keras.ops.take(flat, idx, axis=0), training=False)
            return y

        return lambda flat, idx: np.asarray(g(tv, ntv, flat, idx))

    def eager(flat, idx):
        if backend == "torch":
            import torch

            with torch.no_grad():
                return keras.ops.convert_to_numpy(run(flat, idx))
        return keras.ops.convert_to_numpy(run(flat, idx))

    return eager


def accelerator_memory() -> int | None:
    """Free memory (bytes) of the first GPU the Keras backend uses, or ``None`` on CPU."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            dev = [d for d in jax.devices() if d.platform == "gpu"]
            if dev:
                stats = dev[0].memory_stats() or {}
                return int(stats.get("bytes_limit", 0) - stats.get("bytes_in_use", 0)) or None
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return int(torch.cuda.mem_get_info()[0])
        elif backend == "tensorflow":
            import tensorflow as tf

            if tf.config.list_physical_devices("GPU"):
                info = tf.config.experimental.get_memory_info("GPU:0")
                total = os.environ.get("XFACIES_GPU_MEMORY")
                return int(total) - int(info["current"]) if total else 8 << 30
    except Exception:  # pragma: no cover - device queries are best effort
        return None
    return None


def default_batch_size(model: "Model", method: str, free_bytes: int | None = -1) -> int:
    """Patches per batch for ``method="exact"``: 1024 on CPU; fitted to free GPU memory.

    On a GPU, a batch is sized so that the largest activations (the scale-1 feature maps,
    ``P x P x filters`` float32 per patch, a few alive at once) use about half the free memory.
    """
    if free_bytes == -1:
        free_bytes = accelerator_memory()
    if not free_bytes:
        return 1024
    cfg = model.cnn_config
    per_patch = cfg.patch_size ** 2 * max(cfg.filters, cfg.n_features) * 4 * 6
    size = int(free_bytes * 0.5 // per_patch)
    return int(max(1024, min(1 << 17, 1 << int(np.log2(max(size, 1))))))


def cache_dir() -> Path:
    """Where downloaded bundles and weights are cached (``$XFACIES_CACHE`` or the OS cache)."""
    env = os.environ.get("XFACIES_CACHE")
    if env:
        return Path(env)
    import pooch

    return Path(pooch.os_cache("xfacies"))


def fetch(url: str, sha256: str | None, *, fname: str | None = None) -> Path:
    """Download ``url`` once into the cache, verifying its pinned sha256."""
    if not sha256:
        raise ValueError(
            f"downloading {url} needs its sha256 (pass sha256='...'): xfacies only uses "
            "files pinned by hash"
        )
    import pooch

    try:
        got = pooch.retrieve(url, known_hash=f"sha256:{sha256}", fname=fname,
                             path=cache_dir(), progressbar=False)
    except ValueError as err:  # hash mismatch
        raise BundleError(f"{url}: downloaded file does not match sha256 {sha256} ({err})") from err
    except Exception as err:  # network errors, HTTP errors
        raise ConnectionError(f"could not download {url}: {err}") from err
    return Path(got)


def load_model(source: "str | os.PathLike | Model", *, sha256: str | None = None) -> Model:
    """Load a model bundle by name, path or URL.

    Parameters
    ----------
    source
        ``"demo"`` (the small model shipped with xfacies), a path to a
        ``*.xfacies`` bundle, an ``http(s)://`` URL (downloaded once into
        :func:`cache_dir`, verified against ``sha256``) or a :class:`Model`
        (returned as is).
    sha256
        Required for URLs.

    Examples
    --------
    >>> model = load_model("demo")      # doctest: +SKIP
    >>> model.classes[0]                # doctest: +SKIP
    'ice'
    """
    if isinstance(source, Model):
        return source
    s = str(source)
    if s in BUILTIN:
        if not BUILTIN[s].exists():
            raise BundleError(
                f"the built-in model {s!r} is missing from the installation ({BUILTIN[s]}); "
                "rebuild it with `xfacies make-demo-model`"
            )
        return _load_cached(str(BUILTIN[s]))
    if s.startswith(("http://", "https://")):
        return Model.load(fetch(s, sha256))
    return Model.load(s)


_CACHE: dict[tuple[str, float], Model] = {}
_CACHE_LOCK = threading.Lock()


def _load_cached(path: str) -> Model:
    """Load a bundle once per process (keyed by path and mtime); thread-safe.

    This is xfacies' one piece of global state: the documented per-process
    model cache that lets every Dask worker load a bundle once from its path
    instead of receiving the model inside the task graph.
    """
    from xfacies.cluster import resolve_model_path

    path = resolve_model_path(str(path))
    key = (str(Path(path).resolve()), os.path.getmtime(path))
    with _CACHE_LOCK:
        model = _CACHE.get(key)
        if model is None:
            model = Model.load(path)
            _CACHE[key] = model
            _STATS["loads"] += 1
        return model


#: Per-process counters (loads of bundles through the cache), for diagnostics and tests.
_STATS = {"loads": 0}


def loaded_models() -> dict[str, int]:
    """Counters of this process's model cache (``{"loads": n}``)."""
    return dict(_STATS)


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
