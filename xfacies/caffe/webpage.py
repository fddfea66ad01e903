"""The CaFFe gallery: a static, self-contained HTML page (no server, no network) of thumbnail
cards with the metadata, filters, text search and overlays (:func:`gallery`).

The page's HTML, CSS and JavaScript are package data (``xfacies/caffe/templates/gallery.*``),
filled in here with the cards, the filters and the legend; the pictures come from
:mod:`xfacies.caffe.explore`.

Examples
--------
>>> from xfacies.caffe import make_synthetic, open_dataset
>>> page = gallery(open_dataset(make_synthetic("webpage-demo", n=4)), "webpage-demo-site")
>>> page.name, sorted(p.name for p in page.parent.iterdir())
('index.html', ['index.html', 'overlays', 'thumbnails'])
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import os
import re
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
import xarray as xr

from xfacies.caffe.explore import (
    FILTER_FIELDS, FRONT_COLOR, SCORE_LABELS, cache_key, cached_png, check_height, overlay, predictions_map, safe_name, scores_table, source_of, thumbnail, width_for,
)
from xfacies.catalog import ZONES
from xfacies.compat import renamed_keywords

__all__ = ["gallery"]


def _template(name: str) -> str:
    """A template of the page (``xfacies/caffe/templates/<name>``), read from the package."""
    return resources.files("xfacies.caffe").joinpath("templates", name).read_text(encoding="utf-8")


def _score_columns(scores: pd.DataFrame | None, meta_columns: set[str]) -> list[str]:
    if scores is None:
        return []
    preferred = [c for c in SCORE_LABELS if c in scores.columns]
    if preferred:
        return preferred
    numeric = [c for c in scores.columns if c not in meta_columns
               and pd.api.types.is_numeric_dtype(scores[c]) and not pd.api.types.is_bool_dtype(scores[c])]
    return numeric[:6]


def _fmt_score(col: str, value: Any, units: Any = None) -> str:
    """A score as shown on a card; distances carry the table's ``units`` (``"m"`` or ``"px"``;
    a table without the column is taken to be in pixels, never labelled metres unasked)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "–"
    fmt = SCORE_LABELS.get(col, (col, "{:.4g}"))[1]
    units = "px" if units is None or (isinstance(units, float) and math.isnan(units)) else str(units)
    if units == "px":
        fmt = fmt.replace("{:.0f}", "{:.1f}")
    return fmt.format(v, units=units)


def _attr_name(col: str) -> str:
    return "score_" + re.sub(r"[^a-z0-9_]", "_", col.lower())


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _card(stem: str, row: pd.Series, thumb: str, over: str, size: tuple[int, int], has_pred: bool,
          score_cols: list[str], score_row: pd.Series | None) -> str:
    values = {
        "glacier": row["glacier"], "split": row["split"], "satellite": row["satellite"],
        "sensor": row["sensor"], "resolution": int(row["resolution"]), "quality": int(row["quality"]),
        "season": row["season"], "hemisphere": row["hemisphere"], "year": row["date"].year,
    }
    date = row["date"].date().isoformat()
    sat = row["satellite"] if row["sensor"] == row["satellite"] else f"{row['satellite']} ({row['sensor']})"
    meta = [("glacier", row["glacier"]), ("date", date), ("satellite", sat),
            ("resolution", f"{int(row['resolution'])} m"), ("quality", int(row["quality"])),
            ("orbit", row["orbit"]), ("split", row["split"]), ("season", row["season"]),
            ("hemisphere", row["hemisphere"]), ("size", f"{int(row['width'])} × {int(row['height'])} px")]
    attrs = {f"data-{k}": v for k, v in values.items()}
    attrs.update({"data-stem": stem, "data-date": date, "data-orbit": row["orbit"],
                  "data-overlay": over, "data-prediction": "1" if has_pred else "0"})
    search = [stem, date, row["glacier"], row["satellite"], row["sensor"], row["orbit"], row["split"],
              row["season"], row["hemisphere"], f"q{int(row['quality'])}", f"{int(row['resolution'])}m"]
    if score_row is not None:
        for col in score_cols:
            value = score_row.get(col)
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            attrs[f"data-{_attr_name(col)}"] = repr(number) if math.isfinite(number) else ""
            meta.append((SCORE_LABELS.get(col, (col, ""))[0], _fmt_score(col, value, score_row.get("units"))))
        if bool(score_row.get("no_front", False)):
            meta.append(("front", "none predicted"))
            search.append("nofront")
    attrs["data-search"] = " ".join(str(s) for s in search).lower()
    attr_text = " ".join(f'{k}="{_e(v)}"' for k, v in attrs.items())
    dl = "".join(f'<dt>{_e(k)}</dt><dd class="f-{_e(k.lower())}">{_e(v)}</dd>' for k, v in meta)
    width, height = size
    return (f'<figure class="card" tabindex="0" {attr_text}>'
            f'<img src="{_e(thumb)}" width="{width}" height="{height}" loading="lazy" alt="{_e(stem)}">'
            f'<figcaption><div class="stem">{_e(stem)}</div><dl class="meta">{dl}</dl></figcaption>'
            "</figure>")


def _filters(df: pd.DataFrame) -> str:
    blocks = []
    for field in FILTER_FIELDS:
        col = df["date"].dt.year if field == "year" else df[field]
        counts = col.value_counts()
        values = sorted(counts.index, key=lambda v: (str(type(v)), v))
        boxes = "".join(
            f'<label><input type="checkbox" data-field="{field}" value="{_e(v)}"> {_e(v)}'
            f' <span class="n">{int(counts[v])}</span></label>' for v in values)
        blocks.append(f'<details class="filter" data-field="{field}"><summary>{field}: '
                      f'<span class="chosen" id="chosen-{field}">all</span></summary>'
                      f'<div class="options">{boxes}</div></details>')
    return "".join(blocks)


def _legend() -> str:
    items = [f'<span class="swatch" style="background:{z.color}"></span>{_e(z.name)}' for z in ZONES]
    items.append(f'<span class="swatch line" style="background:{FRONT_COLOR}"></span>front')
    return "".join(f"<span class=\"key\">{i}</span>" for i in items)


@renamed_keywords(out_dir="out")
def gallery(dataset: xr.DataTree, out: str | os.PathLike[str], *, predictions: Any = None,
            scores: pd.DataFrame | None = None, height: int = 128, overlay_height: int | None = 512,
            alpha: float = 0.45, title: str = "CaFFe calving-front images") -> Path:
    """Write a static HTML gallery of the images, to filter and browse in any web browser.

    The folder gets one self-contained ``index.html`` (inline CSS and JavaScript, no network),
    ``thumbnails/`` and ``overlays/`` (PNG files, linked relatively: the folder can be moved,
    zipped or served as it is).  Each image is a card with its thumbnail and metadata (glacier,
    date, satellite/sensor, resolution, quality, orbit, split, season, hemisphere, size and the
    scores, if given).  In the browser:

    * a checkbox drop-down per field of :data:`FILTER_FIELDS` and a text search (every word must
      occur in the stem or the metadata) hide the other cards, and the element ``#count`` says
      ``"N of M images"``;
    * a sort menu orders by stem, date, quality or a score;
    * clicking a card (or Enter) opens its overlay (``truth | prediction`` when the image has a
      prediction); arrow keys step through the visible cards, Esc closes.

    The state is read from and written to the URL query, e.g.
    ``index.html?glacier=JAC,Crane&split=train&q=tsx&sort=-score_mde&open=<stem>`` (values are
    case-insensitive, several values of one field as a comma list or repeated keys), so a view
    can be bookmarked, shared and tested headless.

    Parameters
    ----------
    dataset
        A tree of :func:`xfacies.caffe.open_dataset` (or :func:`~xfacies.caffe.select`).
    out
        Folder to write into (created).  Thumbnails and truth-only overlays are cached there by
        source file (see :func:`thumbnail`), so writing the gallery again is quick.
    predictions
        Optional predictions: a DataTree with one node per image or a mapping stem -> node or
        zones (see :func:`overlay`).  Images without a prediction show the truth only;
        predictions of images not in ``dataset`` are ignored.
    scores
        Optional per-image scores: a DataFrame indexed by stem, or the table of
        ``xfacies.caffe.evaluate(..., per_image=True)`` (its ``image`` column is the stem).  The
        columns ``mde``, ``hd95`` and ``iou`` are shown when present (else up to six numeric
        columns) and can be sorted by (``sort=score_<column>``, ``-`` for descending).
    height
        Thumbnail height in pixels.
    overlay_height
        Height of the overlays at most (smaller images keep their size); ``None``: full size.
    alpha
        Opacity of the zone colours in the overlays.
    title
        Page title.

    Returns
    -------
    pathlib.Path
        The ``index.html`` written.

    Examples
    --------
    >>> from xfacies.caffe import make_synthetic, open_dataset
    >>> tree = open_dataset(make_synthetic("explore-gallery", n=5))
    >>> page = gallery(tree, "explore-gallery-site", height=64)
    >>> text = page.read_text()
    >>> text.count('<figure class="card"'), 'id="count"' in text, "http" in text
    (5, True, False)

    Open ``page`` in a browser, or ``page.as_uri() + "?glacier=JAC"`` for the JAC images only.
    """
    from xfacies.caffe.dataset import index

    height = check_height(height)
    if overlay_height is not None:
        overlay_height = check_height(overlay_height, "overlay_height")
    if not isinstance(dataset, xr.DataTree):
        raise TypeError(f"dataset must be a DataTree of xfacies.caffe.open_dataset, got "
                        f"{type(dataset).__name__}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    thumbs, overs = out / "thumbnails", out / "overlays"
    df = index(dataset)
    preds = predictions_map(predictions)
    table = scores_table(scores)
    score_cols = _score_columns(table, set(df.columns) | {"image", "no_front"})

    cards = []
    for stem, row in df.iterrows():
        node = dataset[stem]
        ds = node.to_dataset(inherit=False)
        thumb = thumbnail(ds.assign_attrs(stem=stem), height=height, cache_dir=thumbs)
        size = (width_for(height, (int(row["height"]), int(row["width"]))), height)
        oh = int(row["height"]) if overlay_height is None else min(overlay_height, int(row["height"]))
        pred = preds.get(stem)
        if pred is None:
            sources = [source_of(ds[v], ds) if v in ds.data_vars else None for v in ("sar", "zones", "front")]
            if all(s is None or s.is_file() for s in sources):
                key = cache_key(sources, oh, float(alpha), [z.color for z in ZONES], FRONT_COLOR)
                over = cached_png(overs, stem, f"o{oh}", key,
                               lambda ds=ds, oh=oh: overlay(ds, height=oh, alpha=alpha))
            else:
                over = overlay(ds, height=oh, alpha=alpha, out=overs / f"{safe_name(stem)}_o{oh}.png")
        else:
            over = overlay(ds, pred, height=oh, alpha=alpha,
                           out=overs / f"{safe_name(stem)}_pred_o{oh}.png")
        score_row = table.loc[stem] if table is not None and stem in table.index else None
        rel = [quote(Path(p).relative_to(out).as_posix()) for p in (thumb, over)]
        cards.append(_card(str(stem), row, rel[0], rel[1], size, pred is not None, score_cols, score_row))

    sort = [("stem", "stem"), ("date", "date ↑"), ("-date", "date ↓"), ("quality", "quality ↑")]
    for col in score_cols:
        label = SCORE_LABELS.get(col, (col, ""))[0]
        sort += [(_attr_name(col), f"{label} ↑"), ("-" + _attr_name(col), f"{label} ↓")]
    sort_html = "".join(f'<option value="{_e(v)}">{_e(t)}</option>' for v, t in sort)
    attrs = dataset.attrs
    footer = [f"{len(df)} images", f"generated {_dt.datetime.now().isoformat(timespec='seconds')}"]
    if attrs.get("citation"):
        footer.append(f"Data: {attrs['citation']}" + (f" Licence {attrs['license']}." if attrs.get("license") else ""))
    js = _template("gallery.js").replace("__FIELDS__", json.dumps(list(FILTER_FIELDS)))
    page = (_template("gallery.html").replace("__CSS__", _template("gallery.css").replace("HEIGHT", str(height)))
            .replace("__JS__", js)
            .replace("__TITLE__", _e(title))
            .replace("__LEGEND__", _legend())
            .replace("__FILTERS__", _filters(df))
            .replace("__SORT__", sort_html)
            .replace("__TOTAL__", str(len(df)))
            .replace("__FOOTER__", " · ".join(_e(f) for f in footer))
            .replace("__CARDS__", "\n".join(cards)))
    target = out / "index.html"
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".html", dir=out)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, target)
    return target
