"""``xfacies run``: glaciers x years, from a STAC search to a mass-balance report.

One function, :func:`run` (and :func:`run_config` for a TOML file; the command
line ``xfacies run config.toml`` calls it), chains the whole package:

1. glacier outlines (:func:`xfacies.read_outlines`, optionally a subset of
   ids) or synthetic glaciers;
2. a lazy reflectance cube from a STAC API (:func:`xfacies.open_stac`) and a
   DEM on its grid (:func:`xfacies.open_dem`);
3. blockwise features (:func:`xfacies.features.features`) and chunked
   classification with confidence (:func:`xfacies.classify`);
4. class maps + confidence into ``<dir>/facies.zarr``, **one region per date,
   written in parallel by the Dask workers** (:func:`xfacies.io.layout_regions`,
   :func:`xfacies.io.region_writes`); each date is recorded once complete;
5. per-glacier facies fractions into ``<dir>/fractions.zarr``;
6. AAR proxy and snowline altitude per date, and their end-of-season values
   per hydrological year (``<dir>/products.zarr``,
   ``<dir>/report/end_of_season.csv``);
7. with WGMS balances: the regression of the end-of-season AAR proxy on the
   balance (:func:`xfacies.regress`): ``report/massbalance.csv``,
   ``report/massbalance.png``;
8. ``report/summary.txt`` (also printed), ``report/fractions.png`` and the log
   ``<dir>/xfacies-run.log``.

Everything stays lazy until the writes.  The run is **idempotent and
resumable**: dates already complete in the store are not computed again
(``resume=True``, the default); an interrupted run resumes at the dates that
were not finished; ``resume=False`` recomputes every date and replaces it in
place (never duplicating a date).

Scheduling: a :class:`distributed.LocalCluster` by default (the dashboard link
is printed), an existing cluster with ``[cluster] scheduler = "tcp://..."``
(or ``--scheduler``), or dask's local ``"threads"`` / ``"synchronous"``
schedulers for small jobs.

Configuration
-------------
A TOML file; every section and key is optional except ``[area]`` (outlines or
synthetic) and ``[time]``.  Unknown sections or keys are errors that list the
valid ones.  Relative paths are relative to the config file.

.. code-block:: toml

    [area]
    outlines = "rgi/oetztal.shp"          # or: synthetic = {size = 256, seed = 7, dates = 6}
    glaciers = ["RGI60-11.00897"]         # optional subset of ids
    [time]
    start = 2017                           # a year or a date
    end = "2023-10-31"
    [stac]
    catalog = "earth-search"               # "planetary-computer", a STAC API URL, or "synthetic"
    sensors = ["sentinel-2"]
    max_cloud = 60
    [dem]
    source = "cop-dem-glo-30"              # or a raster path, or "synthetic"
    [model]
    path = "demo"                          # or a bundle path
    method = "dense"
    [massbalance]
    wgms = "wgms/"                         # WGMS FoG folder, or a CSV glacier,year,balance
    [output]
    dir = "hef-run"
    [cluster]
    n_workers = 2                          # or scheduler = "tcp://10.0.0.5:8786"

Examples
--------
>>> from xfacies.pipeline import run, load_config
>>> cfg = load_config("run.toml")                              # doctest: +SKIP
>>> result = run(cfg)                                           # doctest: +SKIP
>>> result.table.head()                                         # doctest: +SKIP
>>> print(result.summary())                                     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import logging
import os
import sys
import time as _time
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np
import pandas as pd

__all__ = [
    "RunConfig",
    "AreaConfig",
    "SyntheticArea",
    "TimeConfig",
    "StacConfig",
    "DemConfig",
    "ModelConfig",
    "ProductsConfig",
    "MassBalanceConfig",
    "OutputConfig",
    "ClusterConfig",
    "RunResult",
    "load_config",
    "run",
    "run_config",
]

log = logging.getLogger("xfacies.pipeline")

DateLike = Union[str, int, _dt.date]


# =========================================================================== configuration
@dataclass
class SyntheticArea:
    """Synthetic glaciers (``[area] synthetic = {...}``): no download at all.

    Attributes
    ----------
    size
        Scene size in pixels (10 m).
    seed
        Seed of :mod:`xfacies.synthetic` (same seed, same glaciers).
    n_glaciers
        Number of glaciers (default: from the size).
    dates
        Acquisitions per year of ``[time]`` (spread over June-September), or
        a list of dates.
    """

    size: int = 256
    seed: int = 7
    n_glaciers: int | None = None
    dates: Union[int, list[DateLike]] = 6


@dataclass
class AreaConfig:
    """``[area]``: which glaciers.

    Attributes
    ----------
    outlines
        Vector file of glacier outlines (RGI 6/7, GLIMS; see :func:`xfacies.read_outlines`).
    synthetic
        Synthetic glaciers instead of outlines (:class:`SyntheticArea`).
    glaciers
        Optional subset of glacier ids.
    id_column
        Id column of the outlines (default: detected).
    """

    outlines: str | None = None
    synthetic: SyntheticArea | None = None
    glaciers: list[str] | None = None
    id_column: str | None = None


@dataclass
class TimeConfig:
    """``[time]``: first and last day, as dates or years (``end = 2023`` is 31 Dec 2023)."""

    start: DateLike = ""
    end: DateLike = ""


@dataclass
class StacConfig:
    """``[stac]``: where the imagery comes from (see :func:`xfacies.open_stac`).

    Attributes
    ----------
    catalog
        ``"earth-search"``, ``"planetary-computer"``, a STAC API URL, or
        ``"synthetic"`` (the synthetic area's season written as COGs and served
        on loopback by ``rustac``, as ``xfacies demo`` does).
    provider
        For a URL: whose conventions it follows.
    sensors, max_cloud, resolution, crs, buffer
        As in :func:`xfacies.open_stac`.
    chunks
        Spatial chunk size (pixels) of the lazy cube; the Zarr chunks follow.
    """

    catalog: str = "earth-search"
    provider: str | None = None
    sensors: list[str] = field(default_factory=lambda: ["sentinel-2", "landsat"])
    max_cloud: float | None = None
    resolution: float = 10.0
    crs: Union[str, int] = "utm"
    chunks: int = 1024
    buffer: float = 0.0


@dataclass
class DemConfig:
    """``[dem]``: ``source`` = a DEM collection (``"cop-dem-glo-30"``), a raster path, or ``"synthetic"``."""

    source: str = "cop-dem-glo-30"


@dataclass
class ModelConfig:
    """``[model]``: bundle (``path``: ``"demo"`` or a ``.xfacies`` file) and inference options."""

    path: str = "demo"
    method: Literal["dense", "exact"] = "dense"
    smooth: bool = True
    batch_size: int | None = None


@dataclass
class ProductsConfig:
    """``[products]``: end-of-season selection (see :func:`xfacies.products.end_of_season`).

    Attributes
    ----------
    min_coverage
        Minimum observed share of a glacier for a date to count.
    window
        ``["MM-DD", "MM-DD"]`` end-of-season window.
    include_refrozen
        Count refrozen-like ice as accumulation area.
    snowline
        Also compute the snowline altitude (needs the DEM).
    hydrological_year_start_month
        10 in the northern hemisphere, 4 in the southern.
    """

    min_coverage: float = 0.7
    window: list[str] = field(default_factory=lambda: ["08-01", "10-15"])
    include_refrozen: bool = False
    snowline: bool = True
    hydrological_year_start_month: int = 10


@dataclass
class MassBalanceConfig:
    """``[massbalance]``: the regression against measured balances.

    Attributes
    ----------
    wgms
        A WGMS FoG folder (``mbdata_WGMS-*.csv`` + ``rgi_wgms_links.csv``), or
        a CSV with columns ``glacier``, ``year`` and ``balance`` (m w.e.).
        Absent: no regression.
    links
        The RGI-WGMS link table if not in the folder.
    kind
        ``"annual"``, ``"winter"`` or ``"summer"`` balance.
    by
        ``"global"`` or ``"glacier"`` (see :func:`xfacies.regress`).
    """

    wgms: str | None = None
    links: str | None = None
    kind: Literal["annual", "winter", "summer"] = "annual"
    by: Literal["global", "glacier"] = "global"


@dataclass
class OutputConfig:
    """``[output]``: ``dir`` holds ``facies.zarr``, ``fractions.zarr``, ``products.zarr``, ``report/`` and the log.

    Attributes
    ----------
    dir
        Output folder (created).
    quicklooks
        Also write one facies-map PNG per date into ``report/``.
    zarr_format
        Format of new Zarr stores (3 or 2).
    """

    dir: str = "xfacies-run"
    quicklooks: bool = False
    zarr_format: Literal[2, 3] = 3

    @property
    def path(self) -> Path:
        return Path(self.dir)

    @property
    def store(self) -> Path:
        return self.path / "facies.zarr"

    @property
    def fractions(self) -> Path:
        return self.path / "fractions.zarr"

    @property
    def products(self) -> Path:
        return self.path / "products.zarr"

    @property
    def report(self) -> Path:
        return self.path / "report"

    @property
    def log(self) -> Path:
        return self.path / "xfacies-run.log"


@dataclass
class ClusterConfig:
    """``[cluster]``: where the work runs.

    Attributes
    ----------
    scheduler
        Absent: a new :class:`distributed.LocalCluster`; ``"tcp://host:8786"``:
        an existing cluster; ``"threads"`` or ``"synchronous"``: dask's local
        schedulers (no cluster, fine for small runs).
    n_workers, threads_per_worker, memory_limit
        Of the LocalCluster (worker processes).
    dashboard_address
        Of the LocalCluster (``":0"``: any free port).
    """

    scheduler: str | None = None
    n_workers: int = 2
    threads_per_worker: int = 1
    memory_limit: str = "auto"
    dashboard_address: str = ":8787"


@dataclass
class RunConfig:
    """The whole run configuration (one attribute per TOML section).

    Build it with :func:`load_config` (TOML), :meth:`from_dict` (a mapping,
    validated exactly like TOML) or directly.

    Examples
    --------
    >>> cfg = RunConfig.from_dict({"area": {"synthetic": {"size": 128}},
    ...                            "time": {"start": 2021, "end": 2021},
    ...                            "output": {"dir": "out"}})
    >>> cfg.area.synthetic.size, cfg.model.path, cfg.output.store.name
    (128, 'demo', 'facies.zarr')
    >>> RunConfig.from_dict({"tiem": {}})
    Traceback (most recent call last):
    ...
    ValueError: unknown section [tiem] in the run configuration; valid sections: area, time, stac, dem, model, products, massbalance, output, cluster
    """

    area: AreaConfig = field(default_factory=AreaConfig)
    time: TimeConfig = field(default_factory=TimeConfig)
    stac: StacConfig = field(default_factory=StacConfig)
    dem: DemConfig = field(default_factory=DemConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    products: ProductsConfig = field(default_factory=ProductsConfig)
    massbalance: MassBalanceConfig = field(default_factory=MassBalanceConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: str | os.PathLike | None = None) -> "RunConfig":
        """Validate a mapping (e.g. parsed TOML) into a :class:`RunConfig`.

        Parameters
        ----------
        data
            ``{section: {key: value}}``.
        base
            Folder that relative paths are relative to (default: the current one).

        Raises
        ------
        ValueError
            Unknown sections or keys (the valid ones are listed), wrong types,
            missing or contradictory settings.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"the run configuration must be a table of sections, got {type(data).__name__}")
        sections = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in data if k not in sections]
        if unknown:
            raise ValueError(
                f"unknown section{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(f'[{k}]' for k in unknown)} in the run configuration; "
                f"valid sections: {', '.join(sections)}")
        hints = typing.get_type_hints(cls)
        kwargs = {name: _build(hints[name], data.get(name, {}), name) for name in sections}
        cfg = cls(**kwargs)
        cfg._resolve_paths(Path(base) if base is not None else Path.cwd())
        cfg.validate()
        return cfg

    def _resolve_paths(self, base: Path) -> None:
        def absolute(p: str | None, keep: tuple[str, ...] = ()) -> str | None:
            if p is None or p in keep or "://" in p:
                return p
            q = Path(p).expanduser()
            return str(q if q.is_absolute() else (base / q))

        self.area.outlines = absolute(self.area.outlines)
        self.dem.source = absolute(self.dem.source, ("synthetic", "cop-dem-glo-30", "cop-dem-glo-90"))
        self.model.path = absolute(self.model.path, ("demo",))
        self.massbalance.wgms = absolute(self.massbalance.wgms)
        self.massbalance.links = absolute(self.massbalance.links)
        self.output.dir = absolute(self.output.dir) or self.output.dir

    def validate(self) -> None:
        """Cross-field checks (raise ``ValueError`` with what to change)."""
        a = self.area
        if (a.outlines is None) == (a.synthetic is None):
            raise ValueError("[area] needs exactly one of `outlines` (a vector file of glacier outlines) "
                             "or `synthetic` (e.g. synthetic = {size = 256, seed = 7})")
        for key in ("start", "end"):
            if getattr(self.time, key) in ("", None):
                raise ValueError(f"[time] {key} is missing: give a year (2021) or a date (\"2021-06-01\")")
        start, end = self.time_range
        if end < start:
            raise ValueError(f"[time] end ({end.date()}) is before start ({start.date()})")
        if self.stac.catalog == "synthetic" and a.synthetic is None:
            raise ValueError("[stac] catalog = \"synthetic\" serves the synthetic area's imagery; "
                             "it needs [area] synthetic = {...}")
        if self.dem.source == "synthetic" and a.synthetic is None:
            raise ValueError("[dem] source = \"synthetic\" needs [area] synthetic = {...}")
        if a.synthetic is not None and a.glaciers:
            raise ValueError("[area] glaciers selects ids among outlines; it cannot be used with synthetic")
        w = self.products.window
        if len(w) != 2:
            raise ValueError(f"[products] window must be two \"MM-DD\" strings, got {w!r}")
        if not 0 <= self.products.min_coverage <= 1:
            raise ValueError(f"[products] min_coverage must be within 0..1, got {self.products.min_coverage}")
        if self.stac.chunks < 64:
            raise ValueError(f"[stac] chunks must be at least 64 pixels, got {self.stac.chunks}")
        if self.cluster.n_workers < 1 or self.cluster.threads_per_worker < 1:
            raise ValueError("[cluster] n_workers and threads_per_worker must be at least 1")

    @property
    def time_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """``(start, end)`` timestamps; ``end`` is the end of its day (or year)."""
        return _date(self.time.start, "start", "[time] start"), _date(self.time.end, "end", "[time] end")

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON-serialisable) of the configuration."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))


def _date(v: Any, which: str, where: str) -> pd.Timestamp:
    if isinstance(v, bool):
        raise ValueError(f"{where} must be a year or a date, got {v!r}")
    if isinstance(v, int) or (isinstance(v, str) and v.strip().isdigit() and len(v.strip()) == 4):
        y = int(v)
        return pd.Timestamp(year=y, month=1, day=1) if which == "start" else \
            pd.Timestamp(year=y, month=12, day=31, hour=23, minute=59, second=59)
    try:
        ts = pd.Timestamp(v)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{where} must be a year or a date like \"2021-06-01\", got {v!r}") from e
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    if which == "end" and ts == ts.normalize():
        ts = ts + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
    return ts


# ------------------------------------------------------------------ strict TOML -> dataclass
def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {str: "a string", int: "an integer", float: "a number", bool: "true/false",
            type(None): "absent", _dt.date: "a date"}.get(tp, getattr(tp, "__name__", str(tp)))


def _build(tp: Any, value: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (strictly) and convert it."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ValueError(f"[{where}] must be a table (section), got {value!r}")
        names = [f.name for f in dataclasses.fields(tp)]
        unknown = [k for k in value if k not in names]
        if unknown:
            raise ValueError(
                f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} in [{where}]; "
                f"valid keys: {', '.join(names)}")
        hints = typing.get_type_hints(tp)
        return tp(**{k: _build(hints[k], v, f"{where}.{k}") for k, v in value.items()})
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        for a in args:
            if a is type(None):
                continue
            if dataclasses.is_dataclass(a) and isinstance(value, Mapping):
                return _build(a, value, where)  # a table: its own (precise) errors
            try:
                return _build(a, value, where)
            except ValueError:
                pass
        raise _type_error(where, tp, value)
    if origin is list:
        if not isinstance(value, list):
            raise _type_error(where, tp, value)
        (inner,) = typing.get_args(tp)
        return [_build(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise _type_error(where, tp, value)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(where, tp, value)
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(where, tp, value)
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise _type_error(where, tp, value)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise _type_error(where, tp, value)
        return value
    if tp is _dt.date:
        if not isinstance(value, _dt.date):
            raise _type_error(where, tp, value)
        return value
    raise TypeError(f"internal: no rule for {tp!r}")  # pragma: no cover


def _type_error(where: str, tp: Any, value: Any) -> ValueError:
    section, _, key = where.partition(".")
    loc = f"[{section}] {key}" if key else f"[{section}]"
    return ValueError(f"{loc} must be {_type_name(tp)}, got {value!r} ({type(value).__name__})")


def load_config(path: str | os.PathLike) -> RunConfig:
    """Read and validate a TOML run configuration.

    Parameters
    ----------
    path
        The TOML file.  Relative paths inside are relative to its folder.

    Returns
    -------
    RunConfig

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Invalid TOML (with the line), unknown sections/keys (the valid ones
        listed), wrong types.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "run.toml"
    >>> _ = p.write_text('[area]\\nsynthetic = {size = 128}\\n[time]\\nstart = 2021\\nend = 2021\\n'
    ...                  '[model]\\nmethode = "exact"\\n')
    >>> load_config(p)
    Traceback (most recent call last):
    ...
    ValueError: unknown key 'methode' in [model]; valid keys: path, method, smooth, batch_size
    """
    import tomllib

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"run configuration {str(p)!r} does not exist")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{p} is not valid TOML: {e}") from e
    return RunConfig.from_dict(data, base=p.resolve().parent)


# =========================================================================== result
@dataclass
class RunResult:
    """What :func:`run` did and where it wrote it.

    Attributes
    ----------
    config
        The configuration run.
    store, fractions_store, products_store
        Zarr stores (class maps + confidence; fractions; products).
    report_dir, log
        The report folder and the log file.
    dates
        All dates of the run (the cube's time axis).
    written, skipped
        Dates classified and written by this run; dates already complete.
    n_glaciers
        Glaciers in the area.
    table
        End-of-season table (one row per glacier and year: AAR proxy, its
        date, snowline altitude, its date; balance when WGMS was given).
    regression
        The :class:`xfacies.massbalance.RegressionResult`, or ``None``.
    notes
        Things the user should know (e.g. why the regression was skipped).
    files
        Every report file written.
    seconds
        Wall-clock time.
    dashboard
        The Dask dashboard link, when a cluster was used.
    """

    config: RunConfig
    store: Path
    fractions_store: Path
    products_store: Path
    report_dir: Path
    log: Path
    dates: list[pd.Timestamp]
    written: list[pd.Timestamp]
    skipped: list[pd.Timestamp]
    n_glaciers: int
    table: pd.DataFrame
    regression: Any = None
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    dashboard: str | None = None

    def summary(self) -> str:
        """A human-readable report of the run (printed by :func:`run` and saved as ``report/summary.txt``)."""
        d = lambda ts: ", ".join(t.strftime("%Y-%m-%d") for t in ts) if len(ts) <= 6 else \
            f"{len(ts)} dates from {ts[0]:%Y-%m-%d} to {ts[-1]:%Y-%m-%d}"  # noqa: E731
        lines = [
            f"xfacies run: {len(self.dates)} dates x {self.n_glaciers} glaciers in {self.seconds:.1f} s",
            f"  classified and written: {len(self.written)} date(s)" + (f" ({d(self.written)})" if self.written else ""),
            f"  already complete (skipped): {len(self.skipped)} date(s)" + (f" ({d(self.skipped)})" if self.skipped else ""),
            f"  class maps + confidence: {self.store}",
            f"  fractions:               {self.fractions_store}",
            f"  products:                {self.products_store}",
            f"  report:                  {self.report_dir}",
            f"  log:                     {self.log}",
        ]
        if self.dashboard:
            lines.append(f"  dashboard:               {self.dashboard}")
        if len(self.table):
            cols = [c for c in ("year", "glacier", "aar_proxy", "aar_date", "snowline_altitude", "balance")
                    if c in self.table.columns]
            t = self.table[cols].copy()
            for c in ("aar_proxy", "snowline_altitude", "balance"):
                if c in t:
                    t[c] = t[c].round(3 if c != "snowline_altitude" else 0)
            if "aar_date" in t:
                t["aar_date"] = pd.to_datetime(t["aar_date"]).dt.strftime("%Y-%m-%d")
            lines.append("  end of season (AAR proxy = snow + firn share of the observed glacier):")
            lines.append("    " + t.head(30).to_string(index=False).replace("\n", "\n    "))
            if len(t) > 30:
                lines.append(f"    ... {len(t) - 30} more rows in report/end_of_season.csv")
        if self.regression is not None:
            lines.append("  mass balance regression:")
            lines.append("    " + self.regression.summary().replace("\n", "\n    "))
        for n in self.notes:
            lines.append(f"  note: {n}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


# =========================================================================== running
@contextlib.contextmanager
def _logging_to(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger("xfacies")
    old = root.level
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
        handler.close()


@contextlib.contextmanager
def _scheduler(c: ClusterConfig, verbose: bool) -> Iterator[tuple[Any, str | None]]:
    """Yield ``(client or None, dashboard link or None)`` for the configured scheduler."""
    import dask

    if c.scheduler in ("threads", "synchronous", "sync", "single-threaded"):
        log.info("dask scheduler: local %s", c.scheduler)
        with dask.config.set(scheduler=c.scheduler):
            yield None, None
        return
    from distributed import Client, LocalCluster

    if c.scheduler:
        log.info("connecting to the Dask scheduler at %s", c.scheduler)
        try:
            client = Client(c.scheduler, timeout="20s")
        except (OSError, TimeoutError) as e:
            raise ConnectionError(f"could not connect to the Dask scheduler at {c.scheduler!r}: {e}") from e
        cluster = None
    else:
        cluster = LocalCluster(n_workers=c.n_workers, threads_per_worker=c.threads_per_worker,
                               processes=True, memory_limit=c.memory_limit,
                               dashboard_address=c.dashboard_address)
        client = Client(cluster)
    link = client.dashboard_link
    log.info("dask client %s, %d workers, dashboard %s", client.id, len(client.scheduler_info()["workers"]), link)
    if verbose:
        print(f"Dask dashboard: {link}", flush=True)
    try:
        yield client, link
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _synthetic_dates(s: SyntheticArea, start: pd.Timestamp, end: pd.Timestamp) -> list[pd.Timestamp]:
    from xfacies.synthetic import _season_dates

    if isinstance(s.dates, int):
        if s.dates < 1:
            raise ValueError(f"[area] synthetic.dates must be >= 1, got {s.dates}")
        out = [pd.Timestamp(d) for y in range(start.year, end.year + 1) for d in _season_dates(s.dates, y)]
    else:
        out = [pd.Timestamp(d) for d in s.dates]
    out = sorted(t for t in out if start <= t <= end)
    if not out:
        raise ValueError(f"no synthetic date falls within [time] {start.date()} .. {end.date()}")
    return out


def _outlines(cfg: RunConfig) -> Any:
    from xfacies.outlines import read_outlines

    a = cfg.area
    gdf = read_outlines(a.outlines, id_column=a.id_column)
    if a.glaciers:
        have = set(gdf["glacier_id"])
        missing = [g for g in a.glaciers if g not in have]
        if missing:
            known = sorted(have)
            raise ValueError(f"[area] glaciers {missing} are not in {a.outlines}; it holds "
                             f"{len(known)} glaciers, e.g. {known[:10]}")
        gdf = gdf[gdf["glacier_id"].isin(a.glaciers)].reset_index(drop=True)
    return gdf


def _done_dates(store: Path) -> pd.DatetimeIndex:
    from xfacies import io

    if io.zarr_format_of(store) is None:
        return pd.DatetimeIndex([])
    rec = io.complete_dates(store)
    if rec is not None:
        return rec
    return pd.DatetimeIndex(io.open_zarr(store, chunks=None)["time"].values)


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="date", disable=not enabled, file=sys.stderr)


def _write_maps(result: Any, store: Path, zarr_format: int, client: Any, progress: bool) -> list[pd.Timestamp]:
    """Lay out the store, write one region per date in parallel, record each finished date."""
    import dask

    from xfacies import io

    io.layout_regions(result, store, zarr_format=zarr_format)
    writes = io.region_writes(result, store)
    written: list[pd.Timestamp] = []
    bar = _progress(len(writes), "classify + write", progress)
    try:
        if client is not None:
            from distributed import as_completed

            futures = client.compute(list(writes.values()))
            date_of = {f.key: t for f, t in zip(futures, writes)}
            for fut in as_completed(futures):
                fut.result()  # re-raises a worker's error here
                t = date_of[fut.key]
                io.mark_complete(store, [t])
                written.append(t)
                log.info("wrote %s", t.strftime("%Y-%m-%d"))
                bar.update(1)
        else:
            for t, w in writes.items():
                dask.compute(w)
                io.mark_complete(store, [t])
                written.append(t)
                log.info("wrote %s", t.strftime("%Y-%m-%d"))
                bar.update(1)
    finally:
        bar.close()
    return sorted(written)


def _balance(cfg: MassBalanceConfig, glaciers: list[str], notes: list[str]) -> Any:
    """(year, glacier) balances in m w.e. for the glaciers that have them, or None."""
    import xarray as xr

    from xfacies import wgms

    p = Path(cfg.wgms)
    if not p.exists():
        raise FileNotFoundError(f"[massbalance] wgms {str(p)!r} does not exist")
    if p.is_dir() or cfg.links:
        table = wgms.read_mass_balance(p)
        links = wgms.read_links(cfg.links or p)
        parts, unmatched = [], []
        for g in glaciers:
            try:
                parts.append(wgms.balance_for([g], table, links=links, kind=cfg.kind))
            except ValueError:
                unmatched.append(g)
        if unmatched:
            notes.append(f"{len(unmatched)} glacier(s) have no WGMS {cfg.kind} balance: "
                         f"{unmatched[:10]}{' ...' if len(unmatched) > 10 else ''}")
        if not parts:
            return None
        bal = xr.concat([b.drop_vars(["wgms_id", "wgms_name"]) for b in parts], dim="glacier", join="outer")
        return bal.rename("balance")
    df = pd.read_csv(p)
    col = next((c for c in ("balance", f"{cfg.kind}_balance_mwe", f"{cfg.kind}_balance") if c in df), None)
    if col is None or not {"glacier", "year"} <= set(df.columns):
        raise ValueError(f"{p}: a balance table needs columns glacier, year and balance (m w.e.); "
                         f"found {list(df.columns)}")
    df["glacier"] = df["glacier"].astype(str)
    s = df.set_index(["year", "glacier"])[col].astype(float)
    return xr.DataArray.from_series(s).rename("balance").assign_attrs(units="m w.e.")


def run(
    config: RunConfig | Mapping[str, Any] | str | os.PathLike,
    *,
    resume: bool = True,
    scheduler: str | None | Literal[False] = False,
    progress: bool = True,
    verbose: bool = True,
) -> RunResult:
    """Run the pipeline: STAC search -> features -> classify -> Zarr -> products -> report.

    Parameters
    ----------
    config
        A :class:`RunConfig`, a mapping of sections (validated like TOML), or
        the path of a TOML file.
    resume
        ``True``: dates already complete in ``<dir>/facies.zarr`` are not
        computed again (re-running a finished run writes no class map;
        an interrupted run continues).  ``False``: every date is recomputed
        and replaced in place.
    scheduler
        Overrides ``[cluster] scheduler`` (``None``: a new LocalCluster; an
        address; ``"threads"``).  ``False`` keeps the configuration's.
    progress
        Show a progress bar (dates written).
    verbose
        Print the dashboard link and the summary.

    Returns
    -------
    RunResult

    Raises
    ------
    ValueError, FileNotFoundError, ConnectionError
        Invalid configuration, missing inputs, unreachable STAC API or scheduler.

    Examples
    --------
    >>> res = run({"area": {"synthetic": {"size": 128, "dates": 3}},
    ...            "time": {"start": 2021, "end": 2021}, "stac": {"catalog": "synthetic"},
    ...            "dem": {"source": "synthetic"}, "cluster": {"scheduler": "threads"},
    ...            "output": {"dir": "run"}})                       # doctest: +SKIP
    >>> len(res.written), res.store.name                            # doctest: +SKIP
    (3, 'facies.zarr')
    """
    if isinstance(config, (str, os.PathLike)):
        config = load_config(config)
    elif isinstance(config, Mapping):
        config = RunConfig.from_dict(config)
    elif not isinstance(config, RunConfig):
        raise TypeError(f"config must be a RunConfig, a mapping or a TOML path, got {type(config).__name__}")
    cfg = dataclasses.replace(config)
    if scheduler is not False:
        cfg.cluster = dataclasses.replace(cfg.cluster, scheduler=scheduler)
    out = cfg.output
    out.path.mkdir(parents=True, exist_ok=True)
    out.report.mkdir(parents=True, exist_ok=True)
    t0 = _time.perf_counter()
    with _logging_to(out.log):
        log.info("xfacies run started: %s", json.dumps(cfg.to_dict()))
        (out.path / "run-config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
        try:
            with _scheduler(cfg.cluster, verbose) as (client, link):
                res = _run(cfg, resume, client, progress)
        except Exception:
            log.exception("xfacies run failed")
            raise
        res.dashboard = link
        res.seconds = round(_time.perf_counter() - t0, 1)
        text = res.summary()
        (out.report / "summary.txt").write_text(text + "\n", encoding="utf-8")
        res.files.append(out.report / "summary.txt")
        log.info("summary:\n%s", text)
    if verbose:
        print(text, flush=True)
    return res


def run_config(path: str | os.PathLike, **kwargs: Any) -> RunResult:
    """:func:`run` on a TOML file (``xfacies run config.toml`` in Python).

    Examples
    --------
    >>> result = run_config("hef.toml", resume=True)   # doctest: +SKIP
    """
    return run(load_config(path), **kwargs)


def _run(cfg: RunConfig, resume: bool, client: Any, progress: bool) -> RunResult:
    import xarray as xr

    from xfacies import io, plot, stac_testing, synthetic
    from xfacies.features import features
    from xfacies.inference import classify
    from xfacies.model.bundle import load_model
    from xfacies.products import aar_proxy, end_of_season, fractions, snowline_altitude
    from xfacies.stac import open_dem, open_stac

    out = cfg.output
    start, end = cfg.time_range
    st = cfg.stac
    chunks = {"y": st.chunks, "x": st.chunks}
    notes: list[str] = []

    # 1. area
    season = None
    if cfg.area.synthetic is not None:
        s = cfg.area.synthetic
        season = synthetic.season(_synthetic_dates(s, start, end), size=s.size, seed=s.seed,
                                  n_glaciers=s.n_glaciers, chunks=st.chunks)
        outlines = synthetic.outlines(s.size, seed=s.seed, n_glaciers=s.n_glaciers)
        where: Any = season
    else:
        outlines = _outlines(cfg)
        where = outlines
    log.info("area: %d glaciers", len(outlines))
    model = load_model(cfg.model.path)
    log.info("model: %r", model)

    # 2. imagery and DEM (lazy)
    time_arg = (start.isoformat(), end.isoformat())
    if st.catalog == "synthetic":
        cat_dir = out.path / "stac"
        coll, items = cat_dir / "collection.json", cat_dir / "items.json"
        if not (coll.exists() and items.exists()):
            log.info("writing the synthetic season as a STAC catalog of COGs in %s", cat_dir)
            stac_testing.synthetic_catalog(season, cat_dir)
        with stac_testing.serve(str(coll), str(items)) as url:
            cube = open_stac(where, time=time_arg, sensors=("sentinel-2",), catalog=url,
                             provider="earth-search", max_cloud=st.max_cloud, chunks=chunks)
    else:
        cube = open_stac(where, time=time_arg, sensors=tuple(st.sensors), catalog=st.catalog,
                         provider=st.provider, max_cloud=st.max_cloud, resolution=st.resolution,
                         crs=st.crs, chunks=chunks, buffer=st.buffer)
    if cfg.dem.source == "synthetic":
        dem = season["dem"].chunk(chunks)
    else:
        dem = open_dem(cube, cfg.dem.source, catalog=st.catalog if st.catalog != "synthetic" else "earth-search",
                       provider=st.provider, chunks=chunks)
    dates = [pd.Timestamp(t) for t in cube["time"].values]
    log.info("STAC: %d acquisitions, grid %s x %s px", len(dates), cube.sizes["y"], cube.sizes["x"])

    # 3. which dates are left to do
    done = _done_dates(out.store)
    if resume:
        todo = [t for t in dates if t not in done]
        skipped = [t for t in dates if t in done]
    else:
        todo, skipped = list(dates), []
    log.info("dates to classify: %d, already complete: %d", len(todo), len(skipped))

    # 4. features -> classify -> Zarr, one region per date, in parallel
    written: list[pd.Timestamp] = []
    if todo:
        sub = cube.sel(time=np.array(todo, dtype="datetime64[ns]"))
        feats = features(sub, dem=dem, outlines=outlines, feature_set=model.features)
        result = classify(feats, model, outlines, method=cfg.model.method, smooth=cfg.model.smooth,
                          confidence=True, batch_size=cfg.model.batch_size)
        source = "synthetic season (xfacies.synthetic) served by rustac on loopback" \
            if st.catalog == "synthetic" else str(cube.attrs.get("stac_catalog", st.catalog))
        result.attrs.update(title="xfacies glacier surface facies", source=source)
        written = _write_maps(result, out.store, out.zarr_format, client, progress)

    # 5. fractions of every complete date
    complete = sorted(set(_done_dates(out.store)) & set(dates))
    maps = io.open_zarr(out.store)
    classes = maps["classes"].sel(time=np.array(complete, dtype="datetime64[ns]"))
    have_frac = set(_done_dates(out.fractions)) if resume else set()
    new_frac = [t for t in complete if t not in have_frac]
    if new_frac:
        frac_new = fractions(classes.sel(time=np.array(new_frac, dtype="datetime64[ns]")), outlines).compute()
        io.to_zarr(frac_new, out.fractions, zarr_format=out.zarr_format)
    frac = io.open_zarr(out.fractions).sel(time=np.array(complete, dtype="datetime64[ns]")).compute()
    glaciers = [str(g) for g in frac["glacier"].values]

    # 6. products
    p = cfg.products
    window = (p.window[0], p.window[1])
    aar = aar_proxy(frac, include_refrozen=p.include_refrozen)
    prod = {"aar_proxy": aar}
    eos = {"aar_proxy": end_of_season(aar, frac["coverage"], min_coverage=p.min_coverage, window=window,
                                      hydrological_year_start_month=p.hydrological_year_start_month, stat="min")}
    if p.snowline:
        sla = snowline_altitude(classes, _on_grid(dem, classes), outlines,
                                include_refrozen=p.include_refrozen).compute()
        prod["snowline_altitude"] = sla
        eos["snowline_altitude"] = end_of_season(
            sla, frac["coverage"], min_coverage=p.min_coverage, window=window,
            hydrological_year_start_month=p.hydrological_year_start_month, stat="max")
    pds = xr.Dataset({k: v.drop_vars([c for c in v.coords if c not in v.dims], errors="ignore")
                      for k, v in prod.items()})
    for k, v in eos.items():
        pds[f"end_of_season_{k}"] = v.drop_vars([c for c in v.coords if c not in v.dims], errors="ignore")
        pds[f"end_of_season_{k}_date"] = v["time"].drop_vars([c for c in v["time"].coords if c not in v["time"].dims], errors="ignore")
    io.to_zarr(pds, out.products, mode="w", zarr_format=out.zarr_format)

    table = _table(eos)
    if not len(table) or table["aar_proxy"].isna().all():
        notes.append(f"no end-of-season value: no date inside the window {p.window[0]}..{p.window[1]} saw at "
                     f"least min_coverage={p.min_coverage} of a glacier (clouds?); widen [products] window "
                     "or lower min_coverage")
    files: list[Path] = []

    # 7. mass balance
    regression = None
    if cfg.massbalance.wgms:
        from xfacies.massbalance import regress

        bal = _balance(cfg.massbalance, glaciers, notes)
        if bal is not None:
            bt = bal.to_series().rename("balance").reset_index()
            bt["glacier"] = bt["glacier"].astype(str)
            table = table.merge(bt, on=["year", "glacier"], how="left")
            try:
                regression = regress(eos["aar_proxy"].rename("aar_proxy"), bal, by=cfg.massbalance.by)
            except ValueError as e:
                notes.append(f"mass-balance regression skipped: {e}")
                log.warning("mass-balance regression skipped: %s", e)
        if regression is not None:
            regression.to_dataframe().to_csv(out.report / "massbalance.csv")
            regression.data.to_csv(out.report / "massbalance_pairs.csv", index=False)
            regression.plot(out.report / "massbalance.png")
            files += [out.report / "massbalance.csv", out.report / "massbalance_pairs.csv",
                      out.report / "massbalance.png"]
    table.to_csv(out.report / "end_of_season.csv", index=False)
    files.insert(0, out.report / "end_of_season.csv")
    fig = plot.fraction_timeseries(frac)
    fig = fig if hasattr(fig, "savefig") else fig.figure
    fig.savefig(out.report / "fractions.png", dpi=100)
    _close(fig)
    files.append(out.report / "fractions.png")
    if out.quicklooks and written:
        files += plot.save_quicklooks(classes.sel(time=np.array(written, dtype="datetime64[ns]")), None, out.report)

    return RunResult(
        config=cfg, store=out.store, fractions_store=out.fractions, products_store=out.products,
        report_dir=out.report, log=out.log, dates=dates, written=written, skipped=skipped,
        n_glaciers=len(glaciers), table=table, regression=regression, notes=notes, files=files,
    )


def _on_grid(dem: Any, like: Any) -> Any:
    """The DEM with the class maps' own coordinates when both are on the same grid."""
    same = dem.sizes.get("y") == like.sizes["y"] and dem.sizes.get("x") == like.sizes["x"] and \
        np.allclose(dem["y"].values, like["y"].values) and np.allclose(dem["x"].values, like["x"].values)
    return dem.assign_coords(y=like["y"].values, x=like["x"].values) if same else dem


def _close(fig: Any) -> None:
    try:
        import matplotlib.pyplot as plt

        plt.close(fig)
    except Exception:  # pragma: no cover - figures not managed by pyplot
        pass


def _table(eos: Mapping[str, Any]) -> pd.DataFrame:
    """Tidy end-of-season table: year, glacier, <product>, <product date>."""
    frames = []
    for k, v in eos.items():
        short = "aar" if k == "aar_proxy" else "snowline"
        df = pd.DataFrame({
            "year": np.repeat(v["year"].values, v.sizes["glacier"]),
            "glacier": np.tile(v["glacier"].values.astype(str), v.sizes["year"]),
            k: v.transpose("year", "glacier").values.ravel(),
            f"{short}_date": v["time"].transpose("year", "glacier").values.ravel(),
        })
        frames.append(df.set_index(["year", "glacier"]))
    if not frames:
        return pd.DataFrame(columns=["year", "glacier"])
    return pd.concat(frames, axis=1).reset_index()
