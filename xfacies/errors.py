"""The errors and warnings xfacies raises, each family with one common base.

Errors
------
Every error xfacies raises for bad input is an :class:`XfaciesError`, and also the built-in
type older code catches (``ValueError``, ``OSError``, ``KeyError`` ...), so
``except ValueError`` keeps working while a caller can tell the kinds apart::

    XfaciesError
    ├── InputError (ValueError)        input that cannot be used as given: bands, classes, dates, files
    │   ├── GridError                  grids and CRSs: not on the same grid, no CRS, not north-up, irregular
    │   └── UnitsError                 values in the wrong units: percent or digital numbers as reflectance
    ├── BundleError (ValueError)       a model bundle that cannot be read or does not fit the input
    ├── UnsafeFileError (ValueError)   a file xfacies would have to execute (a pickle)
    ├── CorruptFileError (OSError)     a file that exists but cannot be decoded
    ├── MissingAssetError (KeyError)   a STAC item without an asset the sensor table needs
    ├── RequesterPaysError (PermissionError)
    ├── RunLockedError (RuntimeError)  another live run writes to the same store
    └── NoWorkersError (RuntimeError)  a Dask cluster without workers

The messages name the input and the fix; the types say which kind of problem it is.

Warnings
--------
::

    XfaciesWarning (UserWarning)
    ├── InputWarning                  input used, but probably not as meant (units, resolution, matches)
    ├── RunWarning                    a run's bookkeeping (a stale lock taken over)
    ├── MovedWarning (FutureWarning)  a renamed keyword or a moved module: the old one works one more release
    └── the specific ones, next to the code that raises them (DomainWarning, ChunkWarning, ...)


Every warning that xfacies itself emits is an instance of :class:`XfaciesWarning`
(a :class:`UserWarning`), so a user or a test suite can treat them as a group::

    import warnings
    warnings.simplefilter("error", xfacies.errors.XfaciesWarning)   # fail on any of them

while third-party warnings keep their own classes.  The specific warnings live next to the
code that raises them (``xfacies.halo.ChunkWarning``, ``xfacies.model.bundle.DomainWarning``,
...) and all derive from this base; :class:`InputWarning` is the general one for input that is
used, but probably not as the user meant (units, resolution, ambiguous matches).

Examples
--------
>>> import warnings
>>> from xfacies.errors import InputWarning, XfaciesWarning
>>> with warnings.catch_warnings(record=True) as seen:
...     warnings.simplefilter("always")
...     warnings.warn("the DEM is 9 times coarser than the grid", InputWarning)
>>> issubclass(seen[0].category, XfaciesWarning), issubclass(seen[0].category, UserWarning)
(True, True)
"""

from __future__ import annotations

__all__ = ["XfaciesError", "InputError", "GridError", "UnitsError", "BundleError", "UnsafeFileError",
           "CorruptFileError", "MissingAssetError", "RequesterPaysError", "RunLockedError", "NoWorkersError",
           "XfaciesWarning", "InputWarning", "RunWarning", "MovedWarning"]


class XfaciesError(Exception):
    """Base class of the errors xfacies raises with its own types."""


class InputError(XfaciesError, ValueError):
    """Input that cannot be used as given (bands, classes, dates, columns, options); the message
    names the input and the fix."""


class GridError(InputError):
    """Grids and coordinate reference systems: rasters not on the same grid, a missing or
    mismatched CRS, coordinates that are not north-up or not regular, geographic degrees where
    metres are needed."""


class UnitsError(InputError):
    """Values in the wrong units: reflectance in percent or as unscaled digital numbers, pixel
    sizes that cannot be right."""


class BundleError(XfaciesError, ValueError):
    """A model bundle that cannot be read, is not a bundle, or does not fit the input (features,
    classes, backend)."""


class MissingAssetError(XfaciesError, KeyError):
    """A STAC item lacks an asset that the sensor table needs for a band; the message names the
    item, the band and the assets it has."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


class RequesterPaysError(XfaciesError, PermissionError):
    """A requester-pays bucket (e.g. Landsat on AWS) refused an anonymous read; the message says
    how to pay for the request or which public mirror to use."""


class RunLockedError(XfaciesError, RuntimeError):
    """Another live run holds the lock of the same output store."""


class NoWorkersError(XfaciesError, RuntimeError):
    """A Dask cluster has no workers (or none with the resources a task needs)."""


class UnsafeFileError(XfaciesError, ValueError):
    """A file xfacies would have to execute to read (a pickle): refused unless the user opts in to a
    one-time conversion of a file they trust (``xfacies convert-reference ... --trust-pickle``)."""


class CorruptFileError(XfaciesError, OSError):
    """A file exists but cannot be decoded (damaged or truncated); the message names it."""


class XfaciesWarning(UserWarning):
    """Base class of every warning that xfacies emits."""


class InputWarning(XfaciesWarning):
    """Input is used, but probably not as meant: units, resolution, time zones, ambiguous matches.
    The message names the input and the fix."""


class RunWarning(XfaciesWarning):
    """Something about a run's bookkeeping (e.g. a stale lock of a dead run taken over)."""


class MovedWarning(XfaciesWarning, FutureWarning):
    """A module, name or keyword that moved or was renamed: the old one works for one more
    release; the message gives the new one."""
