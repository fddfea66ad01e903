"""Glacier outlines: moved to :mod:`xfacies.outlines` (a foundation module every stage uses).

This name stays for one release so that ``from xfacies.sources.outlines import read_outlines``
keeps working; it warns on import (:class:`~xfacies.errors.MovedWarning`, a ``FutureWarning``).
"""

from __future__ import annotations

import warnings

from xfacies.errors import MovedWarning
from xfacies.outlines import *  # noqa: F401,F403
from xfacies.outlines import __all__  # noqa: F401

warnings.warn("xfacies.sources.outlines moved to xfacies.outlines; the old module goes in the next release",
              MovedWarning, stacklevel=2)
