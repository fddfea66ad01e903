"""features() on real data: the Ötztal Alps (skipped without ../shared).

Data (in ../shared/data/oetztal, not part of the repository):

* glacier outlines: Randolph Glacier Inventory 6.0 (RGI Consortium, 2017), CC-BY 4.0,
  ``outlines/rgi_oetztal.shp`` (20 glaciers around Hintereisferner);
* DEM: NASA Shuttle Radar Topography Mission (SRTM) 3 arc-second (~90 m), public domain,
  ``dem/srtm_oetztal.tif`` (EPSG:4326).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from conftest import SHARED, needs_shared
from xfacies.catalog import OPTICAL_FEATURES
from xfacies.features import features
from xfacies.outlines import rasterize, read_outlines

pytestmark = needs_shared("data", "oetztal")
DATA = SHARED / "data" / "oetztal"
UTM = "EPSG:32632"


def utm_cube(outl, res: float, buffer: float = 1500.0) -> xr.DataArray:
    minx, miny, maxx, maxy = outl.total_bounds
    x = np.arange(np.floor((minx - buffer) / res) * res, maxx + buffer, res) + res / 2
    y = np.arange(np.ceil((maxy + buffer) / res) * res, miny - buffer, -res) - res / 2
    data = np.full((6, y.size, x.size), 0.5, np.float32)
    return xr.DataArray(data, dims=("band", "y", "x"),
                        coords={"band": list(OPTICAL_FEATURES), "y": y, "x": x}).rio.write_crs(UTM)


@pytest.fixture(scope="module")
def outl():
    return read_outlines(DATA / "outlines" / "rgi_oetztal.shp", crs=UTM)


def test_rasterised_areas_match_the_rgi_area(outl):
    big = outl[outl["Area"] > 0.5].reset_index(drop=True)  # 10 m pixels: 0.5 km2 = 5000 pixels
    grid = utm_cube(big, 10.0, buffer=100.0).isel(band=0, drop=True).chunk({"y": 700, "x": 700})
    idx = rasterize(big, grid).values
    counts = np.bincount(idx.ravel(), minlength=len(big) + 1)[1:]
    area = counts * 100.0 / 1e6
    rel = area / big["Area"].to_numpy() - 1.0
    assert len(big) >= 5
    assert np.all(np.abs(rel) < 0.03), dict(zip(big["glacier_id"], np.round(rel, 4)))


def test_slope_and_late_summer_shadow_are_plausible(outl):
    cube = utm_cube(outl, 30.0).chunk({"y": 256, "x": 256})
    f = features(cube, dem=DATA / "dem" / "srtm_oetztal.tif", outlines=outl, feature_set=4,
                 sun_azimuth=160.0, sun_elevation=45.0)  # late August, mid-morning
    v = f.sel(band=["elevation", "slope", "shadow_mask", "hillshade", "proximity"]).values
    elev, slope, lit, hill, prox = v
    gid = rasterize(outl, cube).values > 0
    assert np.isfinite(v).all()
    assert 0.0 <= float(np.nanmin(elev[gid])) < 0.01 and 0.99 < float(np.nanmax(elev[gid])) <= 1.0
    assert float(np.median(slope[gid])) < 30.0
    assert float(np.mean(slope[gid] < 30.0)) > 0.7
    assert float(slope.max()) > 45.0  # rock walls
    shadow = lit == 0
    frac = float(shadow[gid].mean())
    assert 0.0 < frac < 0.15, frac
    # north-facing glacier slopes are shaded more often than south-facing ones
    from xfacies.features import terrain
    from xfacies.features.dem_input import dem_on_grid

    zz = dem_on_grid(DATA / "dem" / "srtm_oetztal.tif", cube, cube.rio.crs, 30.0,
                      (cube.sizes["y"],), (cube.sizes["x"],)).compute()
    asp = terrain.aspect_horn(zz, 30.0)
    north = gid & ((asp > 315) | (asp < 45)) & (slope > 10)
    south = gid & (asp > 135) & (asp < 225) & (slope > 10)
    assert north.sum() > 100 and south.sum() > 20
    assert shadow[north].mean() > shadow[south].mean()
    assert 0.0 <= float(prox.min()) and float(prox.max()) == 1.0
    assert hill[gid].mean() > 0.5
