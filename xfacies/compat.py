"""Renamed keywords: the old spelling keeps working for one release, with a warning.

xfacies uses one word per concept in its public API: the target grid is ``like=``, the pixel
size ``resolution=`` and where results go ``out=``.  Functions whose keywords were renamed to
these carry :func:`renamed_keywords`, which maps the old keyword to the new one and warns with
:class:`~xfacies.errors.MovedWarning` (a ``FutureWarning``).

Examples
--------
>>> import warnings
>>> @renamed_keywords(outdir="out")
... def write(data, out="."):
...     return out
>>> with warnings.catch_warnings(record=True) as seen:
...     warnings.simplefilter("always")
...     write(1, outdir="results")
'results'
>>> str(seen[0].message)
'write(outdir=...) is now write(out=...); the old keyword goes in the next release'
>>> write(1, outdir="a", out="b")
Traceback (most recent call last):
...
xfacies.errors.InputError: write() got both out= and its old name outdir=; pass out= only
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, TypeVar

from xfacies.errors import InputError, MovedWarning

__all__ = ["renamed_keywords"]

F = TypeVar("F", bound=Callable[..., Any])


def renamed_keywords(**old_to_new: str) -> Callable[[F], F]:
    """Decorator: accept each old keyword ``old=`` as its new name, with a :class:`MovedWarning`.

    The wrapped function keeps its signature and docstring (``functools.wraps``), so
    ``help()``, ``inspect.signature`` and the ``.facies`` accessor show the new names only.
    """

    def decorate(func: F) -> F:
        name = func.__name__

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise InputError(f"{name}() got both {new}= and its old name {old}=; pass {new}= only")
                    warnings.warn(f"{name}({old}=...) is now {name}({new}=...); the old keyword goes in the "
                                  "next release", MovedWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        wrapper.__renamed_keywords__ = dict(old_to_new)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
