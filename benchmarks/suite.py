"""What the test suite no longer times: the numbers that used to be wall-clock assertions in tests.

    python benchmarks/suite.py              # everything below (a few minutes on 2 cores)
    python benchmarks/suite.py --no-notebooks

Each measurement runs in a fresh process, so that its peak memory (``ru_maxrss``) is its own:

``lazy scene``     ``xfacies.synthetic.scene(size=10_000)``: building the lazy 10,000 x 10,000 scene
                   (formerly asserted < 3 s in test_synthetic), next to computing one 512 x 512 block of
                   it, so the ratio says how much of a chunk the build costs;
``caffe synth``    ``xfacies.caffe.make_synthetic(n=12)`` (formerly asserted < 3 s in test_caffe_dataset);
``regression fig`` :meth:`RegressionResult.plot` of 118 glaciers x 20 years to PNG: every panel
                   (``max_panels=None``) next to the default (the 30 glaciers with most years);
``notebook NAME``  each notebook executed as the suite does (formerly asserted < 120 s each); the training
                   notebook both at the suite's budget (``XFACIES_QUICK=1``) and at its own.

Prints one table: seconds, peak memory, and the ratio to the first row of its group.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _lazy_scene(_: dict) -> float:
    from xfacies import synthetic

    t0 = time.perf_counter()
    synthetic.scene(size=10_000, seed=0)
    return time.perf_counter() - t0


def _one_block(_: dict) -> float:
    from xfacies import synthetic

    ds = synthetic.scene(size=10_000, seed=0)
    t0 = time.perf_counter()
    ds["dem"].isel(y=slice(0, 512), x=slice(0, 512)).compute()
    return time.perf_counter() - t0


def _caffe(_: dict) -> float:
    from xfacies import caffe

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        caffe.make_synthetic(Path(d) / "c", n=12, seed=5, metadata=True)
        return time.perf_counter() - t0


def _regression_figure(kw: dict) -> float:
    import numpy as np
    import xarray as xr

    from xfacies.massbalance.regression import regress

    rng = np.random.default_rng(1)
    ng, ny = 118, 20
    coords = {"year": np.arange(2000, 2000 + ny), "glacier": [f"RGI60-11.{k:05d}" for k in range(ng)]}
    aar = xr.DataArray(rng.uniform(0.1, 0.8, (ny, ng)), dims=("year", "glacier"), coords=coords)
    aar = aar.where(rng.random((ny, ng)) < np.linspace(0.2, 0.95, ng)[None])
    result = regress(aar, 3 * aar - 1.8 + 0.1 * rng.standard_normal((ny, ng)))
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        result.plot(Path(d) / "fit.png", max_panels=kw["max_panels"])
        return time.perf_counter() - t0


def _notebook(kw: dict) -> float:
    import nbclient
    import nbformat

    os.environ["XFACIES_REPO"] = str(REPO)
    if kw.get("quick"):
        os.environ["XFACIES_QUICK"] = "1"
    nb = nbformat.read(REPO / "notebooks" / f"{kw['name']}.ipynb", as_version=4)
    with tempfile.TemporaryDirectory() as d:
        os.chdir(d)
        client = nbclient.NotebookClient(nb, timeout=1800, kernel_name="python3",
                                         resources={"metadata": {"path": d}})
        t0 = time.perf_counter()
        client.execute()
        return time.perf_counter() - t0


def _child(fn, kw, q) -> None:
    q.put((fn(kw), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20))


def measure(fn, **kw) -> tuple[float, float]:
    """(seconds, peak GiB of the process) of ``fn(kw)`` in a fresh process."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(fn, kw, q))
    p.start()
    out = q.get()
    p.join()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-notebooks", action="store_true")
    a = ap.parse_args(argv)
    groups = [[("lazy scene 10,000^2 (build)", _lazy_scene, {}),
               ("one 512^2 block of it (compute)", _one_block, {})],
              [("caffe synth n=12", _caffe, {})],
              [("regression fig, 118 panels", _regression_figure, {"max_panels": None}),
               ("regression fig, 30 panels (default)", _regression_figure, {"max_panels": 30})]]
    if not a.no_notebooks:
        names = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
        groups.append([(f"notebook {n}" + (" (XFACIES_QUICK=1)" if n == "training" else ""), _notebook,
                        {"name": n, "quick": n == "training"}) for n in names]
                      + [("notebook training (own budget)", _notebook, {"name": "training"})])
    print(f"{'measurement':44s} {'seconds':>9s} {'ratio':>7s} {'peak GiB':>9s}   (one process each; "
          "peak = the measuring process, a notebook's kernel not included)")
    for group in groups:
        first = None
        for label, fn, kw in group:
            s, gib = measure(fn, **kw)
            first = first or s
            print(f"{label:44s} {s:9.2f} {s / first:7.2f} {gib:9.2f}", flush=True)


if __name__ == "__main__":
    main()
