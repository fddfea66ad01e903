"""Training quality tools: confident-learning label cleaning, confidence calibration, evaluation.

Oracles are independent: injected label flips, slow loop implementations of the calibration
errors, scikit-learn's own estimators and reports, pandas group-bys.
"""

from __future__ import annotations

import importlib
import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xfacies
from xfacies.catalog import CLASSES, FACIES_CLASSES
from xfacies.model.calibration import IsotonicCalibrator, KernelCalibrator, calibrator_from_dict
from xfacies.train.cleaning import label_issues, pruning_report
from xfacies.train.evaluation import confusion, evaluate, predict_probabilities, scores

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REF_CALIBRATION = SHARED / "weights" / "reference" / "calibration"
C = len(CLASSES)
# The module, imported by its full name (the package's lazy ``xfacies.train.calibration`` is the function).
cal_mod = importlib.import_module("xfacies.train.calibration")


# --------------------------------------------------------------------------- synthetic data
def _noisy_clusters(seed: int = 0, flip_rate: float = 0.10):
    """Gaussian class clusters in a 6-D feature space, ~10 % of the labels flipped to another class,
    and out-of-fold probabilities of a logistic regression (5-fold cross_val_predict)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    rng = np.random.default_rng(seed)
    sizes = np.array([500, 500, 400, 400, 250, 200, 150, 150])  # ice, snow, ... cloud
    centres = rng.normal(size=(C, 6)) * 3.0
    truth = np.repeat(np.arange(C), sizes)
    X = centres[truth] + rng.normal(size=(truth.size, 6))
    given = truth.copy()
    flip = rng.random(truth.size) < flip_rate
    given[flip] = (truth[flip] + rng.integers(1, C, flip.sum())) % C
    probs = cross_val_predict(LogisticRegression(max_iter=500), X, given, cv=5, method="predict_proba")
    return given, probs, flip


def _overconfident(n: int, seed: int, temperature: float = 3.0):
    """Labels drawn from known posteriors, and those posteriors sharpened (over-confident)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, C)) * 1.5 + np.log([.3, .2, .15, .1, .1, .07, .04, .04])
    truth = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = (truth.cumsum(1) > rng.random((n, 1))).argmax(1)
    z = temperature * logits
    sharp = np.exp(z - z.max(1, keepdims=True))
    return (sharp / sharp.sum(1, keepdims=True)).astype(np.float32), labels


@pytest.fixture(scope="module")
def noisy():
    return _noisy_clusters()


@pytest.fixture(scope="module")
def demo():
    return xfacies.load_model("demo")


@pytest.fixture(scope="module")
def overconfident():
    return _overconfident(6000, 0), _overconfident(6000, 1)


@pytest.fixture(scope="module")
def scene_patches():
    """Labelled 33 x 33 patches of a synthetic scene with three glaciers (NaN beyond the scene
    edge), bands in *reverse* feature order, as the patch dataset of :func:`evaluate`."""
    from xfacies import synthetic

    ds = synthetic.scene("2021-08-15", size=512, seed=1)
    f = np.moveaxis(ds.features.values, 0, -1)                       # (y, x, band), model order
    truth, glacier = ds.truth.values, ds.glacier.values
    rng = np.random.default_rng(0)
    picks = []
    for g in np.unique(glacier[glacier > 0]):
        for c in np.unique(truth[glacier == g]):
            r, q = np.nonzero((glacier == g) & (truth == c))
            picks += [(r[i], q[i]) for i in rng.choice(r.size, min(25, r.size), replace=False)]
    r, q = np.array(picks).T
    r[:5], q[:5] = [0, 3, 511, 508, 250], [7, 0, 300, 511, 2]          # five patches across the edge
    padded = np.pad(f, ((16, 16), (16, 16), (0, 0)), constant_values=np.nan)
    x = np.stack([padded[i:i + 33, j:j + 33] for i, j in zip(r, q)]).astype(np.float32)
    names = list(xfacies.FEATURE_SETS[4])
    out = xr.Dataset(
        {"patches": (("sample", "y", "x", "band"), x[..., ::-1])},
        coords={"band": names[::-1], "class": ("sample", truth[r, q].astype(np.int64)),
                "glacier": ("sample", np.where(glacier[r, q] > 0, glacier[r, q], 1)),
                "date": ("sample", np.full(r.size, np.datetime64("2021-08-15"))),
                "fold": ("sample", rng.integers(0, 6, r.size))})
    out["class"].values[:5] = np.maximum(out["class"].values[:5], 0)   # edge patches: any label
    return out, x


# --------------------------------------------------------------------------- confident learning
def test_label_issues_finds_injected_facies_label_flips(noisy):
    from cleanlab.filter import find_label_issues

    given, probs, flip = noisy
    issues = label_issues(given, probs)
    injected = np.flatnonzero(flip & np.isin(given, FACIES_CLASSES))
    hit = np.isin(issues, injected).sum()
    precision, recall = hit / issues.size, hit / injected.size
    assert precision >= 0.7 and recall >= 0.7, (precision, recall)
    # Shadow, water and cloud labels are trusted, even the flipped ones.
    assert np.isin(given[issues], FACIES_CLASSES).all()
    assert (flip & ~np.isin(given, FACIES_CLASSES)).sum() > 10
    # Exactly cleanlab's own call, restricted to facies labels, in cleanlab's order ...
    ref = find_label_issues(labels=given, pred_probs=probs, filter_by="confident_learning",
                            return_indices_ranked_by="self_confidence")
    np.testing.assert_array_equal(issues, [i for i in ref if given[i] in FACIES_CLASSES])
    # ... which ranks by the probability of the given label, lowest first.
    self_conf = probs[issues, given[issues]]
    assert np.all(np.diff(self_conf) >= -1e-12)


def test_label_issues_can_be_restricted_to_any_classes(noisy):
    given, probs, _ = noisy
    snow = label_issues(given, probs, classes=[1])
    everything = label_issues(given, probs, classes=range(C))
    assert snow.size and (given[snow] == 1).all()
    np.testing.assert_array_equal(snow, everything[given[everything] == 1])


@pytest.mark.parametrize("labels, probs, match", [
    (np.zeros(3, int), np.full((4, 8), 1 / 8), "shape"),
    (np.zeros(4, int), np.full((4, 8), 0.2), "sum to 1"),
    (np.array([0, 1, 8, 2]), np.full((4, 8), 1 / 8), "class ids in 0..7"),
    (np.array([0, 1, -1, 2]), np.full((4, 8), 1 / 8), "NODATA"),
    (np.array([0.5, 1, 1, 2]), np.full((4, 8), 1 / 8), "integer"),
    (np.zeros((4, 1), int), np.full((4, 8), 1 / 8), "one-dimensional"),
])
def test_label_issues_rejects_bad_inputs(labels, probs, match):
    with pytest.raises(ValueError, match=match):
        label_issues(labels, probs)


def test_pruning_report_counts_per_class_and_fold():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, C, 500)
    folds = rng.integers(0, 6, 500)
    issues = rng.choice(500, 60, replace=False)
    rep = pruning_report(labels, issues, folds)
    df = pd.DataFrame({"label": labels, "fold": folds, "pruned": np.isin(np.arange(500), issues)})
    per_fold = df.groupby(["fold", "label"])["pruned"].agg(["size", "sum"])
    for (fold, label), row in per_fold.iterrows():
        got = rep[(rep["fold"] == fold) & (rep["class_id"] == label)].iloc[0]
        assert (got["n_labels"], got["n_pruned"]) == (row["size"], row["sum"])
        assert got["class"] == CLASSES[label].name
        assert got["fraction_pruned"] == pytest.approx(row["sum"] / row["size"])
    total = rep[(rep["fold"] == "all") & (rep["class"] == "all")].iloc[0]
    assert (total["n_labels"], total["n_pruned"]) == (500, 60)
    assert len(rep) == (6 + 1) * (C + 1)
    assert set(pruning_report(labels, issues)["fold"]) == {"all"}
    with pytest.raises(ValueError, match="index"):
        pruning_report(labels, [500])
    with pytest.raises(ValueError, match="one value per label"):
        pruning_report(labels, issues, folds[:-1])


# --------------------------------------------------------------------------- calibration error
def _slow_ece(conf, correct, bins=100):
    """The definition, a loop over bins: sum_b n_b |mean conf_b - accuracy_b| / N."""
    conf, correct = np.asarray(conf, float), np.asarray(correct, float)
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [i for i in range(conf.size) if lo <= conf[i] < hi or (b == bins - 1 and conf[i] == 1.0)]
        if inside:
            total += len(inside) * abs(np.mean(conf[inside]) - np.mean(correct[inside]))
    return total / conf.size


def test_ece_and_classwise_ece_match_slow_loops(overconfident):
    (p, y), _ = overconfident
    p, y = p[:1500].astype(np.float64), y[:1500]
    # confidences exactly on bin edges (0.29, 0.5) and at 1 test the edge convention
    p[:3] = 0.0
    p[0, 0], p[0, 1] = 0.29, 0.71
    p[1, 2], p[1, 3] = 0.5, 0.5
    p[2, 4] = 1.0
    conf, correct = p.max(1), p.argmax(1) == y
    assert cal_mod.ece(p, y) == pytest.approx(_slow_ece(conf, correct), abs=1e-12)
    slow_classwise = np.mean([_slow_ece(p[:, k], y == k) for k in range(C)])
    assert cal_mod.classwise_ece(p, y) == pytest.approx(slow_classwise, abs=1e-12)
    assert cal_mod.ece_of(conf, correct, bins=7) == pytest.approx(_slow_ece(conf, correct, 7), abs=1e-12)


def test_calibration_lowers_the_error_of_overconfident_probabilities(demo, overconfident):
    (p, y), (hp, hy) = overconfident
    for method, kw in [("kernel", {}), ("kernel", {"ridge": "per-sample"}), ("isotonic", {})]:
        model, report = cal_mod.calibrate(demo, p, y, method, held_out=(hp, hy), **kw)
        v = report.set_index(["metric", "set", "calibration"])["value"]
        for s in ("fit", "held_out"):
            assert v[("ece", s, "before")] > 0.25
            assert v[("ece", s, "after")] < 0.5 * v[("ece", s, "before")] - 0.05, (method, kw, report)
            assert v[("classwise_ece", s, "after")] < v[("classwise_ece", s, "before")] - 0.02
        assert set(report.columns) == {"metric", "set", "calibration", "n_samples", "value"}
        assert model.metadata["calibration"]["method"] == method
        assert model is not demo and demo.calibrator is None
        want = KernelCalibrator if method == "kernel" else IsotonicCalibrator
        assert isinstance(model.calibrator, want)


def test_calibrated_probabilities_keep_rows_summing_to_one(overconfident):
    (p, y), _ = overconfident
    cal = cal_mod.fit_isotonic(p.max(1), p.argmax(1) == y)
    q = cal_mod.calibrated_probabilities(p, cal)
    np.testing.assert_allclose(q.sum(1), 1.0, atol=1e-9)
    np.testing.assert_allclose(q[np.arange(len(p)), p.argmax(1)], cal(p.max(1).astype(np.float64)))


# --------------------------------------------------------------------------- calibrators
def test_kernel_calibrator_equals_sklearn_kernel_ridge(overconfident):
    from sklearn.kernel_ridge import KernelRidge

    (p, y), _ = overconfident
    conf, correct = p.max(1), p.argmax(1) == y
    pts = cal_mod.reliability_points(conf, correct)
    assert pts["kind"].tolist()[:1] + pts["kind"].tolist()[-1:] == ["anchor", "anchor"]
    assert (pts["alpha"].iloc[[0, -1]] == 0).all() and (pts["weight"] <= 1).all()
    x, yy = pts[["x"]].to_numpy(), pts["y"].to_numpy()
    grid = np.linspace(0, 1, 501)
    # The study's call: the per-point alpha array (KernelRidge reads it per target, uses alpha[0]).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = KernelRidge(kernel="laplacian", alpha=pts["alpha"].to_numpy()).fit(x, yy)
    cal = cal_mod.fit_kernel(conf, correct)
    np.testing.assert_allclose(cal.predict_unclipped(grid), study.predict(grid[:, None]), atol=1e-6)
    np.testing.assert_allclose(cal.predict_unclipped(x[:, 0]), yy, atol=1e-6)  # it interpolates
    # per-sample ridge: (K + diag(alpha)) a = y, via a precomputed kernel
    K = np.exp(-np.abs(x - x.T))
    ridge = KernelRidge(kernel="precomputed", alpha=0.0).fit(K + np.diag(pts["alpha"]), yy)
    soft = cal_mod.fit_kernel(conf, correct, ridge="per-sample")
    np.testing.assert_allclose(soft.predict_unclipped(grid),
                               ridge.predict(np.exp(-np.abs(grid[:, None] - x.T))), atol=1e-6)


def _reference_fit_points(conf: np.ndarray, correct: np.ndarray):
    """The reference's fit points written from its description alone (facies-reference.md,
    "Confidence calibration"), with ``np.histogram``: 25 equal-width bins of [0, 1], mean
    confidence and accuracy per non-empty bin, anchors (0, 0) and (1, 1), per-point weight
    ``w = (count / max count) ** 0.1`` and ``alpha = (1 - w) * 0.01`` (anchors: w = 1)."""
    n, _ = np.histogram(conf, bins=25, range=(0.0, 1.0))
    s_conf, _ = np.histogram(conf, bins=25, range=(0.0, 1.0), weights=conf)
    s_ok, _ = np.histogram(conf, bins=25, range=(0.0, 1.0), weights=correct.astype(float))
    keep = n > 0
    n, x, y = n[keep], s_conf[keep] / n[keep], s_ok[keep] / n[keep]
    w = (n / n.max()) ** 0.1
    return (np.r_[0.0, x, 1.0], np.r_[0.0, y, 1.0], np.r_[0, n, 0], np.r_[1.0, w, 1.0],
            np.r_[0.0, (1 - w) * 0.01, 0.0])


@pytest.mark.parametrize("seed", [0, 1])
def test_kernel_fit_points_and_per_sample_ridge_against_an_independent_histogram(seed):
    """Binning, weights and penalties from ``np.histogram`` and the formula alone (not from
    :func:`reliability_points`), and the per-sample ridge solved by scikit-learn on them: a
    changed bin count, weight power or kernel alpha in the calibrator changes these numbers."""
    from sklearn.kernel_ridge import KernelRidge

    rng = np.random.default_rng(seed)
    conf = rng.beta(5, 2, 4000)                      # continuous: no value on a bin edge
    correct = rng.random(4000) < conf ** 1.5         # over-confident
    conf[:3] = [0.011, 0.013, 0.017]                 # a sparse first bin: its weight is far below 1
    x, y, n, w, alpha = _reference_fit_points(conf, correct)
    assert 0.5 < w[1] < 0.85 and alpha[1] > 1e-3     # the power and alpha matter for this point
    pts = cal_mod.reliability_points(conf, correct)
    np.testing.assert_allclose(pts["x"], x, atol=1e-12)
    np.testing.assert_allclose(pts["y"], y, atol=1e-12)
    np.testing.assert_array_equal(pts["count"], n)
    np.testing.assert_allclose(pts["weight"], w, rtol=1e-12)
    np.testing.assert_allclose(pts["alpha"], alpha, rtol=1e-12, atol=1e-15)
    K = np.exp(-np.abs(x[:, None] - x[None, :]))     # Laplacian kernel, gamma = 1
    ridge = KernelRidge(kernel="precomputed", alpha=0.0).fit(K + np.diag(alpha), y)
    grid = np.linspace(0, 1, 201)
    want = ridge.predict(np.exp(-np.abs(grid[:, None] - x[None, :])))
    soft = cal_mod.fit_kernel(conf, correct, ridge="per-sample")
    np.testing.assert_allclose(soft.predict_unclipped(grid), want, atol=1e-8)
    # the study's call interpolates the same points exactly
    study = cal_mod.fit_kernel(conf, correct)
    np.testing.assert_allclose(study.predict_unclipped(x), y, atol=1e-8)


def test_isotonic_calibrator_equals_sklearn_isotonic_regression(overconfident):
    from sklearn.isotonic import IsotonicRegression

    (p, y), _ = overconfident
    conf, correct = p.max(1).astype(np.float64), (p.argmax(1) == y).astype(float)
    ir = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(conf, correct)
    cal = cal_mod.fit_isotonic(conf, correct)
    grid = np.linspace(-0.1, 1.1, 601)
    np.testing.assert_allclose(cal(grid), ir.predict(grid), atol=1e-12)
    assert np.isnan(cal(np.array([np.nan]))[0])
    assert calibrator_from_dict(cal.to_dict()) == cal


@pytest.mark.skipif(not REF_CALIBRATION.exists(),
                    reason=f"{REF_CALIBRATION} is absent: the reference calibrators (third-party, not in git) "
                    "are only on the project's development machines")
def test_reference_calibrators_interpolate_their_points():
    """The published curves pass exactly through their fit points: the per-point alpha the study
    passed was used as alpha[0] = 0 (documented in xfacies.train.calibration)."""
    for path in sorted(REF_CALIBRATION.glob("*_calibration_model.pickle")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open(path, "rb") as f:
                kr = pickle.load(f)  # noqa: S301 - hash-pinned reference file
        x, a = kr.X_fit_[:, 0], kr.dual_coef_.ravel()
        alpha = np.atleast_1d(kr.alpha)
        assert alpha.size == x.size and alpha[0] == 0 and alpha[-1] == 0 and alpha.max() > 0
        fitted = np.exp(-np.abs(x[:, None] - x[None, :])) @ a
        assert fitted[0] == pytest.approx(0, abs=1e-9) and fitted[-1] == pytest.approx(1, abs=1e-9)
        assert (x[0], x[-1]) == (0.0, 1.0) and np.all(np.diff(x) > 0.01)  # bin means ~0.04 apart


def test_bundle_round_trip_keeps_both_calibrator_kinds(demo, overconfident, tmp_path):
    (p, y), _ = overconfident
    grid = np.linspace(0, 1, 101, dtype=np.float32)
    for method in ("kernel", "isotonic"):
        model, _ = cal_mod.calibrate(demo, p, y, method)
        back = xfacies.Model.load(model.save(tmp_path / f"{method}.xfacies"))
        assert type(back.calibrator) is type(model.calibrator)
        assert back.calibrator.to_dict() == model.calibrator.to_dict()
        np.testing.assert_array_equal(back.calibrator(grid), model.calibrator(grid))
        probs = p[:50]
        np.testing.assert_allclose(back.confidence(probs), model.calibrator(probs.max(1)), atol=1e-7)
        assert back.metadata["calibration"]["method"] == method
    with pytest.raises(ValueError, match="unknown calibrator kind"):
        calibrator_from_dict({"kind": "platt"})
    assert isinstance(calibrator_from_dict({"x_fit": [0, 1], "dual_coef": [0, 1]}), KernelCalibrator)


def test_calibrate_draws_a_reliability_diagram(demo, overconfident, tmp_path):
    (p, y), _ = overconfident
    png = tmp_path / "reliability.png"
    cal_mod.calibrate(demo, p, y, "kernel", plot=png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_calibrate_rejects_bad_inputs(demo, overconfident):
    (p, y), _ = overconfident
    with pytest.raises(ValueError, match="method must be one of"):
        cal_mod.calibrate(demo, p, y, "platt")
    with pytest.raises(ValueError, match="classes"):
        cal_mod.calibrate(demo, p[:, :4] / p[:, :4].sum(1, keepdims=True), np.minimum(y, 3))
    with pytest.raises(ValueError, match="sum to 1"):
        cal_mod.calibrate(demo, p * 0.9, y)


# --------------------------------------------------------------------------- evaluation
def test_evaluate_matches_sklearn_reports(demo, scene_patches, tmp_path):
    from sklearn.metrics import classification_report, f1_score, jaccard_score

    ds, x = scene_patches
    png = tmp_path / "confusion.png"
    table = evaluate(demo, ds, batch_size=64, confusion_png=png)
    assert png.read_bytes()[:4] == b"\x89PNG"
    t = ds["class"].values
    pred = demo.predict_patches(x).argmax(1)                 # bands in model order, one batch
    present = sorted(set(t.tolist()))
    rep = classification_report(t, pred, labels=present, output_dict=True, zero_division=0)
    iou = jaccard_score(t, pred, labels=present, average=None)
    v = table[table["glacier"] == "all"].set_index(["metric", "class"])["value"]
    for k, j in zip(present, iou):
        name = CLASSES[k].name
        for metric, key in [("precision", "precision"), ("recall", "recall"), ("f1", "f1-score"),
                            ("support", "support")]:
            want = rep[str(k)][key]
            if metric == "precision" and not (pred == k).any():
                assert np.isnan(v[(metric, name)])
                continue
            assert v[(metric, name)] == pytest.approx(want, abs=1e-12), (metric, name)
        assert v[("iou", name)] == pytest.approx(j, abs=1e-12)
    assert v[("macro_f1", "all")] == pytest.approx(rep["macro avg"]["f1-score"], abs=1e-12)
    assert v[("miou", "all")] == pytest.approx(iou.mean(), abs=1e-12)
    facies = [k for k in present if k in FACIES_CLASSES]
    assert v[("macro_f1", "facies")] == pytest.approx(f1_score(t, pred, labels=facies, average="macro"))
    assert v[("accuracy", "all")] == pytest.approx(np.mean(t == pred))
    assert {4, 7}.isdisjoint(present) and np.isnan(v[("recall", "shadow")])  # absent: not in the macro
    assert len(present) == 6 and 6 in present                                # water is, and not facies


def test_evaluate_glacier_wise_mean_and_sd_match_a_groupby(demo, scene_patches):
    from sklearn.metrics import f1_score

    ds, x = scene_patches
    table = evaluate(demo, ds)
    df = pd.DataFrame({"glacier": ds["glacier"].values, "t": ds["class"].values,
                       "p": demo.predict_patches(x).argmax(1)})

    def macro(g, ids):
        labels = sorted(set(g["t"]) & set(ids))
        return f1_score(g["t"], g["p"], labels=labels, average="macro")

    v = table.set_index(["metric", "class", "glacier"])["value"]
    for name, ids in [("all", range(C)), ("facies", FACIES_CLASSES)]:
        per = df.groupby("glacier")[["t", "p"]].apply(macro, ids=ids)
        assert len(per) == 3
        for g, want in per.items():
            assert v[("macro_f1", name, g)] == pytest.approx(want, abs=1e-12)
        assert v[("glacier_macro_f1_mean", name, "all")] == pytest.approx(per.mean(), abs=1e-12)
        assert v[("glacier_macro_f1_sd", name, "all")] == pytest.approx(per.std(), abs=1e-12)


def test_evaluate_sets_missing_values_to_zero_after_normalisation(demo, scene_patches):
    ds, x = scene_patches
    assert np.isnan(x[:5]).any() and not np.isnan(x[5:]).any()
    got = predict_probabilities(demo, ds.isel(sample=slice(0, 8)), batch_size=3)
    want = demo.predict_patches_normalised(np.nan_to_num(demo.normalise(x[:8]), nan=0.0))
    np.testing.assert_allclose(got, want, atol=1e-5)
    with pytest.raises(ValueError, match="lack the model's features"):
        predict_probabilities(demo, ds.isel(band=slice(1, None)))
    with pytest.raises(ValueError, match="method must be one of"):
        evaluate(demo, ds, method="dense")


def test_confusion_rows_are_normalised():
    from sklearn.metrics import confusion_matrix

    rng = np.random.default_rng(3)
    t = rng.choice([0, 1, 2, 3, 5, 6], 400)
    p = np.where(rng.random(400) < 0.7, t, rng.integers(0, C, 400))
    cm = confusion(t, p)
    present = np.bincount(t, minlength=C) > 0
    np.testing.assert_allclose(cm.values[present].sum(1), 1.0, atol=1e-12)
    assert np.isnan(cm.values[~present]).all()
    np.testing.assert_allclose(cm.values[present],
                               confusion_matrix(t, p, labels=range(C), normalize="true")[present])
    assert list(cm["truth"].values) == [c.name for c in CLASSES]
    counts = confusion(t, p, normalize=False)
    assert counts.sum() == 400
    s = scores(t, p).set_index(["metric", "class"])["value"]
    assert s[("n", "all")] == 400 and s[("support", "water")] == (t == 6).sum()
