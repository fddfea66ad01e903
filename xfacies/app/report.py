"""What a run did and where it wrote it: :class:`RunResult`, its summary, and the end-of-season table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xfacies.app.config import RunConfig

__all__ = ["RunResult", "end_of_season_table"]


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
    rejected
        ``{date: reason}``: scenes refused by the quality checks
        (``[quality]``; not classified).
    failed
        ``{date: reason}``: dates whose computation failed persistently (after
        the retries); the next run tries them again.
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
    rejected: dict[pd.Timestamp, str] = field(default_factory=dict)
    failed: dict[pd.Timestamp, str] = field(default_factory=dict)
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
        ]
        for title, rec in (("rejected by the quality checks", self.rejected),
                           ("FAILED (retried by the next run)", self.failed)):
            if rec:
                lines.append(f"  {title}: {len(rec)} date(s)")
                lines += [f"    {t:%Y-%m-%d}: {why}" for t, why in list(rec.items())[:20]]
                if len(rec) > 20:
                    lines.append(f"    ... {len(rec) - 20} more in report/scenes.csv")
        lines += [
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


def end_of_season_table(eos: Mapping[str, Any]) -> pd.DataFrame:
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
