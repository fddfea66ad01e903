"""The WGMS Fluctuations of Glaciers tables read into tidy pandas/xarray: the readers behind
:mod:`xfacies.massbalance.wgms` (which also gives the matching of outlines to WGMS glaciers,
:mod:`xfacies.massbalance.matching`, built on these).  Use it through :mod:`~xfacies.massbalance.wgms`.

The names without an underscore that are not in ``__all__`` (:func:`read_csv_table`,
:func:`load_table`, :func:`links_from`, :func:`balance_array`, :func:`overview_of_ids`,
:func:`periods_of_ids`, :data:`OVERVIEW_VARS`, :data:`BALANCE_KINDS`) are shared with
:mod:`~xfacies.massbalance.matching`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from xfacies.errors import InputError, UnitsError

__all__ = [
    "CITATION",
    "read_mass_balance",
    "read_overview",
    "read_links",
    "select_region",
    "parse_wgms_date",
    "balance_for",
    "overview_for",
    "periods_for",
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
BALANCE_KINDS = ("annual", "winter", "summer")


# --------------------------------------------------------------------------- helpers
def _files(path: PathLike | Sequence[PathLike], pattern: str, what: str) -> list[Path]:
    if isinstance(path, (str, os.PathLike)):
        p = Path(path)
        if p.is_dir():
            files = sorted(p.glob(pattern)) or _below(p, pattern)
            if not files:
                raise FileNotFoundError(
                    f"no {what} files matching {pattern!r} in {p} or its sub-folders (up to {_DEPTH} levels, "
                    "e.g. mbdata/ or DOI-WGMS-FoG-2021-05/); pass the file path(s) instead"
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
        raise InputError(f"no {what} files given")
    return files


#: How deep below a root folder the readers look for WGMS files (``root/DOI-WGMS-FoG-2021-05/data/``).
_DEPTH = 3


def _below(root: Path, pattern: str) -> list[Path]:
    """Files matching ``pattern`` in the sub-folders of ``root`` (the usual WGMS and OGGM layouts:
    ``mbdata/``, ``DOI-WGMS-FoG-2021-05/``, ...), shallowest first, hidden folders skipped; all
    of the shallowest level that has any."""
    level = [root]
    for _ in range(_DEPTH):
        level = sorted(d for parent in level for d in parent.iterdir()
                       if d.is_dir() and not d.name.startswith("."))
        found = sorted(f for d in level for f in d.glob(pattern) if f.is_file())
        if found:
            return found
    return []


def _require(df: pd.DataFrame, cols: Iterable[str], path: Any, what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(
            f"{path} does not look like a WGMS {what} table: missing column(s) {missing}; "
            f"found {list(df.columns)}"
        )


def read_csv_table(path: Path, encoding: str) -> pd.DataFrame:
    # latin-1 decodes every byte, so WGMS files never fail to decode; a UTF-8
    # file read as latin-1 only garbles non-ASCII text (names, remarks).
    df = pd.read_csv(path, encoding=encoding, low_memory=False)
    # a UTF-8 byte-order mark (Excel writes one) read as latin-1 or utf-8 sticks to the first header
    return df.rename(columns=lambda c: str(c).removeprefix("\ufeff").removeprefix("ï»¿").strip())


def _years(values: pd.Series, path: Path) -> pd.Series:
    """The YEAR column as whole years; a fractional year (1953.5) is refused, not truncated."""
    y = pd.to_numeric(values, errors="raise")
    frac = y.notna() & (y != np.floor(y))
    if frac.any():
        raise InputError(f"{path}: YEAR values {y[frac].head(5).tolist()} are not whole years; the WGMS YEAR is "
                         "the (hydrological) year in which the balance period ends: fix those rows")
    return y.astype("int64")


def _check_mm(mm: pd.Series, col: str, path: Path) -> None:
    """WGMS FoG balances are mm w.e.; a column already in m w.e. would be divided by 1000 again."""
    v = np.abs(pd.to_numeric(mm, errors="coerce").dropna().to_numpy(dtype=float))
    v = v[v > 0]
    if v.size >= 3 and np.median(v) < 20:
        raise InputError(
            f"{path}: {col} has a median magnitude of {np.median(v):.3g}, which looks like m w.e.; WGMS FoG "
            "gives balances in mm w.e. and this reader divides them by 1000. Multiply that column by 1000 "
            "(or give the balances as a plain CSV of glacier, year, balance in m w.e.)")


def clean_str(s: pd.Series) -> pd.Series:
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
    if not dated:  # the usual layouts keep it in a sub-folder
        below = _below(p, _LINKS_NAME) or [f for f in _below(p, "rgi_wgms_links_*.csv") if _LINKS_DATED.match(f.name)]
        if below and below[0].name == _LINKS_NAME:
            return below[0]
        dated = below
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
        raise InputError(f"unknown_day must be 'nat' or 'mid-month', got {unknown_day!r}")
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
    political_unit: str | Sequence[str] | None = None,
    rgi_region: int | Sequence[int] | None = None,
) -> pd.DataFrame:
    """Read WGMS glaciological mass-balance tables (``mbdata_WGMS-*.csv``).

    Parameters
    ----------
    path
        One file, a list of files, or a directory (all ``mbdata_WGMS-*.csv``
        in it are read and concatenated).
    encoding
        File encoding; latin-1 (the WGMS encoding) decodes any file.
    political_unit, rgi_region
        Keep only these countries (WGMS political-unit codes, e.g. ``"CH"`` or ``["AT", "CH"]``)
        and/or RGI first-order regions (e.g. ``11``, Central Europe, read from the ``RGI_ID``
        column; RGI 5 and 6 share the region numbers).  A filter that keeps nothing is an error
        listing what the files hold.

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
        raw = read_csv_table(f, encoding)
        _require(raw, ["YEAR", "WGMS_ID", "ANNUAL_BALANCE"], f, "mass-balance (mbdata)")
        df = pd.DataFrame(
            {
                "wgms_id": pd.to_numeric(raw["WGMS_ID"], errors="raise").astype("int64"),
                "year": _years(raw["YEAR"], f),
                "name": clean_str(raw.get("NAME", pd.Series(pd.NA, index=raw.index))),
                "political_unit": clean_str(
                    raw.get("POLITICAL_UNIT", pd.Series(pd.NA, index=raw.index))
                ),
                "area_km2": pd.to_numeric(raw.get("AREA", np.nan), errors="coerce"),
            }
        )
        for kind in BALANCE_KINDS:
            col = f"{kind.upper()}_BALANCE"
            mm = pd.to_numeric(raw[col], errors="coerce") if col in raw else np.nan
            if col in raw:
                _check_mm(mm, col, f)
            df[f"{kind}_balance_mwe"] = np.asarray(mm, dtype=float) / 1000.0 * np.ones(len(df))
        df["remarks"] = clean_str(raw.get("REMARKS", pd.Series(pd.NA, index=raw.index)))
        df["rgi_id"] = clean_str(raw.get("RGI_ID", pd.Series(pd.NA, index=raw.index)))
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    dup = out.duplicated(["wgms_id", "year"])
    if dup.any():
        raise InputError(
            "the mass-balance tables hold duplicate glacier-years "
            f"{out.loc[dup, ['wgms_id', 'year']].head(5).values.tolist()}; read each glacier once"
        )
    out = select_region(out, political_unit=political_unit, rgi_region=rgi_region, what="the mass-balance tables")
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
    political_unit: str | Sequence[str] | None = None,
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
            raise InputError(f"{p} holds {len(files)} overview files {files}; pass one of them")
        p = files[0]
    elif not p.exists():
        raise FileNotFoundError(f"WGMS overview file {p} does not exist")
    raw = read_csv_table(p, encoding)
    raw.columns = [str(c).strip() for c in raw.columns]
    upper = {c.upper(): c for c in raw.columns}
    _require(pd.DataFrame(columns=list(upper)), ["WGMS_ID", "YEAR"], p, "mass-balance overview (E)")

    def col(name: str) -> pd.Series:
        c = upper.get(name)
        return raw[c] if c is not None else pd.Series(np.nan, index=raw.index)

    out = pd.DataFrame(
        {
            "wgms_id": pd.to_numeric(col("WGMS_ID"), errors="raise").astype("int64"),
            "year": _years(col("YEAR"), p),
            "name": clean_str(col("NAME")),
            "political_unit": clean_str(col("POLITICAL_UNIT")),
            "time_system": clean_str(col("TIME_SYSTEM")),
        }
    )
    for d in ("BEGIN_PERIOD", "END_WINTER", "END_PERIOD"):
        rawd = pd.to_numeric(col(d), errors="coerce")
        out[d.lower()] = parse_wgms_date(rawd, unknown_day=unknown_day).to_numpy()
        out[d.lower() + "_raw"] = rawd.astype("Int64").astype("string")
    out["ela_m"] = pd.to_numeric(col("ELA"), errors="coerce").astype(float)
    out["ela_prefix"] = clean_str(col("ELA_PREFIX"))
    out["ela_unc_m"] = pd.to_numeric(col("ELA_UNC"), errors="coerce").astype(float)
    out["acc_area_km2"] = pd.to_numeric(col("ACC_AREA"), errors="coerce").astype(float)
    out["abl_area_km2"] = pd.to_numeric(col("ABL_AREA"), errors="coerce").astype(float)
    pct = pd.to_numeric(col("AAR"), errors="coerce").astype(float)
    bad = (pct < 0) | (pct > 100)
    if bad.any():
        raise UnitsError(
            f"{p}: AAR values outside 0-100 % {pct[bad].head(5).tolist()}; the overview table "
            "gives AAR in percent"
        )
    given = pct.dropna()
    if len(given) >= 3 and given.max() <= 1.0 and (given != np.round(given)).any():
        raise UnitsError(
            f"{p}: AAR values {given.head(5).tolist()} are all at most 1 and not whole numbers: they look like "
            "fractions, but the WGMS overview gives AAR in percent and this reader divides by 100. Multiply "
            "the AAR column by 100")
    out["aar"] = pct / 100.0
    out["aar_percent"] = pct
    done = {"WGMS_ID", "YEAR", "NAME", "POLITICAL_UNIT", "TIME_SYSTEM", "BEGIN_PERIOD",
            "END_WINTER", "END_PERIOD", "ELA", "ELA_PREFIX", "ELA_UNC", "ACC_AREA", "ABL_AREA", "AAR"}
    for u, c in upper.items():
        if u not in done and not u.startswith("UNNAMED"):
            out[u.lower()] = raw[c].to_numpy()
    dup = out.duplicated(["wgms_id", "year"])
    if dup.any():
        raise InputError(
            f"{p}: duplicate glacier-years {out.loc[dup, ['wgms_id', 'year']].head(5).values.tolist()}"
        )
    out = select_region(out, political_unit=political_unit, what=f"{p}")
    out = out.sort_values(["wgms_id", "year"], ignore_index=True)
    out.attrs["units"] = {"ela_m": "m", "ela_unc_m": "m", "acc_area_km2": "km2",
                          "abl_area_km2": "km2", "aar": "1", "aar_percent": "%"}
    out.attrs["citation"] = CITATION
    return out


_RGI_REGION = r"RGI\d{2}-(\d{2})\."


def select_region(table: pd.DataFrame, *, political_unit: str | Sequence[str] | None = None,
                  rgi_region: int | Sequence[int] | None = None, what: str = "the table") -> pd.DataFrame:
    """Rows of a WGMS table in the given countries and/or RGI first-order regions.

    Parameters
    ----------
    table
        A table of :func:`read_mass_balance` or :func:`read_overview` (``political_unit`` column;
        ``rgi_id`` for regions).
    political_unit
        WGMS political-unit code(s), e.g. ``"CH"``; case-insensitive.
    rgi_region
        RGI first-order region number(s), e.g. ``11`` (Central Europe), from ``rgi_id``.

    Raises
    ------
    ValueError
        A filter that keeps no row (the message lists the codes or regions present), or a
        region filter on a table without RGI ids.

    Examples
    --------
    >>> t = pd.DataFrame({"political_unit": ["AT", "CH", "NO"],
    ...                   "rgi_id": ["RGI60-11.00897", "RGI50-11.00804", "RGI60-08.01126"]})
    >>> select_region(t, political_unit="ch").political_unit.tolist()
    ['CH']
    >>> select_region(t, rgi_region=11).political_unit.tolist()
    ['AT', 'CH']
    """
    keep = np.ones(len(table), dtype=bool)
    if political_unit is not None:
        want = {str(u).strip().upper() for u in ([political_unit] if isinstance(political_unit, str) else political_unit)}
        have = table["political_unit"].astype("string").str.strip().str.upper()
        keep &= have.isin(want).fillna(False).to_numpy(dtype=bool)
        if not keep.any():
            raise InputError(f"{what} hold no glacier in political unit(s) {sorted(want)}; they hold "
                             f"{sorted(have.dropna().unique().tolist())}")
    if rgi_region is not None:
        if "rgi_id" not in table.columns:
            raise InputError(f"{what} have no RGI ids, so no RGI region: filter by political_unit, or use "
                             "rgi_region on read_mass_balance (its RGI_ID column)")
        want_r = {int(r) for r in ([rgi_region] if np.isscalar(rgi_region) else rgi_region)}
        region = pd.to_numeric(table["rgi_id"].astype("string").str.extract(_RGI_REGION, expand=False),
                               errors="coerce")
        keep &= region.isin(want_r).to_numpy(dtype=bool)
        if not keep.any():
            raise InputError(f"{what} hold no glacier in RGI region(s) {sorted(want_r)}; they hold regions "
                             f"{sorted(int(r) for r in region.dropna().unique())}")
    out = table.loc[keep].reset_index(drop=True)
    out.attrs = dict(table.attrs)
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
    raw = read_csv_table(p, encoding)
    upper = {str(c).strip().upper(): c for c in raw.columns}
    _require(pd.DataFrame(columns=list(upper)), ["WGMS_ID"], p, "RGI link")
    if "RGI50_ID" not in upper and "RGI60_ID" not in upper:
        raise InputError(f"{p}: the link table has neither RGI50_ID nor RGI60_ID columns")

    def col(name: str) -> pd.Series:
        c = upper.get(name)
        return clean_str(raw[c]) if c is not None else pd.Series(pd.NA, index=raw.index, dtype="string")

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
        from xfacies.outlines import ID_COLUMNS

        for c in ID_COLUMNS:
            if c in glaciers.columns:
                return list(glaciers[c])
        raise InputError(
            f"cannot find a glacier id column in the outlines (looked for {list(ID_COLUMNS)}); "
            f"columns are {list(glaciers.columns)}"
        )
    if isinstance(glaciers, (xr.DataArray, xr.Dataset)):
        if "glacier" not in glaciers.coords:
            raise InputError("the xarray object has no 'glacier' coordinate to take ids from")
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
        raise InputError(
            f"glacier id(s) {missing} match no WGMS glacier in the link table; known RGI ids: "
            f"{known[:20]}{' ...' if len(known) > 20 else ''} and WGMS ids {sorted(known_wgms)[:20]}. "
            "Use an RGI50-/RGI60- id or a WGMS id; RGI 7 (or other) outlines are not in the FoG "
            "link table: match them by location with match_outlines() / balances_for_outlines()"
        )
    dup = pd.Series(list(out.values())).duplicated()
    if dup.any():
        raise InputError(
            f"several given ids map to the same WGMS glacier(s) "
            f"{sorted(set(pd.Series(list(out.values()))[dup]))} (id -> WGMS id: {out}); "
            "pass each glacier once"
        )
    return out


def load_table(table: Any, reader: Any) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        return table
    return reader(table)


def links_from(source: Any, links: Any) -> pd.DataFrame:
    if links is None:
        if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
            return read_links(source)
        raise InputError(
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
        raise InputError(
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
        see :data:`xfacies.outlines.ID_COLUMNS`), or an xarray object with a
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
    if kind not in BALANCE_KINDS:
        raise InputError(f"kind must be one of {BALANCE_KINDS}, got {kind!r}")
    table = load_table(source, read_mass_balance)
    mapping = _resolve(_glacier_ids(glaciers), links_from(source, links))
    return balance_array(table, mapping, kind)


def balance_array(table: pd.DataFrame, mapping: dict[Any, int], kind: str) -> xr.DataArray:
    """``(year, glacier)`` balances in m w.e. of ``mapping`` (glacier id -> WGMS id)."""
    return _to_dataarray(
        table,
        f"{kind}_balance_mwe",
        mapping,
        name=f"{kind}_balance",
        attrs={"long_name": f"WGMS glaciological {kind} mass balance", "units": "m w.e."},
        what="mass-balance",
    )


OVERVIEW_VARS = {
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
    if variable not in OVERVIEW_VARS:
        raise InputError(f"variable must be one of {list(OVERVIEW_VARS)}, got {variable!r}")
    table = load_table(source, read_overview)
    mapping = _resolve(_glacier_ids(glaciers), links_from(source, links))
    return overview_of_ids(table, variable, mapping)


def overview_of_ids(table: pd.DataFrame, variable: str, mapping: dict[Any, int]) -> xr.DataArray:
    """:func:`overview_for` of glacier ids already resolved to WGMS ids."""
    long_name, units = OVERVIEW_VARS[variable]
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
        dropped), ``wgms_id`` and ``fallback`` (text, empty when none: e.g.
        ``"begin = BEGIN_PERIOD: END_WINTER unknown"``, carried into
        :func:`~xfacies.products.end_of_season`'s ``flag``).

    Examples
    --------
    >>> p = periods_for(["RGI60-11.00897"], "../shared/data/wgms")  # doctest: +SKIP
    >>> p.iloc[-1][["year", "begin", "end"]].astype(str).tolist()   # doctest: +SKIP
    ['2020', '2020-04-30 00:00:00', '2020-09-30 00:00:00']
    """
    if season not in ("summer", "annual"):
        raise InputError(f"season must be 'summer' or 'annual', got {season!r}")
    table = load_table(source, read_overview)
    mapping = _resolve(_glacier_ids(glaciers), links_from(source, links))
    return periods_of_ids(table, mapping, season)


def periods_of_ids(table: pd.DataFrame, mapping: dict[Any, int], season: str) -> pd.DataFrame:
    """:func:`periods_for` of glacier ids already resolved to WGMS ids."""
    rows = []
    for gid, wid in mapping.items():
        sub = table[table["wgms_id"] == wid]
        begin = sub["begin_period"]
        fallback = pd.Series("", index=sub.index, dtype=object)
        if season == "summer":
            fallback = fallback.where(sub["end_winter"].notna(),
                                      "begin = BEGIN_PERIOD: END_WINTER unknown (the period spans the winter)")
            begin = sub["end_winter"].fillna(sub["begin_period"])
        rows.append(pd.DataFrame({"glacier": str(gid), "year": sub["year"].astype(int),
                                  "begin": begin, "end": sub["end_period"], "wgms_id": wid,
                                  "fallback": fallback}))
    out = pd.concat(rows, ignore_index=True)
    return out.dropna(subset=["begin", "end"]).reset_index(drop=True)


# --------------------------------------------------------------------------- checks
def _header(path: Path) -> list[str]:
    try:
        return [str(c).strip() for c in pd.read_csv(path, nrows=0, encoding="latin-1").columns]
    except pd.errors.EmptyDataError:
        raise InputError(f"{path} is empty; expected a csv file with a header row") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise InputError(f"{path} cannot be read as csv: {e}") from None


def _check_links(path: PathLike) -> Path:
    p = _find_links(path)
    cols = _header(p)
    upper = {c.upper() for c in cols}
    if "WGMS_ID" not in upper or not ({"RGI50_ID", "RGI60_ID"} & upper):
        raise InputError(
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
    if kind not in BALANCE_KINDS:
        raise InputError(f"kind must be one of {BALANCE_KINDS}, got {kind!r}")
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
            raise InputError(f"{f} does not look like a WGMS mass-balance (mbdata) file: missing "
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
        raise InputError(
            f"{p} is neither a WGMS FoG folder nor a balance table: a balance table needs columns "
            f"glacier, year and balance (m w.e.); missing {missing}; found {cols}"
        )
