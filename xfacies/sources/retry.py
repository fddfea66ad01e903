"""Retries with exponential backoff for transient failures of remote sources.

Two kinds of remote calls can fail for a moment and then work again:

* **asset reads** (a COG read by rasterio through GDAL: an HTTP 5xx, a reset
  connection, a timeout) — :func:`retrying` wraps each read, with
  `tenacity <https://tenacity.readthedocs.io>`_;
* **STAC API requests** (a 5xx or 429 from the server, a timeout) —
  :func:`http_retry` gives the ``urllib3`` retry policy that pystac-client's
  session uses.

Only *transient* errors are retried (:func:`is_transient`: I/O, network and
timeout errors); a wrong input (``ValueError``, ``TypeError``, ...) fails at
once.  How many retries and the first wait come from
:func:`xfacies.set_options` (``retries``, ``retry_wait``) or the environment
(``XFACIES_RETRIES``, ``XFACIES_RETRY_WAIT``); the wait doubles with every
retry, up to 60 s.  A failure that outlives its retries is *persistent*:
``xfacies run`` skips that date and records it (see :mod:`xfacies.app.pipeline`).

Examples
--------
>>> calls = []
>>> def flaky():
...     calls.append(1)
...     if len(calls) < 3:
...         raise OSError("HTTP 503")
...     return "ok"
>>> retrying(flaky, what="asset x.tif", retries=3, wait=0.0)
'ok'
>>> len(calls)
3
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["is_transient", "retrying", "http_retry", "settings"]

log = logging.getLogger("xfacies.sources.retry")

T = TypeVar("T")

#: the longest single backoff wait, in seconds
MAX_WAIT = 60.0

#: HTTP statuses a STAC request is retried on
RETRY_STATUSES = (408, 429, 500, 502, 503, 504)


def settings(retries: int | None = None, wait: float | None = None) -> tuple[int, float]:
    """``(retries, first wait)``: the arguments, else the package options.

    Examples
    --------
    >>> settings(2, 0.5)
    (2, 0.5)
    """
    from xfacies import options

    r = options.get("retries") if retries is None else retries
    w = options.get("retry_wait") if wait is None else wait
    return int(r), float(w)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying: I/O, network and timeout errors.

    ``FileNotFoundError``/``PermissionError`` and programming or input errors
    (``ValueError``, ``TypeError``, ``KeyError``, ...) are not.

    Examples
    --------
    >>> is_transient(TimeoutError()), is_transient(ValueError("bad band"))
    (True, False)
    """
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return False
    if isinstance(exc, (OSError, TimeoutError, ConnectionError)):  # incl. rasterio's RasterioIOError
        return True
    names = {c.__name__ for c in type(exc).__mro__}
    # requests/urllib3 errors, rasterio's CPLE_* I/O errors, without importing them
    return bool(names & {"RequestException", "HTTPError", "ProtocolError", "RasterioIOError",
                         "CPLE_HttpResponseError", "CPLE_FileIOError", "CPLE_OpenFailedError",
                         "CPLE_AWSError", "WarpOperationError"})


def retrying(fn: Callable[..., T], *args: Any, what: str, retries: int | None = None,
             wait: float | None = None, **kwargs: Any) -> T:
    """Call ``fn(*args, **kwargs)``, retrying transient errors with exponential backoff.

    Parameters
    ----------
    fn, args, kwargs
        The call.
    what
        What is being read, for the log and the final error (e.g. the URL).
    retries, wait
        Retries after the first attempt and the first wait in seconds
        (defaults: :func:`settings`).

    Returns
    -------
    object
        ``fn``'s result.

    Raises
    ------
    Exception
        The last error, once the retries are spent, with a note naming ``what``
        and the number of attempts; a non-transient error at once.

    Examples
    --------
    >>> retrying(int, "7", what="a number")
    7
    """
    import tenacity

    n, w = settings(retries, wait)

    def note(state: tenacity.RetryCallState) -> None:
        e = state.outcome.exception() if state.outcome else None
        log.warning("%s failed (attempt %d of %d: %s: %s); retrying in %g s", what, state.attempt_number,
                    n + 1, type(e).__name__, e, state.next_action.sleep if state.next_action else 0.0)

    r = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(n + 1),
        wait=tenacity.wait_exponential(multiplier=w, min=w, max=MAX_WAIT) if w > 0 else tenacity.wait_none(),
        retry=tenacity.retry_if_exception(is_transient),
        before_sleep=note, reraise=True,
    )
    try:
        return r(fn, *args, **kwargs)
    except Exception as e:
        if is_transient(e):
            e.add_note(f"xfacies: {what} still failed after {n + 1} attempt(s) with exponential backoff "
                       f"(first wait {w:g} s); more retries: xfacies.set_options(retries=...) or $XFACIES_RETRIES")
        raise


def http_retry(retries: int | None = None, wait: float | None = None) -> Any:
    """The ``urllib3.util.Retry`` policy for STAC API requests.

    Retries connection errors, read timeouts and the statuses
    :data:`RETRY_STATUSES` on every method (a STAC search is a POST and is
    idempotent), with exponential backoff from ``wait`` seconds.

    Examples
    --------
    >>> r = http_retry(2, 0.5)
    >>> r.total, r.backoff_factor, 503 in r.status_forcelist
    (2, 0.5, True)
    """
    from urllib3.util.retry import Retry

    n, w = settings(retries, wait)
    return Retry(total=n, connect=n, read=n, status=n, backoff_factor=w, backoff_max=MAX_WAIT,
                 status_forcelist=RETRY_STATUSES, allowed_methods=None, raise_on_status=False,
                 respect_retry_after_header=True)
