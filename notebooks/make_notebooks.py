"""Write notebooks/*.ipynb (no outputs) with nbformat: python notebooks/make_notebooks.py notebooks"""
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

OUT = Path(sys.argv[1])


def nb(cells):
    book = new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    book.metadata["language_info"] = {"name": "python"}
    book.cells = [new_markdown_cell(c[3:]) if c.startswith("md:") else new_code_cell(c.strip("\n")) for c in cells]
    return book


quickstart = [
"""md:# xfacies quickstart: a synthetic melt season through STAC

Everything here runs offline. A synthetic season of Sentinel-2-like scenes over valley glaciers is written as
Cloud-Optimised GeoTIFFs with a STAC catalog, served by `rustac` on loopback, and read back exactly as a real
search of Earth Search or Planetary Computer would be: `xfacies.open_stac` → `.facies.features` →
`.facies.classify` → fractions → plots → Zarr.

For real imagery, replace the served catalog with `catalog="earth-search"` (or `"planetary-computer"`) and the
synthetic outlines with RGI outlines (`xfacies.read_outlines`); the rest of the code stays the same.""",
"""import matplotlib
matplotlib.use("Agg")
import xarray as xr
import xfacies
from xfacies.sources import stac_server
from xfacies import synthetic

season = synthetic.season(4, size=192, seed=3)      # 4 acquisitions, June to September 2021
outlines = synthetic.outlines(192, seed=3)          # glacier polygons (a GeoDataFrame)
outlines[["rgi_id", "geometry"]]""",
"""md:Write the season as COGs + STAC items (Earth Search conventions) and search it through a real STAC API
server on loopback. The cube is lazy: nothing is read until it is computed.""",
"""collection, items = stac_server.synthetic_catalog(season, "stac")
with stac_server.serve(collection, items) as url:
    cube = xfacies.open_stac(season, time="2021-06-01/2021-09-30", sensors=("sentinel-2",),
                             catalog=url, provider="earth-search", chunks={"x": 96, "y": 96})
cube""",
"""md:Glacier context features (elevation, slope, cast shadow, hillshade, proximity) from the DEM and the outlines,
blockwise on the cube's chunks, then the chunked classification with the demo model shipped in the package
(it knows synthetic glaciers only).""",
"""dem = season["dem"].chunk({"x": 96, "y": 96})
model = xfacies.load_model("demo")
feats = cube.facies.features(dem=dem, outlines=outlines, feature_set=model.features)
result = feats.facies.classify(model, outlines=outlines, method="dense", confidence=True)
result = result.compute()
result.classes""",
"""ax = xfacies.plot.facies_map(result.classes.isel(time=-1), title="last date")
ax.figure.savefig("facies_map.png", dpi=80)""",
"""md:Per-glacier facies fractions (share of the observed glacier area; clouds masked by the SCL band are not
observed) and the AAR proxy (snow + firn share):""",
"""frac = result.facies.fractions(outlines)
fig = xfacies.plot.fraction_timeseries(frac)
fig = fig if hasattr(fig, "savefig") else fig.figure
fig.savefig("fractions.png", dpi=80)
xfacies.aar_proxy(frac).to_pandas().round(2)""",
"""md:Store maps and fractions in Zarr and read them back (identical):""",
"""xfacies.to_zarr(result, "quickstart.zarr")
xfacies.to_zarr(frac, "fractions.zarr")
back = xfacies.io.open_zarr("quickstart.zarr").compute()
xr.testing.assert_identical(back.classes, result.classes)
back""",
]

massbalance = [
"""md:# Facies and glacier mass balance: WGMS records of the Ötztal and Silvretta

The World Glacier Monitoring Service (WGMS) publishes measured (glaciological) mass balances and, per
glacier-year, the accumulation-area ratio (AAR). The AAR at the end of the ablation season tracks the annual
balance closely, which is why an **AAR proxy from facies maps** (snow + firn share of the glacier at the end of
summer) can estimate mass balance where nothing is measured.

Data: WGMS (2021) Fluctuations of Glaciers Database, doi:10.5904/wgms-fog-2021-05 (a subset for Hintereis-,
Kesselwand-, Vernagtferner and Silvretta is kept in `../shared/data/wgms` on the project's machines; it is not
part of the repository). Without it, this notebook uses a tiny synthetic table and says so.""",
"""import os
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import numpy as np
import xarray as xr
import xfacies
from xfacies.massbalance import wgms
from xfacies.massbalance import regress


def find_wgms():
    \"\"\"../shared/data/wgms next to the repository (XFACIES_REPO, the working folder or the package).\"\"\"
    starts = [Path(os.environ["XFACIES_REPO"])] if os.environ.get("XFACIES_REPO") else []
    starts += [Path.cwd(), *Path.cwd().parents, Path(xfacies.__file__).resolve().parents[1]]
    for s in starts:
        for cand in (s / "shared" / "data" / "wgms", s.parent / "shared" / "data" / "wgms"):
            if (cand / "rgi_wgms_links.csv").exists():
                return cand
    return None


WGMS = find_wgms()
print("WGMS data:", WGMS or "not found: ../shared is absent, using a tiny synthetic table instead")""",
"""md:## Measured AAR vs annual balance

`balance_for` and `overview_for` join the WGMS tables to RGI ids through the RGI–WGMS link table and return
`(year, glacier)` arrays in m w.e. and as a fraction.""",
"""if WGMS is not None:
    links = wgms.read_links(WGMS)
    ids = list(links["rgi60_id"])
    balance = wgms.balance_for(ids, WGMS)                  # annual balance, m w.e.
    aar = wgms.overview_for(ids, WGMS, "aar").rename("wgms_aar")
    print(wgms.CITATION)
else:  # a tiny built-in stand-in with the same shape of relation (not real data)
    rng = np.random.default_rng(0)
    years, ids = np.arange(2000, 2020), ["GLACIER-A", "GLACIER-B", "GLACIER-C"]
    aar = xr.DataArray(rng.uniform(0.1, 0.8, (len(years), len(ids))), dims=("year", "glacier"),
                       coords={"year": years, "glacier": ids}, name="wgms_aar")
    balance = (2.3 * aar - 1.5 + 0.25 * rng.standard_normal(aar.shape)).rename("annual_balance")
fit = regress(aar, balance)
print(fit.summary())""",
"""md:Globally r ≈ 0.93 (RMSE ≈ 0.25 m w.e.) over ~290 glacier-years of the four glaciers; glacier-specific lines
fit better still. This is the ceiling for a facies-based AAR proxy: the proxy adds classification errors,
clouds and the timing of the last clear scene.""",
"""fig = fit.plot("wgms_aar_vs_balance.png", dpi=80)
fit.to_dataframe().round(3)""",
"""md:## A facies AAR proxy at the end of the season

Facies maps of synthetic acquisitions (two in each of three summers), their fractions, the AAR
proxy per date, and `end_of_season`: per glacier and hydrological year, the lowest AAR proxy among the dates in
the window that saw at least `min_coverage` of the glacier.""",
"""from xfacies import synthetic
from xfacies.products import end_of_season

dates = ["2019-06-20", "2019-07-05", "2020-07-10", "2020-07-25", "2021-08-05", "2021-08-20"]
season = synthetic.season(dates, size=128, seed=7, n_glaciers=1, chunks=128)
outlines = synthetic.outlines(128, seed=7, n_glaciers=1)
facies = season.features.facies.classify("demo", outlines=outlines).compute()
frac = facies.facies.fractions(outlines)
aar_proxy = xfacies.aar_proxy(frac)
eos = end_of_season(aar_proxy, frac["coverage"], min_coverage=0.7, window=("06-01", "10-15"))
eos.to_pandas().round(3)""",
"""md:## Regressing facies products on WGMS balances

With real outlines of WGMS glaciers the two arrays share `(year, glacier)` labels and one call fits the line:

```python
balance = wgms.balance_for(outlines, WGMS)        # outlines with RGI60 ids
fit = regress(eos.rename("aar_proxy"), balance)   # or by="glacier"
```

`xfacies run config.toml` does all of it (STAC search → facies → Zarr → end of season → this regression →
report). Here the synthetic glacier has no WGMS record, so we pair its end-of-season proxy with
illustrative balances (made up for the mechanics, **not** a result):""",
"""made_up = xr.DataArray(np.array([[0.35], [-0.4], [-1.3]]), dims=("year", "glacier"),
                       coords={"year": [2019, 2020, 2021], "glacier": eos.glacier.values},
                       name="balance", attrs={"units": "m w.e."})
demo_fit = regress(eos.rename("aar_proxy"), made_up, cv=False)
print(demo_fit.summary())
demo_fit.plot("facies_aar_vs_balance.png", dpi=80);""",
]

scaling = [
"""md:# Scaling out: a Dask cluster, the dashboard, and Zarr

The same code that classifies one scene runs chunk by chunk on a cluster. Here a `LocalCluster` with two
single-threaded worker processes classifies a lazily generated synthetic scene larger than one chunk; the
model is never put into the task graph (tasks carry its path and each worker loads it once). The results go to
Zarr date by date, and the store is written by the workers, region by region.

On a real cluster, connect with `Client("tcp://scheduler:8786")` instead (or `xfacies run config.toml
--scheduler tcp://...`).""",
"""import matplotlib
matplotlib.use("Agg")
import time

import numpy as np
import pandas as pd
import xarray as xr
from distributed import Client, LocalCluster

import xfacies
from xfacies import synthetic

cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
client = Client(cluster)
print("dashboard:", client.dashboard_link)
client""",
"""md:Open the dashboard link while the next cells run: the task stream shows the feature, inference and store
tasks of each chunk on the two workers.

A lazily generated season (nothing is computed yet): 3 dates of 256 × 256 px, in 128 × 128 px chunks.""",
"""size, chunk = 256, 128
season = synthetic.season(3, size=size, seed=11, chunks=chunk)
outlines = synthetic.outlines(size, seed=11)
model = xfacies.load_model("demo")
result = season.features.facies.classify(model, outlines=outlines, method="dense", confidence=True)
print(result.classes.data)""",
"""md:Append to a Zarr store one date at a time (`to_zarr` appends new dates, replaces dates already there): the
workers compute each date's chunks and write them.""",
"""t0 = time.perf_counter()
for k in range(result.sizes["time"]):
    xfacies.to_zarr(result.isel(time=[k]), "scaling.zarr")
    print(f"{pd.Timestamp(result.time.values[k]):%Y-%m-%d} written after {time.perf_counter() - t0:.1f} s")
maps = xfacies.io.open_zarr("scaling.zarr")
maps""",
"""md:For many dates, let every date be written at once: `layout_regions` writes the metadata, then
`region_writes` gives one independent write per date into its own region of the store. The workers run them in
parallel; only `None` comes back to this notebook. This is what `xfacies run` does (and it records each finished
date, so an interrupted run resumes where it stopped).""",
"""from distributed import as_completed

late = synthetic.season(["2021-09-10", "2021-09-20"], size=size, seed=11, chunks=chunk)
more = late.features.facies.classify(model, outlines=outlines, method="dense", confidence=True)
xfacies.io.layout_regions(more, "scaling.zarr")
futures = client.compute(list(xfacies.io.region_writes(more, "scaling.zarr").values()))
for f in as_completed(futures):
    f.result()
xfacies.io.mark_complete("scaling.zarr", more.time.values)
maps = xfacies.io.open_zarr("scaling.zarr")
list(maps.time.dt.strftime("%Y-%m-%d").values)""",
"""md:Fractions straight from the store, computed on the cluster:""",
"""frac = maps.classes.facies.fractions(outlines).compute()
xfacies.aar_proxy(frac).to_pandas().round(2)""",
"""ax = xfacies.plot.facies_map(maps.classes.isel(time=-1).compute(), title="from the Zarr store")
ax.figure.savefig("scaling_facies.png", dpi=80)""",
"""client.close()
cluster.close()""",
]

oetztal = [
"""md:# Your own glaciers: the Ötztal, from outlines to a mass-balance regression

The first hour with real data: glacier outlines (RGI 7) → a working grid → a DEM on it → terrain features
(no imagery needed) → WGMS glaciers matched to the outlines → the AAR–balance regression.

Data (kept in `../shared/data` on the project's machines, not in the repository; this notebook needs it):
RGI Consortium, Randolph Glacier Inventory 7.0 (CC-BY 4.0); NASA SRTM v4 (public domain); WGMS (2021)
Fluctuations of Glaciers Database, doi:10.5904/wgms-fog-2021-05.""",
"""import os
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import xfacies
from xfacies.massbalance import wgms


def find_shared_data():
    \"\"\"../shared/data next to the repository (XFACIES_REPO, the working folder or the package).\"\"\"
    starts = [Path(os.environ["XFACIES_REPO"])] if os.environ.get("XFACIES_REPO") else []
    starts += [Path.cwd(), *Path.cwd().parents, Path(xfacies.__file__).resolve().parents[1]]
    for s in starts:
        for cand in (s / "shared" / "data", s.parent / "shared" / "data"):
            if (cand / "oetztal").exists():
                return cand
    raise FileNotFoundError("this notebook needs ../shared/data (Ötztal outlines, SRTM, WGMS)")


DATA = find_shared_data()""",
"""md:## 1. Outlines and the working grid

`xfacies.read_outlines` reads RGI 6/7 or GLIMS outlines in any CRS. `xfacies.grid` builds the working grid
around them: square pixels in the UTM zone of the outlines, with a margin for the terrain that shades them.
Sentinel-2 work uses 10 m; this notebook uses 20 m to stay quick.""",
"""outlines = xfacies.read_outlines(DATA / "oetztal" / "outlines" / "rgi7g_hef_complex.shp")
grid = xfacies.grid(outlines, resolution=20)
print(len(outlines), "glaciers;", dict(grid.sizes), grid.rio.crs)
outlines[["glacier_id", "glac_name", "area_km2"]].dropna().head()""",
"""md:## 2. A DEM on the grid

`open_dem` takes the grid (or the outlines themselves) and reprojects a DEM file onto it lazily, in the grid's
chunks. The SRTM here has ~90 m pixels: xfacies warns that slope and shadows will show them; Copernicus
GLO-30 (`source="cop-dem-glo-30"`, from STAC) or a national lidar DEM is better where you can reach one.""",
"""dem = xfacies.open_dem(grid, DATA / "oetztal" / "dem" / "srtm_oetztal.tif")
ax = xfacies.plot.dem_map(dem, outlines=outlines, title="SRTM on the 20 m grid")
ax.figure.savefig("oetztal_dem.png", dpi=80)""",
"""md:## 3. Terrain features without imagery

`terrain_features` computes elevation (normalised inside the outlines), slope, hillshade and cast shadow for a
sun position, and the distance to the outline edges, exactly as `features` does for an image cube.""",
"""terrain = xfacies.terrain_features(dem, outlines, grid, sun_azimuth=150.0, sun_elevation=25.0).compute()
fig = xfacies.plot.features_map(terrain, outlines=outlines, ncols=3)
fig.savefig("oetztal_terrain.png", dpi=70)
inside = xfacies.sources.outlines.rasterize(outlines, grid).compute() > 0
print(f\"mean slope on the glaciers: {float(terrain.sel(band='slope').where(inside).mean()):.1f} degrees\")""",
"""md:## 4. WGMS glaciers on RGI 7 outlines

The WGMS records link to RGI 5/6 ids. RGI 7 ids are new, so `match_outlines` also matches by location: a WGMS
glacier whose coordinates lie inside an outline. The table says how each glacier was matched.""",
"""links = wgms.read_links(DATA / "wgms")
match = wgms.match_outlines(outlines, links)
match.dropna(subset=["wgms_id"])[["glacier_id", "wgms_id", "wgms_name", "method"]]""",
"""md:## 5. AAR and annual balance

The measured accumulation-area ratio (WGMS) against the annual balance of the matched glaciers, keyed by the RGI 7
ids. This is the ceiling for a facies AAR proxy from imagery.""",
"""balance = wgms.balances_for_outlines(outlines, DATA / "wgms", match=match)
by_wgms = dict(zip(balance.wgms_id.values, balance.glacier.values))
rgi6 = list(links.set_index("wgms_id").loc[list(balance.wgms_id.values), "rgi60_id"])
aar = wgms.overview_for(rgi6, DATA / "wgms", "aar").rename("aar")
aar = aar.assign_coords(glacier=[by_wgms[w] for w in aar.wgms_id.values])
fit = xfacies.regress(aar, balance)
print(fit.summary())""",
"""fig = fit.plot("oetztal_aar_vs_balance.png", dpi=80)""",
]

for name, cells in (("quickstart", quickstart), ("massbalance", massbalance), ("scaling", scaling),
                    ("oetztal", oetztal)):
    nbformat.write(nb(cells), OUT / f"{name}.ipynb")
    print("wrote", OUT / f"{name}.ipynb")
