"""Read the WGMS Fluctuations of Glaciers (FoG) tables into tidy pandas/xarray.

The World Glacier Monitoring Service publishes glaciological mass balances
and per glacier-year overview data (ELA, AAR, survey period) in its
Fluctuations of Glaciers database:

    WGMS (2021): Fluctuations of Glaciers Database.  World Glacier Monitoring
    Service, Zurich, Switzerland.  doi:10.5904/wgms-fog-2021-05

Cite it when you use the data.  This module reads

* the per-glacier mass-balance tables ``mbdata_WGMS-<id>.csv`` (balances in
  **mm w.e.** in the files, returned in **m w.e.**) -- :func:`read_mass_balance`;
* the mass-balance overview table (``...-E-MASS-BALANCE-OVERVIEW...csv``,
  latin-1 encoded; AAR in percent in the file, returned as a fraction *and*
  in percent; ELA in m a.s.l.; survey dates ``YYYYMMDD`` with unknown parts
  written ``99``) -- :func:`read_overview`;
* the RGI-WGMS link table ``rgi_wgms_links.csv``, or the dated
  ``rgi_wgms_links_YYYYMMDD.csv`` WGMS and OGGM ship -- :func:`read_links`;

and joins them to RGI glacier ids (RGI 5 ``RGI50-..`` or RGI 6 ``RGI60-..``
forms, or plain integer WGMS ids) with :func:`balance_for`,
:func:`overview_for` and :func:`periods_for`, which return ``(year, glacier)``
DataArrays / tidy frames keyed by the ids you gave.

Outlines whose ids are not in the link table (RGI 7 ``RGI2000-v7.0-..``,
GLIMS, your own) are matched by location with :func:`match_outlines` (the WGMS
glacier's coordinates fall inside the outline) and
:func:`balances_for_outlines`, :func:`overview_for_outlines` (AAR, ELA) and
:func:`periods_for_outlines` (survey periods for ``end_of_season``) give their
records keyed by the outlines' own ids.  A folder given as ``source`` is searched
with its sub-folders (``mbdata/``, ``DOI-WGMS-FoG-2021-05/``: the WGMS and OGGM
layouts).  :func:`check_source` validates a WGMS input before a long run.

Conventions
-----------
* ``year`` is the WGMS balance year: the calendar year in which the
  (hydrological) balance year *ends*.
* Balances are in metres water equivalent (m w.e.); columns carry the unit in
  their name (``annual_balance_mwe``) and DataArrays in ``attrs["units"]``.
* Ids that match no WGMS glacier raise a :class:`ValueError` listing them and
  the ids that are known.

Examples
--------
>>> import xfacies.massbalance.wgms as wgms
>>> mb = wgms.read_mass_balance("../shared/data/wgms")            # doctest: +SKIP
>>> b = wgms.balance_for(["RGI60-11.00897"], "../shared/data/wgms")  # doctest: +SKIP
>>> float(b.sel(year=2020, glacier="RGI60-11.00897"))             # doctest: +SKIP
-0.97
"""

from __future__ import annotations

from xfacies.massbalance import matching, records
from xfacies.massbalance.matching import (
    balances_for_outlines, match_outlines, overview_for_outlines, periods_for_outlines,
)
from xfacies.massbalance.records import (
    CITATION, PathLike, balance_for, check_source, overview_for, parse_wgms_date, periods_for, read_links,
    read_mass_balance, read_overview, select_region,
)

__all__ = [*records.__all__, *matching.__all__]
