"""The regression figure: the pooled scatter with the fit(s), and small multiples, one panel per
glacier, that stay readable from 1 to 120+ glaciers (:meth:`RegressionResult.plot`)."""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xfacies.compat import renamed_keywords
from xfacies.errors import InputError

__all__ = ["regression_figure"]


@renamed_keywords(path="out")
def regression_figure(self: Any, out: str | Path | None = None, *, dpi: int = 100,
                      max_size: float = 24.0, max_panels: int | None = 30) -> Any:
    """Draw :class:`xfacies.massbalance.regression.RegressionResult` ``self`` (see its ``plot``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    d = self.data
    titles = _panel_titles(self, list(pd.unique(d["glacier"])))
    glaciers = sorted(titles, key=lambda g: (titles[g].casefold(), g))
    if max_panels is not None and (not isinstance(max_panels, (int, np.integer)) or max_panels < 0):
        raise InputError(f"max_panels must be a whole number >= 0 or None, got {max_panels!r}")
    shown_note = []
    if max_panels is not None and len(glaciers) > max_panels:
        years = d.groupby("glacier").size()
        keep = set(sorted(glaciers, key=lambda g: (-int(years.get(g, 0)), titles[g].casefold(), g))[:max_panels])
        shown_note = [f"panels: the {max_panels} of {len(glaciers)} glaciers with the most years (all are in "
                      "the pooled panel; plot(max_panels=None) draws every one)"]
        glaciers = [g for g in glaciers if g in keep]
    ng = len(glaciers)
    lay = _Layout.for_panels(ng, max_size)
    chars = int((lay.width - lay.left - 0.15) * 72 / (0.55 * 9))
    head = "\n".join(textwrap.fill(t, chars) for t in _plot_title(self) + shown_note)
    lay = _Layout.for_panels(ng, max_size, title_lines=head.count("\n") + 1)
    W, H = lay.width, lay.height
    fig = Figure(figsize=(W, H))
    FigureCanvasAgg(fig)

    # ---- pooled panel
    ax = fig.add_axes((lay.left / W, (H - lay.top - lay.pooled_h) / H,
                       (W - lay.left - lay.right - lay.legend_w) / W, lay.pooled_h / H))
    x_all, y_all = d["predictor"].to_numpy(), d["balance"].to_numpy()
    xr_ = np.array([np.nanmin(x_all), np.nanmax(x_all)])
    pt_size = 14 if len(d) < 300 else 8 if len(d) < 2000 else 6
    ax.scatter(x_all, y_all, s=pt_size, color="C0", alpha=0.55 if len(d) < 2000 else 0.4,
               linewidths=0, zorder=3)
    handles = [Line2D([], [], ls="", marker="o", color="C0", alpha=0.6, label="glacier-years")]
    if self.by == "glacier":
        lw, alpha = (1.0, 0.7) if ng <= 30 else (0.5, 0.35)
        for g, f in self.per_glacier.items():
            s = d[d["glacier"] == g]
            xs = np.array([s["predictor"].min(), s["predictor"].max()])
            ax.plot(xs, f.intercept + f.slope * xs, color="C1", lw=lw, alpha=alpha, zorder=2)
        handles.append(Line2D([], [], color="C1", lw=1.2, label="per-glacier fit"))
    if self.by == "global":
        ax.plot(xr_, self.intercept + self.slope * xr_, color="k", lw=2.0, zorder=4)
        handles.append(Line2D([], [], color="k", lw=2.0, label="global fit\n(dashed in panels)"))
        if self.per_glacier:
            handles.append(Line2D([], [], color="C1", lw=1.2, label="per-glacier fit\n(panels)"))
    ax.axhline(0.0, color="0.6", lw=0.6, zorder=0)
    ax.set_xlabel(self.predictor_name)
    ax.set_ylabel(f"mass balance ({self.balance_units})")
    ax.tick_params(labelsize=8)
    ax.set_title(head, fontsize=9, loc="left")
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False, borderaxespad=0.0)

    # ---- small multiples
    gx = lay.left
    gy = lay.bottom
    ax_w = lay.cell_w - lay.gap_w
    ax_h = lay.cell_h - lay.gap_h
    gs = fig.add_gridspec(
        lay.nrows, lay.ncols,
        left=gx / W, right=(gx + lay.ncols * lay.cell_w - lay.gap_w) / W,
        bottom=gy / H, top=(gy + lay.nrows * lay.cell_h - lay.gap_h) / H,
        wspace=lay.gap_w / ax_w, hspace=lay.gap_h / ax_h,
    )
    title_fs, text_fs, tick_fs = lay.fonts
    renderer = fig.canvas.get_renderer()
    room = ax_w * fig.dpi - 4  # display units available to a panel title
    first = None
    for i, g in enumerate(glaciers):
        row, col = divmod(i, lay.ncols)
        a = fig.add_subplot(gs[row, col], sharex=first, sharey=first)
        first = first or a
        s = d[d["glacier"] == g]
        a.scatter(s["predictor"], s["balance"], s=lay.marker, color="C0", linewidths=0, zorder=3)
        if self.by == "global":
            a.plot(xr_, self.intercept + self.slope * xr_, color="k", lw=0.8, ls="--", zorder=2)
        f = self.per_glacier.get(g)
        if f is not None:
            xs = np.array([s["predictor"].min(), s["predictor"].max()])
            a.plot(xs, f.intercept + f.slope * xs, color="C1", lw=1.3, zorder=4)
            text, slope = f"r={f.r:.2f}  n={f.n}", f.slope
        else:
            text, slope = f"n={len(s)}, no line", self.slope
        right = bool(np.isfinite(slope) and slope < 0)
        a.text(0.96 if right else 0.04, 0.95, text, transform=a.transAxes, fontsize=text_fs,
               ha="right" if right else "left", va="top", zorder=5,
               bbox={"boxstyle": "square,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.75})
        _fit_title(a.set_title(titles[g], fontsize=title_fs, pad=2.5), room, renderer)
        a.axhline(0.0, color="0.6", lw=0.5, zorder=1)
        a.tick_params(labelsize=tick_fs, length=2.5, pad=1.5,
                      labelbottom=i + lay.ncols >= ng, labelleft=col == 0)
    if first is not None:
        first.xaxis.set_major_locator(MaxNLocator(nbins=4 if lay.ncols > 6 else 5))
        first.yaxis.set_major_locator(MaxNLocator(nbins=4 if lay.nrows > 6 else 5))
        grid_mid_y = (gy + (lay.nrows * lay.cell_h - lay.gap_h) / 2) / H
        fig.text(0.12 / W, grid_mid_y, f"mass balance ({self.balance_units})", rotation=90,
                 ha="left", va="center", fontsize=9)
        fig.text((gx + (lay.ncols * lay.cell_w - lay.gap_w) / 2) / W, 0.08 / H,
                 f"{self.predictor_name}  (per glacier; shared axes)", ha="center", va="bottom",
                 fontsize=9)
    if out is not None:
        fig.savefig(out, dpi=dpi)
    return fig


def _panel_titles(self: Any, glaciers: list[str]) -> dict[str, str]:
    """Name (or id) per glacier; a name shared by several glaciers gets the id appended."""
    labels = {g: self.label(g) for g in glaciers}
    counts = pd.Series(list(labels.values())).value_counts()
    return {g: (f"{t} ({g})" if counts[t] > 1 and t != g else t) for g, t in labels.items()}

def _plot_title(self: Any) -> list[str]:
    u = self.balance_units
    head = (f"balance vs {self.predictor_name}, by={self.by}: r = {self.r:.2f}, "
            f"RMSE = {self.rmse:.2f} {u}, n = {self.n} glacier-years of "
            f"{self.data['glacier'].nunique()} glaciers")
    loyo = self.cv.get("leave-one-year-out")
    if loyo is not None and np.isfinite(loyo.rmse):
        head += f"; leave-one-year-out RMSE = {loyo.rmse:.2f}"
    lines = [head]
    d = self.dropped
    if len(d):
        parts = []
        for in_fit, what in ((False, "not in the fit, no panel"), (True, "in the global fit, no line")):
            sub = d[d["in_fit"].astype(bool) == in_fit]
            if len(sub):
                counts = sub["reason"].value_counts(sort=False)
                parts.append(", ".join(f"{k} {r}" for r, k in counts.items()) + f" ({what})")
        lines.append(f"{len(d)} glacier(s) without a per-glacier fit: " + "; ".join(parts)
                     + "; see result.dropped")
    return lines


def _fit_title(text: Any, room: float, renderer: Any, min_size: float = 5.5) -> None:
    """Shrink a panel title to ``room`` display units: smaller font first, then an ellipsis in
    the middle (names often differ at their ends)."""
    full = text.get_text()
    size = text.get_fontsize()
    while text.get_window_extent(renderer).width > room and size > min_size:
        size = max(min_size, size - 0.5)
        text.set_fontsize(size)
    keep = len(full)
    while text.get_window_extent(renderer).width > room and keep > 6:
        keep -= 1
        head = (keep + 1) // 2
        text.set_text(full[:head].rstrip() + "…" + full[len(full) - (keep - head):].lstrip())


@dataclass(frozen=True)
class _Layout:
    """Figure geometry of :meth:`RegressionResult.plot`, in inches."""

    ncols: int
    nrows: int
    width: float
    height: float
    cell_w: float
    cell_h: float
    left: float = 0.85
    right: float = 0.25
    bottom: float = 0.55
    top: float = 0.6
    pooled_h: float = 3.2
    legend_w: float = 1.45
    gap_w: float = 0.12
    gap_h: float = 0.28
    fonts: tuple[float, float, float] = (8.0, 7.0, 7.0)
    marker: float = 12.0

    @classmethod
    def for_panels(cls, ng: int, max_size: float = 24.0, title_lines: int = 2) -> _Layout:
        ncols = max(1, math.ceil(math.sqrt(ng)))
        nrows = max(1, math.ceil(ng / ncols))
        base = cls(ncols, nrows, 0, 0, 0, 0, top=0.25 + 0.17 * max(1, title_lines))
        pooled_h = 3.2 if ng <= 30 else 3.8
        sep = 0.8  # pooled x tick labels and label, then the first row's titles
        want_w, want_h = 2.5, 2.1  # a comfortable panel cell
        fixed_w = base.left + base.right
        fixed_h = base.top + pooled_h + sep + base.bottom
        width = min(max_size, max(7.5, fixed_w + ncols * want_w))
        height = min(max_size, fixed_h + nrows * want_h)
        cell_w = min(3.2, (width - fixed_w) / ncols)
        cell_h = min(2.6, (height - fixed_h) / nrows)
        small = cell_h < 1.9 or cell_w < 2.2
        fonts = (7.0, 6.5, 6.0) if small else (8.0, 7.0, 7.0)
        marker = 6.0 if small else 12.0
        return cls(ncols, nrows, width, height, cell_w, cell_h, top=base.top, pooled_h=pooled_h,
                   gap_h=0.24 if small else 0.28, fonts=fonts, marker=marker)
