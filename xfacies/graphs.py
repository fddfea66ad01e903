"""Task graphs sent to a Dask cluster: optimised on the client and culled to exactly the tasks
their keys need.

Why: dask's array optimisation (``optimize_blockwise``, dask 2026.8) can leave tasks in a graph
that none of its keys needs.  Which ones varies from process to process (it follows set
order); in a run it was the read tasks of *every* date of a STAC cube inside the graph of one
batch of dates.  The distributed scheduler links such unreachable tasks to the tasks of the
same keys that another graph still holds, and its state breaks: a ``KeyError`` in
``update_graph``, then ``assert ts.priority``, then workers that can no longer register, and a
run that waits for ever.  A graph optimised here (:func:`dask.optimize`) and culled to its own
keys holds only its own tasks; it is then submitted with ``optimize_graph=False`` so the
scheduler does not optimise it again.

:func:`exact` does the first part; :func:`compute` and :func:`persist` submit the result.
"""

from __future__ import annotations

from typing import Any

__all__ = ["exact", "compute", "persist"]


def exact(*objs: Any) -> tuple[Any, ...]:
    """``objs`` with every dask collection in them optimised now and culled to its own keys.

    Parameters
    ----------
    *objs
        Dask collections (arrays, delayed, xarray objects), or lists, tuples and dicts of them
        (traversed like :func:`dask.compute`); anything else is returned as it is.

    Returns
    -------
    tuple
        One entry per argument, the same structure, computing the same values.  Submit them
        with ``optimize_graph=False`` (what :func:`compute` and :func:`persist` do).

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.ones((4, 4), chunks=2)
    >>> (y,) = exact(x[:2] + 1)
    >>> int(y.sum().compute(optimize_graph=False))
    16
    >>> len(dict(y.__dask_graph__())) <= len(dict((x[:2] + 1).__dask_graph__()))
    True
    """
    import dask

    return tuple(_cull_all(o) for o in dask.optimize(*objs))


def compute(*objs: Any, client: Any = None, **kwargs: Any) -> Any:
    """The values of ``objs``, computed from :func:`exact` graphs.

    Without ``client``, :func:`dask.compute` (a tuple of values); with one, ``client.compute``
    (a list of futures, one per argument).

    Examples
    --------
    >>> import dask.array as da
    >>> (total,) = compute(da.arange(10, chunks=5).sum())
    >>> int(total)
    45
    """
    if client is not None:
        return client.compute(list(exact(*objs)), optimize_graph=False, **kwargs)
    import dask

    return dask.compute(*exact(*objs), optimize_graph=False, **kwargs)


def persist(obj: Any, client: Any = None, **kwargs: Any) -> Any:
    """``client.persist`` (or :func:`dask.persist` without a client) of the :func:`exact` graph of
    ``obj``.

    Examples
    --------
    >>> import dask.array as da
    >>> y = persist(da.arange(6, chunks=3) * 2)
    >>> y.sum().compute().item()
    30
    """
    (opt,) = exact(obj)
    if client is not None:
        return client.persist(opt, optimize_graph=False, **kwargs)
    import dask

    (out,) = dask.persist(opt, optimize_graph=False, **kwargs)
    return out


def _cull_all(obj: Any) -> Any:
    from dask import is_dask_collection

    if is_dask_collection(obj):
        return _cull(obj)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cull_all(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _cull_all(v) for k, v in obj.items()}
    return obj


def _cull(coll: Any) -> Any:
    """``coll`` rebuilt on the tasks its keys reach (an xarray object culls per variable)."""
    from dask.core import flatten
    from dask.optimization import cull

    keys = list(flatten(coll.__dask_keys__()))
    dsk, _ = cull(dict(coll.__dask_graph__()), keys)
    rebuild, args = coll.__dask_postpersist__()
    return rebuild(dsk, *args)
