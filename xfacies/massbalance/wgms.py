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
:func:`balances_for_outlines` gives their balances keyed by the outlines' own
ids.  :func:`check_source` validates a WGMS input before a long run.

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

import os
import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "CITATION",
    "read_mass_balance",
    "read_overview",
    "read_links",
    "parse_wgms_date",
    "balance_for",
    "overview_for",
    "periods_for",
    "match_outlines",
    "balances_for_outlines",
    "check_source",
]

#: How to cite the data read by this module.
CITATION = (
    "WGMS (2021): Fluctuations of Glaciers Database. World Glacier Monitoring Service, "
    "Zurich, Switzerland. doi:10.5904/wgms-fog-2021-05"
)

PathLike = str | os.PathLike

_MB_GLOB = "mbdata_WGMS-*.csv"
_LINKS_NAME = "rgi_wgms_links.csv"
_LINKS_DATED = re.compile(r"^rgi_wgms_links_(\d{8})\.csv$", re.IGNORECASE)
_OVERVIEW_GLOB = "*MASS-BALANCE-OVERVIEW*.csv"
_BALANCE_KINDS = ("annual", "winter", "summer")


# --------------------------------------------------------------------------- helpers
def _files(path: PathLike | Sequence[PathLike], pattern: str, what: str) -> list[Path]:
    if isinstance(path, (str, os.PathLike)):
        p = Path(path)
        if p.is_dir():
            files = sorted(p.glob(pattern))
            if not files:
                raise FileNotFoundError(
                    f"no {what} files matching {pattern!r} in {p}; pass the file path(s) instead"
                )
            return files
        if not p.exists():
            raise FileNotFoundError(f"{what} file {p} does not exist")
        return [p]
    files = [Path(f) for f in path]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise FileNotFoundError(f"{what} file(s) do not exist: {missing}")
    if not files:
        raise ValueError(f"no {what} files given")
    return files


def _require(df: pd.DataFrame, cols: Iterable[str], path: Any, what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(
            f"{path} does not look like a WGMS {what} table: missing column(s) {missing}; "
            f"found {list(df.columns)}"
        )


def _read_csv(path: Path, encoding: str) -> pd.DataFrame:
    # latin-1 decodes every byte, so WGMS files never fail to decode; a UTF-8
    # file read as latin-1 only garbles non-ASCII text (names, remarks).
    return pd.read_csv(path, encoding=encoding, low_memory=False)


def _clean_str(s: pd.Series) -> pd.Series:
    return s.astype("string").str.strip()


def _listing(folder: Path, pattern: str = "*", limit: int = 12) -> str:
    """``['a.csv', 'b.csv', ...]`` (or ``no *.csv files``) for error messages."""
    names = sorted(f.name for f in folder.glob(pattern))
    if not names:
        return "nothing" if pattern == "*" else f"no {pattern} files"
    more = f" ... ({len(names)} in all)" if len(names) > limit else ""
    return f"{names[:limit]}{more}"


def _find_links(path: PathLike) -> Path:
    """The link table: ``path`` itself, or the one in the folder ``path``.

    In a folder, ``rgi_wgms_links.csv`` is taken when present, else the
    ``rgi_wgms_links_YYYYMMDD.csv`` with the newest date.
    """
    p = Path(path)
    if not p.is_dir():
        if not p.exists():
            raise FileNotFoundError(f"RGI-WGMS link table {p} does not exist")
        return p
    plain = p / _LINKS_NAME
    if plain.is_file():
        return plain
    dated = [f for f in p.iterdir() if f.is_file() and _LINKS_DATED.match(f.name)]
    if not dated:
        raise FileNotFoundError(
            f"no RGI-WGMS link table in {p}: expected {_LINKS_NAME} or rgi_wgms_links_YYYYMMDD.csv "
            f"(as WGMS/OGGM ship it); the folder holds {_listing(p, '*.csv')}"
        )
    return max(dated, key=lambda f: (_LINKS_DATED.match(f.name).group(1), f.name))


def parse_wgms_date(
    values: Any,
    *,
    unknown_day: Literal["nat", "mid-month"] = "nat",
) -> pd.Series:
    """Parse WGMS ``YYYYMMDD`` dates in which unknown parts are written ``99``.

    Parameters
    ----------
    values
        Integers, floats or strings like ``20100930`` (a Series or anything
        :class:`pandas.Series` accepts).  Empty / NaN stays ``NaT``.
    unknown_day
        ``"nat"`` (default): any unknown part gives ``NaT``.  ``"mid-month"``:
        an unknown *day* (``99``) with a known month gives the 15th of that
        month; an unknown month still gives ``NaT``.

    Returns
    -------
    pandas.Series
        ``datetime64[ns]``, ``NaT`` where unknown or invalid.

    Examples
    --------
    >>> parse_wgms_date([20100930, 20100999, 20109999, None]).dt.strftime("%Y-%m-%d").tolist()
    ['2010-09-30', nan, nan, nan]
    >>> str(parse_wgms_date(["20100999"], unknown_day="mid-month")[0].date())
    '2010-09-15'
    """
    if unknown_day not in ("nat", "mid-month"):
        raise ValueError(f"unknown_day must be 'nat' or 'mid-month', got {unknown_day!r}")
    s = pd.Series(values)
    num = pd.to_numeric(s, errors="coerce")
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    ok = num.notna() & (num >= 10000101) & (num <= 99991299 + 99)
    if not ok.any():
        return out
    n = num[ok].astype("int64")
    year, month, day = n // 10000, (n // 100) % 100, n % 100
    if unknown_day == "mid-month":
        day = day.where(~((day == 99) & (month >= 1) & (month <= 12)), 15)
    parsed = pd.to_datetime(
        pd.DataFrame({"year": year, "month": month, "day": day}), errors="coerce"
    )
    out[ok] = parsed.astype("datetime64[ns]")
    return out


# --------------------------------------------------------------------------- readers
def read_mass_balance(
    path: PathLike | Sequence[PathLike],
    *,
    encoding: str = "latin-1",
) -> pd.DataFrame:
    """Read WGMS glaciological mass-balance tables (``mbdata_WGMS-*.csv``).

    Parameters
    ----------
    path
        One file, a list of files, or a directory (all ``mbdata_WGMS-*.csv``
        in it are read and concatenated).
    encoding
        File encoding; latin-1 (the WGMS encoding) decodes any file.

    Returns
    -------
    pandas.DataFrame
        One row per glacier-year, sorted by ``wgms_id, year``, columns:

        - ``wgms_id`` (int), ``year`` (int, balance year = year it ends),
          ``name``, ``political_unit`` (str);
        - ``area_km2`` (float, km²);
        - ``annual_balance_mwe``, ``winter_balance_mwe``,
          ``summer_balance_mwe`` (float, **m w.e.** = file value in mm w.e.
          divided by 1000; NaN where not reported);
        - ``remarks`` (str), ``rgi_id`` (str, as in the file -- it mixes RGI 5
          and RGI 6 ids; join through :func:`read_links`, not this column).

        ``attrs["units"]`` maps columns to units, ``attrs["citation"]`` holds
        :data:`CITATION`.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing files, or a file without the WGMS columns.

    Examples
    --------
    >>> import io, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "mbdata_WGMS-00001.csv").write_text(
    ...     "YEAR,WGMS_ID,POLITICAL_UNIT,NAME,AREA,WINTER_BALANCE,SUMMER_BALANCE,"
    ...     "ANNUAL_BALANCE,REMARKS,RGI_ID\\n2020,1,AT,X F.,6.1,1400.0,-2366.0,-966.0,,RGI60-11.00001\\n")
    >>> mb = read_mass_balance(d)
    >>> int(mb.loc[0, "wgms_id"]), int(mb.loc[0, "year"]), float(mb.loc[0, "annual_balance_mwe"])
    (1, 2020, -0.966)
    """
    frames = []
    for f in _files(path, _MB_GLOB, "WGMS mass-balance"):
        raw = _read_csv(f, encoding)
        _require(raw, ["YEAR", "WGMS_ID", "ANNUAL_BALANCE"], f, "mass-balance (mbdata)")
        df = pd.DataFrame(
            {
                "wgms_id": pd.to_numeric(raw["WGMS_ID"], errors="raise").astype("int64"),
                "year": pd.to_numeric(raw["YEAR"], errors="raise").astype("int64"),
                "name": _clean_str(raw.get("NAME", pd.Series(pd.NA, index=raw.index))),
                "political_unit": _clean_str(
                    raw.get("POLITICAL_UNIT", pd.Series(pd.NA, index=raw.index))
                ),
                "area_km2": pd.to_numeric(raw.get("AREA", np.nan), errors="coerce"),
            }
        )
        for kind in _BALANCE_KINDS:
            col = f"{kind.upper()}_BALANCE"
            mm = pd.to_numeric(raw[col], errors="coerce") if col in raw else np.nan
            df[f"{kind}_balance_mwe"] = np.asarray(mm, dtype=float) / 1000.0 * np.ones(len(df))
        df["remarks"] = _clean_str(raw.get("REMARKS", pd.Series(pd.NA, index=raw.index)))
        df["rgi_id"] = _clean_str(raw.get("RGI_ID", pd.Series(pd.NA, index=raw.index)))
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    dup = out.duplicated(["wgms_id", "year"])
    if dup.any():
        raise ValueError(
            "the mass-balance tables hold duplicate glacier-years "
            f"{out.loc[dup, ['wgms_id', 'year']].head(5).values.tolist()}; read each glacier once"
        )
    out = out.sort_values(["wgms_id", "year"], ignore_index=True)
    out.attrs["units"] = {
        "area_km2": "km2",
        "annual_balance_mwe": "m w.e.",
        "winter_balance_mwe": "m w.e.",
        "summer_balance_mwe": "m w.e.",
    }
    out.attrs["citation"] = CITATION
    return out


def read_overview(
    path: PathLike,
    *,
    encoding: str = "latin-1",
    unknown_day: Literal["nat", "mid-month"] = "nat",
) -> pd.DataFrame:
    """Read the WGMS mass-balance overview table (FoG table E).

    Parameters
    ----------
    path
        The ``...-E-MASS-BALANCE-OVERVIEW...csv`` file (or a directory holding
        exactly one such file).
    encoding
        The FoG csv files are latin-1 (the default).
    unknown_day
        How survey dates with an unknown day are parsed (see
        :func:`parse_wgms_date`); unknown months always give ``NaT``.

    Returns
    -------
    pandas.DataFrame
        One row per glacier-year, sorted by ``wgms_id, year``:

        - ``wgms_id``, ``year`` (int), ``name``, ``political_unit``,
          ``time_system`` (str: FXD fixed date, FLO floating, STR
          stratigraphic, OTH, or missing);
        - ``begin_period``, ``end_winter``, ``end_period`` (datetime64, ``NaT``
          where unknown) and the raw ``YYYYMMDD`` text in
          ``begin_period_raw`` ... ``end_period_raw``;
        - ``ela_m`` (m a.s.l.) and ``ela_prefix`` (``>``/``<`` when the ELA lies
          above/below the glacier), ``ela_unc_m``;
        - ``acc_area_km2``, ``abl_area_km2`` (km²);
        - ``aar`` (fraction 0-1) and ``aar_percent`` (as in the file);
        - the remaining columns lower-cased (``investigator``, ``reference``,
          ``remarks``, ...).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "E.csv"
    >>> _ = f.write_bytes(("POLITICAL_UNIT,NAME,WGMS_ID,Year,TIME_SYSTEM,BEGIN_PERIOD,END_WINTER,"
    ...     "END_PERIOD,ELA,AAR\\nCH,SILVRETTA,408,2010,OTH,20090926,20100520,20100999,2814,44\\n"
    ...     ).encode("latin-1"))
    >>> ov = read_overview(f)
    >>> ov.loc[0, "aar"], ov.loc[0, "ela_m"], ov.loc[0, "end_period"]
    (np.float64(0.44), np.float64(2814.0), NaT)
    """
    p = Path(path)
    if p.is_dir():
        files = _files(p, _OVERVIEW_GLOB, "WGMS mass-balance overview")
        if len(files) != 1:
            raise ValueError(f"{p} holds {len(files)} overview files {files}; pass one of them")
        p = files[0]
    elif not p.exists():
        raise FileNotFoundError(f"WGMS overview file {p} does not exist")
    raw = _read_csv(p, encoding)
    raw.columns = [str(c).strip() for c in raw.columns]
    upper = {c.upper(): c for c in raw.columns}
    _require(pd.DataFrame(columns=list(upper)), ["WGMS_ID", "YEAR"], p, "mass-balance overview (E)")

    def col(name: str) -> pd.Series:
        c = upper.get(name)
        return raw[c] if c is not None else pd.Series(np.nan, index=raw.index)

    out = pd.DataFrame(
        {
            "wgms_id": pd.to_numeric(col("WGMS_ID"), errors="raise").astype("int64"),
            "year": pd.to_numeric(col("YEAR"), errors="raise").astype("int64"),
            "name": _clean_str(col("NAME")),
            "political_unit": _clean_str(col("POLITICAL_UNIT")),
            "time_system": _clean_str(col("TIME_SYSTEM")),
        }
    )
    for d in ("BEGIN_PERIOD", "END_WINTER", "END_PERIOD"):
        rawd = pd.to_numeric(col(d), errors="coerce")
        out[d.lower()] = parse_wgms_date(rawd, unknown_day=unknown_day).to_numpy()
        out[d.lower() + "_raw"] = rawd.astype("Int64").astype("string")
    out["ela_m"] = pd.to_numeric(col("ELA"), errors="coerce").astype(float)
    out["ela_prefix"] = _clean_str(col("ELA_PREFIX"))
    out["ela_unc_m"] = pd.to_numeric(col("ELA_UNC"), errors="coerce").astype(float)
    out["acc_area_km2"] = pd.to_numeric(col("ACC_AREA"), errors="coerce").astype(float)
    out["abl_area_km2"] = pd.to_numeric(col("ABL_AREA"), errors="coerce").astype(float)
    pct = pd.to_numeric(col("AAR"), errors="coerce").astype(float)
    bad = (pct < 0) | (pct > 100)
    if bad.any():
        raise ValueError(
            f"{p}: AAR values outside 0-100 % {pct[bad].head(5).tolist()}; the overview table "
            "gives AAR in percent"
        )
    out["aar"] = pct / 100.0
    out["aar_percent"] = pct
    done = {"WGMS_ID", "YEAR", "NAME", "POLITICAL_UNIT", "TIME_SYSTEM", "BEGIN_PERIOD",
            "END_WINTER", "END_PERIOD", "ELA", "ELA_PREFIX", "ELA_UNC", "ACC_AREA", "ABL_AREA", "AAR"}
    for u, c in upper.items():
        if u not in done and not u.startswith("UNNAMED"):
            out[u.lower()] = raw[c].to_numpy()
    dup = out.duplicated(["wgms_id", "year"])
    if dup.any():
        raise ValueError(
            f"{p}: duplicate glacier-years {out.loc[dup, ['wgms_id', 'year']].head(5).values.tolist()}"
        )
    out = out.sort_values(["wgms_id", "year"], ignore_index=True)
    out.attrs["units"] = {"ela_m": "m", "ela_unc_m": "m", "acc_area_km2": "km2",
                          "abl_area_km2": "km2", "aar": "1", "aar_percent": "%"}
    out.attrs["citation"] = CITATION
    return out


def read_links(path: PathLike, *, encoding: str = "latin-1") -> pd.DataFrame:
    """Read the RGI-WGMS link table (``rgi_wgms_links.csv``).

    Parameters
    ----------
    path
        The csv file, or a directory holding it as ``rgi_wgms_links.csv`` or
        under the dated name WGMS/OGGM ship, ``rgi_wgms_links_YYYYMMDD.csv``
        (the undated name wins; of several dated ones the newest date).
    encoding
        File encoding (latin-1 decodes any file).

    Returns
    -------
    pandas.DataFrame
        One row per WGMS glacier: ``wgms_id`` (int), ``name``,
        ``political_unit``, ``rgi50_id``, ``rgi60_id`` (str, missing as
        ``<NA>``), then the other columns lower-cased (the WGMS/OGGM tables
        carry the RGI centre point as ``cenlon``, ``cenlat``).
        ``attrs["path"]`` is the file read.

    Raises
    ------
    FileNotFoundError
        No such file, or a folder without a link table (the message lists the
        csv files it holds).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "links.csv"
    >>> _ = f.write_text("NAME,WGMS_ID,RGI50_ID,RGI60_ID\\nHINTEREIS F.,491,RGI50-11.00897,RGI60-11.00897\\n")
    >>> links = read_links(f)
    >>> int(links.loc[0, "wgms_id"]), links.loc[0, "rgi50_id"]
    (491, 'RGI50-11.00897')
    """
    p = _find_links(path)
    raw = _read_csv(p, encoding)
    upper = {str(c).strip().upper(): c for c in raw.columns}
    _require(pd.DataFrame(columns=list(upper)), ["WGMS_ID"], p, "RGI link")
    if "RGI50_ID" not in upper and "RGI60_ID" not in upper:
        raise ValueError(f"{p}: the link table has neither RGI50_ID nor RGI60_ID columns")

    def col(name: str) -> pd.Series:
        c = upper.get(name)
        return _clean_str(raw[c]) if c is not None else pd.Series(pd.NA, index=raw.index, dtype="string")

    out = pd.DataFrame(
        {
            "wgms_id": pd.to_numeric(raw[upper["WGMS_ID"]], errors="raise").astype("int64"),
            "name": col("NAME"),
            "political_unit": col("POLITICAL_UNIT"),
            "rgi50_id": col("RGI50_ID").replace("", pd.NA),
            "rgi60_id": col("RGI60_ID").replace("", pd.NA),
        }
    )
    done = {"WGMS_ID", "NAME", "POLITICAL_UNIT", "RGI50_ID", "RGI60_ID"}
    for u, c in upper.items():
        if u not in done and not u.startswith("UNNAMED"):
            out[u.lower()] = raw[c].to_numpy()
    out.attrs["path"] = str(p)
    return out


# --------------------------------------------------------------------------- joins
def _glacier_ids(glaciers: Any) -> list[Any]:
    """Ids from a GeoDataFrame/DataFrame (id column), a DataArray coord, or a list."""
    if isinstance(glaciers, pd.DataFrame):
        from xfacies.sources.outlines import ID_COLUMNS

        for c in ID_COLUMNS:
            if c in glaciers.columns:
                return list(glaciers[c])
        raise ValueError(
            f"cannot find a glacier id column in the outlines (looked for {list(ID_COLUMNS)}); "
            f"columns are {list(glaciers.columns)}"
        )
    if isinstance(glaciers, (xr.DataArray, xr.Dataset)):
        if "glacier" not in glaciers.coords:
            raise ValueError("the xarray object has no 'glacier' coordinate to take ids from")
        return list(glaciers["glacier"].values)
    if isinstance(glaciers, (str, int, np.integer)):
        return [glaciers]
    return list(glaciers)


def _resolve(ids: Sequence[Any], links: pd.DataFrame) -> dict[Any, int]:
    """Map each id (RGI50/RGI60 string or int WGMS id) to a WGMS id; error on misses."""
    by_rgi: dict[str, int] = {}
    for c in ("rgi50_id", "rgi60_id"):
        if c in links:
            for rid, wid in zip(links[c], links["wgms_id"]):
                if isinstance(rid, str) and rid:
                    by_rgi[rid.strip().upper()] = int(wid)
    known_wgms = set(int(w) for w in links["wgms_id"])
    out: dict[Any, int] = {}
    missing = []
    for i in ids:
        if isinstance(i, (int, np.integer)) and not isinstance(i, bool):
            if int(i) in known_wgms:
                out[i] = int(i)
                continue
        elif isinstance(i, str):
            s = i.strip()
            if s.upper() in by_rgi:
                out[i] = by_rgi[s.upper()]
                continue
            if s.isdigit() and int(s) in known_wgms:
                out[i] = int(s)
                continue
        missing.append(i)
    if missing:
        known = sorted(by_rgi)
        raise ValueError(
            f"glacier id(s) {missing} match no WGMS glacier in the link table; known RGI ids: "
            f"{known[:20]}{' ...' if len(known) > 20 else ''} and WGMS ids {sorted(known_wgms)[:20]}. "
            "Use an RGI50-/RGI60- id or a WGMS id; RGI 7 (or other) outlines are not in the FoG "
            "link table: match them by location with match_outlines() / balances_for_outlines()"
        )
    dup = pd.Series(list(out.values())).duplicated()
    if dup.any():
        raise ValueError(
            f"several given ids map to the same WGMS glacier(s) "
            f"{sorted(set(pd.Series(list(out.values()))[dup]))} (id -> WGMS id: {out}); "
            "pass each glacier once"
        )
    return out


def _load(table: Any, reader: Any) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        return table
    return reader(table)


def _links_from(source: Any, links: Any) -> pd.DataFrame:
    if links is None:
        if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
            return read_links(source)
        raise ValueError(
            "pass links= (the rgi_wgms_links.csv path or read_links() frame) when the "
            "source is not a directory holding rgi_wgms_links[_YYYYMMDD].csv"
        )
    return links if isinstance(links, pd.DataFrame) else read_links(links)


def _to_dataarray(
    table: pd.DataFrame,
    column: str,
    mapping: dict[Any, int],
    *,
    name: str,
    attrs: dict[str, Any],
    what: str,
) -> xr.DataArray:
    ids = list(mapping)
    wanted = list(mapping.values())
    have = set(table["wgms_id"].astype(int))
    absent = [f"{i} (WGMS {w})" for i, w in mapping.items() if w not in have]
    if absent:
        raise ValueError(
            f"glacier(s) {absent} are linked to WGMS but the {what} table has no rows for them; "
            f"it holds WGMS ids {sorted(have)} (for mass balances, read mbdata_WGMS-<id>.csv too)"
        )
    sub = table[table["wgms_id"].isin(wanted)]
    wide = sub.pivot(index="year", columns="wgms_id", values=column).reindex(columns=wanted)
    years = np.arange(int(wide.index.min()), int(wide.index.max()) + 1)
    wide = wide.reindex(years)
    names = sub.drop_duplicates("wgms_id").set_index("wgms_id")["name"].reindex(wanted)
    glacier = np.array([str(i) for i in ids], dtype=object)
    return xr.DataArray(
        wide.to_numpy(dtype=float),
        dims=("year", "glacier"),
        coords={
            "year": ("year", years, {"long_name": "balance year (year in which it ends)"}),
            "glacier": ("glacier", glacier, {"long_name": "glacier id"}),
            "wgms_id": ("glacier", np.array(wanted, dtype=np.int64)),
            "wgms_name": ("glacier", np.array([str(n) for n in names], dtype=object)),
        },
        name=name,
        attrs={**attrs, "source": CITATION},
    )


def balance_for(
    glaciers: Any,
    source: PathLike | pd.DataFrame,
    *,
    links: PathLike | pd.DataFrame | None = None,
    kind: Literal["annual", "winter", "summer"] = "annual",
) -> xr.DataArray:
    """WGMS glaciological mass balance of the given glaciers as ``(year, glacier)``.

    Parameters
    ----------
    glaciers
        Glacier ids: RGI 5 (``RGI50-11.00897``) or RGI 6 (``RGI60-11.00897``)
        strings, integer WGMS ids, a (Geo)DataFrame of outlines (its id column,
        see :data:`xfacies.sources.outlines.ID_COLUMNS`), or an xarray object with a
        ``glacier`` coordinate.
    source
        A directory holding ``mbdata_WGMS-*.csv`` (and ``rgi_wgms_links.csv``),
        a file, or the frame from :func:`read_mass_balance`.
    links
        The RGI-WGMS link table (path or :func:`read_links` frame); default
        the one in ``source`` (``rgi_wgms_links.csv`` or
        ``rgi_wgms_links_YYYYMMDD.csv``).
    kind
        ``"annual"``, ``"winter"`` or ``"summer"`` balance.

    Returns
    -------
    xarray.DataArray
        float64 ``(year, glacier)`` in **m w.e.**, ``glacier`` = the given ids
        (as str, in the given order), ``year`` every year from the first to the
        last reported (NaN where not reported), extra coordinates ``wgms_id``
        and ``wgms_name``.

    Raises
    ------
    ValueError
        Ids that match no glacier in the link table (the message lists them and
        the known ids), or linked glaciers absent from the mass-balance table.

    See Also
    --------
    balances_for_outlines : for RGI 7 (or any) outlines, matched by location too.

    Examples
    --------
    >>> b = balance_for(["RGI60-11.00897", "RGI50-11.00787"], "../shared/data/wgms")  # doctest: +SKIP
    >>> b.sel(year=2020).values                                                       # doctest: +SKIP
    array([-0.97 , -0.522])
    """
    if kind not in _BALANCE_KINDS:
        raise ValueError(f"kind must be one of {_BALANCE_KINDS}, got {kind!r}")
    table = _load(source, read_mass_balance)
    mapping = _resolve(_glacier_ids(glaciers), _links_from(source, links))
    return _to_dataarray(
        table,
        f"{kind}_balance_mwe",
        mapping,
        name=f"{kind}_balance",
        attrs={"long_name": f"WGMS glaciological {kind} mass balance", "units": "m w.e."},
        what="mass-balance",
    )


_OVERVIEW_VARS = {
    "aar": ("accumulation area ratio (WGMS)", "1"),
    "aar_percent": ("accumulation area ratio (WGMS)", "%"),
    "ela_m": ("equilibrium line altitude (WGMS)", "m"),
    "acc_area_km2": ("accumulation area (WGMS)", "km2"),
    "abl_area_km2": ("ablation area (WGMS)", "km2"),
}


def overview_for(
    glaciers: Any,
    source: PathLike | pd.DataFrame,
    variable: str = "aar",
    *,
    links: PathLike | pd.DataFrame | None = None,
) -> xr.DataArray:
    """A variable of the WGMS overview table (AAR, ELA, ...) as ``(year, glacier)``.

    Parameters
    ----------
    glaciers
        Glacier ids as in :func:`balance_for`.
    source
        The overview file, a directory holding it (and ``rgi_wgms_links.csv``),
        or the frame from :func:`read_overview`.
    variable
        One of ``aar`` (fraction), ``aar_percent``, ``ela_m``, ``acc_area_km2``,
        ``abl_area_km2``.
    links
        As in :func:`balance_for`.

    Returns
    -------
    xarray.DataArray
        float64 ``(year, glacier)`` with ``units`` in its attrs.

    Examples
    --------
    >>> aar = overview_for(["RGI60-11.00897"], "../shared/data/wgms")  # doctest: +SKIP
    >>> float(aar.sel(year=2020, glacier="RGI60-11.00897"))            # doctest: +SKIP
    0.32
    """
    if variable not in _OVERVIEW_VARS:
        raise ValueError(f"variable must be one of {list(_OVERVIEW_VARS)}, got {variable!r}")
    table = _load(source, read_overview)
    mapping = _resolve(_glacier_ids(glaciers), _links_from(source, links))
    long_name, units = _OVERVIEW_VARS[variable]
    return _to_dataarray(table, variable, mapping, name=variable,
                         attrs={"long_name": long_name, "units": units}, what="overview")


def periods_for(
    glaciers: Any,
    source: PathLike | pd.DataFrame,
    *,
    links: PathLike | pd.DataFrame | None = None,
    season: Literal["summer", "annual"] = "summer",
) -> pd.DataFrame:
    """Per glacier-year survey periods from the overview table, for :func:`xfacies.products.end_of_season`.

    Parameters
    ----------
    glaciers
        Glacier ids as in :func:`balance_for`.
    source
        The overview file, a directory holding it, or a :func:`read_overview` frame.
    links
        As in :func:`balance_for`.
    season
        ``"summer"``: ``begin = END_WINTER`` (falling back to ``BEGIN_PERIOD``
        when unknown), ``end = END_PERIOD``; ``"annual"``: ``BEGIN_PERIOD`` to
        ``END_PERIOD``.

    Returns
    -------
    pandas.DataFrame
        Columns ``glacier`` (the given ids, str), ``year`` (int), ``begin``,
        ``end`` (datetime64; rows with an unknown ``end`` or ``begin`` are
        dropped), ``wgms_id``.

    Examples
    --------
    >>> p = periods_for(["RGI60-11.00897"], "../shared/data/wgms")  # doctest: +SKIP
    >>> p.iloc[-1][["year", "begin", "end"]].astype(str).tolist()   # doctest: +SKIP
    ['2020', '2020-04-30 00:00:00', '2020-09-30 00:00:00']
    """
    if season not in ("summer", "annual"):
        raise ValueError(f"season must be 'summer' or 'annual', got {season!r}")
    table = _load(source, read_overview)
    mapping = _resolve(_glacier_ids(glaciers), _links_from(source, links))
    rows = []
    for gid, wid in mapping.items():
        sub = table[table["wgms_id"] == wid]
        begin = sub["begin_period"]
        if season == "summer":
            begin = sub["end_winter"].fillna(sub["begin_period"])
        rows.append(pd.DataFrame({"glacier": str(gid), "year": sub["year"].astype(int),
                                  "begin": begin, "end": sub["end_period"], "wgms_id": wid}))
    out = pd.concat(rows, ignore_index=True)
    return out.dropna(subset=["begin", "end"]).reset_index(drop=True)


# --------------------------------------------------------------------------- outlines
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
        raw, where = _read_csv(p, "latin-1"), str(p)
    df = _lower_columns(raw)
    missing = [c for c in ("wgms_id", "latitude", "longitude") if c not in df.columns]
    if missing:
        raise ValueError(
            f"{where} does not look like a WGMS glacier table: missing column(s) "
            f"{[m.upper() for m in missing]}; found {list(raw.columns)}"
        )
    return pd.DataFrame({
        "wgms_id": pd.to_numeric(df["wgms_id"], errors="raise").astype("int64"),
        "name": _clean_str(_column(df, "name")),
        "lon": pd.to_numeric(df["longitude"], errors="coerce").astype(float),
        "lat": pd.to_numeric(df["latitude"], errors="coerce").astype(float),
    })


def _wgms_points(links: Any, wgms_glaciers: Any) -> pd.DataFrame:
    """One row per WGMS glacier: ``wgms_id, name, rgi50_id, rgi60_id, lon, lat``.

    Coordinates come from ``wgms_glaciers`` (LATITUDE/LONGITUDE) where it gives
    them, else from the link table (CenLon/CenLat); NaN when unknown.
    """
    if links is None and wgms_glaciers is None:
        raise ValueError("pass the RGI-WGMS link table (links=) and/or a WGMS glacier table "
                         "(wgms_glaciers=)")
    cols = ["wgms_id", "name", "rgi50_id", "rgi60_id", "lon", "lat"]
    pts = pd.DataFrame({c: pd.Series(dtype=float if c in ("lon", "lat") else object) for c in cols})
    if links is not None:
        lk = _lower_columns(links if isinstance(links, pd.DataFrame) else read_links(links))
        if "wgms_id" not in lk.columns:
            raise ValueError(f"the link table has no WGMS_ID column; found {list(lk.columns)}")
        pts = pd.DataFrame({
            "wgms_id": pd.to_numeric(lk["wgms_id"], errors="raise").astype("int64"),
            "name": _clean_str(_column(lk, "name")),
            "rgi50_id": _clean_str(_column(lk, "rgi50_id")).replace("", pd.NA),
            "rgi60_id": _clean_str(_column(lk, "rgi60_id")).replace("", pd.NA),
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
        from xfacies.sources.outlines import read_outlines

        return read_outlines(outlines, id_column=id_column)
    from xfacies import spatial

    return spatial.as_outlines(outlines)


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
        normalised with :func:`xfacies.sources.outlines.read_outlines`.
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
            "pass an edited table as match= to balances_for_outlines() to decide them",
            UserWarning,
            stacklevel=2,
        )
    return out


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
    if kind not in _BALANCE_KINDS:
        raise ValueError(f"kind must be one of {_BALANCE_KINDS}, got {kind!r}")
    table = _load(source, read_mass_balance)
    if match is None:
        if outlines is None:
            raise ValueError("pass the outlines (or a match table, match=)")
        if links is None and wgms_glaciers is not None and not (
            isinstance(source, (str, os.PathLike)) and Path(source).is_dir()
        ):
            lk = None
        else:
            lk = _links_from(source, links)
        match = match_outlines(outlines, lk, id_column=id_column, wgms_glaciers=wgms_glaciers)
    else:
        missing = [c for c in ("glacier_id", "wgms_id") if c not in match.columns]
        if missing:
            raise ValueError(f"the match table lacks column(s) {missing}; found {list(match.columns)} "
                             "(make it with match_outlines())")
        if outlines is not None:
            ids = set(str(g) for g in _normalised_outlines(outlines, id_column)["glacier_id"])
            match = match[match["glacier_id"].astype(str).isin(ids)]
    m = match.copy()
    m["glacier_id"] = m["glacier_id"].astype(str)
    m["wgms_id"] = pd.to_numeric(m["wgms_id"], errors="coerce").astype("Int64")
    dup = m["glacier_id"].duplicated()
    if dup.any():
        raise ValueError(f"the match table lists glacier(s) {sorted(set(m['glacier_id'][dup]))[:10]} "
                         "more than once")
    matched = m[m["wgms_id"].notna()]
    have = set(int(w) for w in table["wgms_id"])
    use = matched[matched["wgms_id"].astype("int64").isin(have)]
    if use.empty:
        linked = sorted(set(int(w) for w in matched["wgms_id"]))
        raise ValueError(
            f"none of the {len(m)} outline(s) matches a WGMS glacier with mass-balance rows: "
            f"{len(matched)} matched WGMS glacier(s) {linked[:20]}, the mass-balance table holds WGMS "
            f"ids {sorted(have)[:20]}{' ...' if len(have) > 20 else ''}; outlines e.g. "
            f"{list(m['glacier_id'][:5])}. Inspect match_outlines() for why"
        )
    mapping = dict(zip(use["glacier_id"], use["wgms_id"].astype(int)))
    out = _to_dataarray(
        table,
        f"{kind}_balance_mwe",
        mapping,
        name=f"{kind}_balance",
        attrs={"long_name": f"WGMS glaciological {kind} mass balance", "units": "m w.e."},
        what="mass-balance",
    )
    methods = use["method"] if "method" in use.columns else pd.Series(pd.NA, index=use.index)
    return out.assign_coords(
        match_method=("glacier", np.array([str(v) if isinstance(v, str) else "" for v in methods],
                                          dtype=object))
    )


# --------------------------------------------------------------------------- checks
def _header(path: Path) -> list[str]:
    try:
        return [str(c).strip() for c in pd.read_csv(path, nrows=0, encoding="latin-1").columns]
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty; expected a csv file with a header row") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} cannot be read as csv: {e}") from None


def _check_links(path: PathLike) -> Path:
    p = _find_links(path)
    cols = _header(p)
    upper = {c.upper() for c in cols}
    if "WGMS_ID" not in upper or not ({"RGI50_ID", "RGI60_ID"} & upper):
        raise ValueError(
            f"{p} does not look like an RGI-WGMS link table: it needs WGMS_ID and RGI50_ID or "
            f"RGI60_ID columns; found {cols}"
        )
    return p


def check_source(
    path: PathLike,
    *,
    links: PathLike | None = None,
    kind: Literal["annual", "winter", "summer"] = "annual",
) -> None:
    """Check a WGMS mass-balance input before a run uses it (headers only, fast).

    Accepted inputs (as ``xfacies run``'s ``[massbalance]`` reads them):

    * a WGMS FoG folder with ``mbdata_WGMS-*.csv`` files (columns ``YEAR``,
      ``WGMS_ID``, ``ANNUAL_BALANCE``) and a link table ``rgi_wgms_links.csv``
      or ``rgi_wgms_links_YYYYMMDD.csv`` -- or ``links`` given;
    * one ``mbdata_WGMS-*.csv`` file with ``links`` given;
    * a csv table with columns ``glacier``, ``year`` and ``balance`` (or
      ``<kind>_balance_mwe`` / ``<kind>_balance``), in m w.e.

    Parameters
    ----------
    path
        The folder or csv file.
    links
        The link table (file or folder), when not in the folder.
    kind
        The balance kind the run uses (``annual``, ``winter``, ``summer``).

    Returns
    -------
    None

    Raises
    ------
    FileNotFoundError
        The path, the mass-balance files or the link table are missing; the
        message names the path, what is missing and what was found.
    ValueError
        A file lacks the columns it needs (they and the columns found are
        named).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "mbdata_WGMS-00491.csv").write_text("YEAR,WGMS_ID,ANNUAL_BALANCE\\n2020,491,-970\\n")
    >>> check_source(d)                      # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: no RGI-WGMS link table in ...; the folder holds ['mbdata_WGMS-00491.csv']
    >>> _ = (d / "rgi_wgms_links_20220112.csv").write_text("WGMS_ID,RGI60_ID\\n491,RGI60-11.00897\\n")
    >>> check_source(d)
    """
    if kind not in _BALANCE_KINDS:
        raise ValueError(f"kind must be one of {_BALANCE_KINDS}, got {kind!r}")
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(
            f"WGMS input {p} does not exist; give a WGMS FoG folder (mbdata_WGMS-*.csv and "
            "rgi_wgms_links[_YYYYMMDD].csv) or a csv with columns glacier, year, balance"
        )
    mb_cols = ["YEAR", "WGMS_ID", "ANNUAL_BALANCE"]

    def check_mbdata(f: Path) -> None:
        cols = _header(f)
        missing = [c for c in mb_cols if c not in {x.upper() for x in cols}]
        if missing:
            raise ValueError(f"{f} does not look like a WGMS mass-balance (mbdata) file: missing "
                             f"column(s) {missing}; found {cols}")

    if p.is_dir():
        files = sorted(p.glob(_MB_GLOB))
        if not files:
            raise FileNotFoundError(
                f"no WGMS mass-balance files matching {_MB_GLOB!r} in {p}; the folder holds "
                f"{_listing(p)}"
            )
        for f in files:
            check_mbdata(f)
        _check_links(links if links is not None else p)
        return
    cols = _header(p)
    upper = {c.upper() for c in cols}
    if set(mb_cols) <= upper:
        if links is None:
            raise FileNotFoundError(
                f"{p} is a WGMS mass-balance (mbdata) file, which needs the RGI-WGMS link table: "
                "give links= (rgi_wgms_links[_YYYYMMDD].csv) or the folder holding both"
            )
        _check_links(links)
        return
    if links is not None:
        check_mbdata(p)  # with a link table the file is read as an mbdata table
    balance = ("balance", f"{kind}_balance_mwe", f"{kind}_balance")
    missing = [c for c in ("glacier", "year") if c not in cols]
    if not any(c in cols for c in balance):
        missing.append(" or ".join(balance))
    if missing:
        raise ValueError(
            f"{p} is neither a WGMS FoG folder nor a balance table: a balance table needs columns "
            f"glacier, year and balance (m w.e.); missing {missing}; found {cols}"
        )
