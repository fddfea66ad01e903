"""Benchmark: per-glacier class counts (the core of ``xfacies.fractions``), xfacies' per-block
bincount against flox's ``groupby_reduce``, side by side on the same dask class map.

Usage::

    python benchmarks/reductions.py [--dates 12] [--size 2048] [--glaciers 5] [--chunks 1024]

Needs ``flox`` (``pip install flox``); xfacies itself does not depend on it.  Prints the
best of three runs of each method (threaded scheduler), their ratio, whether the counts are
identical, and the peak memory (RSS) of the process.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dates", type=int, default=12)
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--glaciers", type=int, default=5)
    p.add_argument("--chunks", type=int, default=1024)
    a = p.parse_args(argv)

    import dask
    import dask.array as da
    import flox

    from xfacies.catalog import NODATA
    from xfacies.products.fractions import _NBIN, _NCLS, _block_counts

    rng = np.random.default_rng(0)
    T, N, G = a.dates, a.size, a.glaciers
    cls = da.from_array(rng.integers(NODATA, _NCLS, (T, N, N)).astype(np.int8), chunks=(1, a.chunks, a.chunks))
    idx = da.from_array(rng.integers(0, G + 1, (N, N)).astype(np.int32), chunks=(a.chunks, a.chunks))

    def bincount():
        per = da.blockwise(_block_counts, "tyxk", cls, "tyx", idx, "yx", n_glaciers=G,
                           new_axes={"k": (G + 1) * _NBIN}, adjust_chunks={"y": 1, "x": 1},
                           dtype=np.int64, meta=np.empty((0, 0, 0, 0), np.int64))
        return per.sum(axis=(1, 2)).reshape(T, G + 1, _NBIN).compute()

    def with_flox(engine: str):
        def run():
            g = da.broadcast_to(idx, cls.shape, chunks=cls.chunks)
            counts, *_ = flox.groupby_reduce(cls, g, cls, func="count", axis=(-2, -1), engine=engine,
                                             expected_groups=(np.arange(G + 1), np.arange(NODATA, _NCLS)),
                                             method="map-reduce")
            return counts.compute()
        return run

    methods = {"xfacies bincount per block": bincount, "flox (numpy engine)": with_flox("numpy"),
               "flox (flox engine)": with_flox("flox")}
    print(f"per-glacier class counts: {T} dates x {N}^2 px, {G} glaciers, chunks {a.chunks}, "
          f"flox {flox.__version__}, threaded scheduler")
    best, results = {}, {}
    with dask.config.set(scheduler="threads"):
        for _ in range(3):  # alternate the methods, best of three each
            for name, f in methods.items():
                t0 = time.perf_counter()
                results[name] = f()
                best[name] = min(best.get(name, np.inf), time.perf_counter() - t0)
    ref = best["xfacies bincount per block"]
    for name, t in best.items():
        same = np.array_equal(results[name], results["xfacies bincount per block"])
        print(f"  {name:30s} {t:6.2f} s  {T * N * N / t / 1e6:7.1f} M px/s  x{t / ref:5.2f} time  "
              f"identical counts: {same}")
    print(f"  peak memory (RSS) of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
