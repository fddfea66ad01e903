"""Graphs sent to a cluster hold exactly the tasks their keys need (xfacies.graphs): checked
against a hand-counted graph, a STAC cube's batches of dates (a batch reads its own scenes
only), and a real LocalCluster that holds another graph's keys while a graph with stray tasks
of those keys arrives."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
from dask.core import flatten
from dask.highlevelgraph import HighLevelGraph

from xfacies import graphs

sys.path.insert(0, str(Path(__file__).parent))


def _no_cull(dsk, keys, **kwargs):
    """An array optimiser that keeps every task (as dask's optimize_blockwise sometimes does)."""
    return dsk


def _reachable(dsk: dict, keys) -> set:
    """The keys reachable from ``keys``: a plain depth-first walk."""
    seen, todo = set(), list(keys)
    while todo:
        k = todo.pop()
        if k in seen or k not in dsk:
            continue
        seen.add(k)
        todo.extend(dsk[k].dependencies)
    return seen


def _with_stray_tasks(n_stray: int) -> da.Array:
    """``ones(4) * 2`` in 2 chunks, whose graph also holds ``n_stray`` tasks nobody needs."""
    base = da.ones(4, chunks=2)
    y = base * 2
    dsk = dict(dask.base.collections_to_expr([y], optimize_graph=False).__dask_graph__())
    for i in range(n_stray):
        dsk[(f"stray-{i}", 0)] = (np.add, (base.name, 0), i)
    return da.Array(HighLevelGraph.from_collections(y.name, dsk, dependencies=[]), y.name, y.chunks, dtype=y.dtype)


def test_exact_leaves_only_the_tasks_the_keys_reach():
    y = _with_stray_tasks(3)
    with dask.config.set(array_optimize=_no_cull):
        (opt,) = graphs.exact(y)
        plain = dict(dask.base.collections_to_expr([y], optimize_graph=True).__dask_graph__())
    assert len(plain) == 2 + 2 + 3  # the optimiser kept the stray tasks
    got = dict(opt.__dask_graph__())
    keys = list(flatten(y.__dask_keys__()))
    assert set(got) == _reachable(plain, keys) and len(got) == 4
    np.testing.assert_array_equal(opt.compute(optimize_graph=False), np.full(4, 2.0))


def test_exact_keeps_structure_and_values_of_nested_arguments():
    x = da.arange(12, chunks=4)
    todo = {"sum": x.sum(), "pair": (x.max(), dask.delayed(int)(7)), "plain": 3}
    (opt,) = graphs.exact(todo)
    assert set(opt) == {"sum", "pair", "plain"} and opt["plain"] == 3 and isinstance(opt["pair"], tuple)
    (got,) = graphs.compute(todo)
    assert got == {"sum": 66, "pair": (11, 7), "plain": 3}


def test_a_batch_of_a_stac_cube_reads_only_its_own_scenes(tmp_path):
    """In some processes dask's optimisation of ``cube.sel(time=batch)`` kept the read tasks of
    every scene of the cube; the exact graph of a batch of two dates opens those two items."""
    from test_pipeline import config

    from xfacies.app import pipeline as P
    from xfacies.app.config import RunConfig

    dates = ["2021-06-10", "2021-06-25", "2021-07-10", "2021-07-25", "2021-08-10", "2021-08-25"]
    cfg = RunConfig.from_dict(config(tmp_path / "out", area={"synthetic": {"size": 128, "dates": dates}},
                                     time={"start": 2021, "end": 2021}))
    season, _, where = P._area(cfg)
    cube, _ = P._imagery(cfg, season, where)
    times = cube["time"].values
    assert len(times) == len(dates)
    for b in range(0, len(times), 2):
        (sub,) = graphs.exact(cube.sel(time=times[b:b + 2]))
        g = dict(dask.base.collections_to_expr([sub], optimize_graph=False).__dask_graph__())
        opened = {k[1] for k in g if isinstance(k, tuple) and str(k[0]).startswith("open-")}
        assert opened == {b, b + 1}, f"batch {b // 2} opens items {sorted(opened)}"
        assert set(g) == _reachable(g, list(flatten(sub.__dask_keys__())))
    np.testing.assert_array_equal(sub.compute(scheduler="sync", optimize_graph=False).values,
                                  cube.sel(time=times[-2:]).compute(scheduler="sync").values)


def test_stray_tasks_of_held_keys_do_not_break_a_real_scheduler():
    """A cluster holds the keys of one graph; a second graph carries stray copies of those keys
    with a dependency of its own.  Sent as it is, the scheduler fails on it (``update_graph``
    links the stray task to the held one); sent through :func:`graphs.compute`, it is culled and
    computes."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                                  silence_logs=logging.CRITICAL) as cluster, distributed.Client(cluster) as client:
        held = client.persist(da.ones(4, chunks=2) + 1)
        distributed.wait(held)
        y = da.ones(4, chunks=2) * 3
        dsk = dict(dask.base.collections_to_expr([y], optimize_graph=False).__dask_graph__())
        dsk[("stray-dep", 0)] = (np.ones, 2)  # stray: the held keys again, on a task of their own
        for k in flatten(held.__dask_keys__()):
            dsk[k] = (np.add, ("stray-dep", 0), 1)
        bad = da.Array(HighLevelGraph.from_collections(y.name, dsk, dependencies=[]), y.name, y.chunks,
                       dtype=y.dtype)
        with dask.config.set(array_optimize=_no_cull):
            plain = client.compute(bad)
            # the scheduler loses the stray dependency's key (what made runs hang before graphs.compute)
            with pytest.raises(KeyError, match="stray-dep"):
                plain.result(timeout=30)
            (fut,) = graphs.compute(bad, client=client)
            np.testing.assert_array_equal(fut.result(timeout=30), np.full(4, 3.0))
        np.testing.assert_array_equal(held.compute(), np.full(4, 2.0))
