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
        "read_outlines": "xfacies.outlines", "features": "xfacies.features.compute",
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

    import warnings

    from xfacies.errors import MovedWarning, XfaciesWarning

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
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", MovedWarning)  # an alias of a moved module
                    module = importlib.import_module(name.removesuffix(".__init__"))
            cls = getattr(module, cat.id, None)
            if not (isinstance(cls, type) and issubclass(cls, XfaciesWarning)):
                bad.append(f"{path.relative_to(root)}:{node.lineno}: {cat.id}")
    assert not bad, bad
    # and every warning class the package defines derives from the base
    for info in pkgutil.walk_packages(xfacies.__path__, "xfacies."):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MovedWarning)  # the aliases of moved modules warn on import
            mod = importlib.import_module(info.name)
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, Warning) and obj.__module__ == info.name:
                assert issubclass(obj, XfaciesWarning), obj


# --------------------------------------------------------------------------- the import graph
def _import_graph(root: Path, package: str = "xfacies") -> dict[str, set[str]]:
    """Module -> the xfacies modules it imports (anywhere in it, functions included; not those
    under ``if TYPE_CHECKING:``, which never run), read from the source with ``ast``."""
    import ast

    modules = {".".join((package, *p.relative_to(root).with_suffix("").parts)).removesuffix(".__init__"): p
               for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        is_pkg = path.name == "__init__.py"
        out = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = name.split(".")[: len(name.split(".")) - node.level + (1 if is_pkg else 0)]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t.startswith(package) and t != name:
                    out.add(t)
        graph[name] = out
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    """No two xfacies modules import each other, directly or through others (an import inside a
    function counts: it runs as soon as the function does)."""
    root = Path(xfacies.__file__).parent
    graph = _import_graph(root)
    assert len(graph) > 60 and "xfacies.outlines" in graph["xfacies.inference.engine"]
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    """The walk above finds a cycle where there is one: the spatial <-> outlines loop of the old
    layout, rebuilt in a copy, and a three-module ring."""
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(g) == [["a", "b", "c"]]
    root = Path(xfacies.__file__).parent
    graph = _import_graph(root)
    graph["xfacies.spatial"] = graph["xfacies.spatial"] | {"xfacies.outlines"}
    assert ["xfacies.outlines", "xfacies.spatial"] in _cycles(graph)


def _lint_imports(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, **({"PYTHONPATH": str(pythonpath)} if pythonpath else {})}
    return subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                           "sys.exit(lint_imports_command())", "--no-cache"],
                          cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def test_the_import_layers_hold():
    """import-linter's contracts in pyproject.toml (a layer imports only from the layers below it;
    products, mass balance, model and features do not know each other) hold for the package."""
    from conftest import REPO

    proc = _lint_imports(REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "2 kept, 0 broken" in proc.stdout


def test_the_layer_contract_breaks_on_a_backward_import(tmp_path):
    """The contract is not vacuous: in a copy of the package where the grid module imports the
    outlines (the old layout's backward arrow), or a product imports the mass balance, it fails
    and names the import."""
    import shutil

    from conftest import REPO

    shutil.copytree(Path(xfacies.__file__).parent, tmp_path / "xfacies",
                    ignore=shutil.ignore_patterns("__pycache__", "data"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    spatial = tmp_path / "xfacies" / "spatial.py"
    spatial.write_text(spatial.read_text() + "\n\ndef _back():\n    from xfacies.outlines import read_outlines\n")
    snow = tmp_path / "xfacies" / "products" / "snowline.py"
    snow.write_text(snow.read_text() + "\n\ndef _across():\n    from xfacies.massbalance import wgms\n")
    proc = _lint_imports(tmp_path, pythonpath=tmp_path)
    assert proc.returncode != 0
    assert "xfacies.spatial -> xfacies.outlines" in proc.stdout, proc.stdout[-3000:]
    assert "xfacies.products.snowline -> xfacies.massbalance" in proc.stdout, proc.stdout[-3000:]


def test_no_private_name_is_imported_across_modules():
    """What one module shares with another is public: no ``from xfacies.x import _name`` and no
    ``x._name`` of another xfacies module (dunders aside)."""
    import ast

    root = Path(xfacies.__file__).parent
    bad = []
    for path in sorted(root.rglob("*.py")):
        mod = ".".join(("xfacies", *path.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
        tree = ast.parse(path.read_text())
        modules = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("xfacies"):
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__") and node.module != mod:
                        bad.append(f"{mod}: from {node.module} import {a.name}")
                    modules[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("xfacies") and a.asname:
                        modules[a.asname] = a.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in modules and node.attr.startswith("_")
                    and not node.attr.startswith("__") and modules[node.value.id] != mod):
                bad.append(f"{mod}: {modules[node.value.id]}.{node.attr}")
    assert bad == []
