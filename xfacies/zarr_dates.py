"""The date records of a Zarr store: which dates are completely written, which failed and which
scenes were rejected, kept in the store's attributes so that a run resumes where the last one
stopped.  Also the store helpers every writer shares (:func:`zarr_format_of`, :func:`consolidate`,
:func:`quiet`).  :mod:`xfacies.io` writes and reads the data and gives these names too.

Examples
--------
>>> complete_dates("/nonexistent/store.zarr") is None
True
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = ["complete_dates", "mark_complete", "record_dates", "recorded_dates", "zarr_format_of", "consolidate",
           "quiet", "group_attrs", "iso_dates", "COMPLETE_ATTR", "FAILED_ATTR", "REJECTED_ATTR", "RECORDS"]

#: Store attribute listing the dates whose data is completely written (see :func:`layout_regions`).
COMPLETE_ATTR = "xfacies_complete_dates"
#: Store attribute ``{date: reason}``: dates whose computation failed persistently (retried next run).
FAILED_ATTR = "xfacies_failed_dates"
#: Store attribute ``{date: reason}``: scenes rejected by the quality checks (not classified).
REJECTED_ATTR = "xfacies_rejected_dates"
#: The record attribute of each kind of date that was not written.
RECORDS = {"failed": FAILED_ATTR, "rejected": REJECTED_ATTR}

@contextmanager
def quiet() -> Iterator[None]:
    """Silence zarr's notes on string dtypes and consolidated metadata."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification.*")
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        warnings.filterwarnings("ignore", category=FutureWarning, module="zarr.*")
        yield


def consolidate(path: str | os.PathLike) -> None:
    """Refresh the store's consolidated metadata (after every write), so that plain
    ``xr.open_zarr(store)`` opens it at once and without a warning.  For Zarr format 3
    consolidated metadata is a zarr-python extension that other readers may ignore; xfacies'
    own reader (:func:`open_zarr`) reads the live metadata of format 3 stores."""
    import zarr

    with quiet():
        zarr.consolidate_metadata(str(path))


def zarr_format_of(store: str | os.PathLike) -> int | None:
    """Zarr format (2 or 3) of an existing store on disk, or ``None`` if there is none.

    Examples
    --------
    >>> zarr_format_of("/nonexistent/store.zarr") is None
    True
    """
    p = Path(store)
    if (p / "zarr.json").exists():
        return 3
    if (p / ".zgroup").exists() or (p / ".zarray").exists():
        return 2
    return None


def iso_dates(times: Any) -> list[str]:
    return [str(np.datetime_as_string(np.datetime64(t, "ns"), unit="ns")) for t in pd.DatetimeIndex(times).values]


def complete_dates(store: str | os.PathLike) -> pd.DatetimeIndex | None:
    """Dates whose data a :func:`region_writes` run has completely written.

    Parameters
    ----------
    store
        Path of the Zarr store.

    Returns
    -------
    pandas.DatetimeIndex or None
        The dates recorded by :func:`mark_complete`, or ``None`` when the store
        has no such record (a store written by :func:`to_zarr`, where every
        date in the time axis is complete) or does not exist.

    Examples
    --------
    >>> complete_dates("/nonexistent/store.zarr") is None
    True
    """
    if zarr_format_of(store) is None:
        return None
    import zarr

    with quiet():
        attrs = dict(zarr.open_group(str(store), mode="r").attrs)
    if COMPLETE_ATTR not in attrs:
        return None
    return pd.DatetimeIndex(pd.to_datetime(list(attrs[COMPLETE_ATTR]))).sort_values()


def mark_complete(store: str | os.PathLike, dates: Any) -> None:
    """Record ``dates`` as completely written in the store's attributes.

    Call it from the client after a date's region write finished (never from
    workers: one writer updates the attribute).  See :func:`layout_regions`.
    """
    import zarr

    with quiet():
        g = zarr.open_group(str(store), mode="r+")
        done = set(g.attrs.get(COMPLETE_ATTR, []))
        done.update(iso_dates(dates))
        g.attrs[COMPLETE_ATTR] = sorted(done)
    consolidate(store)


def group_attrs(store: str | os.PathLike) -> dict[str, Any]:
    import zarr

    with quiet():
        return dict(zarr.open_group(str(store), mode="r").attrs)


def record_dates(store: str | os.PathLike, kind: Literal["failed", "rejected"],
                 reasons: Mapping[Any, str], *, clear: Any = ()) -> None:
    """Record dates that were not written, and why, in the store's attributes.

    ``kind="failed"``: the computation failed persistently (after retries);
    ``kind="rejected"``: the scene was refused by the quality checks
    (:func:`xfacies.sources.quality.scene_quality`).  The record is
    ``{ISO date: reason}`` under :data:`FAILED_ATTR` / :data:`REJECTED_ATTR`;
    dates in ``clear`` are removed from it (a date that later succeeded).
    Like :func:`mark_complete`, call it from the client only.

    Examples
    --------
    >>> import tempfile, zarr
    >>> path = tempfile.mkdtemp() + "/s.zarr"
    >>> _ = zarr.open_group(path, mode="w")
    >>> record_dates(path, "failed", {"2024-07-01": "OSError: HTTP 503"})
    >>> recorded_dates(path, "failed")
    {Timestamp('2024-07-01 00:00:00'): 'OSError: HTTP 503'}
    >>> record_dates(path, "failed", {}, clear=["2024-07-01"])
    >>> recorded_dates(path, "failed")
    {}
    """
    import zarr

    attr = RECORDS[kind]
    with quiet():
        g = zarr.open_group(str(store), mode="r+")
        rec = dict(g.attrs.get(attr, {}))
        for t in iso_dates(list(clear)) if len(clear) else []:
            rec.pop(t, None)
        rec.update({t: str(r) for t, r in zip(iso_dates(list(reasons)), reasons.values())})
        g.attrs[attr] = dict(sorted(rec.items()))
    consolidate(store)


def recorded_dates(store: str | os.PathLike, kind: Literal["failed", "rejected"]) -> dict[pd.Timestamp, str]:
    """``{date: reason}`` recorded by :func:`record_dates` (empty without a store or record).

    Examples
    --------
    >>> recorded_dates("/nonexistent/store.zarr", "rejected")
    {}
    """
    if zarr_format_of(store) is None:
        return {}
    rec = group_attrs(store).get(RECORDS[kind], {})
    return {pd.Timestamp(t): str(r) for t, r in sorted(rec.items())}
