"""``xfacies demo``: a synthetic melt season, end to end, through the real load path.

synthetic season (several dates, several glaciers) written as Sentinel-2-like COGs
with a STAC catalog -> served by ``rustac serve`` on loopback -> searched and loaded
lazily with :func:`xfacies.open_stac` (radiometry, SCL cloud mask) -> blockwise
features (:func:`xfacies.features.features`) -> classify (chunk by chunk) ->
per-glacier facies fractions -> a Zarr store and PNG quicklooks, with a progress
bar and a printed summary.  The server is started and stopped by the demo.

Examples
--------
>>> from xfacies.demo import run_demo
>>> summary = run_demo("xfacies-demo", size=256, dates=4)   # doctest: +SKIP
>>> summary["store"]                                        # doctest: +SKIP
'xfacies-demo/demo.zarr'
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["run_demo"]


def run_demo(
    outdir: str | Path = "xfacies-demo",
    *,
    size: int = 512,
    dates: int = 6,
    year: int = 2021,
    seed: int = 7,
    model: Any = "demo",
    method: str = "dense",
    chunks: int = 256,
    progress: bool = True,
    verbose: bool = True,
) -> dict[str, Any]:
    """Run the demo pipeline and return a summary dict (paths, timings, scores).

    Parameters
    ----------
    outdir
        Folder for the Zarr store and the PNG quicklooks (created).
    size, dates, year, seed
        The synthetic season: ``size`` x ``size`` pixels of 10 m, ``dates``
        acquisitions from June to September of ``year``.
    model, method
        Passed to :func:`xfacies.classify`.
    chunks
        Spatial chunk size: the demo runs chunk by chunk exactly as a large job would.
    """
    import dask
    import xarray as xr

    from xfacies import io, plot, stac_testing, synthetic
    from xfacies.features import features
    from xfacies.inference import classify
    from xfacies.stac import open_stac
    from xfacies.model.bundle import load_model
    from xfacies.model.train import macro_f1
    from xfacies.products import fractions

    t0 = time.perf_counter()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    season = synthetic.season(dates, year=year, size=size, seed=seed)
    outlines = synthetic.outlines(size, seed=seed)
    m = load_model(model)
    # 1. the season as a STAC catalog of COGs, served on loopback, searched and loaded lazily
    coll, items = stac_testing.synthetic_catalog(season, outdir / "stac")
    with stac_testing.serve(coll, items) as url:
        cube = open_stac(season, time=f"{year}-01-01/{year}-12-31", sensors=("sentinel-2",),
                         catalog=url, provider="earth-search", chunks={"x": chunks, "y": chunks})
    # 2. blockwise features from the cube, the DEM and the outlines (sun angles per acquisition)
    dem = season["dem"].chunk({"x": chunks, "y": chunks})
    feats = features(cube, dem=dem, outlines=outlines, feature_set=m.features)
    # 3. classify, chunk by chunk
    result = classify(feats, m, outlines, method=method, confidence=True)
    truth = season["truth"]
    store = outdir / "demo.zarr"
    if progress:
        from tqdm.dask import TqdmCallback

        cb: Any = TqdmCallback(desc=f"classify {dates} dates, {size}x{size} px")
    else:
        import contextlib

        cb = contextlib.nullcontext()
    with cb, dask.config.set(scheduler="threads"):
        classes, confidence, truth_v = dask.compute(result["classes"], result["confidence"], truth)
    t_classify = time.perf_counter() - t0
    frac = fractions(classes, outlines)
    maps = xr.Dataset({"classes": classes, "confidence": confidence})
    io.to_zarr(maps, store)
    io.to_zarr(frac, outdir / "fractions.zarr")
    pngs = plot.save_quicklooks(classes, frac, outdir)

    # score where the demo could see the surface (clouds are masked by SCL, hence nodata)
    f1, per_class = macro_f1(truth_v.values, classes.values)
    observed = float((classes.values >= 0).sum() / max((truth_v.values >= 0).sum(), 1))
    summary = {
        "outdir": str(outdir),
        "store": str(store),
        "fractions_store": str(outdir / "fractions.zarr"),
        "quicklooks": [str(p) for p in pngs],
        "n_dates": int(classes.sizes["time"]),
        "n_glaciers": int(frac.sizes["glacier"]),
        "pixels": int(np.prod([classes.sizes[d] for d in classes.dims])),
        "seconds_classify": round(t_classify, 1),
        "seconds_total": round(time.perf_counter() - t0, 1),
        "macro_f1_vs_truth": round(f1, 3),
        "observed_share": round(observed, 3),
        "stac_catalog": str(outdir / "stac"),
        "model": repr(m),
        "fractions": frac,
    }
    if verbose:
        _print_summary(summary, frac)
    return summary


def _print_summary(s: dict[str, Any], frac) -> None:
    from xfacies.products import aar_proxy

    aar = aar_proxy(frac)
    print()
    print(f"xfacies demo: {s['n_dates']} dates x {s['n_glaciers']} glaciers, "
          f"{s['pixels'] / 1e6:.2f} M pixels classified in {s['seconds_classify']} s "
          f"(total {s['seconds_total']} s)")
    print(f"  model:       {s['model']}")
    print(f"  loaded through STAC: {s['stac_catalog']} (COGs + items, served by rustac on loopback)")
    print(f"  macro F1 against the synthetic truth: {s['macro_f1_vs_truth']:.3f} "
          f"(on the {100 * s['observed_share']:.0f} % of glacier pixels not masked as cloud)")
    print(f"  class maps:  {s['store']}   (xr.open_zarr(..., mask_and_scale=False) or xfacies.io.open_zarr)")
    print(f"  fractions:   {s['fractions_store']}")
    for p in s["quicklooks"]:
        print(f"  quicklook:   {p}")
    print("  AAR proxy (snow + firn share of the observed glacier area):")
    table = aar.to_pandas()
    if hasattr(table, "round"):
        table = table.round(2)
    print("    " + table.to_string().replace("\n", "\n    "))
