"""xfacies.caffe.explore: thumbnails, overlays, the static HTML gallery (in a real headless
browser when Chromium is installed) and the FiftyOne export (when FiftyOne is installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from xfacies.caffe import explore, fiftyone_export, webpage
from xfacies.caffe.dataset import index, open_dataset, select
from xfacies.caffe.postprocess import zones_to_front
from xfacies.caffe.synthetic import make_synthetic
from xfacies.catalog import ZONES

from conftest import skip_unless_ci

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REAL = SHARED / "data" / "caffe-256"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _hex(color: str) -> np.ndarray:
    color = color.lstrip("#")
    return np.array([int(color[i:i + 2], 16) for i in (0, 2, 4)], dtype=np.float64)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = make_synthetic(tmp_path_factory.mktemp("caffe") / "data", n=7, seed=3)
    return open_dataset(root)


def _nodes(tree):
    return [tree[s] for s in tree.children]


# --------------------------------------------------------------------------- thumbnail


def test_thumbnail_fixed_height_keeps_aspect(tree):
    shapes = set()
    for node in _nodes(tree):
        H, W = node["sar"].shape
        shapes.add((H, W))
        im = explore.thumbnail(node, height=48)
        assert im.mode == "L"
        assert im.size == (round(48 * W / H), 48)
    assert any(h != w for h, w in shapes), "the synthetic images must be non-square"


def test_thumbnail_inputs_agree_and_path(tree, tmp_path):
    node = _nodes(tree)[0]
    sar = node["sar"].values
    from_node = np.asarray(explore.thumbnail(node, height=30))
    from_array = np.asarray(explore.thumbnail(sar, height=30))
    from_file = np.asarray(explore.thumbnail(node.attrs["source"], height=30))
    assert np.array_equal(from_node, from_array) and np.array_equal(from_node, from_file)
    out = explore.thumbnail(node, tmp_path / "t.png", height=30)
    assert out == tmp_path / "t.png" and out.is_file()
    with pytest.raises(ValueError, match="either path"):
        explore.thumbnail(node, tmp_path / "t.png", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="height"):
        explore.thumbnail(node, height=0)


def test_thumbnail_cache_reads_no_pixels_and_follows_the_source(tmp_path, monkeypatch):
    import PIL.Image

    root = make_synthetic(tmp_path / "data", n=2, seed=5)
    node = _nodes(open_dataset(root))[0]
    stem, source = node.attrs["stem"], Path(node.attrs["source"])
    cache = tmp_path / "cache"
    first = explore.thumbnail(node, height=40, cache_dir=cache)
    assert first.parent == cache and first.name.startswith(f"{stem}_h40_") and first.suffix == ".png"

    opened = []
    real_open = PIL.Image.open
    monkeypatch.setattr(PIL.Image, "open", lambda fp, *a, **k: opened.append(fp) or real_open(fp, *a, **k))
    stamp = first.stat().st_mtime_ns
    with real_open(first) as im:
        old_pixels = np.asarray(im).copy()
    assert explore.thumbnail(node, height=40, cache_dir=cache) == first
    assert opened == [], "a cache hit must not read the image"
    assert first.stat().st_mtime_ns == stamp

    other = explore.thumbnail(node, height=20, cache_dir=cache)  # another height: another file
    assert other != first and "_h20_" in other.name

    # a changed source (new pixels, new mtime) gives a new thumbnail; the stale one goes
    sar = np.asarray(real_open(source)).copy()
    PIL.Image.fromarray(255 - sar).save(source)
    st = source.stat()
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    opened.clear()
    fresh = explore.thumbnail(node, height=40, cache_dir=cache)
    assert fresh != first and fresh.name.startswith(f"{stem}_h40_")
    assert opened, "a changed source must be read again"
    assert not first.exists() and other.exists()
    assert not np.array_equal(np.asarray(real_open(fresh)), old_pixels)


# --------------------------------------------------------------------------- overlay


def test_overlay_is_the_closed_form_blend(tree):
    alpha = 0.3
    for node in _nodes(tree)[:3]:
        sar = node["sar"].values.astype(np.float64)
        zones = node["zones"].values
        front = node["front"].values
        img = np.asarray(explore.overlay(node, alpha=alpha))
        assert img.shape == (*sar.shape, 3) and img.dtype == np.uint8
        colors = np.stack([_hex(z.color) for z in sorted(ZONES, key=lambda z: z.id)])
        expected = np.rint((1 - alpha) * sar[..., None] + alpha * colors[zones])
        assert front.any() and (~front).any()
        assert np.array_equal(img[~front], expected[~front].astype(np.uint8))
        assert (img[front] == _hex(explore.FRONT_COLOR)).all()
        # every class present somewhere off the front matches its catalogue colour blend
        for z in ZONES:
            where = (zones == z.id) & ~front
            if where.any():
                r, c = np.argwhere(where)[0]
                want = np.rint((1 - alpha) * sar[r, c] + alpha * _hex(z.color))
                assert np.array_equal(img[r, c], want)


def test_overlay_zero_alpha_is_the_sar_and_bad_alpha_raises(tree):
    node = _nodes(tree)[1]
    img = np.asarray(explore.overlay(node, alpha=0.0))
    off = ~node["front"].values
    assert np.array_equal(img[off][:, 0], node["sar"].values[off])
    with pytest.raises(ValueError, match="alpha"):
        explore.overlay(node, alpha=1.5)


def test_overlay_truth_and_prediction_side_by_side(tree, tmp_path):
    # coarse pixels: the predicted front is longer than the 750 m that post-processing deletes
    node = max(_nodes(tree), key=lambda n: (n.attrs["pixel_size"], n.attrs["stem"]))
    H, W = node["sar"].shape
    truth = np.asarray(explore.overlay(node))
    pred_zones = np.roll(node["zones"].values, 2, axis=1)
    both = np.asarray(explore.overlay(node, pred_zones))
    assert both.shape == (H, 2 * W + 4, 3)
    assert np.array_equal(both[:, :W], truth)
    assert (both[:, W:W + 4] == 255).all()
    # without a front the prediction's front is zones_to_front with the node's metres per pixel
    res = node.attrs["pixel_size"]
    bbox = node["bbox"] if "bbox" in node.data_vars else None
    pf = zones_to_front(pred_zones, res, bbox)
    assert pf.any()
    right = both[:, W + 4:]
    assert (right[pf] == _hex(explore.FRONT_COLOR)).all()
    # a given front is drawn as it is
    import xarray as xr

    mine = np.zeros((H, W), bool)
    mine[H // 2, :] = True
    ds = xr.Dataset({"zones": (("y", "x"), pred_zones), "front": (("y", "x"), mine)})
    right = np.asarray(explore.overlay(node, ds))[:, W + 4:]
    red = (right == _hex(explore.FRONT_COLOR)).all(axis=2)
    assert np.array_equal(red, mine)
    with pytest.raises(ValueError, match="prediction"):
        explore.overlay(node, pred_zones[:, :-1])
    out = explore.overlay(node, pred_zones, height=24, out=tmp_path / "o.png")
    assert out.is_file()


def test_overlay_shrunk_keeps_every_front_pixel(tree):
    node = _nodes(tree)[0]
    H, W = node["sar"].shape
    h = max(H // 3, 8)
    w = round(h * W / H)
    img = np.asarray(explore.overlay(node, height=h))
    assert img.shape == (h, w, 3)
    rows, cols = np.nonzero(node["front"].values)
    red = (img == _hex(explore.FRONT_COLOR)).all(axis=2)
    assert red[rows * h // H, cols * w // W].all()


# --------------------------------------------------------------------------- gallery


class _Cards(HTMLParser):
    """Cards (attrs, text, hidden), the #count text and every src/href of a page."""

    def __init__(self):
        super().__init__()
        self.cards: list[dict] = []
        self.links: list[str] = []
        self.count = None
        self.dialog_open = False
        self.viewer_src = None
        self._in_card = 0
        self._in_count = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href"):
            if a.get(key):
                self.links.append(a[key])
        if tag == "figure" and "card" in (a.get("class") or "").split():
            self.cards.append({"attrs": a, "hidden": "hidden" in a, "text": ""})
            self._in_card = 1
        elif self._in_card and tag not in ("img", "br", "input"):
            self._in_card += 1
        if a.get("id") == "count":
            self._in_count, self.count = True, ""
        if tag == "dialog" and a.get("id") == "viewer":
            self.dialog_open = "open" in a
        if a.get("id") == "viewer-img":
            self.viewer_src = a.get("src")

    def handle_endtag(self, tag):
        if self._in_card and tag not in ("img", "br", "input"):
            self._in_card -= 1
        if tag == "span" and self._in_count:
            self._in_count = False

    def handle_data(self, data):
        if self._in_card:
            self.cards[-1]["text"] += data + " "
        if self._in_count:
            self.count += data


def _parse(text: str) -> _Cards:
    p = _Cards()
    p.feed(text)
    return p


@pytest.fixture(scope="module")
def site(tree, tmp_path_factory):
    """A gallery with predictions and the per-image scores of evaluate for all images."""
    from xfacies.caffe import evaluate

    preds = {s: n["zones"].roll(x=2).to_dataset() for s, n in tree.children.items()}
    scores = evaluate(preds, tree, per_image=True)
    out = tmp_path_factory.mktemp("site")
    page = webpage.gallery(tree, out, predictions=preds, scores=scores, height=40, title="Test <gallery>")
    return page, scores


def test_gallery_files_and_cards(tree, site):
    page, scores = site
    out = page.parent
    assert page == out / "index.html"
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text, "the page must not load anything remote"
    assert "Test &lt;gallery&gt;" in text
    parsed = _parse(text)
    df = index(tree)
    assert len(parsed.cards) == len(df) == len(tree.children)
    assert parsed.count.strip() == f"{len(df)} of {len(df)} images"
    assert len(list((out / "thumbnails").glob("*.png"))) == len(df)
    assert len(list((out / "overlays").glob("*.png"))) == len(df)
    for link in parsed.links:
        assert not link.startswith(("/", "file:", "http")), link
        assert (out / link).is_file(), link
    by_stem = {c["attrs"]["data-stem"]: c for c in parsed.cards}
    scores = scores.set_index("image")
    for stem, row in df.iterrows():
        card = by_stem[stem]
        text = " ".join(card["text"].split())
        for value in (row.glacier, row.date.date().isoformat(), row.satellite, f"{row.resolution} m",
                      str(row.quality), row.orbit, row.split, row.season, row.hemisphere,
                      f"{row.width} × {row.height} px"):
            assert str(value) in text, (stem, value, text)
        assert card["attrs"]["data-glacier"] == row.glacier
        assert card["attrs"]["data-prediction"] == "1"
        if np.isfinite(scores.loc[stem, "mde"]):
            assert f"MDE {scores.loc[stem, 'mde']:.0f} m" in text
        img = (out / card["attrs"]["data-overlay"])
        from PIL import Image

        with Image.open(img) as im:
            assert im.size == (2 * row.width + 4, row.height)  # truth | prediction, small images kept


def test_gallery_again_reuses_the_thumbnails(tree, tmp_path):
    sub = select(tree, list(tree.children)[:3])
    webpage.gallery(sub, tmp_path, height=32)
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.rglob("*.png")}
    assert len(stamps) == 6
    webpage.gallery(sub, tmp_path, height=32)
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.rglob("*.png")} == stamps


def _chromium() -> str | None:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture()
def needs_chromium():
    """A headless browser: skipped without one on a developer's machine, a failure in CI."""
    if _chromium() is None:
        skip_unless_ci(f"no headless browser on PATH (looked for {', '.join(BROWSERS)}); install one, "
                       "e.g. 'apt-get install -y chromium', to check the gallery's JavaScript")


def _browser(page: Path, query: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run",
           f"--user-data-dir={profile}", *extra, page.as_uri() + query]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=True)


@pytest.mark.usefixtures("needs_chromium")
def test_gallery_filters_from_the_url_in_a_headless_browser(tree, site, tmp_path):
    page, _ = site
    df = index(tree)
    n = len(df)
    glacier = df.glacier.value_counts().index[0]
    checks = {
        f"?glacier={glacier}": df.glacier == glacier,
        f"?glacier={glacier.lower()},{df.glacier.iloc[-1]}&split=train":
            df.glacier.isin([glacier, df.glacier.iloc[-1]]) & (df.split == "train"),
        "?glacier=Nowhere": df.glacier == "Nowhere",
    }
    # text search: every word must occur in the card's search text (case-insensitive)
    static = {c["attrs"]["data-stem"]: c["attrs"]["data-search"] for c in _parse(page.read_text()).cards}
    words = [df.orbit.iloc[1], df.glacier.iloc[1].upper()]
    checks["?q=" + "+".join(words)] = df.index.map(
        lambda s: all(w.lower() in static[s] for w in words)).to_numpy(dtype=bool)
    for query, expect in checks.items():
        expect = np.asarray(expect, dtype=bool)
        dom = _parse(_browser(page, query, tmp_path, "--dump-dom").stdout)
        visible = sorted(c["attrs"]["data-stem"] for c in dom.cards if not c["hidden"])
        assert len(dom.cards) == n
        assert visible == sorted(df.index[expect]), query
        assert dom.count.strip() == f"{int(expect.sum())} of {n} images", query

    # ?open= opens the viewer on that image's overlay
    stem = df.index[0]
    dom = _parse(_browser(page, f"?open={stem}", tmp_path, "--dump-dom").stdout)
    card = next(c for c in dom.cards if c["attrs"]["data-stem"] == stem)
    assert dom.dialog_open and dom.viewer_src == card["attrs"]["data-overlay"]


@pytest.mark.usefixtures("needs_chromium")
def test_gallery_screenshot_is_not_blank(site, tmp_path):
    from PIL import Image

    page, _ = site
    shot = tmp_path / "gallery.png"
    _browser(page, "?split=train", tmp_path, f"--screenshot={shot}", "--window-size=1280,900")
    with Image.open(shot) as im:
        assert im.size == (1280, 900)
        rgb = np.asarray(im.convert("RGB"))
    assert rgb.std() > 20
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 200  # text, thumbnails, colours


# --------------------------------------------------------------------------- real data


@pytest.mark.skipif(not (REAL / "sar_images").is_dir(),
                    reason=f"{REAL} is absent: the real CaFFe 256-px data lives in ../shared, which "
                           "only the project's development machines have")
def test_real_images_thumbnail_overlay_and_gallery(tmp_path):
    tree = open_dataset(REAL)
    df = index(tree)
    picks = df.groupby("glacier").head(2)
    sub = select(tree, picks)
    node = sub[picks.index[0]]
    im = explore.thumbnail(node, height=100)
    H, W = node["sar"].shape
    assert im.size == (round(100 * W / H), 100)
    img = np.asarray(explore.overlay(node))
    front = node["front"].values
    assert front.any() and (img[front] == _hex(explore.FRONT_COLOR)).all()
    page = webpage.gallery(sub, tmp_path, height=64)
    parsed = _parse(page.read_text(encoding="utf-8"))
    assert len(parsed.cards) == len(picks)
    assert {c["attrs"]["data-glacier"] for c in parsed.cards} == set(df.glacier)


# --------------------------------------------------------------------------- FiftyOne


def test_to_fiftyone_without_fiftyone_says_how_to_install(tree, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_fiftyone(name, *args, **kwargs):
        if name == "fiftyone" or name.startswith("fiftyone."):
            raise ImportError("No module named 'fiftyone'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_fiftyone)
    with pytest.raises(ImportError, match="pip install fiftyone"):
        fiftyone_export.to_fiftyone(tree)


def test_to_fiftyone(tree, tmp_path):
    import importlib.util

    if importlib.util.find_spec("fiftyone") is None:
        skip_unless_ci("FiftyOne is not installed: pip install -e '.[test]' installs it")
    from xfacies.caffe import evaluate

    preds = {s: n["zones"].roll(x=2).to_dataset() for s, n in tree.children.items()}
    scores = evaluate(preds, tree, per_image=True)
    name = f"xfacies-test-{os.getpid()}"
    ds = fiftyone_export.to_fiftyone(tree, name, predictions=preds, scores=scores, height=32,
                             media_dir=tmp_path, overwrite=True)
    import fiftyone as fo  # imported by to_fiftyone (after dask, which needs a work-around)

    try:
        df = index(tree)
        assert len(ds) == len(df)
        schema = ds.get_field_schema()
        assert isinstance(schema["date"], fo.DateTimeField)
        assert isinstance(schema["resolution"], fo.IntField)
        assert isinstance(schema["quality"], fo.IntField)
        for field in ("glacier", "satellite", "sensor", "orbit", "split", "season", "hemisphere"):
            assert isinstance(schema[field], fo.StringField), field
        assert ds.mask_targets["zones"] == {z.id: z.name for z in ZONES}
        assert ds.app_config.grid_media_field == "thumbnail_path"
        for sample in ds:
            row = df.loc[sample["stem"]]
            assert sample.filepath == str(Path(tree[sample["stem"]].attrs["source"]).resolve())
            assert sample["glacier"] == row.glacier and sample["resolution"] == row.resolution
            assert sample["date"].date() == row.date.date()
            mask = sample["zones"].get_mask()
            assert np.array_equal(mask, tree[sample["stem"]]["zones"].values)
            assert sample["pred_zones"] is not None and sample["front"] is not None
            assert Path(sample["thumbnail_path"]).is_file()
            assert sample["mde"] is None or sample["mde"] >= 0
        assert ds.match(fo.ViewField("glacier") == df.glacier.iloc[0]).count() == int(
            (df.glacier == df.glacier.iloc[0]).sum())
        with pytest.raises(ValueError, match="exists"):
            fiftyone_export.to_fiftyone(tree, name, media_dir=tmp_path)
    finally:
        ds.delete()
