"""Nothing listens beyond loopback by default."""

from __future__ import annotations

import ipaddress
import os

import psutil
import pytest

from xfacies.app.config import ClusterConfig


def _listening(pids: set[int]) -> list[tuple[int, str, int]]:
    return [(c.pid, c.laddr.ip, c.laddr.port) for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.pid in pids]


def test_a_runs_local_cluster_and_its_dashboard_listen_on_loopback_only():
    """The default [cluster] of a run: the scheduler, the dashboard and the workers (every
    listening socket of this process and of its children) are bound to loopback addresses."""
    pytest.importorskip("distributed")
    from xfacies.app.cluster import scheduler as _scheduler

    me = psutil.Process(os.getpid())
    before = set(_listening({me.pid}))
    cfg = ClusterConfig(n_workers=1, dashboard_address=ClusterConfig().dashboard_address.rsplit(":", 1)[0] + ":0")
    assert ClusterConfig().dashboard_address.startswith("127.0.0.1:")
    with _scheduler(cfg, verbose=False) as (client, link):
        assert link and link.startswith("http://127.0.0.1:")
        pids = {me.pid} | {c.pid for c in me.children(recursive=True)}
        sockets = [s for s in _listening(pids) if s not in before]
    assert len(sockets) >= 3, sockets  # scheduler, dashboard, worker (and its nanny)
    open_to_network = [s for s in sockets if not ipaddress.ip_address(s[1]).is_loopback]
    assert not open_to_network, open_to_network


# --------------------------------------------------------------------------- no pickle of a user's file
class _Payload:
    """Unpickling this creates a file: the proof that the pickle's code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture()
def evil(tmp_path):
    import pickle

    marker = tmp_path / "pwned"
    path = tmp_path / "0_calibration_model.pickle"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    return path, marker


def test_a_crafted_pickle_is_never_unpickled_by_the_readers_or_the_cli(evil, tmp_path, capsys):
    from xfacies.app.cli import main
    from xfacies.errors import UnsafeFileError
    from xfacies.model.calibration import read_calibrator, read_reference_calibrator
    from xfacies.model.reference import read_minmax

    path, marker = evil
    for read in (read_calibrator, read_reference_calibrator, read_minmax):
        with pytest.raises(UnsafeFileError, match=r"pickle.*runs whatever code.*convert-reference .*--trust-pickle"):
            read(path)
    renamed = tmp_path / "calibration.json"  # the name does not matter: the content is sniffed
    renamed.write_bytes(path.read_bytes())
    with pytest.raises(UnsafeFileError):
        read_calibrator(renamed)
    h5 = tmp_path / "0_cnn_afterconfidentlearning_weights.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n")  # never read: the small inputs are checked first
    for argv in (["import-reference", str(h5), str(tmp_path / "m.xfacies"), "--minmax", str(path)],
                 ["import-reference", str(h5), str(tmp_path / "m.xfacies"), "--calibrator", str(path)],
                 ["convert-reference", str(path), str(tmp_path / "c.json")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "unpickling runs whatever code the file holds" in err and "--trust-pickle" in err, err
    assert not marker.exists(), "the pickle's code ran"
    # the opt-in conversion is the one place that unpickles (and it says so)
    from xfacies.model.reference import convert_reference_file

    with pytest.raises(ValueError, match="neither a KernelRidge calibrator nor a .mins, maxs. pair"):
        convert_reference_file(path, tmp_path / "c.json", trust_pickle=True)
    assert marker.exists()


def test_apply_refuses_a_pickled_calibration_before_unpickling(evil, tmp_path, capsys):
    from conftest import make_tiny_model

    from xfacies.app.cli import main
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    path, marker = evil
    model = make_tiny_model(6)
    model.save(tmp_path / "m.xfacies")
    prof = dict(driver="GTiff", width=40, height=40, count=6, dtype="float32", crs="EPSG:32632",
                transform=from_origin(630000, 5190000, 10, 10))
    with rasterio.open(tmp_path / "refl.tif", "w", **prof) as dst:
        dst.write(np.full((6, 40, 40), 0.3, np.float32))
    import geopandas as gpd
    from shapely.geometry import box

    gpd.GeoDataFrame({"rgi_id": ["g"]}, geometry=[box(630050, 5189650, 630350, 5189950)],
                     crs="EPSG:32632").to_file(tmp_path / "g.gpkg")
    rc = main(["apply", "--optical", str(tmp_path / "refl.tif"), "--outlines", str(tmp_path / "g.gpkg"),
               "--output", str(tmp_path / "out.tif"), "--model", str(tmp_path / "m.xfacies"),
               "--calibration", str(path), "--no-progress"])
    assert rc == 2 and "--trust-pickle" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "out.tif").exists()


# --------------------------------------------------------------------------- small files, large memory
def _bundle_with(tmp_path, weights_member: bytes):
    """A copy of a real bundle whose weights.npz member is replaced."""
    import zipfile

    from conftest import make_tiny_model

    good = make_tiny_model(6).save(tmp_path / "good.xfacies")
    bad = tmp_path / "bad.xfacies"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        zout.writestr("model.json", zin.read("model.json"))
        zout.writestr("weights.npz", weights_member)
    return bad


def _peak_refusing(bundle_path, error, match) -> int:
    """Peak bytes Python allocated while ``load_model`` refused ``bundle_path`` with ``error``."""
    import tracemalloc

    import xfacies

    tracemalloc.start()
    try:
        with pytest.raises(error, match=match):
            xfacies.load_model(bundle_path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_bundle_that_decompresses_to_more_than_a_bundle_may_hold_is_refused_before_it_is_read(tmp_path,
                                                                                                monkeypatch):
    from xfacies.model import bundle

    monkeypatch.setattr(bundle, "MAX_WEIGHT_BYTES", 4 * 2**20)
    bad = _bundle_with(tmp_path, bytes(64 * 2**20))  # 64 MiB of zeros: ~64 kB on disk
    assert bad.stat().st_size < 2**20
    peak = _peak_refusing(bad, bundle.BundleError,
                          r"weights.npz declares 64 MiB uncompressed, more than a bundle may hold \(4 MiB\)")
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MiB allocated to refuse it"


def test_a_weight_header_declaring_terabytes_is_refused_before_allocation(tmp_path):
    import io
    import zipfile

    import numpy as np

    import xfacies
    from xfacies.model.bundle import BundleError

    from conftest import make_tiny_model

    good = make_tiny_model(6)  # the model _bundle_with takes the metadata from
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as npz:
        for i, w in enumerate(good.weights):
            member = io.BytesIO()
            if i == 0:  # a header for 10^6 x 10^6 float32 (4 TB), followed by 16 bytes
                np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False,
                                                              "shape": (10**6, 10**6)})
                member.write(bytes(16))
            else:
                np.lib.format.write_array(member, w)
            npz.writestr(f"w{i:03d}.npy", member.getvalue())
    bad = _bundle_with(tmp_path, buf.getvalue())
    with pytest.raises(BundleError, match=r"weight array 0 declares shape \(1000000, 1000000\)"):
        xfacies.load_model(bad)


# --------------------------------------------------------------------------- bundles that lie
def test_non_finite_normalisation_is_refused_at_load(tmp_path):
    import json
    import zipfile

    import xfacies
    from xfacies.model.bundle import BundleError

    from conftest import make_tiny_model

    good = make_tiny_model(6).save(tmp_path / "good.xfacies")
    for bad_value in (float("nan"), float("inf")):
        with zipfile.ZipFile(good) as zin:
            meta = json.loads(zin.read("model.json"))
            weights = zin.read("weights.npz")
        meta["normalisation"]["max"][2] = bad_value
        bad = tmp_path / "bad.xfacies"
        with zipfile.ZipFile(bad, "w") as zout:
            zout.writestr("model.json", json.dumps(meta))
            zout.writestr("weights.npz", weights)
        with pytest.raises(BundleError, match=r"min/max must be finite numbers; not for \['red'\]"):
            xfacies.load_model(bad)


@pytest.mark.parametrize("key, value, match", [
    ("filters", 1024, r"declares filters=1024 but no weight array has an axis of that size.*nothing was built"),
    ("dense_units", 4096, r"declares dense_units=4096 but no weight array"),
    ("n_classes", 5, r"declares n_classes=5 but the bundle lists 8 classes"),
])
def test_a_config_that_does_not_fit_its_weights_is_refused_before_anything_is_built(tmp_path, key, value,
                                                                                    match):
    """A small bundle declaring filters=1024 would build a 1024-filter network (hundreds of MB)
    before the shape check: it is refused at load, with little memory and no Keras model."""
    import json
    import zipfile

    from xfacies.model.bundle import BundleError

    from conftest import make_tiny_model

    good = make_tiny_model(6).save(tmp_path / "good.xfacies")
    with zipfile.ZipFile(good) as zin:
        meta = json.loads(zin.read("model.json"))
        weights = zin.read("weights.npz")
    meta["config"][key] = value
    bad = tmp_path / "bad.xfacies"
    with zipfile.ZipFile(bad, "w") as zout:
        zout.writestr("model.json", json.dumps(meta))
        zout.writestr("weights.npz", weights)
    peak = _peak_refusing(bad, BundleError, match)
    assert peak < 8 * 2**20, f"{peak / 2**20:.0f} MiB allocated to refuse it"


def test_an_edited_model_is_classified_as_edited_not_from_its_old_file(tmp_path):
    """dataclasses.replace keeps ``path``: classify must run the edited weights, not reload the file."""
    import dataclasses

    import numpy as np

    import xfacies

    from conftest import make_tiny_model, random_features

    m = make_tiny_model(6, seed=1)
    m.save(tmp_path / "m.xfacies")
    other = make_tiny_model(6, seed=2)
    edited = dataclasses.replace(m, weights=other.weights)
    assert edited.path == m.path and not edited.matches_file() and m.matches_file()
    feats = random_features((40, 40), seed=3)
    got = xfacies.predict_proba(feats, edited).values
    np.testing.assert_allclose(got, xfacies.predict_proba(feats, other).values, atol=1e-6)
    assert np.abs(got - xfacies.predict_proba(feats, m).values).max() > 1e-3
