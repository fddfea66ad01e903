"""regress() hygiene and its figure: percent AAR is flagged, n counts only the pairs used, dropped
glaciers are listed with their reasons, and the figure is a capped grid of named small multiples.

Expected numbers come from numpy/scipy on pairs selected here, and the dropped table from reasons
written down here, not from the code under test.
"""

from __future__ import annotations

import itertools
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from conftest import SHARED, needs_shared
from test_massbalance import check_fit_against_scipy, synthetic_pairs
from xfacies.massbalance import regress

WGMS_DIR = SHARED / "data" / "wgms"


# --------------------------------------------------------------------------- percent AAR
def _as(x: xr.DataArray, name, units=None) -> xr.DataArray:
    out = x.copy()
    out.name = name
    out.attrs = {} if units is None else {"units": units}
    return out


@pytest.mark.parametrize(("name", "units", "why"), [
    ("aar", None, "name 'aar'"),
    ("aar_proxy", None, "name 'aar_proxy'"),
    ("wgms_aar", None, "name 'wgms_aar'"),
    ("AAR", None, "name 'AAR'"),
    ("x", "%", "units '%'"),
    (None, "1", "units '1'"),
])
def test_percent_aar_warns_naming_input_and_fix(name, units, why):
    x, y = synthetic_pairs()
    pct = _as(x * 100, name, units)
    with pytest.warns(UserWarning, match="percent") as rec:
        res = regress(pct, y, cv=False)
    msgs = [str(w.message) for w in rec if "percent" in str(w.message)]
    assert len(msgs) == 1
    label = name or "predictor"
    assert f"predictor {label!r}" in msgs[0] and why in msgs[0] and f"{label} / 100" in msgs[0]
    assert f"{float(np.nanmax(pct.where(np.isfinite(y)).values)):.4g}" in msgs[0]
    # a warning, not a silent conversion: the fit is that of the values given
    ok = np.isfinite(y.values)
    lr = stats.linregress(pct.values[ok], y.values[ok])
    assert res.slope == pytest.approx(lr.slope, rel=1e-10)


def test_percent_aar_series_input_warns():
    x, y = synthetic_pairs()
    s = (x * 100).to_series().rename("aar")
    with pytest.warns(UserWarning, match=r"predictor 'aar' is fraction-like"):
        regress(s, y.to_series(), cv=False)


@pytest.mark.parametrize(("scale", "name", "units"), [
    (1.0, "aar_proxy", None),      # a fraction: fine
    (1.0, "aar", "1"),
    (1000.0, "ela_m", "m"),         # not fraction-like: an ELA in metres
    (100.0, "aar_pct", "m"),        # units decide over the name
    (100.0, "predictor", None),     # unknown quantity: not guessed
])
def test_no_percent_warning_otherwise(scale, name, units):
    x, y = synthetic_pairs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        regress(_as(x * scale, name, units), y, cv=False)


@needs_shared("data", "wgms")
def test_real_wgms_aar_in_percent_warns_and_slope_is_100x_smaller():
    from xfacies.massbalance import wgms

    ids = ["RGI60-11.00897", "RGI60-11.00787", "RGI60-11.00719", "RGI60-11.00804"]
    mb = wgms.balance_for(ids, WGMS_DIR)
    with pytest.warns(UserWarning, match=r"predictor 'aar_percent' is fraction-like \(units '%'\)"):
        pct = regress(wgms.overview_for(ids, WGMS_DIR, "aar_percent"), mb, cv=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frac = regress(wgms.overview_for(ids, WGMS_DIR, "aar"), mb, cv=False)
    assert pct.n == frac.n == 293
    assert pct.slope * 100 == pytest.approx(frac.slope, rel=1e-9)


# --------------------------------------------------------------------------- n and dropped
def messy_inputs(seed: int = 0):
    """Three good glaciers and one of each kind of trouble, with the reasons expected for each."""
    rng = np.random.default_rng(seed)
    years = np.arange(2000, 2012)
    gl_x = list("ABCDEFGHI")           # J is only in the balance input
    gl_y = list("ABCDEFGHIJ")
    x = pd.DataFrame(rng.uniform(0.1, 0.8, (len(years), len(gl_x))), index=years, columns=gl_x)
    y = pd.DataFrame(np.nan, index=years, columns=gl_y)
    for i, g in enumerate(gl_y):
        y[g] = (2.0 + 0.3 * i) * x.get(g, 0.5) - 1.4 + 0.1 * rng.standard_normal(len(years))
    y.loc[[2003, 2007], "A"] = np.nan       # gaps in a good glacier
    x.loc[2005, "B"] = np.nan
    x["D"] = 0.0                             # AAR = 0 every year
    x.loc[years[2:], "E"] = np.nan           # two pairs only
    x["F"] = np.nan                          # no AAR at all
    y["G"] = np.nan                          # no balance at all
    y["H"] = -0.7                            # the same balance every year
    x.loc[years[:6], "I"] = np.nan           # predictor and balance in disjoint years
    y.loc[years[6:], "I"] = np.nan
    names = {"A": "ALPHA GLACIER", "D": "DELTA GLACIER", "F": "FOXTROT GLACIER"}

    def arr(df, name):
        return xr.DataArray(df.to_numpy(), dims=("year", "glacier"),
                            coords={"year": years, "glacier": list(df.columns)}, name=name)

    bal = arr(y, "balance").assign_coords(
        wgms_name=("glacier", [names.get(g, "") for g in gl_y]))
    expected = pd.DataFrame([
        # glacier, reason, n_pairs (counted here), in the global fit
        ("D", "constant predictor", 12, False),
        ("E", "fewer than 3 pairs", 2, True),
        ("F", "no predictor values", 0, False),
        ("G", "no balance values", 0, False),
        ("H", "constant balance", 12, False),
        ("I", "no common years", 0, False),
        ("J", "no predictor values", 0, False),
    ], columns=["glacier", "reason", "n_pairs", "in_fit"])
    expected.insert(1, "name", [names.get(g, "") for g in expected["glacier"]])
    return arr(x, "aar_proxy"), bal, x, y, expected


def _pairs(x: pd.DataFrame, y: pd.DataFrame, glaciers):
    xs, ys = [], []
    for g in glaciers:
        ok = np.isfinite(x[g].to_numpy()) & np.isfinite(y[g].to_numpy())
        xs.append(x[g].to_numpy()[ok])
        ys.append(y[g].to_numpy()[ok])
    return xs, ys


@pytest.mark.parametrize("by", ["glacier", "global"])
def test_dropped_table_and_n_equal_independent_selection(by):
    xa, ya, x, y, expected = messy_inputs()
    res = regress(xa, ya, by=by, cv=False)
    exp = expected.copy()
    if by == "glacier":
        exp["in_fit"] = False
    pd.testing.assert_frame_equal(res.dropped.reset_index(drop=True), exp, check_dtype=False)

    good = ["A", "B", "C"]
    xs, ys = _pairs(x, y, good)
    assert sorted(res.per_glacier) == good  # D, E, H have pairs but no defined line
    for g, xg, yg in zip(good, xs, ys):
        check_fit_against_scipy(res.per_glacier[g], xg, yg)
    if by == "glacier":
        assert res.n == sum(len(v) for v in xs) == len(res.data) == 12 + 10 + 11
        fitted = np.concatenate([np.polyval(np.polyfit(xg, yg, 1), xg) for xg, yg in zip(xs, ys)])
        obs = np.concatenate(ys)
        assert res.rmse == pytest.approx(np.sqrt(np.mean((obs - fitted) ** 2)), rel=1e-10)
        assert res.r == pytest.approx(np.corrcoef(obs, fitted)[0, 1], rel=1e-10)
    else:  # the short glacier E still belongs to the global line; D and H do not
        gx, gy = _pairs(x, y, good + ["E"])
        check_fit_against_scipy(res, np.concatenate(gx), np.concatenate(gy))
        assert res.n == len(res.data) == 12 + 10 + 11 + 2
    assert set(res.data["glacier"]) == (set(good) if by == "glacier" else set(good) | {"E"})


def test_issue_numbers_119_glaciers():
    """The reported case: 119 glaciers, two without AAR, one with AAR = 0 in each of its 5 years;
    2929 glacier-years in common -> 2924 pairs and 116 fits."""
    rng = np.random.default_rng(7)
    years = np.arange(1990, 2016)                      # 26 years
    ids = [f"RGI60-11.{i:05d}" for i in range(119)]
    aar = rng.uniform(0.05, 0.9, (26, 119))
    mb = 2.5 * aar - 1.6 + 0.3 * rng.standard_normal(aar.shape)
    aar[25, 24:116] = np.nan                           # 24 glaciers x 26 years + 92 x 25 = 2924
    aar[:, 116:118] = np.nan                           # no AAR
    aar[:, 118] = np.nan
    aar[:5, 118] = 0.0                                 # AAR = 0 in its 5 years
    c = {"year": years, "glacier": ids}
    x = xr.DataArray(aar, dims=("year", "glacier"), coords=c, name="aar")
    y = xr.DataArray(mb, dims=("year", "glacier"), coords=c)
    ok = np.isfinite(aar)
    assert ok.sum() == 2929
    for by in ("global", "glacier"):
        res = regress(x, y, by=by, cv=False)
        assert res.n == 2924 and len(res.per_glacier) == 116 and res.data["glacier"].nunique() == 116
        assert sorted(zip(res.dropped["glacier"], res.dropped["reason"], res.dropped["n_pairs"])) == [
            (ids[116], "no predictor values", 0), (ids[117], "no predictor values", 0),
            (ids[118], "constant predictor", 5)]
        assert "n=2924 glacier-years of 116 glaciers, 116 per-glacier fits" in res.summary()
        assert "5 of 2929 pairs not used" in res.summary()
    keep = ok.copy()
    keep[:, 118] = False
    lr = stats.linregress(aar[keep], mb[keep])
    res = regress(x, y, cv=False)
    assert res.slope == pytest.approx(lr.slope, rel=1e-10) and res.r == pytest.approx(lr.rvalue, rel=1e-10)


def test_summary_and_to_dataframe_list_dropped(tmp_path):
    xa, ya, x, y, expected = messy_inputs()
    res = regress(xa, ya, by="glacier")
    text = res.summary()
    for g, name, reason, k in expected[["glacier", "name", "reason", "n_pairs"]].itertuples(index=False):
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"{g} "))
        assert reason in line and f"({k} pairs" in line and name in line
    assert "ALPHA GLACIER" in next(ln for ln in text.splitlines() if ln.strip().startswith("A "))
    df = res.to_dataframe()
    assert list(df.index) == ["all", "A", "B", "C", *expected["glacier"]]
    assert df.loc["all", "n"] == res.n and df.loc["all", "n_pairs"] == res.n + 12 + 2 + 12
    dropped = df.loc[expected["glacier"]]
    assert dropped["dropped"].tolist() == expected["reason"].tolist()
    assert dropped["n_pairs"].tolist() == expected["n_pairs"].tolist()
    assert dropped[["n", "r", "rmse", "slope"]].isna().all().all()
    assert (df.loc[["all", "A", "B", "C"], "dropped"] == "").all()
    assert df.loc["D", "name"] == "DELTA GLACIER" and df.loc["A", "name"] == "ALPHA GLACIER"
    assert list(res.to_dataframe(dropped=False).index) == ["all", "A", "B", "C"]
    # the pipeline's report files
    df.to_csv(tmp_path / "massbalance.csv")
    back = pd.read_csv(tmp_path / "massbalance.csv", index_col="fit", keep_default_na=False)
    assert back.loc["H", "dropped"] == "constant balance"
    res.data.to_csv(tmp_path / "pairs.csv", index=False)
    assert len(pd.read_csv(tmp_path / "pairs.csv")) == res.n


def test_errors_name_the_dropped_glaciers():
    xa, ya, *_ = messy_inputs()
    with pytest.raises(ValueError, match=r"no glacier has a defined line.*fewer than 20 pairs"):
        regress(xa, ya, by="glacier", min_years=20)
    x, y = synthetic_pairs()
    with pytest.raises(ValueError, match=r"left after dropping glaciers \(1 with constant predictor, "
                                         r"2 with constant balance\)"):
        regress(x.where(x.glacier != "A", 0.3).isel(year=slice(0, 3)),
                y.where(y.glacier == "A", -0.5).isel(year=slice(0, 3)).fillna(0.1))


def test_glacier_names_from_inputs_and_argument():
    x, y = synthetic_pairs()
    ids = ["RGI60-11.00897", "RGI60-11.00787", "RGI60-11.00719"]
    x, y = x.assign_coords(glacier=ids), y.assign_coords(glacier=ids)
    plain = regress(x, y, cv=False)
    assert plain.names == {} and [plain.label(g) for g in ids] == ids
    y2 = y.assign_coords(wgms_name=("glacier", ["HINTEREISFERNER", "KESSELWANDFERNER", "nan"]))
    x2 = x.assign_coords(name=("glacier", ["HEF", "KWF", "GEPATSCHFERNER"]))
    res = regress(x2, y2, cv=False)  # the balance's names win, blanks fall back
    assert res.names == {ids[0]: "HINTEREISFERNER", ids[1]: "KESSELWANDFERNER", ids[2]: "GEPATSCHFERNER"}
    res = regress(x, y, cv=False, names={ids[2]: "GEPATSCHFERNER"})
    assert [res.label(g) for g in ids] == [ids[0], ids[1], "GEPATSCHFERNER"]
    s = x.to_series()
    s.attrs["glacier_names"] = {ids[0]: "HEF"}
    assert regress(s, y.to_series(), cv=False).label(ids[0]) == "HEF"


# --------------------------------------------------------------------------- figure
def named_glaciers(ng: int, years: int = 20, seed: int = 0):
    """balance = a + b * AAR + noise per glacier, with WGMS-like names (some long)."""
    rng = np.random.default_rng(seed)
    stems = ["HINTEREISFERNER", "SILVRETTA", "GRIES", "CLARIDENFIRN (UNTERER MESSPUNKT)", "ALLALIN",
             "GLACIER DE SAINT-SORLIN", "STORGLACIAEREN", "VERNAGTFERNER", "ENGABREEN", "SARENNES"]
    aar = rng.uniform(0.05, 0.85, (years, ng))
    mb = rng.uniform(-2, -1, ng) + rng.uniform(2, 3.5, ng) * aar + 0.2 * rng.standard_normal(aar.shape)
    ids = [f"RGI60-11.{i:05d}" for i in range(ng)]
    names = [f"{stems[i % len(stems)]} {i}" for i in range(ng)]
    c = {"year": np.arange(2000, 2000 + years), "glacier": ids, "wgms_name": ("glacier", names)}
    return (xr.DataArray(aar, dims=("year", "glacier"), coords=c, name="aar_proxy"),
            xr.DataArray(mb, dims=("year", "glacier"), coords=c, attrs={"units": "m w.e."}), names)


@pytest.mark.parametrize("ng", [4, 20, 120])
def test_figure_is_a_capped_grid_of_named_panels(ng, tmp_path):
    from PIL import Image

    x, y, names = named_glaciers(ng)
    by = "glacier" if ng == 20 else "global"
    res = regress(x, y, by=by, cv=False)
    out = Path(os.environ.get("XFACIES_REGRESSION_PNG_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"regression_{ng}_{by}.png"
    fig = res.plot(path, max_panels=None)  # every glacier: the layout is what is tested here

    with Image.open(path) as im:
        w, h = im.size
    assert 700 <= w <= 2400 and 700 <= h <= 2400           # was 1280 x 8820 px for 120 glaciers
    assert (w, h) == tuple(round(v * 100) for v in fig.get_size_inches())
    pooled, panels = fig.axes[0], fig.axes[1:]
    assert len(panels) == ng
    ncols = int(np.ceil(np.sqrt(ng)))
    assert len({round(a.get_position().x0, 4) for a in panels}) == ncols
    assert len({round(a.get_position().y0, 4) for a in panels}) == int(np.ceil(ng / ncols))
    # titles are the names, alphabetically; r and n of that glacier's fit on the panel
    titles = [a.get_title() for a in panels]
    assert titles == sorted(names, key=str.casefold)
    by_name = dict(zip(names, x.glacier.values))
    for a in panels:
        f = res.per_glacier[by_name[a.get_title()]]
        assert [t.get_text() for t in a.texts] == [f"r={f.r:.2f}  n={f.n}"]
        assert a.get_legend() is None
    # shared axes: one x and one y range for all panels
    assert len({a.get_xlim() for a in panels}) == 1 and len({a.get_ylim() for a in panels}) == 1
    # nothing overlaps: panels (with titles and tick labels), the pooled panel and its legend
    r = fig.canvas.get_renderer()
    boxes = [a.get_tightbbox(r) for a in fig.axes]
    for (i, b1), (j, b2) in itertools.combinations(enumerate(boxes), 2):
        assert not b1.overlaps(b2), f"{i} and {j} overlap"
    fb = fig.bbox
    assert all(fb.x0 - 1 <= b.x0 and b.x1 <= fb.x1 + 1 and fb.y0 - 1 <= b.y0 and b.y1 <= fb.y1 + 1
               for b in boxes)
    for a in panels:  # titles fit over their panel, the r/n text inside it
        ab = a.get_window_extent(r)
        tb = a.title.get_window_extent(r)
        assert tb.width <= ab.width and a.texts[0].get_window_extent(r).x1 <= ab.x1
    leg = pooled.get_legend().get_window_extent(r)
    assert leg.x0 >= pooled.get_window_extent(r).x1  # the legend is beside the data, not on it


def test_figure_titles_fall_back_to_ids_and_list_dropped():
    xa, ya, *_ = messy_inputs()
    res = regress(xa, ya, by="global", cv=False)
    fig = res.plot()
    assert [a.get_title() for a in fig.axes[1:]] == ["ALPHA GLACIER", "B", "C", "E"]
    e = fig.axes[4]
    assert [t.get_text() for t in e.texts] == ["n=2, no line"]
    head = fig.axes[0].get_title(loc="left").replace("\n", " ")
    assert "7 glacier(s) without a per-glacier fit" in head
    assert "1 fewer than 3 pairs (in the global fit, no line)" in head and "2 no predictor values" in head
