"""Matching glacier outlines to WGMS glaciers: by RGI 5/6 id through the RGI-WGMS link table,
and by location (the WGMS glacier's coordinates inside an outline) for RGI 7 or any other ids.

:func:`match_outlines` gives the match table (one row per outline, with how it was matched);
:func:`balances_for_outlines` gives WGMS balances keyed by the outlines' own ids.  The WGMS
tables themselves are read by :mod:`xfacies.massbalance.records`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from xfacies.errors import InputError, InputWarning
from xfacies.massbalance.records import (
    BALANCE_KINDS, OVERVIEW_VARS, PathLike, balance_array, clean_str, links_from, load_table, overview_of_ids,
    periods_of_ids, read_csv_table, read_links, read_mass_balance, read_overview,
)

__all__ = ["match_outlines", "balances_for_outlines", "overview_for_outlines", "periods_for_outlines"]

#: Outline columns (besides ``glacier_id``) whose RGI 5 / RGI 6 ids are looked up
#: in the link table.
_RGI_ID_COLUMNS = ("RGIId", "rgi_id", "RGIID")
_MATCH_COLUMNS = ["glacier_id", "wgms_id", "wgms_name", "method", "distance_m", "note"]
_GLACIER_GLOB = "*A-GLACIER*.csv"


def _lower_columns(df: pd.DataFrame) -> pd.DataFrame:
    return df.rename(columns=lambda c: str(c).strip().lower())


def _column(df: pd.DataFrame, *names: str) -> pd.Series:
    for n in names:
        if n in df.columns:
            return df[n]
    return pd.Series(pd.NA, index=df.index, dtype="object")


def _wgms_glacier_table(src: Any) -> pd.DataFrame:
    """``wgms_id, name, lon, lat`` from a WGMS glacier table (FoG ``A-GLACIER``)."""
    if isinstance(src, pd.DataFrame):
        raw, where = src, "the wgms_glaciers frame"
    else:
        p = Path(src)
        if p.is_dir():
            files = sorted(p.glob(_GLACIER_GLOB))
            if len(files) != 1:
                raise FileNotFoundError(
                    f"{p} holds {len(files)} WGMS glacier tables matching {_GLACIER_GLOB!r} "
                    f"({[f.name for f in files]}); pass the file"
                )
            p = files[0]
        elif not p.exists():
            raise FileNotFoundError(f"WGMS glacier table {p} does not exist")
        raw, where = read_csv_table(p, "latin-1"), str(p)
    df = _lower_columns(raw)
    missing = [c for c in ("wgms_id", "latitude", "longitude") if c not in df.columns]
    if missing:
        raise InputError(
            f"{where} does not look like a WGMS glacier table: missing column(s) "
            f"{[m.upper() for m in missing]}; found {list(raw.columns)}"
        )
    return pd.DataFrame({
        "wgms_id": pd.to_numeric(df["wgms_id"], errors="raise").astype("int64"),
        "name": clean_str(_column(df, "name")),
        "lon": pd.to_numeric(df["longitude"], errors="coerce").astype(float),
        "lat": pd.to_numeric(df["latitude"], errors="coerce").astype(float),
    })


def _wgms_points(links: Any, wgms_glaciers: Any) -> pd.DataFrame:
    """One row per WGMS glacier: ``wgms_id, name, rgi50_id, rgi60_id, lon, lat``.

    Coordinates come from ``wgms_glaciers`` (LATITUDE/LONGITUDE) where it gives
    them, else from the link table (CenLon/CenLat); NaN when unknown.
    """
    if links is None and wgms_glaciers is None:
        raise InputError("pass the RGI-WGMS link table (links=) and/or a WGMS glacier table "
                         "(wgms_glaciers=)")
    cols = ["wgms_id", "name", "rgi50_id", "rgi60_id", "lon", "lat"]
    pts = pd.DataFrame({c: pd.Series(dtype=float if c in ("lon", "lat") else object) for c in cols})
    if links is not None:
        lk = _lower_columns(links if isinstance(links, pd.DataFrame) else read_links(links))
        if "wgms_id" not in lk.columns:
            raise InputError(f"the link table has no WGMS_ID column; found {list(lk.columns)}")
        pts = pd.DataFrame({
            "wgms_id": pd.to_numeric(lk["wgms_id"], errors="raise").astype("int64"),
            "name": clean_str(_column(lk, "name")),
            "rgi50_id": clean_str(_column(lk, "rgi50_id")).replace("", pd.NA),
            "rgi60_id": clean_str(_column(lk, "rgi60_id")).replace("", pd.NA),
            "lon": pd.to_numeric(_column(lk, "cenlon", "longitude"), errors="coerce").astype(float),
            "lat": pd.to_numeric(_column(lk, "cenlat", "latitude"), errors="coerce").astype(float),
        })
    if wgms_glaciers is not None:
        gl = _wgms_glacier_table(wgms_glaciers).drop_duplicates("wgms_id").set_index("wgms_id")
        known = pts["wgms_id"].isin(gl.index)
        ok = gl["lon"].notna() & gl["lat"].notna()
        take = known & pts["wgms_id"].map(ok).fillna(False).astype(bool)
        pts.loc[take, "lon"] = pts.loc[take, "wgms_id"].map(gl["lon"]).to_numpy()
        pts.loc[take, "lat"] = pts.loc[take, "wgms_id"].map(gl["lat"]).to_numpy()
        noname = known & pts["name"].isna()
        pts.loc[noname, "name"] = pts.loc[noname, "wgms_id"].map(gl["name"]).to_numpy()
        extra = gl[~gl.index.isin(pts["wgms_id"])].reset_index()
        if len(extra):
            extra = extra.assign(rgi50_id=pd.NA, rgi60_id=pd.NA)[cols]
            pts = extra if pts.empty else pd.concat([pts, extra], ignore_index=True)
    bad = ~(pts["lat"].between(-90, 90) & pts["lon"].between(-180, 360))
    pts.loc[bad, ["lon", "lat"]] = np.nan
    pts["wgms_id"] = pts["wgms_id"].astype("int64")
    return pts.reset_index(drop=True)


def _normalised_outlines(outlines: Any, id_column: str | None) -> Any:
    if id_column is not None:
        from xfacies.outlines import read_outlines

        return read_outlines(outlines, id_column=id_column)
    from xfacies.outlines import as_outlines

    return as_outlines(outlines)


def _metric_crs(gdf: Any) -> Any:
    """A CRS to measure distances in: the outlines' own when it is a UTM zone, else the UTM
    zone of their centre (Web Mercator and the like distort distances too much)."""
    crs = gdf.crs
    if crs.is_projected and crs.utm_zone is not None:
        return crs
    return gdf.estimate_utm_crs()


def _label(w: int, names: dict[int, Any]) -> str:
    n = names.get(w)
    return f"WGMS {w} ({n})" if isinstance(n, str) and n else f"WGMS {w}"


def match_outlines(
    outlines: Any,
    links: PathLike | pd.DataFrame | None,
    *,
    id_column: str | None = None,
    wgms_glaciers: PathLike | pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Match WGMS glaciers to glacier outlines, by RGI id or else by location.

    Two ways, in this order:

    1. **RGI id** (``method="rgi_id"``): the outline's id (``glacier_id``, and
       the ``RGIId`` / ``rgi_id`` / ``RGIID`` columns when present) is an RGI 6
       (``RGI60-..``) or RGI 5 (``RGI50-..``) id of a WGMS glacier in the link
       table.
    2. **Location** (``method="location"``), for outlines and WGMS glaciers left
       over (RGI 7 ``RGI2000-v7.0-..``, GLIMS or any other ids, or split RGI 5
       parts like ``RGI50-11.00719_d01``): the WGMS glacier's point -- the RGI
       centre point ``CenLon``/``CenLat`` of the link table, or
       ``LONGITUDE``/``LATITUDE`` of ``wgms_glaciers`` when given -- lies inside
       (or on the edge of) the outline.  Points are WGS 84 longitude/latitude
       and are reprojected to the outlines' CRS.

    A WGMS glacier is given to at most one outline and an outline gets at most
    one WGMS glacier.  **Ambiguities** -- one WGMS glacier linked to or lying
    in several outlines, several WGMS glaciers in one outline, a WGMS point
    inside an outline already matched by id to another WGMS glacier -- leave
    the outlines concerned unmatched (or keep their id match), are described
    in the ``note`` column and in ``attrs["ambiguities"]``, and raise one
    :class:`UserWarning`.  Edit the table and pass it as ``match=`` to
    :func:`balances_for_outlines` to decide them yourself.

    Parameters
    ----------
    outlines
        Glacier outlines: a GeoDataFrame (any CRS) or a vector file path,
        normalised with :func:`xfacies.outlines.read_outlines`.
    links
        The RGI-WGMS link table: a path (file, or a folder holding
        ``rgi_wgms_links[_YYYYMMDD].csv``) or a frame (:func:`read_links`, or
        the raw csv with ``WGMS_ID``, ``RGI50_ID``/``RGI60_ID``,
        ``CenLon``/``CenLat``).  ``None`` matches by location only, from
        ``wgms_glaciers``.
    id_column
        The outlines' id column (default: as in ``read_outlines``).
    wgms_glaciers
        Optional WGMS glacier table (FoG ``...-A-GLACIER...csv``, a folder
        holding one, or a frame) with ``WGMS_ID``, ``LATITUDE``, ``LONGITUDE``
        (``NAME``): its coordinates replace the link table's and its glaciers
        missing from the link table are matched by location too.

    Returns
    -------
    pandas.DataFrame
        One row per outline, in the outlines' order:

        - ``glacier_id`` (str): the outline's id;
        - ``wgms_id`` (``Int64``, ``<NA>`` when unmatched), ``wgms_name``;
        - ``method``: ``"rgi_id"``, ``"location"`` or ``<NA>``;
        - ``distance_m`` (float, metres): for a match, the distance from the
          WGMS point to the outline (0 inside; for an id match a large value
          flags a doubtful link or point); unmatched, the distance to the
          nearest WGMS point (named in ``note``); NaN without coordinates.
          Measured in the outlines' CRS when it is a UTM zone, else in the UTM
          zone of the outlines' centre (approximate far from it);
        - ``note`` (str or ``<NA>``): why a row is unmatched, ambiguities, the
          RGI ids the link table gives a glacier matched by location.

        ``attrs["ambiguities"]`` lists the ambiguities (also warned).

    Raises
    ------
    ValueError
        Neither ``links`` nor ``wgms_glaciers``, tables without WGMS_ID, or
        invalid outlines.
    FileNotFoundError
        Missing files.

    See Also
    --------
    balances_for_outlines : the balances keyed by the outlines' ids.

    Examples
    --------
    Two RGI 7 outlines hold the link-table points of two WGMS glaciers, an RGI 6
    one is linked by id, a fourth one matches nothing:

    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> outlines = gpd.GeoDataFrame(
    ...     {"rgi_id": ["RGI2000-v7.0-G-11-03116", "RGI2000-v7.0-G-11-03119",
    ...                 "RGI60-11.00804", "RGI2000-v7.0-G-11-03124"]},
    ...     geometry=[box(10.70, 46.78, 10.78, 46.82), box(10.78, 46.83, 10.82, 46.86),
    ...               box(10.05, 46.83, 10.10, 46.87), box(10.80, 46.90, 10.85, 46.95)],
    ...     crs="EPSG:4326")
    >>> links = pd.DataFrame({
    ...     "WGMS_ID": [491, 507, 408], "NAME": ["HINTEREIS F.", "KESSELWAND F.", "SILVRETTA"],
    ...     "RGI60_ID": ["RGI60-11.00897", "RGI60-11.00787", "RGI60-11.00804"],
    ...     "CenLon": [10.7584, 10.7907, 10.0766], "CenLat": [46.8003, 46.8424, 46.8524]})
    >>> m = match_outlines(outlines, links)
    >>> m[["glacier_id", "wgms_id", "method", "distance_m"]].round(0)
                    glacier_id  wgms_id    method  distance_m
    0  RGI2000-v7.0-G-11-03116      491  location         0.0
    1  RGI2000-v7.0-G-11-03119      507  location         0.0
    2           RGI60-11.00804      408    rgi_id         0.0
    3  RGI2000-v7.0-G-11-03124     <NA>      <NA>      6441.0
    >>> m.loc[3, "note"]
    'no WGMS glacier matches; nearest: WGMS 507 (KESSELWAND F.) 6441 m away'
    """
    import geopandas as gpd

    gdf = _normalised_outlines(outlines, id_column)
    pts = _wgms_points(links, wgms_glaciers)
    n = len(gdf)
    names = {int(w): nm for w, nm in zip(pts["wgms_id"], pts["name"]) if isinstance(nm, str) and nm}
    gids = [str(g) for g in gdf["glacier_id"]]
    notes: dict[int, list[str]] = {i: [] for i in range(n)}
    problems: list[str] = []
    assigned: dict[int, int] = {}
    method: dict[int, str] = {}
    blocked_rows: set[int] = set()
    blocked_w: set[int] = set()

    def problem(rows: Iterable[int], text: str) -> None:
        for r in rows:
            notes[r].append(text)
        problems.append(text)

    # ---- 1. RGI 5 / RGI 6 ids through the link table
    by_rgi: dict[str, set[int]] = {}
    for c in ("rgi50_id", "rgi60_id"):
        for rid, wid in zip(pts[c], pts["wgms_id"]):
            if isinstance(rid, str) and rid.strip():
                by_rgi.setdefault(rid.strip().upper(), set()).add(int(wid))
    id_cols = ["glacier_id"] + [c for c in _RGI_ID_COLUMNS if c in gdf.columns]
    claims: dict[int, list[int]] = {}
    for r in range(n):
        cands: set[int] = set()
        for c in id_cols:
            v = gdf[c].iloc[r]
            if isinstance(v, str) and v.strip():
                cands |= by_rgi.get(v.strip().upper(), set())
        if len(cands) > 1:
            labels = ", ".join(_label(w, names) for w in sorted(cands))
            problem([r], f"outline {gids[r]} is linked by RGI id to several WGMS glaciers: {labels}; "
                         "left unmatched")
            blocked_rows.add(r)
        elif cands:
            claims.setdefault(cands.pop(), []).append(r)
    for w, rows in claims.items():
        if len(rows) == 1:
            assigned[rows[0]], method[rows[0]] = w, "rgi_id"
        else:
            problem(rows, f"{_label(w, names)} is linked by RGI id to {len(rows)} outlines "
                          f"{[gids[r] for r in rows]}; left unmatched")
            blocked_rows.update(rows)
            blocked_w.add(w)

    # ---- 2. location: WGMS points inside outlines
    located = pts.dropna(subset=["lon", "lat"]).drop_duplicates("wgms_id").reset_index(drop=True)
    if len(located):
        geo = gpd.GeoDataFrame(
            {"wgms_id": located["wgms_id"].to_numpy()},
            geometry=gpd.points_from_xy(located["lon"], located["lat"]), crs="EPSG:4326",
        ).to_crs(gdf.crs)
    else:
        geo = None
    by_id_w = set(assigned.values())
    if geo is not None:
        free = geo[~geo["wgms_id"].isin(by_id_w | blocked_w)]
        inside = gpd.sjoin(free, gdf[[gdf.geometry.name]], how="inner", predicate="intersects")
        loc_cands: dict[int, list[int]] = {}
        for w, grp in inside.groupby("wgms_id", sort=True):
            rows = sorted(int(r) for r in grp["index_right"])
            w = int(w)
            if len(rows) > 1:
                problem(rows, f"the point of {_label(w, names)} lies in {len(rows)} outlines "
                              f"{[gids[r] for r in rows]}; not matched by location")
                for r in rows:
                    if r not in assigned:
                        blocked_rows.add(r)
                continue
            r = rows[0]
            if r in assigned:
                problem([r], f"the point of {_label(w, names)} lies in outline {gids[r]} too, which "
                             f"is matched by RGI id to {_label(assigned[r], names)}; kept that")
            elif r in blocked_rows:
                problem([r], f"the point of {_label(w, names)} lies in outline {gids[r]}, which is "
                             "ambiguous; left unmatched")
            else:
                loc_cands.setdefault(r, []).append(w)
        for r, ws in sorted(loc_cands.items()):
            if len(ws) == 1:
                assigned[r], method[r] = ws[0], "location"
                row = pts[pts["wgms_id"] == ws[0]]
                rgi = sorted({v for c in ("rgi60_id", "rgi50_id") for v in row[c] if isinstance(v, str)})
                if rgi:
                    notes[r].append(f"the link table links it to {', '.join(rgi)}")
            else:
                labels = ", ".join(_label(w, names) for w in ws)
                problem([r], f"outline {gids[r]} holds the points of {len(ws)} WGMS glaciers "
                             f"({labels}); left unmatched")
                blocked_rows.add(r)

    # ---- distances (metres)
    dist = np.full(n, np.nan)
    if geo is not None:
        metric = _metric_crs(gdf)
        g_m = gdf[[gdf.geometry.name]].to_crs(metric)
        p_m = geo.to_crs(metric)
        where = dict(zip(p_m["wgms_id"].astype(int), p_m.geometry))
        for r, w in assigned.items():
            if method[r] == "location":
                dist[r] = 0.0
            elif w in where:
                dist[r] = float(g_m.geometry.iloc[r].distance(where[w]))
                if dist[r] > 0:
                    notes[r].append(f"the WGMS point lies {dist[r]:.0f} m outside this outline")
        rest = [r for r in range(n) if r not in assigned]
        if rest:
            near = gpd.sjoin_nearest(g_m.iloc[rest], p_m, how="left", distance_col="_d")
            near = near[~near.index.duplicated(keep="first")]
            for r, w, d in zip(near.index, near["wgms_id"], near["_d"]):
                dist[r] = float(d)
                if r not in blocked_rows:
                    notes[r].insert(0, f"no WGMS glacier matches; nearest: {_label(int(w), names)} "
                                       f"{d:.0f} m away")
    else:
        for r in range(n):
            if r not in assigned and r not in blocked_rows:
                notes[r].insert(0, "no WGMS glacier matches by RGI id, and no WGMS coordinates to "
                                   "match by location (the link table has no CenLon/CenLat; pass "
                                   "wgms_glaciers=)")

    out = pd.DataFrame({
        "glacier_id": pd.Series(gids, dtype=object),
        "wgms_id": pd.array([assigned.get(r) for r in range(n)], dtype="Int64"),
        "wgms_name": pd.array([names.get(assigned[r]) if r in assigned else None for r in range(n)],
                              dtype="string"),
        "method": pd.array([method.get(r) for r in range(n)], dtype="string"),
        "distance_m": dist,
        "note": pd.array(["; ".join(notes[r]) if notes[r] else None for r in range(n)],
                         dtype="string"),
    })[_MATCH_COLUMNS]
    out.attrs["ambiguities"] = list(problems)
    if problems:
        warnings.warn(
            f"{len(problems)} ambiguous WGMS match(es): {'; '.join(problems[:5])}"
            f"{' ...' if len(problems) > 5 else ''}. See the 'note' column of the match table; "
            "pass an edited table as match= to balances_for_outlines() to decide them", InputWarning,
            stacklevel=2,
        )
    return out


def _outline_mapping(outlines: Any, source: Any, table: pd.DataFrame, *, links: Any, match: Any,
                     id_column: str | None, wgms_glaciers: Any, what: str) -> tuple[dict[str, int], pd.DataFrame]:
    """``{glacier_id: wgms_id}`` of the outlines matched to a WGMS glacier with rows in ``table``, and
    the match rows used (shared by the ``*_for_outlines`` readers)."""
    if match is None:
        if outlines is None:
            raise InputError("pass the outlines (or a match table, match=)")
        if links is None and wgms_glaciers is not None and not (
            isinstance(source, (str, os.PathLike)) and Path(source).is_dir()
        ):
            lk = None
        else:
            lk = links_from(source, links)
        match = match_outlines(outlines, lk, id_column=id_column, wgms_glaciers=wgms_glaciers)
    else:
        missing = [c for c in ("glacier_id", "wgms_id") if c not in match.columns]
        if missing:
            raise InputError(f"the match table lacks column(s) {missing}; found {list(match.columns)} "
                             "(make it with match_outlines())")
        if outlines is not None:
            ids = set(str(g) for g in _normalised_outlines(outlines, id_column)["glacier_id"])
            match = match[match["glacier_id"].astype(str).isin(ids)]
    m = match.copy()
    m["glacier_id"] = m["glacier_id"].astype(str)
    m["wgms_id"] = pd.to_numeric(m["wgms_id"], errors="coerce").astype("Int64")
    dup = m["glacier_id"].duplicated()
    if dup.any():
        raise InputError(f"the match table lists glacier(s) {sorted(set(m['glacier_id'][dup]))[:10]} "
                         "more than once")
    matched = m[m["wgms_id"].notna()]
    have = set(int(w) for w in table["wgms_id"])
    use = matched[matched["wgms_id"].astype("int64").isin(have)]
    if use.empty:
        linked = sorted(set(int(w) for w in matched["wgms_id"]))
        raise InputError(
            f"none of the {len(m)} outline(s) matches a WGMS glacier with {what} rows: "
            f"{len(matched)} matched WGMS glacier(s) {linked[:20]}, the {what} table holds WGMS "
            f"ids {sorted(have)[:20]}{' ...' if len(have) > 20 else ''}; outlines e.g. "
            f"{list(m['glacier_id'][:5])}. Inspect match_outlines() for why"
        )
    return dict(zip(use["glacier_id"], use["wgms_id"].astype(int))), use


def _with_methods(out: xr.DataArray, use: pd.DataFrame) -> xr.DataArray:
    """``out`` with the ``match_method`` of each of its glaciers (from the match rows used)."""
    by_id = dict(zip(use["glacier_id"].astype(str), use["method"])) if "method" in use.columns else {}
    return out.assign_coords(match_method=("glacier", np.array(
        [v if isinstance(v := by_id.get(str(g)), str) else "" for g in out["glacier"].values], dtype=object)))


def overview_for_outlines(
    outlines: Any,
    source: PathLike | pd.DataFrame,
    variable: str = "aar",
    *,
    links: PathLike | pd.DataFrame | None = None,
    match: pd.DataFrame | None = None,
    id_column: str | None = None,
    wgms_glaciers: PathLike | pd.DataFrame | None = None,
) -> xr.DataArray:
    """A variable of the WGMS overview table (AAR, ELA, ...) of glacier outlines, keyed by the
    outlines' own ids (matched as in :func:`balances_for_outlines`).

    Parameters
    ----------
    outlines, links, match, id_column, wgms_glaciers
        As in :func:`balances_for_outlines`.
    source
        The overview file, a folder holding it (or a sub-folder of it), or the frame from
        :func:`xfacies.massbalance.wgms.read_overview`.
    variable
        As in :func:`xfacies.massbalance.wgms.overview_for` (``aar`` as a fraction, ``ela_m``, ...).

    Returns
    -------
    xarray.DataArray
        float64 ``(year, glacier)``, ``glacier`` = the outlines' ``glacier_id``, with ``wgms_id``
        and ``match_method`` coordinates.

    Examples
    --------
    >>> aar = overview_for_outlines("../shared/data/oetztal/outlines/rgi7g_hef_complex.shp",
    ...                             "../shared/data/wgms")                         # doctest: +SKIP
    """
    if variable not in OVERVIEW_VARS:
        raise InputError(f"variable must be one of {list(OVERVIEW_VARS)}, got {variable!r}")
    table = load_table(source, read_overview)
    mapping, use = _outline_mapping(outlines, source, table, links=links, match=match, id_column=id_column,
                                    wgms_glaciers=wgms_glaciers, what="overview")
    out = overview_of_ids(table, variable, mapping)
    return _with_methods(out, use)


def periods_for_outlines(
    outlines: Any,
    source: PathLike | pd.DataFrame,
    *,
    season: Literal["summer", "annual"] = "summer",
    links: PathLike | pd.DataFrame | None = None,
    match: pd.DataFrame | None = None,
    id_column: str | None = None,
    wgms_glaciers: PathLike | pd.DataFrame | None = None,
) -> pd.DataFrame:
    """WGMS survey periods of glacier outlines, keyed by the outlines' own ids, for
    :func:`xfacies.products.end_of_season` (``periods=``).

    Parameters
    ----------
    outlines, links, match, id_column, wgms_glaciers
        As in :func:`balances_for_outlines`.
    source
        As in :func:`overview_for_outlines`.
    season
        As in :func:`xfacies.massbalance.wgms.periods_for`.

    Returns
    -------
    pandas.DataFrame
        ``glacier`` (the outlines' ids), ``year``, ``begin``, ``end``, ``wgms_id``, ``fallback``.
    """
    if season not in ("summer", "annual"):
        raise InputError(f"season must be 'summer' or 'annual', got {season!r}")
    table = load_table(source, read_overview)
    mapping, _ = _outline_mapping(outlines, source, table, links=links, match=match, id_column=id_column,
                                  wgms_glaciers=wgms_glaciers, what="overview")
    return periods_of_ids(table, mapping, season)


def balances_for_outlines(
    outlines: Any,
    source: PathLike | pd.DataFrame,
    *,
    links: PathLike | pd.DataFrame | None = None,
    kind: Literal["annual", "winter", "summer"] = "annual",
    match: pd.DataFrame | None = None,
    id_column: str | None = None,
    wgms_glaciers: PathLike | pd.DataFrame | None = None,
) -> xr.DataArray:
    """WGMS mass balances of glacier outlines, keyed by the outlines' own ids.

    Works for any outlines -- RGI 6 / RGI 5 (matched by id) as well as RGI 7
    or others (matched by location) -- through :func:`match_outlines`.

    Parameters
    ----------
    outlines
        Glacier outlines (GeoDataFrame or vector file).  With ``match`` given,
        only its rows whose ``glacier_id`` is among these outlines are used
        (``None``: all rows of ``match``).
    source
        A directory holding ``mbdata_WGMS-*.csv`` (and the link table), a file,
        or the frame from :func:`read_mass_balance`.
    links
        The RGI-WGMS link table (path or frame); default: the one in
        ``source``.  Not needed with ``match``.
    kind
        ``"annual"``, ``"winter"`` or ``"summer"`` balance.
    match
        A match table (:func:`match_outlines`, perhaps edited by hand): columns
        ``glacier_id`` and ``wgms_id`` (missing = unmatched).
    id_column, wgms_glaciers
        Passed to :func:`match_outlines`.

    Returns
    -------
    xarray.DataArray
        float64 ``(year, glacier)`` in **m w.e.** for the outlines matched to a
        WGMS glacier that has rows in the mass-balance table, in the outlines'
        order; ``glacier`` = the outlines' ``glacier_id``; extra coordinates
        ``wgms_id``, ``wgms_name`` and ``match_method``.  Outlines left out are
        those without such a match: compare ``result.glacier`` with the
        outlines, or read the match table, to list them.

    Raises
    ------
    ValueError
        No outline matches a WGMS glacier with mass-balance rows (the message
        says how many matched and which WGMS ids the table holds), a bad
        ``kind`` or ``match`` table.

    Examples
    --------
    >>> b = balances_for_outlines("../shared/data/oetztal/outlines/rgi7g_hef_complex.shp",
    ...                           "../shared/data/wgms")                    # doctest: +SKIP
    >>> list(b.wgms_id.values), b.sel(year=2020).values                       # doctest: +SKIP
    ([491, 507, 489], array([-0.97 , -0.522, -0.82 ]))
    """
    if kind not in BALANCE_KINDS:
        raise InputError(f"kind must be one of {BALANCE_KINDS}, got {kind!r}")
    table = load_table(source, read_mass_balance)
    mapping, use = _outline_mapping(outlines, source, table, links=links, match=match, id_column=id_column,
                                    wgms_glaciers=wgms_glaciers, what="mass-balance")
    return _with_methods(balance_array(table, mapping, kind), use)
