"""``xfacies demo``: a preset of ``xfacies run`` on a synthetic melt season.

The demo is :func:`xfacies.app.pipeline.run` with a synthetic area (:func:`demo_config`),
so it goes through the one chain every run uses: the season written as
Sentinel-2-like COGs with a STAC catalog -> served by ``rustac`` on loopback ->
searched and loaded lazily with :func:`xfacies.open_stac` (radiometry, SCL cloud
mask) -> blockwise features -> classify chunk by chunk -> Zarr -> per-glacier
fractions, end-of-season products -> report and quicklooks.  On top of the run's
report it scores the class maps against the synthetic truth.

Examples
--------
>>> from xfacies.app.demo import demo_config, run_demo
>>> demo_config("xfacies-demo", size=256, dates=4)["stac"]
{'catalog': 'synthetic', 'chunks': 256}
>>> summary = run_demo("xfacies-demo", size=256, dates=4)   # doctest: +SKIP
>>> summary["store"]                                        # doctest: +SKIP
'xfacies-demo/facies.zarr'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xfacies.compat import renamed_keywords

__all__ = ["run_demo", "demo_config"]


@renamed_keywords(outdir="out")
def demo_config(
    out: str | Path = "xfacies-demo",
    *,
    size: int = 512,
    dates: int = 6,
    year: int = 2021,
    seed: int = 7,
    model: str = "demo",
    method: str = "dense",
    chunks: int = 256,
) -> dict[str, Any]:
    """The run configuration of the demo (a mapping, as a TOML file would give it).

    Parameters
    ----------
    out
        Output folder (the run's ``[output] dir``).
    size, dates, year, seed
        The synthetic season: ``size`` x ``size`` pixels of 10 m, ``dates``
        acquisitions from June to September of ``year``.
    model, method
        The bundle (``"demo"`` or a path) and the inference method.
    chunks
        Spatial chunk size: the demo runs chunk by chunk exactly as a large job would.
    """
    return {
        "area": {"synthetic": {"size": size, "seed": seed, "dates": dates}},
        "time": {"start": year, "end": year},
        "stac": {"catalog": "synthetic", "chunks": chunks},
        "dem": {"source": "synthetic"},
        "model": {"path": str(model), "method": method},
        "products": {"window": ["06-01", "10-15"]},
        "cluster": {"scheduler": "threads"},
        "output": {"dir": str(out), "quicklooks": True},
    }


@renamed_keywords(outdir="out")
def run_demo(out: str | Path = "xfacies-demo", *, progress: bool = True, verbose: bool = True,
             **preset: Any) -> dict[str, Any]:
    """Run the demo preset and return a summary dict (paths, timings, scores).

    Parameters
    ----------
    out
        Output folder.
    progress, verbose
        Show a progress bar; print the run's summary and the score against the synthetic truth.
    **preset
        ``size``, ``dates``, ``year``, ``seed``, ``model``, ``method``, ``chunks``: see
        :func:`demo_config`.
    """
    from xfacies import io, synthetic
    from xfacies.app.pipeline import run
    from xfacies.products import aar_proxy
    from xfacies.train.patches import macro_f1

    config = demo_config(out, **preset)
    res = run(config, progress=progress, verbose=verbose)
    size, seed = config["area"]["synthetic"]["size"], config["area"]["synthetic"]["seed"]
    maps = io.open_zarr(res.store)
    classes = maps["classes"].compute()
    frac = io.open_zarr(res.fractions_store).compute()
    truth = synthetic.season([np.datetime64(t, "ns") for t in classes["time"].values], size=size,
                             seed=seed)["truth"]
    truth = truth.assign_coords(time=classes["time"].values)
    f1, _ = macro_f1(truth.values, classes.values)
    # score where the demo could see the surface (clouds are masked by SCL, hence nodata)
    observed = float((classes.values >= 0).sum() / max(int((truth.values >= 0).sum()), 1))
    summary = {
        "outdir": str(res.config.output.dir),
        "store": str(res.store),
        "fractions_store": str(res.fractions_store),
        "products_store": str(res.products_store),
        "report": str(res.report_dir),
        "quicklooks": [str(p) for p in res.files if Path(p).suffix == ".png"],
        "n_dates": int(classes.sizes["time"]),
        "n_glaciers": res.n_glaciers,
        "pixels": int(np.prod([classes.sizes[d] for d in classes.dims])),
        "seconds_total": res.seconds,
        "macro_f1_vs_truth": round(f1, 3),
        "observed_share": round(observed, 3),
        "stac_catalog": str(Path(res.config.output.dir) / "stac"),
        "result": res,
        "fractions": frac,
    }
    if verbose:
        aar = aar_proxy(frac).to_pandas()
        print(f"\nxfacies demo: {summary['n_dates']} dates x {summary['n_glaciers']} glaciers, "
              f"{summary['pixels'] / 1e6:.2f} M pixels classified; total {res.seconds} s")
        print(f"  loaded through STAC: {summary['stac_catalog']} (COGs + items, served by rustac on loopback)")
        print(f"  macro F1 against the synthetic truth: {f1:.3f} "
              f"(on the {100 * observed:.0f} % of glacier pixels not masked as cloud)")
        print("  open the class maps with plain xarray: "
              f"xr.open_zarr({summary['store']!r}, mask_and_scale=False), or xfacies.io.open_zarr")
        print("  AAR proxy per date (snow + firn share of the observed glacier area):")
        print("    " + aar.round(2).to_string().replace("\n", "\n    "))
    return summary
