"""The package layout keeps its promises: the model and inference core run without the GDAL
stack, ``import xfacies`` stays light, and the accessor documents itself."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import xfacies
from xfacies.model.bundle import DomainWarning

GDAL_STACK = ("rasterio", "rioxarray", "pyproj", "geopandas", "shapely", "odc", "pystac",
              "pystac_client", "pyogrio", "fiona", "osgeo")

BLOCKER = textwrap.dedent(f"""
    import importlib.abc, sys
    BLOCKED = {GDAL_STACK!r}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{{name}} is blocked: this machine has no GDAL stack")
    sys.meta_path.insert(0, Block())
""")


def _features(seed: int = 0) -> xr.DataArray:
    """Smooth random features in the demo model's order, on a plain (y, x) grid without a CRS."""
    from scipy.ndimage import uniform_filter

    rng = np.random.default_rng(seed)
    names = list(xfacies.FEATURE_SETS[4])
    x = uniform_filter(rng.random((len(names), 96, 80), dtype=np.float32), (1, 5, 5))
    return xr.DataArray(x, dims=("band", "y", "x"),
                        coords={"band": names, "y": 5190000.0 - 10 * np.arange(96) - 5,
                                "x": 630000.0 + 10 * np.arange(80) + 5})


def test_core_classifies_without_the_gdal_stack(tmp_path):
    """Blocking rasterio, rioxarray, pyproj, geopandas, shapely, odc and pystac, the demo model
    classifies (dense and exact, with an outline raster) and gives the same labels as here."""
    script = BLOCKER + textwrap.dedent(f"""
        import numpy as np, xarray as xr
        sys.path.insert(0, {str(__import__("pathlib").Path(__file__).parent)!r})
        import xfacies
        from test_layout import _features
        feats = _features().chunk(y=48, x=40)
        mask = xr.zeros_like(feats.isel(band=0, drop=True), dtype=np.int8)
        mask[10:80, 8:70] = 1
        for method in ("dense", "exact"):
            out = xfacies.classify(feats, "demo", mask, method=method, confidence=True).compute()
            np.save({str(tmp_path)!r} + f"/{{method}}.npy", out["classes"].values)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not loaded, loaded
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
    feats = _features().chunk(y=48, x=40)
    mask = xr.zeros_like(feats.isel(band=0, drop=True), dtype=np.int8)
    mask[10:80, 8:70] = 1
    for method in ("dense", "exact"):
        with pytest.warns(DomainWarning, match="trained on synthetic glaciers only"):  # random features
            here = xfacies.classify(feats, "demo", mask, method=method).values
        there = np.load(tmp_path / f"{method}.npy")
        np.testing.assert_array_equal(there, here)
        assert (there[10:80, 8:70] >= 0).all() and (there[:10] == xfacies.NODATA).all()


def test_import_xfacies_loads_no_heavy_framework():
    code = ("import sys, xfacies, xarray as xr; xr.DataArray([0]).facies; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            f"set({GDAL_STACK + ('keras', 'tensorflow', 'jax', 'torch')!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("method, function", [
    ("classify", "xfacies.inference.engine.classify"),
    ("predict_proba", "xfacies.inference.engine.predict_proba"),
    ("features", "xfacies.features.compute.features"),
    ("fractions", "xfacies.products.fractions.fractions"),
    ("plot", "xfacies.plot.facies_map"),
])
def test_accessor_methods_carry_the_signature_and_docstring(method, function):
    import importlib

    mod, name = function.rsplit(".", 1)
    func = getattr(importlib.import_module(mod), name)
    bound = getattr(xr.DataArray(np.zeros((2, 2))).facies, method)
    want = list(inspect.signature(func).parameters)[1:]  # the object itself is the first
    assert list(inspect.signature(bound).parameters) == want
    assert inspect.cleandoc(func.__doc__) in bound.__doc__
    assert function in bound.__doc__


def test_dataset_accessor_forwards_the_classes_variable():
    import geopandas as gpd
    import rioxarray  # noqa: F401
    from shapely.geometry import box

    classes = xr.DataArray(np.array([[0, 1], [1, 1]], "int8"), dims=("y", "x"),
                           coords={"y": [15.0, 5.0], "x": [5.0, 15.0]}).rio.write_crs("EPSG:32632")
    gdf = gpd.GeoDataFrame({"rgi_id": ["A"]}, geometry=[box(0, 0, 20, 20)], crs="EPSG:32632")
    ds = xr.Dataset({"classes": classes, "confidence": classes.astype("float32")})
    xr.testing.assert_identical(ds.facies.fractions(gdf), xfacies.fractions(classes, gdf))
    assert "outlines" in inspect.signature(ds.facies.fractions).parameters


def test_no_module_is_a_second_home():
    """Every public name of the old flat layout has exactly one home in the new one."""
    import importlib

    homes = {
        "open_stac": "xfacies.sources.stac", "open_dem": "xfacies.sources.dem",
        "read_outlines": "xfacies.sources.outlines", "features": "xfacies.features.compute",
        "classify": "xfacies.inference.engine", "fractions": "xfacies.products.fractions",
        "regress": "xfacies.massbalance.regression", "load_model": "xfacies.model.registry",
        "run": "xfacies.app.pipeline", "load_config": "xfacies.app.config",
    }
    for name, mod in homes.items():
        obj = getattr(importlib.import_module(mod), name)
        assert obj.__module__ == mod, (name, obj.__module__)


def test_every_warning_xfacies_raises_is_an_xfacies_warning():
    """Each ``warnings.warn`` call in the package names a category, and that category derives from
    :class:`xfacies.errors.XfaciesWarning` (so the suite's ``error::`` filter and users' filters
    catch all of them); found by reading the source, not by running it."""
    import ast
    import importlib
    import pkgutil

    from xfacies.errors import XfaciesWarning

    root = Path(xfacies.__file__).parent
    bad = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        module = None
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "warn" and getattr(node.func.value, "id", None) == "warnings"):
                continue
            cat = node.args[1] if len(node.args) > 1 else next(
                (k.value for k in node.keywords if k.arg == "category"), None)
            if not isinstance(cat, ast.Name):
                bad.append(f"{path.relative_to(root)}:{node.lineno}: no category named")
                continue
            if module is None:
                name = ".".join(("xfacies", *path.relative_to(root).with_suffix("").parts))
                module = importlib.import_module(name.removesuffix(".__init__"))
            cls = getattr(module, cat.id, None)
            if not (isinstance(cls, type) and issubclass(cls, XfaciesWarning)):
                bad.append(f"{path.relative_to(root)}:{node.lineno}: {cat.id}")
    assert not bad, bad
    # and every warning class the package defines derives from the base
    for info in pkgutil.walk_packages(xfacies.__path__, "xfacies."):
        mod = importlib.import_module(info.name)
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, Warning) and obj.__module__ == info.name:
                assert issubclass(obj, XfaciesWarning), obj
