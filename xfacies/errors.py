"""The warnings xfacies raises, with one common base, and its own error types.

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

__all__ = ["XfaciesError", "UnsafeFileError", "CorruptFileError", "XfaciesWarning", "InputWarning", "RunWarning"]


class XfaciesError(Exception):
    """Base class of the errors xfacies raises with its own types."""


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
