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

Configuration: :mod:`xfacies.app.config` (a TOML file checked by a pydantic schema).

Examples
--------
>>> from xfacies.app.pipeline import run, load_config
>>> cfg = load_config("run.toml")                              # doctest: +SKIP
>>> result = run(cfg)                                           # doctest: +SKIP
>>> result.table.head()                                         # doctest: +SKIP
>>> print(result.summary())                                     # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time as _time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from xfacies.app.config import MassBalanceConfig, RunConfig, SyntheticArea, load_config
from xfacies.app.report import RunResult, end_of_season_table
from xfacies.app import cluster
from xfacies.app.cluster import dates_per_batch, first_done
from xfacies.app.lock import prepare_output, run_lock
from xfacies.app.logs import logging_to
from xfacies.errors import InputError, NoWorkersError, RunLockedError

__all__ = ["run", "run_config", "RunConfig", "RunResult", "RunLockedError", "NoWorkersError", "load_config",
           "dates_per_batch", "prepare_synthetic_catalog"]

log = logging.getLogger("xfacies.app.pipeline")


def _synthetic_dates(s: SyntheticArea, start: pd.Timestamp, end: pd.Timestamp) -> list[pd.Timestamp]:
    from xfacies.synthetic import season_dates

    if isinstance(s.dates, int):
        if s.dates < 1:
            raise InputError(f"[area] synthetic.dates must be >= 1, got {s.dates}")
        out = [pd.Timestamp(d) for y in range(start.year, end.year + 1) for d in season_dates(s.dates, y)]
    else:
        out = [pd.Timestamp(d) for d in s.dates]
    out = sorted(t for t in out if start <= t <= end)
    if not out:
        raise InputError(f"no synthetic date falls within [time] {start.date()} .. {end.date()}")
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
            raise InputError(f"[area] glaciers {missing} are not in {a.outlines}; it holds "
                             f"{len(known)} glaciers, e.g. {known[:10]}")
        gdf = gdf[gdf["glacier_id"].isin(a.glaciers)].reset_index(drop=True)
    return gdf


#: Store attributes that record what made a run's class maps (a rerun must match them).
PROVENANCE = ("xfacies_model", "xfacies_model_sha256", "xfacies_method", "xfacies_smooth", "xfacies_features")


def _provenance(cfg: RunConfig, model: Any) -> dict[str, Any]:
    """What makes the class maps of a run: the model (its weights and metadata), method, smoothing
    and feature set."""
    return {"xfacies_model": str(cfg.model.path), "xfacies_model_sha256": model.sha256,
            "xfacies_method": cfg.model.method, "xfacies_smooth": "true" if cfg.model.smooth else "false",
            "xfacies_features": list(model.features)}


def _check_provenance(store: Path, made_with: dict[str, Any]) -> None:
    """Refuse to add to (or replace dates in) a store whose maps another model, method, smoothing or
    feature set made: the record would mix them silently."""
    from xfacies import io

    if io.zarr_format_of(store) is None:
        return
    import zarr

    had = dict(zarr.open_group(str(store), mode="r").attrs)
    if not any(k in had for k in PROVENANCE):
        log.info("%s records no provenance (written by an older xfacies): not checked", store)
        return
    diff = [k for k in PROVENANCE if k in had and _plain(had[k]) != _plain(made_with[k])]
    if diff:
        said = "; ".join(f"{k.removeprefix('xfacies_')}: store {_plain(had[k])!r}, this run {_plain(made_with[k])!r}"
                         for k in diff)
        raise InputError(
            f"{store} holds class maps made differently from this run ({said}); adding dates would mix "
            "them in one record. Write this run to a new [output] dir, or delete that folder's facies.zarr, "
            "fractions.zarr and products.zarr to redo the whole record with this configuration")


def _plain(v: Any) -> Any:
    return [str(x) for x in v] if isinstance(v, (list, tuple)) else str(v)


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


def _batches(todo: list[pd.Timestamp], size: int) -> Iterator[list[pd.Timestamp]]:
    for i in range(0, len(todo), size):
        yield todo[i:i + size]


def _reason(e: BaseException) -> str:
    """One line: the error, what caused it, and the notes added on the way (the file, the attempts)."""
    parts = [f"{type(e).__name__}: {str(e)}"]
    cause = e.__cause__ or e.__context__
    if cause is not None and str(cause) and str(cause) not in parts[0]:
        parts.append(f"caused by {type(cause).__name__}: {cause}")
    parts += [n.removeprefix("xfacies: ") for n in getattr(e, "__notes__", [])]
    return " ".join("; ".join(parts).split())[:600]


def _balance(cfg: MassBalanceConfig, glaciers: list[str], outlines: Any, notes: list[str],
             report: Path) -> Any:
    """(year, glacier) balances in m w.e. for the glaciers that have them, or None.

    A WGMS folder is matched to the outlines by RGI id and, for RGI 7 or other ids, by the
    WGMS glacier's location inside an outline (:func:`xfacies.massbalance.wgms.match_outlines`);
    the match table is written to ``report/wgms_match.csv``."""
    import xarray as xr

    from xfacies.massbalance import wgms

    p = Path(cfg.wgms)
    wgms.check_source(p, links=cfg.links, kind=cfg.kind)
    if p.is_dir() or cfg.links:
        table = wgms.read_mass_balance(p)
        links = wgms.read_links(cfg.links or p)
        ours = outlines[outlines["glacier_id"].astype(str).isin(glaciers)] if "glacier_id" in outlines else outlines
        match = wgms.match_outlines(ours, links)
        match.to_csv(report / "wgms_match.csv", index=False)
        have = set(pd.to_numeric(table["wgms_id"], errors="coerce").dropna().astype(int)) \
            if "wgms_id" in table else set()
        unmatched = [str(g) for g, w in zip(match["glacier_id"], match["wgms_id"])
                     if pd.isna(w) or (have and int(w) not in have)]
        n_matched = len(match) - len(unmatched)
        log.info("WGMS: %d of %d glacier(s) matched (report/wgms_match.csv)", n_matched, len(match))
        if unmatched:
            notes.append(f"{len(unmatched)} of {len(match)} glacier(s) have no WGMS {cfg.kind} balance "
                         f"(matched by RGI id or location; see report/wgms_match.csv): "
                         f"{unmatched[:10]}{' ...' if len(unmatched) > 10 else ''}")
        if n_matched == 0:
            return None
        bal = wgms.balances_for_outlines(None, table, match=match, kind=cfg.kind)
        return bal.drop_vars([c for c in ("wgms_id", "match_method") if c in bal.coords]).rename("balance")
    df = pd.read_csv(p)
    col = next((c for c in ("balance", f"{cfg.kind}_balance_mwe", f"{cfg.kind}_balance") if c in df), None)
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
    cfg = config.model_copy(deep=True)
    if scheduler is not False:
        cfg.cluster = cfg.cluster.model_copy(update={"scheduler": scheduler})
    out = cfg.output
    prepare_output(out.path)
    out.report.mkdir(parents=True, exist_ok=True)
    t0 = _time.perf_counter()
    with run_lock(out.path), logging_to(out.log):
        log.info("xfacies run started: %s", json.dumps(cfg.to_dict()))
        (out.path / "run-config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
        try:
            from xfacies.options import set_options

            # the readers built for this run carry these to the workers (xfacies.sources.retry)
            with set_options(retries=cfg.stac.retries, retry_wait=cfg.stac.retry_wait), \
                    cluster.scheduler(cfg.cluster, verbose) as (client, link):
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
    """The steps of a run, in order; each step is a function of its own below."""
    from xfacies.model.registry import load_model

    out = cfg.output
    notes: list[str] = []
    season, outlines, where = _area(cfg)                                   # 1. area
    log.info("area: %d glaciers", len(outlines))
    model = load_model(cfg.model.path)
    log.info("model: %r", model)
    made_with = _provenance(cfg, model)
    _check_provenance(out.store, made_with)                                # a rerun: the same maker
    cube, dem = _imagery(cfg, season, where)                               # 2. imagery + DEM (lazy)
    dates = [pd.Timestamp(t) for t in cube["time"].values]
    log.info("STAC: %d acquisitions, grid %s x %s px", len(dates), cube.sizes["y"], cube.sizes["x"])
    done = _done_dates(out.store)                                          # 3. dates left to do
    todo = [t for t in dates if not resume or t not in done]
    skipped = [t for t in dates if resume and t in done]
    log.info("dates to classify: %d, already complete: %d", len(todo), len(skipped))
    step4 = DateBatches(cfg, cube, dem, outlines, model, client, progress).run(todo)  # 4. maps
    written = step4.written
    complete = set(_done_dates(out.store)) & set(dates)
    if not complete:
        if step4.errors:  # nothing to report on: the first error is the run's
            raise step4.errors[0]
        raise InputError(f"no date of the run passed the quality checks ([quality] {cfg.quality.model_dump()}): "
                         + "; ".join(f"{t:%Y-%m-%d}: {why}" for t, why in list(step4.rejected.items())[:5])
                         + ". Relax [quality] (e.g. min_valid), or widen [time] / raise [stac] max_cloud")
    _scene_table(cfg, dates, done, step4).to_csv(out.report / "scenes.csv", index=False)
    classes, frac = _fractions(cfg, dates, outlines, resume)                # 5. fractions
    eos = _products(cfg, classes, frac, dem, outlines)                      # 6. products
    table = end_of_season_table(eos)
    p = cfg.products
    if not len(table) or table["aar_proxy"].isna().all():
        notes.append(f"no end-of-season value: no date inside the window {p.window[0]}..{p.window[1]} saw at "
                     f"least min_coverage={p.min_coverage} of a glacier (clouds?); widen [products] window "
                     "or lower min_coverage")
    glaciers = [str(g) for g in frac["glacier"].values]
    table, regression, files = _massbalance(cfg, eos, table, glaciers, outlines, notes)  # 7. mass balance
    files += _figures(cfg, classes, frac, written, outlines)                # 8. figures
    return RunResult(
        config=cfg, store=out.store, fractions_store=out.fractions, products_store=out.products,
        report_dir=out.report, log=out.log, dates=dates, written=written, skipped=skipped,
        n_glaciers=len(glaciers), table=table, regression=regression, notes=notes,
        files=[out.report / "scenes.csv", *files], rejected=step4.rejected, failed=step4.failed,
    )


def _area(cfg: RunConfig) -> tuple[Any, Any, Any]:
    """``(synthetic season or None, outlines, what to search with)``."""
    from xfacies import synthetic

    if cfg.area.synthetic is None:
        outlines = _outlines(cfg)
        return None, outlines, outlines
    s = cfg.area.synthetic
    start, end = cfg.time_range
    # the grid, DEM and glaciers do not depend on the date: one date is template enough (the
    # imagery of every date is written by prepare_synthetic_catalog, a few dates at a time)
    season = synthetic.season(_synthetic_dates(s, start, end)[:1], size=s.size, seed=s.seed,
                              n_glaciers=s.n_glaciers)
    return season, synthetic.outlines(s.size, seed=s.seed, n_glaciers=s.n_glaciers), season


def prepare_synthetic_catalog(cfg: RunConfig, *, max_bytes: float = 5e8) -> Path:
    """Write the synthetic area's imagery as COGs and a STAC catalogue in ``<dir>/stac`` (once).

    Used by :func:`run` for ``[stac] catalog = "synthetic"`` and by the benchmarks (to leave the
    generator's cost out of a timing).  Dates are generated a few at a time (each group's season
    stays under ``max_bytes`` in memory), so a long record never sits in memory at once.  The
    catalogue is rewritten when the area changes or it lacks a date of the run
    (``synthetic-area.json``); one written for a longer record serves any shorter one.

    Returns
    -------
    pathlib.Path
        The catalogue folder (``collection.json``, ``items.json``, ``cogs/``).

    Examples
    --------
    >>> cfg = RunConfig.from_dict({"area": {"synthetic": {"size": 64, "dates": 2}},
    ...                            "time": {"start": 2021, "end": 2021}, "stac": {"catalog": "synthetic"},
    ...                            "dem": {"source": "synthetic"}, "output": {"dir": "out"}})  # doctest: +SKIP
    >>> sorted(p.name for p in prepare_synthetic_catalog(cfg).iterdir())             # doctest: +SKIP
    ['cogs', 'collection.json', 'items.json', 'synthetic-area.json']
    """
    import json as _json

    from xfacies import synthetic
    from xfacies.sources import stac_server

    s = cfg.area.synthetic
    if s is None:
        raise InputError("prepare_synthetic_catalog needs [area] synthetic = {...}")
    cat_dir = cfg.output.path / "stac"
    coll, items = cat_dir / "collection.json", cat_dir / "items.json"
    dates = _synthetic_dates(s, *cfg.time_range)
    what = _json.dumps({"area": s.model_dump(), "dates": [t.isoformat() for t in dates]}, sort_keys=True)
    stamp = cat_dir / "synthetic-area.json"
    if coll.exists() and items.exists() and stamp.exists():
        try:
            had = _json.loads(stamp.read_text())
        except ValueError:
            had = {}
        # the same area, and every date asked for (a longer record serves a shorter run: the STAC
        # search takes the run's [time] range out of it)
        if had.get("area") == s.model_dump() and {t.isoformat() for t in dates} <= set(had.get("dates", [])):
            return cat_dir
    log.info("writing the synthetic season as a STAC catalog of COGs in %s", cat_dir)
    stamp.unlink(missing_ok=True)
    per_date = 4.0 * s.size * s.size * (len(synthetic.FEATURE_SETS[4]) + 2)
    group = max(1, int(max_bytes // per_date))
    features: list[dict] = []
    for i in range(0, len(dates), group):
        season = synthetic.season(dates[i:i + group], size=s.size, seed=s.seed, n_glaciers=s.n_glaciers)
        _, part = stac_server.synthetic_catalog(season, cat_dir)
        features += _json.loads(Path(part).read_text())["features"]
    items.unlink()  # written last: its presence means the catalogue is complete
    stac_server.write_collection(coll, features[0]["collection"], features, "xfacies synthetic season")
    stac_server.write_items(items, features)
    stamp.write_text(what)
    return cat_dir


def _imagery(cfg: RunConfig, season: Any, where: Any) -> tuple[Any, Any]:
    """The lazy reflectance cube from the STAC catalogue (the synthetic season's own catalog of
    COGs, served on loopback, for ``catalog = "synthetic"``) and the DEM on its grid."""
    from xfacies.sources import stac_server
    from xfacies.sources.dem import open_dem
    from xfacies.sources.stac import open_stac

    st = cfg.stac
    start, end = cfg.time_range
    time_arg = (start.isoformat(), end.isoformat())
    chunks = {"y": st.chunks, "x": st.chunks}
    if st.catalog == "synthetic":
        cat_dir = prepare_synthetic_catalog(cfg)
        coll, items = cat_dir / "collection.json", cat_dir / "items.json"
        with stac_server.serve(str(coll), str(items)) as url:
            cube = open_stac(where, time=time_arg, sensors=("sentinel-2",), catalog=url,
                             provider="earth-search", max_cloud=st.max_cloud, chunks=chunks)
    else:
        cube = open_stac(where, time=time_arg, sensors=tuple(st.sensors), catalog=st.catalog,
                         provider=st.provider, max_cloud=st.max_cloud, resolution=st.resolution,
                         crs=st.crs, chunks=chunks, buffer=st.buffer)
    if cfg.dem.source == "synthetic":
        return cube, season["dem"].chunk(chunks)
    catalog = st.catalog if st.catalog != "synthetic" else "earth-search"
    return cube, open_dem(cube, cfg.dem.source, catalog=catalog, provider=st.provider, chunks=chunks)


class _Outcome:
    """What step 4 did to each date: written, rejected (quality) or failed (persistent errors)."""

    def __init__(self) -> None:
        self.written: list[pd.Timestamp] = []
        self.rejected: dict[pd.Timestamp, str] = {}
        self.failed: dict[pd.Timestamp, str] = {}
        self.errors: list[BaseException] = []
        self.quality: list[Any] = []


class DateBatches:
    """Step 4 of a run: quality check -> features -> classify -> Zarr for the dates to do, batch by batch.

    Each batch's scenes are read once into the workers' memory and measured
    (:func:`xfacies.sources.quality.scene_quality`); the rejected ones are left out and the rest get
    one region write per date, computed in parallel (two batches in flight on a cluster).  A date
    whose computation fails (after the reader's retries) is recorded and skipped, and the run goes
    on.  The state the steps share (the outcome, the imagery held for the batches in flight, the
    progress bar) lives on the instance.
    """

    def __init__(self, cfg: RunConfig, cube: Any, dem: Any, outlines: Any, model: Any, client: Any,
                 progress: bool) -> None:
        self.cfg, self.cube, self.dem, self.outlines, self.model = cfg, cube, dem, outlines, model
        self.client, self.progress = client, progress
        self.store, self.fmt = cfg.output.store, cfg.output.zarr_format
        self.patience = cfg.cluster.no_worker_timeout
        self.outcome = _Outcome()
        self.static: Any = None
        self.static_done = False
        self.held: dict[pd.Timestamp, Any] = {}  # the reflectance of the batches in flight, read once
        self.bar: Any = None

    # ------------------------------------------------------------------ the steps of one batch
    def measure(self, sub: Any) -> Any:
        """The quality table of the scenes of ``sub`` (computed)."""
        from xfacies import graphs
        from xfacies.sources.quality import scene_quality

        lazy = scene_quality(sub, self.outlines, saturation=self.cfg.quality.saturation,
                             margin=self.model.halo(self.cfg.model.method))
        if self.client is None:
            return lazy.compute()
        (fut,) = graphs.compute(lazy, client=self.client)
        first_done(self.client, [fut], self.patience, self.store)
        return fut.result()

    def prepare(self, batch: list[pd.Timestamp]) -> dict[pd.Timestamp, Any]:
        """Read and check a batch; the region writes (lazy) of its accepted dates."""
        import xarray as xr

        from xfacies import graphs, io
        from xfacies.sources.quality import rejected_scenes

        client, res, q = self.client, self.outcome, self.cfg.quality
        # the batch's imagery is read once into the workers' memory, then checked and classified
        # from there (the same read keys never go to the scheduler twice)
        sub = lazy = self.cube.sel(time=np.array(batch, dtype="datetime64[ns]"))
        try:
            sub = graphs.persist(lazy, client) if client is not None else lazy
            quality = self.measure(sub)
        except Exception:  # noqa: BLE001 - a date that cannot be read: find it, record it, go on
            parts = []
            sub = lazy
            for t in batch:
                try:
                    one = sub.sel(time=[np.datetime64(t, "ns")])
                    one = graphs.persist(one, client) if client is not None else one
                    parts.append(self.measure(one))
                except Exception as e:  # noqa: BLE001
                    self.finished([(t, e)])
            batch = [t for t in batch if t not in res.failed]
            if not parts:
                return {}
            quality = xr.concat(parts, dim="time")
        res.quality.append(quality)
        bad = rejected_scenes(quality, min_valid=q.min_valid, max_saturated=q.max_saturated,
                              max_implausible=q.max_implausible)
        for t, why in bad.items():
            log.warning("scene %s rejected: %s", t.strftime("%Y-%m-%d"), why)
        res.rejected.update(bad)
        keep = [t for t in batch if t not in bad]
        if not keep:
            return {}
        if not self.static_done:
            self.static, self.static_done = _static(self.cfg, self.cube, self.dem, self.outlines, self.model), True
        kept = sub.sel(time=np.array(keep, dtype="datetime64[ns]"))
        for t in keep:
            self.held[t] = kept
        result = _maps(self.cfg, kept, self.dem, self.outlines, self.model, self.static)
        io.layout_regions(result, self.store, zarr_format=self.fmt)
        return io.region_writes(result, self.store)

    def finished(self, outcomes: list[tuple[pd.Timestamp, BaseException | None]]) -> None:
        """Record dates whose writes ended (together: one update of the store) or failed."""
        from xfacies import io

        res = self.outcome
        ok = [t for t, error in outcomes if error is None]
        if ok:
            io.mark_complete(self.store, ok)
        for t, error in outcomes:
            self.held.pop(t, None)  # the batch's imagery is released with its last date
            if error is None:
                res.written.append(t)
                log.info("wrote %s", t.strftime("%Y-%m-%d"))
            else:
                res.failed[t] = _reason(error)
                res.errors.append(error)
                log.error("date %s failed and is skipped (the next run tries it again): %s",
                          t.strftime("%Y-%m-%d"), res.failed[t])
        self.bar.update(len(outcomes))

    # ------------------------------------------------------------------ the loop
    def run(self, todo: list[pd.Timestamp]) -> _Outcome:
        """Classify and write the dates ``todo``; the outcome of each."""
        from xfacies import io

        res = self.outcome
        if not todo:
            return res
        cube, model = self.cube, self.model
        size = dates_per_batch(self.client, cube.sizes["y"] * cube.sizes["x"],
                               cube.sizes.get("band", 6) + len(model.features) + len(model.classes) + 2,
                               override=self.cfg.cluster.batch_dates)
        log.info("dates per batch: %d (%d batch(es))", size, -(-len(todo) // size))
        self.bar = _progress(len(todo), "classify + write", self.progress)
        try:
            if self.client is None:
                self._run_local(_batches(todo, size))
            else:
                self._run_cluster(_batches(todo, size), size)
        finally:
            self.bar.close()
            if io.zarr_format_of(self.store) is not None:
                io.record_dates(self.store, "failed", res.failed, clear=res.written + list(res.rejected))
                io.record_dates(self.store, "rejected", res.rejected, clear=res.written)
        res.written.sort()
        return res

    def _run_local(self, batches: Iterator[list[pd.Timestamp]]) -> None:
        import dask

        for batch in batches:
            writes = self.prepare(batch)
            self.bar.update(sum(t in self.outcome.rejected for t in batch))
            for t, w in writes.items():
                try:
                    dask.compute(w)
                except Exception as e:  # noqa: BLE001 - recorded (run raises it when no date is complete)
                    self.finished([(t, e)])
                else:
                    self.finished([(t, None)])

    def _run_cluster(self, batches: Iterator[list[pd.Timestamp]], size: int) -> None:
        from xfacies import graphs

        flight: dict[Any, pd.Timestamp] = {}  # future -> its date

        def submit() -> bool:
            batch = next(batches, None)
            if batch is None:
                return False
            writes = self.prepare(batch)
            self.bar.update(sum(t in self.outcome.rejected for t in batch))
            futures = graphs.compute(*writes.values(), client=self.client)
            flight.update(zip(futures, writes))
            return True

        more = submit() and submit()  # two batches in flight
        while flight or more:
            if not flight:
                more = submit()
                continue
            ended = first_done(self.client, list(flight), self.patience, self.store)
            self.finished([(flight.pop(f), f.exception() if f.status == "error" else None)
                           for f in sorted(ended, key=flight.__getitem__)])
            if more and len(flight) <= size:
                more = submit()


STATIC_KEY = "xfacies_static_key"


def _static(cfg: RunConfig, cube: Any, dem: Any, outlines: Any, model: Any) -> Any:
    """The date-independent features (elevation, slope, proximity), computed once per grid and
    kept in ``<dir>/static.zarr``: a re-run, or a run over new dates on the same grid, outlines and
    DEM, reads them instead of computing them again.  ``None`` when the model uses none."""
    import shutil

    import xarray as xr
    from dask.base import tokenize

    from xfacies import catalog, graphs, spatial
    from xfacies.features.compute import STATIC_FEATURES, static_features

    names = [n for n in catalog.feature_set(model.features) if n in STATIC_FEATURES]
    if not names:
        return None
    dem_id: Any = cfg.dem.source
    if Path(str(cfg.dem.source)).exists():
        st = Path(cfg.dem.source).stat()
        dem_id = (cfg.dem.source, st.st_size, st.st_mtime_ns)
    key = tokenize(str(spatial.geobox(cube)), outlines.geometry.to_wkb().tolist(), dem_id,
                   cfg.area.synthetic.model_dump(exclude={"dates"}) if cfg.area.synthetic else None, names)
    path = cfg.output.path / "static.zarr"
    chunks = {"y": cfg.stac.chunks, "x": cfg.stac.chunks}
    if path.exists():
        try:
            ds = xr.open_zarr(path, chunks=chunks)
            if ds.attrs.get(STATIC_KEY) == key:
                log.info("static terrain features read from %s", path)
                return ds["static"]
        except Exception:  # noqa: BLE001 - an unreadable cache is recomputed
            pass
        log.info("static terrain features in %s are for another grid, outlines or DEM: recomputing", path)
    grid = cube.isel(time=0, band=0, drop=True)
    st = static_features(dem, outlines, grid, feature_set=names)
    tmp = path.with_name(path.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    out = xr.Dataset({"static": st.drop_vars([c for c in st.coords if c not in st.dims])})
    out.attrs[STATIC_KEY] = key
    graphs.compute(out.to_zarr(tmp, mode="w", consolidated=True, compute=False))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)  # complete, or absent
    log.info("static terrain features (%s) computed once and kept in %s", ", ".join(names), path)
    return xr.open_zarr(path, chunks=chunks)["static"]


def _maps(cfg: RunConfig, sub: Any, dem: Any, outlines: Any, model: Any, static: Any = None) -> Any:
    """The lazy class maps + confidence of the dates of ``sub``."""
    from xfacies.features import features
    from xfacies.inference import classify

    feats = features(sub, dem=dem, outlines=outlines, feature_set=model.features, static=static)
    result = classify(feats, model, outlines, method=cfg.model.method, smooth=cfg.model.smooth,
                      confidence=True, batch_size=cfg.model.batch_size)
    source = "synthetic season (xfacies.synthetic) served by rustac on loopback" \
        if cfg.stac.catalog == "synthetic" else str(sub.attrs.get("stac_catalog", cfg.stac.catalog))
    result.attrs.update(title="xfacies glacier surface facies", source=source, **_provenance(cfg, model))
    return result


def _scene_table(cfg: RunConfig, dates: list[pd.Timestamp], done: Any, step4: _Outcome) -> pd.DataFrame:
    """``report/scenes.csv``: one row per date of the run, its status, reason and quality shares."""
    import xarray as xr

    quality = (xr.concat(step4.quality, dim="time").to_dataframe()
               if step4.quality else pd.DataFrame(columns=["valid", "saturated", "implausible"]))
    rows = []
    for t in dates:
        status, why = ("written", "") if t in step4.written else \
            ("rejected", step4.rejected[t]) if t in step4.rejected else \
            ("failed", step4.failed[t]) if t in step4.failed else \
            ("already complete", "") if t in done else ("not run", "")
        row = {"date": t.strftime("%Y-%m-%d"), "status": status, "reason": why}
        for c in ("valid", "saturated", "implausible"):
            row[c] = round(float(quality.loc[t, c]), 4) if t in quality.index else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["date", "status", "valid", "saturated", "implausible", "reason"])


def _fractions(cfg: RunConfig, dates: list[pd.Timestamp], outlines: Any, resume: bool) -> tuple[Any, Any]:
    """Class maps of every complete date, and their fractions (computed for new dates only)."""
    from xfacies import io
    from xfacies.products import fractions

    out = cfg.output
    complete = np.array(sorted(set(_done_dates(out.store)) & set(dates)), dtype="datetime64[ns]")
    # read back several dates per task (about 64 MB of int8 maps): the tasks of the fractions and
    # the snowlines stay few however long the record
    ny, nx = io.open_zarr(out.store, chunks=None)["classes"].shape[-2:]
    per = int(max(1, min(len(complete), 64e6 // max(1, ny * nx))))
    classes = io.open_zarr(out.store, chunks={"time": per})["classes"].sel(time=complete)
    have = set(_done_dates(out.fractions)) if resume else set()
    new = np.array([t for t in complete if pd.Timestamp(t) not in have], dtype="datetime64[ns]")
    if new.size:
        io.to_zarr(fractions(classes.sel(time=new), outlines).compute(), out.fractions,
                   zarr_format=out.zarr_format)
    return classes, io.open_zarr(out.fractions, chunks=None).sel(time=complete).compute()


def _products(cfg: RunConfig, classes: Any, frac: Any, dem: Any, outlines: Any) -> dict[str, Any]:
    """AAR proxy (and snowline altitude) per date into ``products.zarr``; their end-of-season values."""
    import xarray as xr

    from xfacies import io
    from xfacies.products import aar_proxy, end_of_season, snowline_altitude

    p = cfg.products
    season_kw = dict(min_coverage=p.min_coverage, window=(p.window[0], p.window[1]),
                     hydrological_year_start_month=p.hydrological_year_start_month)
    aar = aar_proxy(frac, include_refrozen=p.include_refrozen)
    prod = {"aar_proxy": aar}
    eos = {"aar_proxy": end_of_season(aar, frac["coverage"], stat="min", **season_kw)}
    if p.snowline:
        sla = snowline_altitude(classes, _on_grid(dem, classes), outlines,
                                include_refrozen=p.include_refrozen).compute()
        prod["snowline_altitude"] = sla
        eos["snowline_altitude"] = end_of_season(sla, frac["coverage"], stat="max", **season_kw)

    def bare(v: Any) -> Any:
        return v.drop_vars([c for c in v.coords if c not in v.dims], errors="ignore")

    pds = xr.Dataset({k: bare(v) for k, v in prod.items()})
    for k, v in eos.items():
        pds[f"end_of_season_{k}"] = bare(v)
        pds[f"end_of_season_{k}_date"] = bare(v["time"])
    io.to_zarr(pds, cfg.output.products, mode="w", zarr_format=cfg.output.zarr_format)
    return eos


def _massbalance(cfg: RunConfig, eos: dict[str, Any], table: pd.DataFrame, glaciers: list[str],
                 outlines: Any, notes: list[str]) -> tuple[pd.DataFrame, Any, list[Path]]:
    """Balances joined to the end-of-season table, the regression and its report files."""
    report = cfg.output.report
    regression, files = None, []
    if cfg.massbalance.wgms:
        from xfacies.massbalance import regress

        bal = _balance(cfg.massbalance, glaciers, outlines, notes, report)
        if bal is not None:
            bt = bal.drop_vars([c for c in bal.coords if c not in bal.dims]).to_series().rename("balance").reset_index()
            bt["glacier"] = bt["glacier"].astype(str)
            table = table.merge(bt, on=["year", "glacier"], how="left")
            try:
                regression = regress(eos["aar_proxy"].rename("aar_proxy"), bal, by=cfg.massbalance.by)
            except ValueError as e:
                notes.append(f"mass-balance regression skipped: {e}")
                log.warning("mass-balance regression skipped: %s", e)
        if regression is not None:
            regression.to_dataframe().to_csv(report / "massbalance.csv")
            regression.data.to_csv(report / "massbalance_pairs.csv", index=False)
            regression.plot(report / "massbalance.png")
            files += [report / "massbalance.csv", report / "massbalance_pairs.csv", report / "massbalance.png"]
    table.to_csv(report / "end_of_season.csv", index=False)
    return table, regression, [report / "end_of_season.csv", *files]


def _figures(cfg: RunConfig, classes: Any, frac: Any, written: list[pd.Timestamp], outlines: Any) -> list[Path]:
    """``report/fractions.png`` and, with ``quicklooks``, one facies map per written date."""
    from xfacies import plot

    report = cfg.output.report
    fig = plot.fraction_timeseries(frac)
    fig = fig if hasattr(fig, "savefig") else fig.figure
    fig.savefig(report / "fractions.png", dpi=100)
    _close(fig)
    files = [report / "fractions.png"]
    if cfg.output.quicklooks and written:
        files += plot.save_quicklooks(classes.sel(time=np.array(written, dtype="datetime64[ns]")), None, report,
                                      outlines=outlines)
    return files


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
