"""Write notebooks/*.ipynb (no outputs) with nbformat: python notebooks/make_notebooks.py notebooks"""
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

OUT = Path(sys.argv[1])


def nb(cells, name):
    book = new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    book.metadata["language_info"] = {"name": "python"}
    book.cells = [new_markdown_cell(c[3:]) if c.startswith("md:") else new_code_cell(c.strip("\n")) for c in cells]
    for i, cell in enumerate(book.cells):  # stable ids: regenerating changes only what changed
        cell.id = f"{name}-{i:02d}"
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
inside = xfacies.outlines.rasterize(outlines, grid).compute() > 0
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

caffe = [
"""md:# Calving fronts: the CaFFe benchmark with xarray

The CaFFe benchmark (*Calving Fronts and where to Find thEm*, Gourmelon et al. 2022, Earth Syst. Sci. Data 14,
4287–4313, doi:10.5194/essd-14-4287-2022; data doi:10.1594/PANGAEA.940950, CC BY 4.0) pairs SAR images of
marine-terminating glaciers with zone masks (NA, rock, glacier, ocean) and calving-front lines. `xfacies.caffe`
opens it as a lazy `xarray.DataTree`, segments zones with a model through the same inference engine as the facies
models, turns zones into fronts with the benchmark's post-processing, and scores them with its metrics.

This notebook uses the 438 real images resized to 256 px in `../shared/data/caffe-256` when they are there, and
otherwise a small synthetic benchmark in the same layout (`caffe.make_synthetic`).""",
"""import os
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import xfacies
import xfacies.caffe as caffe


def find_caffe():
    \"\"\"../shared/data/caffe-256 next to the repository, or None.\"\"\"
    starts = [Path(os.environ["XFACIES_REPO"])] if os.environ.get("XFACIES_REPO") else []
    starts += [Path.cwd(), *Path.cwd().parents, Path(xfacies.__file__).resolve().parents[1]]
    for s in starts:
        cand = s.parent / "shared" / "data" / "caffe-256"
        if cand.exists():
            return cand
    return None


root = find_caffe() or caffe.make_synthetic("caffe-synthetic", layout="resized", n=24, size=256, overwrite=True)
ds = caffe.open_dataset(root)
print(root, "-", len(ds.children), "images")""",
"""md:## 1. Metadata without reading pixels

Every node carries the fields of its file name (glacier, date, satellite, resolution, quality factor, orbit) plus
the benchmark's hemisphere and season. `caffe.index` gathers them in a DataFrame to filter on; nothing is decoded
until computed.""",
"""idx = caffe.index(ds)
print(idx.groupby(["glacier", "satellite"]).size().unstack(fill_value=0))
winter = idx[(idx.season == "winter")]
sub = caffe.select(ds, winter.groupby("glacier").head(4))
print(len(sub.children), "winter images, 4 per glacier")""",
"""md:## 2. Segment zones

`caffe.segment` runs the shipped zone model (`xfacies.load_model("caffe-zones")`, a U-Net trained on the 438 real
images) lazily: whole images up to 512 px, overlapping tiles beyond; `tta="flips"` averages flipped views.""",
"""model = xfacies.load_model("caffe-zones")
print(model)
pred = caffe.segment(sub, model)
first = next(iter(sub.children))
pred[first]["zones"]""",
"""md:## 3. Score with the benchmark's metrics

Fronts come from the predicted zones by the benchmark's five post-processing steps (`caffe.zones_to_front`). Each
benchmark glacier's images cover one fixed area, so a resized image's pixel size is known per axis (Crane: 19 × 25
km over 256 px) and distances are in metres; `pixel_size=1.0` gives pixels. The `units` column says which.""",
"""table = caffe.evaluate(pred, sub)
px = caffe.evaluate(pred, sub, pixel_size=1.0)
table["mde_px"] = px["mde"]
table[table.breakdown.isin(["all", "glacier", "season"])][
    ["breakdown", "group", "n_images", "n_no_front", "mde", "units", "mde_px", "hd95", "iou", "f1"]].round(2)""",
"""md:## 4. Look at it

An overlay shows the zones and the front on the SAR image, truth | prediction; the gallery is a static HTML page
of thumbnails that filters by any metadata field in the browser.""",
"""img = caffe.overlay(sub[first], pred[first], height=256)
img.save("caffe_overlay.png")
page = caffe.gallery(sub, "caffe-gallery", predictions=pred)
print("open", page)""",
]

training = [
"""md:# Train a facies model: points → patches → cross-validation → confident learning → calibration

The reference study's recipe with `xfacies.train`, on synthetic glaciers so that it runs in a minute. Labelled
points (here from synthetic truth, with 10 % of the facies labels deliberately flipped) become 33 × 33 patches
from a lazy feature cube; k-fold cross-validation gives every label an out-of-fold prediction; cleanlab's
confident learning flags the suspicious labels; "after" models train on the rest; each is calibrated on its
validation fold and scored on its test fold. `xfacies train config.toml` runs the same chain from a file.
The budget here is tiny (a few epochs): the recipe's own is 1000 epochs of batch 512.""",
"""import os
import matplotlib
matplotlib.use("Agg")
import numpy as np
import xarray as xr
import xfacies
from xfacies import synthetic, train

# XFACIES_QUICK=1 (the test suite sets it) runs the same chain on a smaller budget
QUICK = os.environ.get("XFACIES_QUICK") == "1"
size, n_per_class, epochs = (96, 20, 1) if QUICK else (128, 40, 4)
parts = []
for fold, seed in enumerate([100, 101, 102]):
    season = synthetic.season(3, size=size, seed=seed, chunks=64)          # lazy (dask) feature cube
    points = synthetic.labelled_points(season, n_per_class=n_per_class, flip=0.1, seed=seed, crs="EPSG:4326")
    points["fold"] = fold
    ds = train.patches_from_points(season["features"], points, glacier_column="glacier", fold_column="fold")
    parts.append(ds.assign_coords(flipped=("sample", points["flipped"].to_numpy()[ds["point"].values])))
patches = xr.concat(parts, dim="sample", combine_attrs="drop_conflicts")
patches = patches.assign_coords(sample=np.arange(patches.sizes["sample"]))
patches""",
"""md:## Cross-validation ("before" models)

For test fold *t* the validation fold is (*t* − 1) mod *k*; the others train. The architecture is the
translation-exact member of the reference family, so its dense inference equals the patch-exact one.""",
"""fit_kw = dict(architecture="translation-exact", config={"filters": 8, "dropout": 0.2}, epochs=epochs,
              batch_size=128, learning_rate=3e-3, verbose=0)
before = train.cross_validate(patches, **fit_kw)
labels = patches["class"].values
print("out-of-fold accuracy:", float((before.predictions() == labels).mean()).__round__(3))""",
"""md:## Confident learning

`label_issues` is cleanlab's `find_label_issues(..., filter_by="confident_learning",
return_indices_ranked_by="self_confidence")`, keeping only facies labels (shadow, water and cloud are trusted).""",
"""issues = train.label_issues(labels, before.probabilities.values)
flipped = patches["flipped"].values
flagged = np.zeros(labels.size, bool); flagged[issues] = True
print(f"flagged {flagged.sum()} of {labels.size}; of the {flipped.sum()} flipped labels "
      f"{(flagged & flipped).sum()} were found (precision {(flagged & flipped).sum() / max(flagged.sum(), 1):.2f})")
train.pruning_report(labels, issues, folds=patches["fold"].values).query("fold == 'all'")""",
"""md:## "After" models, calibration and scores""",
"""kept = patches.isel(sample=np.flatnonzero(~flagged))
after = train.cross_validate(kept, **fit_kw)
model = after.models[0]
val = patches.isel(sample=np.flatnonzero(patches["fold"].values == model.metadata["fold"]["validation"]))
probs = model.predict_patches(val["patches"].values)
model, report = train.calibrate(model, probs, val["class"].values, method="isotonic",
                                plot="training_reliability.png")
test = kept.isel(sample=np.flatnonzero(kept["fold"].values == 0))
scores = train.evaluate(model, test, confusion_png="training_confusion.png")
report.round(3)""",
"""scores[scores.metric.isin(["macro_f1", "accuracy", "miou"])].round(3)""",
]

own_labels = [
"""md:# Your own files, classes and labels: GeoTIFFs and polygons to a checked model and its maps

Copy this notebook and point it at your files. Here it writes its own: two synthetic glaciers as 6-band GeoTIFFs
(reflectance × 10,000, 0 outside the glacier), one per date, and a hand-drawn-like snow polygon per date. The chain:
files → cube → outlines from the mask → labels from polygons → points → patches → cross-validation by scene →
label issues → `fit(classes=[...])` → calibration → classify → fractions → end of season → AAR against WGMS.""",
"""import os
import matplotlib
matplotlib.use("Agg")
import numpy as np, pandas as pd, geopandas as gpd, rasterio
import xfacies
from xfacies import synthetic, train

QUICK = os.environ.get("XFACIES_QUICK") == "1"        # the test suite's small budget
BANDS = list(xfacies.catalog.OPTICAL_FEATURES)  # blue, green, red, nir, swir1, swir2
polygons = []
for g, seed in (("east", 11), ("west", 12)):           # write the "user's" files
    ds = synthetic.season(["2021-07-22", "2021-07-29", "2021-08-05"], size=96, seed=seed)
    os.makedirs(f"crops/{g}", exist_ok=True)
    for k, t in enumerate(ds.time.values):
        v = ds["features"].isel(time=k).sel(band=BANDS).values
        dn = np.where(np.isfinite(v), np.clip(v * 1e4, 1, 65000), 0).astype("uint16")
        with rasterio.open(f"crops/{g}/{g}_{str(t)[:10]}.tif", "w", driver="GTiff", width=96, height=96, count=6,
                           dtype="uint16", crs=ds.rio.crs, transform=ds["features"].rio.transform(), nodata=0) as f:
            f.write(dn)
        snow = (ds["truth"].isel(time=k) == 1).astype("int32").rio.write_crs(ds.rio.crs)
        if snow.any():                                  # a date without snow has no polygon
            polygons.append(xfacies.outlines_from_mask(snow).assign(date=pd.Timestamp(str(t)[:10]), glacier=g))
polygons = gpd.GeoDataFrame(pd.concat(polygons, ignore_index=True), crs=ds.rio.crs)
polygons.head()""",
"""md:## Files → cube → outlines → labels → points → patches

Dates come from the file names; 0 is no data. One glacier per folder here (each on its own grid);
`concat_patches` joins the patch sets.""",
"""classes = ["snow", "ice"]
cubes, outlines, sets = {}, {}, []
for g in ("east", "west"):
    cube = xfacies.open_rasters(f"crops/{g}", BANDS, scale=1e-4, nodata=0)
    outl = xfacies.outlines_from_mask(cube.isel(time=0, band=0).notnull(), id=g)
    labels = train.rasterize_labels(polygons[polygons.glacier == g], cube, value="snow", background="ice",
                                    within=outl, classes=classes)
    points = train.sample_points(labels, n_per_class=60 if QUICK else 200, seed=0, outlines=outl)
    sets.append(train.patches_from_points(cube, points, patch_size=9, glacier_column="glacier", classes=classes))
    cubes[g], outlines[g] = cube, outl
patches = train.concat_patches(*sets)
print(patches.sizes["sample"], "patches of", patches.attrs["features"])""",
"""md:## Cross-validation by scene, then label issues

`fold_by="scene"`: all points of one image are in one fold, so neighbouring pixels never sit in training and test.""",
"""fit_kw = dict(architecture="reference-cnn", classes=classes, epochs=3 if QUICK else 20, batch_size=64,
              config={"filters": 8, "patch_size": 9, "dense_units": 16}, verbose=0)
cv = train.cross_validate(patches, fold_by="scene", progress=False, **fit_kw)
labels = patches["class"].values
issues = train.label_issues(labels, cv.probabilities.values)     # every own class may be flagged
print(f"out-of-fold accuracy {np.mean(cv.predictions() == labels):.3f}; {len(issues)} labels flagged")""",
"""md:## The model, calibrated, and its scores on the held-out folds""",
"""keep = np.setdiff1d(np.arange(labels.size), issues)
model = train.fit(patches.isel(sample=keep), **fit_kw)
probs = cv.probabilities.values                                   # out-of-fold: not seen by the models
half = np.arange(labels.size) % 2 == 0
model, report = train.calibrate(model, probs[half], labels[half], method="isotonic",
                                held_out=(probs[~half], labels[~half]))  # ECE on data the calibrator never saw
print(model.classes)
report.round(3)""",
"""scores = train.evaluate(model, patches, confusion_png="own_confusion.png")   # here on all patches
scores[scores.metric.isin(["f1", "macro_f1"]) & (scores.glacier == "all")].round(3)""",
"""md:## Maps, fractions, end of season, AAR

The class map names your classes (CF flags); fractions and the end-of-season value use them.""",
"""facies = xfacies.classify(cubes["west"], model, outlines["west"]).compute()
frac = xfacies.fractions(facies, outlines["west"])
snow = frac["fraction"].sel(**{"class": "snow"})
eos = xfacies.end_of_season(snow, frac["coverage"], window=("07-15", "10-15"))
print(snow.to_series().round(3))
xfacies.plot.facies_map(facies.isel(time=-1), outlines=outlines["west"]).figure.savefig("own_facies.png")
eos.to_series()""",
"""# compare with the AAR a WGMS overview gives (a made-up record, in the WGMS file format)
with open("E-MASS-BALANCE-OVERVIEW.csv", "w") as f:
    f.write("POLITICAL_UNIT,NAME,WGMS_ID,Year,TIME_SYSTEM,BEGIN_PERIOD,END_WINTER,END_PERIOD,ELA,AAR\\n"
            "CH,WEST,1,2021,FXD,20201001,20210430,20210930,2900,45\\n")
aar = xfacies.massbalance.wgms.read_overview("E-MASS-BALANCE-OVERVIEW.csv")
print("AAR (WGMS):", aar.aar.item(), " snow fraction at the end of season:", float(eos.values.ravel()[0]).__round__(3))""",
]

for name, cells in (("quickstart", quickstart), ("massbalance", massbalance), ("scaling", scaling),
                    ("oetztal", oetztal), ("caffe", caffe), ("training", training), ("own_labels", own_labels)):
    nbformat.write(nb(cells, name), OUT / f"{name}.ipynb")
    print("wrote", OUT / f"{name}.ipynb")
