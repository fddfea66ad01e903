"""The translation-exact member of the reference family: its patch form against a NumPy
implementation, and dense == exact through the engine at every pixel, scene edges included."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import xfacies
from xfacies.model.architecture import CNNConfig, build
from xfacies.model.bundle import Model

FEATURES = xfacies.FEATURE_SETS[4]


def _random_model(filters=8, seed=0, features=FEATURES) -> Model:
    """Random weights everywhere, BatchNorm statistics included (so folding is exercised)."""
    import keras

    keras.utils.set_random_seed(seed)
    cfg = {"n_features": len(features), "filters": filters}
    km = build("translation-exact", cfg, dense=False)
    rng = np.random.default_rng(seed)
    w = []
    for v, a in zip(km.weights, km.get_weights()):
        if "variance" in v.path:
            a = rng.uniform(0.5, 2.0, a.shape)
        elif a.ndim == 1:
            a = rng.normal(0, 0.3, a.shape)
        w.append(a.astype(np.float32))
    return Model("translation-exact", cfg, w, features, xfacies.catalog.class_names(),
                 metadata={"training_domain": {"imagery": "synthetic"}})


def _elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def _numpy_patch(model: Model, patch: np.ndarray) -> np.ndarray:
    """The patch form written out: unpadded 3x3 convolutions (as nine shifted products),
    BatchNorm with the stored statistics, ELU; tap 1 at the centre of the 27 x 27 map; 3 x 3
    stride-3 max pool; three more convolutions; tap 2 at the centre of the 3 x 3 map; the max
    over its 9 cells; the dense head (dropout off); softmax."""
    c = model.cnn_config
    w = [np.asarray(a, np.float64) for a in model.weights]
    pos = 0

    def conv_block(h):
        nonlocal pos
        k, b, gamma, beta, mean, var = w[pos:pos + 6]
        pos += 6
        H, W = h.shape[0] - 2, h.shape[1] - 2
        out = np.zeros((H, W, k.shape[-1])) + b
        for dy in range(3):
            for dx in range(3):
                out += h[dy:dy + H, dx:dx + W] @ k[dy, dx]
        out = gamma * (out - mean) / np.sqrt(var + c.bn_epsilon) + beta
        return _elu(out)

    h = patch.astype(np.float64)
    for _ in range(c.convs_per_scale):
        h = conv_block(h)
    tap1 = h[h.shape[0] // 2, h.shape[1] // 2]
    n = h.shape[0] // c.pool
    h = h[:n * c.pool, :n * c.pool].reshape(n, c.pool, n, c.pool, -1).max(axis=(1, 3))
    for _ in range(c.convs_per_scale):
        h = conv_block(h)
    tap2 = h[h.shape[0] // 2, h.shape[1] // 2]
    z = np.concatenate([tap1, tap2, h.max(axis=(0, 1))])
    for i in range(c.n_dense + 1):
        z = z @ w[pos] + w[pos + 1]
        pos += 2
        if i < c.n_dense:
            z = _elu(z)
    e = np.exp(z - z.max())
    return e / e.sum()


def test_geometry_parameters_and_cost_against_the_reference():
    ref, te = CNNConfig(n_features=11), CNNConfig(n_features=11, translation_exact=True)
    assert (te.patch_radius, te.dense_radius, te.scale2_cells) == (16, 16, 3)
    assert (ref.dense_radius, ref.scale2_cells) == (28, 11)
    # the same weights (shapes and order): the parameter count is the reference's 197k
    a = build("reference-cnn", ref.to_dict(), dense=False)
    b = build("translation-exact", ref.to_dict(), dense=False)
    assert [w.shape for w in a.get_weights()] == [w.shape for w in b.get_weights()]
    convs = (9 * 11 * 64 + 64) + 5 * (9 * 64 * 64 + 64)
    batchnorm = 6 * 4 * 64
    head = (192 * 32 + 32) + (32 * 32 + 32) + (32 * 8 + 8)
    assert a.count_params() == b.count_params() == convs + batchnorm + head == 200_072
    # dense cost per pixel equals the reference's dense form; the patch form is cheaper
    assert te.macs_per_pixel(dense=True) == ref.macs_per_pixel(dense=True)
    assert te.macs_per_pixel(dense=False) < ref.macs_per_pixel(dense=False)
    with pytest.raises(ValueError, match="translation_exact"):
        CNNConfig(n_features=11, patch_size=21, translation_exact=True)


def test_patch_form_against_numpy():
    m = _random_model()
    rng = np.random.default_rng(3)
    patches = rng.normal(0.4, 0.3, (4, 33, 33, len(FEATURES))).astype(np.float32)
    got = m.predict_patches_normalised(patches)
    want = np.stack([_numpy_patch(m, p) for p in patches])
    np.testing.assert_allclose(got, want, atol=2e-5)


# an untrained model applied to normalised random inputs (no stored min/max), in chunks smaller
# than the 16 px halo on purpose: both warnings are expected here
@pytest.mark.filterwarnings("ignore::xfacies.model.bundle.NormalisationWarning")
@pytest.mark.filterwarnings("ignore::xfacies.halo.ChunkWarning")
@pytest.mark.parametrize("chunks", [(11, 64, 64), (11, 19, 23)])
def test_dense_equals_exact_at_every_pixel(chunks):
    """Whole scene, odd chunks (halos across chunk borders) and the scene's edges, where the
    patch is zero-padded in normalised space: dense and exact agree to 1e-5 everywhere."""
    m = _random_model(filters=6, seed=1)
    rng = np.random.default_rng(1)
    img = rng.random((len(FEATURES), 47, 41)).astype(np.float32)
    img[:, 10, 12] = np.nan  # a nodata pixel: NaN output there, zero input for its neighbours
    cube = xr.DataArray(da.from_array(img, chunks=chunks), dims=("band", "y", "x"),
                        coords={"band": list(FEATURES)}, attrs={"xfacies_imagery": "synthetic"})
    dense = xfacies.predict_proba(cube, m, method="dense").values
    exact = xfacies.predict_proba(cube, m, method="exact").values
    assert np.isnan(dense[:, 10, 12]).all() and np.isnan(exact[:, 10, 12]).all()
    ok = ~np.isnan(exact)
    assert ok.sum() == 8 * (47 * 41 - 1)
    assert np.abs(dense[ok] - exact[ok]).max() <= 1e-5
    # and exact equals the NumPy patch form at a corner (zero padding beyond the scene)
    norm = np.nan_to_num(img.transpose(1, 2, 0))
    padded = np.pad(norm, ((16, 16), (16, 16), (0, 0)))
    np.testing.assert_allclose(exact[:, 0, 0], _numpy_patch(m, padded[0:33, 0:33]), atol=2e-5)
    np.testing.assert_allclose(exact[:, 46, 40], _numpy_patch(m, padded[46:79, 40:73]), atol=2e-5)
