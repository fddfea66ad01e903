"""Quick-look plots render to PNG with the catalogue colours (Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import rioxarray  # noqa: E402,F401
import xarray as xr  # noqa: E402

import xfacies  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from xfacies.catalog import CLASSES, NODATA, class_flag_attrs  # noqa: E402
from xfacies.plot import facies_map, fraction_timeseries, save_quicklooks  # noqa: E402

X0, Y0, RES = 600_000.0, 5_100_000.0, 10.0
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
COLOR = {c.name: c.color for c in CLASSES}
ID = {c.name: c.id for c in CLASSES}


def blocky_map(names: list[str], nt: int = 1) -> xr.DataArray:
    """Vertical bands of the given classes (big uniform patches), NODATA band at the right."""
    ny, nx = 40, 10 * (len(names) + 1)
    v = np.full((ny, nx), NODATA, dtype="int8")
    for i, n in enumerate(names):
        v[:, 10 * i:10 * (i + 1)] = ID[n]
    da = xr.DataArray(np.repeat(v[None], nt, axis=0), dims=("time", "y", "x"), name="classes",
                      coords={"time": pd.date_range("2024-07-01", periods=nt, freq="16D"),
                              "y": Y0 - RES / 2 - RES * np.arange(ny),
                              "x": X0 + RES / 2 + RES * np.arange(nx)},
                      attrs=class_flag_attrs())
    return da


def frac_dataset(nt: int = 5, glaciers=("A", "B")) -> xr.Dataset:
    kept = [c.name for c in CLASSES if c.name != "cloud"]
    rng = np.random.default_rng(0)
    f = rng.random((nt, len(glaciers), len(kept))).astype("float32")
    f /= f.sum(-1, keepdims=True)
    f[1, 0] = np.nan  # nothing observed on one date
    return xr.Dataset({"fraction": (("time", "glacier", "class"), f)},
                      coords={"time": pd.date_range("2024-06-01", periods=nt, freq="16D"),
                              "glacier": list(glaciers), "class": kept})


def pixels(path) -> np.ndarray:
    assert path.read_bytes()[:8] == PNG_MAGIC
    img = mpimg.imread(path)
    return img[..., :3].reshape(-1, 3)


def axes_pixels(path, ax) -> np.ndarray:
    """Pixels inside the Axes only (so legend patches cannot satisfy a check)."""
    img = mpimg.imread(path)[..., :3]
    bb = ax.get_window_extent()
    h = img.shape[0]
    crop = img[int(h - bb.y1) + 2:int(h - bb.y0) - 2, int(bb.x0) + 2:int(bb.x1) - 2]
    return crop.reshape(-1, 3)


def has_colour(px: np.ndarray, hex_colour: str, tol: float = 1.5 / 255) -> bool:
    return bool((np.abs(px - np.array(to_rgb(hex_colour))).max(axis=1) <= tol).any())


def test_facies_map_colours_appear_for_present_classes_only(tmp_path):
    present = ["ice", "debris", "firn", "cloud", "shadow"]
    da = blocky_map(present).isel(time=0)
    fig, ax = plt.subplots(figsize=(5, 4))
    out = facies_map(da, ax=ax, legend=False)  # no legend: colours must come from the map
    assert out is ax
    assert ax.get_aspect() == 1.0
    assert "(km)" in ax.get_xlabel() and "(km)" in ax.get_ylabel()  # UTM coordinates
    path = tmp_path / "map.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    px = pixels(path)
    h, w = mpimg.imread(path).shape[:2]
    assert (w, h) == (500, 400)
    for name in present:
        assert has_colour(px, COLOR[name]), name
    for name in ("water", "refrozen-like"):  # absent classes are not drawn
        assert not has_colour(px, COLOR[name]), name


def test_facies_map_legend_and_km_axes():
    da = blocky_map(["ice", "snow", "water"]).isel(time=0)
    da = da.assign_coords(x=da.x * 1 + np.arange(da.sizes["x"]) * 90.0)  # ~4 km wide
    ax = facies_map(da, title="t")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["ice", "snow", "water"]
    assert "km" in ax.get_xlabel()
    assert ax.get_title() == "t"
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="isel"):
        facies_map(blocky_map(["ice"], nt=2))


def test_fraction_timeseries_uses_catalog_colours(tmp_path):
    frac = frac_dataset(glaciers=("A",))
    ax = fraction_timeseries(frac)
    assert ax.get_title() == "A"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [c.name for c in CLASSES if c.name != "cloud"] + ["not observed"]
    path = tmp_path / "ts.png"
    ax.figure.savefig(path, dpi=ax.figure.dpi)
    pixels(path)
    px = axes_pixels(path, ax)
    plt.close(ax.figure)
    for name in ("ice", "debris", "water", "firn", "refrozen-like"):
        assert has_colour(px, COLOR[name]), name


def test_fraction_timeseries_one_panel_per_glacier():
    fig = fraction_timeseries(frac_dataset(glaciers=("A", "B", "C")))
    assert len(fig.axes) == 3
    assert [a.get_title() for a in fig.axes] == ["A", "B", "C"]
    plt.close(fig)
    ax = fraction_timeseries(frac_dataset(glaciers=("A", "B")), glacier="B")
    assert ax.get_title() == "B"
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="not in the fractions"):
        fraction_timeseries(frac_dataset(), glacier="Z")


def test_save_quicklooks_writes_pngs(tmp_path):
    classes = blocky_map(["snow", "ice", "refrozen-like"], nt=3).chunk({"time": 1})
    frac = frac_dataset(nt=3)
    paths = save_quicklooks(classes, frac, tmp_path / "ql")
    names = [p.name for p in paths]
    assert names == ["facies_2024-07-01.png", "facies_2024-07-17.png", "facies_2024-08-02.png",
                     "fractions.png"]
    for p in paths:
        img = mpimg.imread(p)
        assert p.read_bytes()[:8] == PNG_MAGIC
        assert 200 <= img.shape[0] <= 2000 and 200 <= img.shape[1] <= 2000
    px = pixels(paths[0])
    for name in ("snow", "ice", "refrozen-like"):
        assert has_colour(px, COLOR[name]), name


# --------------------------------------------------------------------------- maps a glaciologist reads (#24 item 10)
def _luminance(hex_colour: str) -> float:
    """WCAG 2 relative luminance of an sRGB colour."""
    rgb = [int(hex_colour.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def test_every_class_colour_stands_out_from_a_white_page():
    """WCAG contrast ratio against white: the old snow (#f4f7fb) had 1.07, invisible on a page."""
    for c in xfacies.CLASSES:
        ratio = 1.05 / (_luminance(c.color) + 0.05)
        assert ratio >= 1.5, (c.name, c.color, round(ratio, 2))


def test_facies_map_over_a_hillshade_and_over_a_true_colour_quicklook(tmp_path):
    import matplotlib.image as mpimg

    from xfacies.plot import facies_map

    n = 40
    y = 5190000.0 - 10.0 * (np.arange(n) + 0.5)
    x = 630000.0 + 10.0 * (np.arange(n) + 0.5)
    yy, xx = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    # west half rises to the south-east (faces north-west, the light from 315 deg), east half rises to
    # the north-west (faces away from it); rows run southwards
    z = np.where(xx < n // 2, 3000.0 + 8.0 * (xx + yy), 3000.0 - 8.0 * (xx + yy))
    dem = xr.DataArray(z, dims=("y", "x"), coords={"y": y, "x": x}).rio.write_crs("EPSG:32632")
    classes = xr.DataArray(np.full((n, n), -1, "int8"), dims=("y", "x"), coords={"y": y, "x": x},
                           attrs=xfacies.catalog.class_flag_attrs()).rio.write_crs("EPSG:32632")
    classes.values[15:25, 15:25] = 1  # a patch of snow
    ax = facies_map(classes, background=dem, legend=False)
    shade = ax.get_images()[0].get_array()[..., 0]
    assert shade[5:35, 2:15].mean() > shade[5:35, 25:38].mean() + 0.2  # lit slope brighter
    assert ax.get_images()[1].get_alpha() == 0.75
    png = tmp_path / "over_hillshade.png"
    ax.figure.savefig(png)
    assert mpimg.imread(png).shape[2] == 4

    refl = np.zeros((3, n, n))
    refl[0, :, : n // 2] = 0.8        # red on the west half
    refl[2, :, n // 2:] = 0.8         # blue on the east half
    rgb = xr.DataArray(refl, dims=("band", "y", "x"), coords={"band": ["red", "green", "blue"], "y": y, "x": x}
                       ).rio.write_crs("EPSG:32632")
    img = facies_map(classes, background=rgb, legend=False).get_images()[0].get_array()
    assert img[5, 5, 0] == 1.0 and img[5, 5, 2] == 0.0 and img[5, 35, 2] == 1.0 and img[5, 35, 0] == 0.0
    with pytest.raises(ValueError, match="not on the class map's grid"):
        facies_map(classes, background=dem.isel(x=slice(0, 30)))
    with pytest.raises(ValueError, match="needs 'red', 'green' and 'blue' bands"):
        facies_map(classes, background=rgb.sel(band=["red", "green"]))


def test_the_regression_figure_of_many_glaciers_has_panels_for_those_with_most_years():
    from xfacies.massbalance.regression import regress

    rng = np.random.default_rng(1)
    ng, ny = 40, 12
    ids = [f"RGI60-11.{k:05d}" for k in range(ng)]
    aar = xr.DataArray(rng.uniform(0.1, 0.8, (ny, ng)), dims=("year", "glacier"),
                       coords={"year": np.arange(2000, 2000 + ny), "glacier": ids})
    aar = aar.where(rng.random((ny, ng)) < np.linspace(0.3, 0.95, ng)[None])
    result = regress(aar, 3 * aar - 1.8 + 0.1 * rng.standard_normal((ny, ng)))
    fig = result.plot(max_panels=10)  # the default is 30 (118 glaciers: benchmarks/suite.py)
    years = result.data.groupby("glacier").size()
    panels = [a.get_title() for a in fig.axes[1:]]
    assert len(panels) == 10
    cut = sorted(years.to_numpy())[::-1][9]
    assert all(years[g] >= cut for g in panels) and all(years[g] <= cut for g in set(years.index) - set(panels))
    assert "the 10 of 40 glaciers with the most years" in fig.axes[0].get_title(loc="left").replace("\n", " ")
    assert len(result.plot(max_panels=None).axes) == 1 + len(years)
