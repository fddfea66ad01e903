"""The run configuration of ``xfacies run``: a schema checked by pydantic.

One model per TOML section (:class:`AreaConfig`, :class:`TimeConfig`, ...), all
strict (``"64"`` is not an integer) and closed (an unknown key is an error that
lists the valid ones).  :func:`load_config` reads a TOML file, resolves relative
paths against its folder and checks what spans sections.

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
>>> cfg = RunConfig.from_dict({"area": {"synthetic": {"size": 128}},
...                            "time": {"start": 2021, "end": 2021}})
>>> cfg.stac.chunks, cfg.model.method
(1024, 'dense')
>>> RunConfig.from_dict({"area": {"synthetic": {}}, "time": {"start": 2021, "end": 2021},
...                      "model": {"method": "fast"}})
Traceback (most recent call last):
...
ValueError: [model] method must be one of 'dense', 'exact', got 'fast' (str)
"""

from __future__ import annotations

import datetime as _dt
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from xfacies.errors import InputError

__all__ = [
    "RunConfig",
    "AreaConfig",
    "SyntheticArea",
    "TimeConfig",
    "StacConfig",
    "DemConfig",
    "QualityConfig",
    "ModelConfig",
    "ProductsConfig",
    "MassBalanceConfig",
    "OutputConfig",
    "ClusterConfig",
    "load_config",
]

DateLike = Union[str, int, _dt.date]


class Section(BaseModel):
    """A TOML section: strict types, no unknown keys (the base of every section of the run and
    training configurations)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class SyntheticArea(Section):
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

    size: int = Field(default=256, ge=16)
    seed: int = 7
    n_glaciers: int | None = None
    dates: Union[int, list[DateLike]] = 6


class AreaConfig(Section):
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


class TimeConfig(Section):
    """``[time]``: first and last day, as dates or years (``end = 2023`` is 31 Dec 2023)."""

    start: DateLike = ""
    end: DateLike = ""


class StacConfig(Section):
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
    retries, retry_wait
        Transient failures (an asset read error, a STAC server 5xx, a
        timeout) are retried ``retries`` times with exponential backoff from
        ``retry_wait`` seconds (:mod:`xfacies.sources.retry`); a date that
        still fails is skipped and recorded, and the run goes on.
    """

    catalog: str = "earth-search"
    provider: str | None = None
    sensors: list[str] = Field(default_factory=lambda: ["sentinel-2", "landsat"])
    max_cloud: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)
    resolution: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    crs: Union[str, int] = "utm"
    chunks: int = 1024
    buffer: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    retries: int = Field(default=3, ge=0)
    retry_wait: float = Field(default=1.0, ge=0)


class QualityConfig(Section):
    """``[quality]``: which scenes enter the series (:func:`xfacies.sources.quality.rejected_scenes`).

    Every date is measured over the glacier pixels before it is classified; a
    rejected date is not classified, and the reason is recorded in the store
    and in ``report/scenes.csv``.

    Attributes
    ----------
    min_valid
        Least share of glacier pixels with valid reflectance (not cloud, not
        nodata, inside the scene).
    max_saturated, saturation
        Largest share of valid pixels on and around the glaciers (within the
        model's receptive field) with an optical value at or above
        ``saturation``.
    max_implausible
        Largest share of valid pixels on and around the glaciers outside
        plausible reflectance (-0.05..1.6).
    """

    min_valid: float = Field(default=0.3, ge=0, le=1)
    max_saturated: float = Field(default=0.5, ge=0, le=1)
    saturation: float = Field(default=1.2, gt=0)
    max_implausible: float = Field(default=0.01, ge=0, le=1)


class DemConfig(Section):
    """``[dem]``: ``source`` = a DEM collection (``"cop-dem-glo-30"``), a raster path, or ``"synthetic"``."""

    source: str = "cop-dem-glo-30"


class ModelConfig(Section):
    """``[model]``: bundle (``path``: ``"demo"`` or a ``.xfacies`` file) and inference options."""

    path: str = "demo"
    method: Literal["dense", "exact"] = "dense"
    smooth: bool = True
    batch_size: int | None = Field(default=None, ge=1)


class ProductsConfig(Section):
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

    min_coverage: float = Field(default=0.7, allow_inf_nan=False)
    window: list[str] = Field(default_factory=lambda: ["08-01", "10-15"])
    include_refrozen: bool = False
    snowline: bool = True
    hydrological_year_start_month: int = Field(default=10, ge=1, le=12)


class MassBalanceConfig(Section):
    """``[massbalance]``: the regression against measured balances.

    Attributes
    ----------
    wgms
        A WGMS FoG folder (``mbdata_WGMS-*.csv`` + ``rgi_wgms_links.csv`` or the dated
        ``rgi_wgms_links_YYYYMMDD.csv``), or
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


class OutputConfig(Section):
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


class ClusterConfig(Section):
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
        Of the LocalCluster: loopback only by default (``"127.0.0.1:8787"``; ``"127.0.0.1:0"``: any
        free port).  The dashboard has no authentication: open it to the network only on purpose
        (``":8787"`` listens on every interface), e.g. through an SSH tunnel instead.
    batch_dates
        Dates submitted at a time (absent: as many as the workers' memory
        holds, see :func:`xfacies.app.pipeline.dates_per_batch`); at most two
        batches are in flight.
    no_worker_timeout
        Seconds the run waits while the cluster has no worker at all (all of
        them killed or retired) before it stops with
        :class:`~xfacies.app.pipeline.NoWorkersError`; the dates written so far
        stay recorded and the next run computes only the missing ones.
    """

    scheduler: str | None = None
    n_workers: int = 2
    threads_per_worker: int = 1
    memory_limit: str = "auto"
    dashboard_address: str = "127.0.0.1:8787"
    batch_dates: int | None = Field(default=None, ge=1)
    no_worker_timeout: float = Field(default=300.0, gt=0)


class RunConfig(Section):
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
    ValueError: unknown section [tiem] in the run configuration; valid sections: area, time, stac, dem, model, products, quality, massbalance, output, cluster
    """

    area: AreaConfig = Field(default_factory=AreaConfig)
    time: TimeConfig = Field(default_factory=TimeConfig)
    stac: StacConfig = Field(default_factory=StacConfig)
    dem: DemConfig = Field(default_factory=DemConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    products: ProductsConfig = Field(default_factory=ProductsConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    massbalance: MassBalanceConfig = Field(default_factory=MassBalanceConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)

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
            raise InputError(f"the run configuration must be a table of sections, got {type(data).__name__}")
        try:
            cfg = cls.model_validate(dict(data))
        except ValidationError as err:
            raise readable_error(err, data) from None
        cfg._resolve_paths(Path(base) if base is not None else Path.cwd())
        cfg.check()
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

    def check(self) -> None:
        """Cross-field checks (raise ``ValueError`` with what to change)."""
        a = self.area
        if (a.outlines is None) == (a.synthetic is None):
            raise InputError("[area] needs exactly one of `outlines` (a vector file of glacier outlines) "
                             "or `synthetic` (e.g. synthetic = {size = 256, seed = 7})")
        for key in ("start", "end"):
            if getattr(self.time, key) in ("", None):
                raise InputError(f"[time] {key} is missing: give a year (2021) or a date (\"2021-06-01\")")
        start, end = self.time_range
        if end < start:
            raise InputError(f"[time] end ({end.date()}) is before start ({start.date()})")
        if self.stac.catalog == "synthetic" and a.synthetic is None:
            raise InputError("[stac] catalog = \"synthetic\" serves the synthetic area's imagery; "
                             "it needs [area] synthetic = {...}")
        if self.dem.source == "synthetic" and a.synthetic is None:
            raise InputError("[dem] source = \"synthetic\" needs [area] synthetic = {...}")
        if a.synthetic is not None and a.glaciers:
            raise InputError("[area] glaciers selects ids among outlines; it cannot be used with synthetic")
        w = self.products.window
        if len(w) != 2:
            raise InputError(f"[products] window must be two \"MM-DD\" strings, got {w!r}")
        for day in w:  # checked now, not after every date was classified
            try:
                pd.Timestamp(f"2000-{day}")  # a leap year: "02-29" is a valid day
            except ValueError:
                raise InputError(f"[products] window: {day!r} is not a day of the year as \"MM-DD\" "
                                 f"(e.g. \"08-01\"); got window = {w!r}") from None
        if not 0 <= self.products.min_coverage <= 1:
            raise InputError(f"[products] min_coverage must be within 0..1, got {self.products.min_coverage}")
        if self.stac.chunks < 64:
            raise InputError(f"[stac] chunks must be at least 64 pixels, got {self.stac.chunks}")
        if self.massbalance.wgms:  # checked now, not at the end of a long run
            from xfacies.massbalance import wgms

            mb = self.massbalance
            try:
                wgms.check_source(mb.wgms, links=mb.links, kind=mb.kind)
            except (FileNotFoundError, ValueError) as err:
                raise type(err)(f"[massbalance] wgms: {err}") from None
        if self.cluster.n_workers < 1 or self.cluster.threads_per_worker < 1:
            raise InputError("[cluster] n_workers and threads_per_worker must be at least 1")

    @property
    def time_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """``(start, end)`` timestamps; ``end`` is the end of its day (or year)."""
        return _date(self.time.start, "start", "[time] start"), _date(self.time.end, "end", "[time] end")

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON-serialisable) of the configuration."""
        return self.model_dump(mode="json")


def _date(v: Any, which: str, where: str) -> pd.Timestamp:
    if isinstance(v, bool):
        raise InputError(f"{where} must be a year or a date, got {v!r}")
    if isinstance(v, int) or (isinstance(v, str) and v.strip().isdigit() and len(v.strip()) == 4):
        y = int(v)
        return pd.Timestamp(year=y, month=1, day=1) if which == "start" else \
            pd.Timestamp(year=y, month=12, day=31, hour=23, minute=59, second=59)
    try:
        ts = pd.Timestamp(v)
    except (ValueError, TypeError) as e:
        raise InputError(f"{where} must be a year or a date like \"2021-06-01\", got {v!r}") from e
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    if which == "end" and ts == ts.normalize():
        ts = ts + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
    return ts


# ------------------------------------------------------------------ readable schema errors
def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "a table"
    return {str: "a string", int: "an integer", float: "a number", bool: "true/false",
            type(None): "absent", _dt.date: "a date"}.get(tp, getattr(tp, "__name__", str(tp)))


def _section_model(tp: Any) -> type[BaseModel] | None:
    """The section model inside an annotation (``X``, ``X | None``), if any."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    for a in typing.get_args(tp):
        m = _section_model(a)
        if m is not None:
            return m
    return None


def readable_error(err: ValidationError, data: Mapping[str, Any], root: type[BaseModel] | None = None,
              what: str = "run configuration") -> ValueError:
    """The first problem of a pydantic error, in the words of the TOML file: which key of
    which section, what it must be, and (for unknown keys) the valid ones.  ``root`` is the
    schema (default :class:`RunConfig`)."""
    e = err.errors()[0]
    model: type[BaseModel] = root or RunConfig
    path: list[str] = []
    value: Any = data
    annotation: Any = None
    for part in e["loc"]:  # walk the fields; stop at union members and list indices
        if not isinstance(part, str) or part not in model.model_fields:
            break
        path.append(part)
        annotation = model.model_fields[part].annotation
        value = value.get(part) if isinstance(value, Mapping) else None
        inner = _section_model(annotation)
        if inner is None:
            break
        model = inner
    if e["type"] == "extra_forbidden":
        valid = list(model.model_fields)
        if not path:
            unknown = [k for k in data if k not in valid]
            return ValueError(
                f"unknown section{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(f'[{k}]' for k in unknown)} in the {what}; "
                f"valid sections: {', '.join(valid)}")
        where = ".".join(path)
        unknown = [k for k in (value if isinstance(value, Mapping) else {}) if k not in valid]
        return ValueError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} in [{where}]; "
            f"valid keys: {', '.join(valid)}")
    if len(path) == 1 and _section_model(annotation) is not None:
        return ValueError(f"[{path[0]}] must be a table (section), got {value!r}")
    section = path[0] if path else "?"
    key = ".".join(path[1:])
    loc = f"[{section}] {key}" if key else f"[{section}]"
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
    if e["type"] in bounds:
        limit = next(iter((e.get("ctx") or {}).values()), "?")
        return ValueError(f"{loc} must be {bounds[e['type']]} {limit}, got {value!r}")
    return ValueError(f"{loc} must be {_type_name(annotation)}, got {value!r} ({type(value).__name__})")


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
        raise InputError(f"{p} is not valid TOML: {e}") from e
    return RunConfig.from_dict(data, base=p.resolve().parent)


