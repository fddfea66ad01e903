"""Where a run computes: the Dask scheduler of ``[cluster]`` (a local cluster, an existing one, or
dask's local schedulers), how many dates go to it at a time, and waiting on its futures without
waiting forever on a cluster that lost its workers."""

from __future__ import annotations

import contextlib
import logging
import os
import time as _time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xfacies.app.config import ClusterConfig
from xfacies.errors import NoWorkersError

__all__ = ["scheduler", "dates_per_batch", "first_done"]

log = logging.getLogger("xfacies.app.pipeline")


@contextlib.contextmanager
def scheduler(c: ClusterConfig, verbose: bool) -> Iterator[tuple[Any, str | None]]:
    """Yield ``(client or None, dashboard link or None)`` for the configured scheduler."""
    import dask

    if c.scheduler in ("threads", "synchronous", "sync", "single-threaded"):
        log.info("dask scheduler: local %s", c.scheduler)
        with dask.config.set(scheduler=c.scheduler):
            yield None, None
        return
    from distributed import Client, LocalCluster

    if c.scheduler:
        log.info("connecting to the Dask scheduler at %s", c.scheduler)
        try:
            client = Client(c.scheduler, timeout="20s")
        except (OSError, TimeoutError) as e:
            raise ConnectionError(f"could not connect to the Dask scheduler at {c.scheduler!r}: {e}") from e
        cluster = None
    else:
        cluster = LocalCluster(n_workers=c.n_workers, threads_per_worker=c.threads_per_worker,
                               processes=True, memory_limit=c.memory_limit,
                               dashboard_address=c.dashboard_address)
        client = Client(cluster)
    link = client.dashboard_link
    log.info("dask client %s, %d workers, dashboard %s", client.id, len(client.scheduler_info()["workers"]), link)
    if verbose:
        print(f"Dask dashboard: {link}", flush=True)
    try:
        yield client, link
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def dates_per_batch(client: Any, pixels: int, layers: int, *, override: int | None = None) -> int:
    """How many dates a run submits at a time, from the workers' memory.

    A date's working set is bounded by ``pixels x layers x 4`` bytes (its
    reflectance bands, features and class probabilities as float32, were they
    all in memory at once); a batch may use a quarter of the memory of all
    workers (of this machine for the local schedulers).  The result is kept
    within 1 .. 4 x the worker threads, so the workers always have a next date
    and the scheduler never holds the graph of the whole record.  At most two
    batches are in flight.

    Parameters
    ----------
    client
        A ``distributed.Client`` or ``None`` (local schedulers).
    pixels, layers
        Pixels per date, float32 layers per pixel.
    override
        ``[cluster] batch_dates``: used as is when given.

    Examples
    --------
    >>> dates_per_batch(None, 2048 * 2048, 27, override=6)
    6
    """
    if override is not None:
        return max(1, int(override))
    import psutil

    if client is not None:
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        memory = sum(int(w.get("memory_limit") or 0) or psutil.virtual_memory().total // max(len(workers), 1)
                     for w in workers)
        threads = sum(int(w.get("nthreads", 1)) for w in workers) or 1
    else:
        memory, threads = psutil.virtual_memory().total, os.cpu_count() or 1
    per_date = max(1, pixels * layers * 4)
    return int(min(max(1, (memory // 4) // per_date), 4 * threads))


def first_done(client: Any, futures: list[Any], patience: float, store: Path) -> set[Any]:
    """Wait until at least one of ``futures`` has finished (or erred), and return those that have.

    A cluster left without any worker (all killed, none restarted) would make the wait endless:
    after ``patience`` seconds with no worker it raises :class:`NoWorkersError`, which says what
    is kept and what to do."""
    from distributed import wait

    alone_since: float | None = None
    while True:
        try:
            return set(wait(futures, timeout=min(5.0, patience), return_when="FIRST_COMPLETED").done)
        except TimeoutError:
            pass
        if client.nthreads():
            alone_since = None
            continue
        now = _time.monotonic()
        alone_since = now if alone_since is None else alone_since
        if now - alone_since >= patience:
            raise NoWorkersError(
                f"the Dask cluster at {client.scheduler.address} has had no worker for {now - alone_since:.0f} s "
                f"([cluster] no_worker_timeout = {patience:g}), so the run stopped. The dates written so far are "
                f"recorded in {store}. Start workers again (and look at their logs for why they died: a memory "
                "limit?), then run the same command: only the missing dates are computed.")
