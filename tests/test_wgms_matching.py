"""WGMS <-> outlines: RGI-id and location matching (RGI 7), dated link tables, early input checks.

Core tests build synthetic links and outlines; the real-data tests (../shared) check the match
against facts taken directly from the files (link-table points tested with shapely, RGI 7 glacier
names, the known WGMS id 491 / RGI60-11.00897 of Hintereisferner).
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pandas as pd
import xarray as xr
import pytest

from conftest import SHARED, needs_shared
from xfacies.massbalance import wgms

gpd = pytest.importorskip("geopandas")
shapely = pytest.importorskip("shapely")
from pyproj import Transformer  # noqa: E402
from shapely.geometry import Point, Polygon, box  # noqa: E402

WGMS_DIR = SHARED / "data" / "wgms"
OUTLINES_DIR = SHARED / "data" / "oetztal" / "outlines"

MB_HEADER = "YEAR,WGMS_ID,POLITICAL_UNIT,NAME,AREA,WINTER_BALANCE,SUMMER_BALANCE,ANNUAL_BALANCE,REMARKS,RGI_ID\n"
LINKS_HEADER = "CenLon,CenLat,POLITICAL_UNIT,NAME,WGMS_ID,RGI50_ID,RGI60_ID\n"


def _links(rows):
    """A raw link-table frame: rows of (wgms_id, name, rgi50, rgi60, lon, lat)."""
    return pd.DataFrame(rows, columns=["WGMS_ID", "NAME", "RGI50_ID", "RGI60_ID", "CenLon", "CenLat"])


def _no_warnings(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return func(*args, **kwargs)


# --------------------------------------------------------------------------- location
def test_location_match_agrees_with_shapely_point_in_polygon():
    # irregular, disjoint polygons (RGI 7-like ids) and random points; the expected match is
    # computed here directly with shapely, one point per outline at most
    rng = np.random.default_rng(3)
    polys, ids = [], []
    for k in range(6):
        cx, cy = 10.5 + 0.1 * k, 46.8 + 0.02 * (k % 2)
        ang = np.sort(rng.uniform(0, 2 * np.pi, 7))
        rad = rng.uniform(0.01, 0.03, 7)
        polys.append(Polygon(zip(cx + rad * np.cos(ang), cy + rad * np.sin(ang))))
        ids.append(f"RGI2000-v7.0-G-11-{k:05d}")
    outlines = gpd.GeoDataFrame({"rgi_id": ids}, geometry=polys, crs="EPSG:4326")
    # one point near each polygon's centre (inside unless the polygon is very concave), plus strays
    pts = [(p.representative_point().x, p.representative_point().y) for p in polys[:4]]
    # corners of the bounding boxes of the last two: inside the box, (most likely) outside the polygon
    pts += [(polys[k].bounds[0] + 1e-4, polys[k].bounds[1] + 1e-4) for k in (4, 5)]
    pts += [(10.55, 46.70), (11.5, 47.5)]
    assert any(box(*p.bounds).covers(Point(pts[k])) and not p.covers(Point(pts[k]))
               for k, p in ((4, polys[4]), (5, polys[5])))  # a bounding-box test would fail here
    links = _links([(100 + i, f"G{i}", None, None, x, y) for i, (x, y) in enumerate(pts)])
    m = _no_warnings(wgms.match_outlines, outlines, links)

    expected = {}
    for gid, poly in zip(ids, polys):
        inside = [100 + i for i, (x, y) in enumerate(pts) if poly.covers(Point(x, y))]
        assert len(inside) <= 1
        expected[gid] = inside[0] if inside else None
    got = {g: (None if pd.isna(w) else int(w)) for g, w in zip(m["glacier_id"], m["wgms_id"])}
    assert got == expected
    assert sum(v is not None for v in expected.values()) == 4  # the test is not vacuous
    assert list(m.columns) == ["glacier_id", "wgms_id", "wgms_name", "method", "distance_m", "note"]
    assert list(m["glacier_id"]) == ids  # one row per outline, in order
    hit = m["wgms_id"].notna()
    assert (m.loc[hit, "method"] == "location").all() and (m.loc[hit, "distance_m"] == 0).all()
    assert m.loc[~hit, "method"].isna().all()
    assert m.loc[hit, "wgms_name"].tolist() == ["G0", "G1", "G2", "G3"]
    assert m.loc[~hit, "note"].str.startswith("no WGMS glacier matches; nearest: WGMS").all()


def test_location_match_reprojects_points_onto_utm_outlines():
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32632", always_xy=True)
    lon, lat = 10.7584, 46.8003
    x, y = to_utm.transform(lon, lat)
    # 400 m squares: A around the point, B 1 km east of it
    outlines = gpd.GeoDataFrame({"glac_id": ["A", "B"]},
                                geometry=[box(x - 200, y - 200, x + 200, y + 200),
                                          box(x + 800, y - 200, x + 1200, y + 200)],
                                crs="EPSG:32632")
    # a second WGMS point 300 m east of A's centre: 100 m outside A, 500 m from B
    lon2, lat2 = to_utm.transform(x + 300, y, direction="INVERSE")
    links = _links([(491, "HINTEREIS F.", None, "RGI60-11.00897", lon, lat),
                    (9, "OUTSIDE", None, None, lon2, lat2)])
    m = _no_warnings(wgms.match_outlines, outlines, links).set_index("glacier_id")
    assert m.loc["A", "wgms_id"] == 491 and m.loc["A", "method"] == "location"
    assert "RGI60-11.00897" in m.loc["A", "note"]
    assert pd.isna(m.loc["B", "wgms_id"])
    # B's nearest WGMS point is the one 300 m east of A's centre: 500 m from B's west edge
    assert m.loc["B", "distance_m"] == pytest.approx(500, abs=0.5)
    assert "WGMS 9 (OUTSIDE) 500 m away" in m.loc["B", "note"]
    # the same outlines in lon/lat give the same match
    m4326 = _no_warnings(wgms.match_outlines, outlines.to_crs("EPSG:4326"), links)
    assert m4326["wgms_id"].tolist() == m.reset_index()["wgms_id"].tolist()


def test_distances_are_metres_whatever_the_outline_crs():
    from pyproj import Geod

    outlines = gpd.GeoDataFrame({"rgi_id": ["RGI60-11.00001", "X"]},
                                geometry=[box(10.0, 46.0, 10.1, 46.1), box(11.0, 46.0, 11.1, 46.1)],
                                crs="EPSG:4326")
    links = _links([(1, "ONE", None, "RGI60-11.00001", 10.05, 46.05)])
    # independent: the geodesic distance from the point to X's west edge along the parallel
    _, _, d_true = Geod(ellps="WGS84").inv(10.05, 46.05, 11.0, 46.05)
    for crs in ("EPSG:4326", "EPSG:3857", "EPSG:32632"):  # Web Mercator would inflate it by ~45 %
        m = wgms.match_outlines(outlines.to_crs(crs), links)
        assert m.loc[0, "wgms_id"] == 1 and m.loc[0, "distance_m"] == 0
        assert m.loc[1, "distance_m"] == pytest.approx(d_true, rel=0.005), crs


def test_point_on_the_edge_counts_as_inside():
    outlines = gpd.GeoDataFrame({"rgi_id": ["E"]}, geometry=[box(10.0, 46.0, 10.1, 46.1)], crs="EPSG:4326")
    m = wgms.match_outlines(outlines, _links([(5, "EDGE", None, None, 10.1, 46.05)]))
    assert m.loc[0, "wgms_id"] == 5


# --------------------------------------------------------------------------- RGI ids
def test_rgi6_and_rgi5_ids_match_through_the_link_table():
    far = box(12.0, 47.0, 12.01, 47.01)  # the link-table points do not lie in these outlines
    outlines = gpd.GeoDataFrame(
        {"name": ["six", "five", "other", "none"],
         "RGIId": ["RGI60-11.00897", "rgi50-11.00787 ", "RGI60-11.99999", "X"]},
        geometry=[far, box(12.1, 47.0, 12.11, 47.01), box(12.2, 47.0, 12.21, 47.01),
                  box(12.3, 47.0, 12.31, 47.01)],
        crs="EPSG:4326")
    links = _links([(491, "HINTEREIS F.", "RGI50-11.00897", "RGI60-11.00897", 10.7584, 46.8003),
                    (507, "KESSELWAND F.", "RGI50-11.00787", "RGI60-11.00787", 10.7907, 46.8424)])
    m = _no_warnings(wgms.match_outlines, outlines, links)
    assert m["glacier_id"].tolist() == ["RGI60-11.00897", "rgi50-11.00787 ", "RGI60-11.99999", "X"]
    assert m["wgms_id"].tolist()[:2] == [491, 507] and m["wgms_id"].isna().tolist()[2:] == [True, True]
    assert m["method"].tolist()[:2] == ["rgi_id", "rgi_id"]
    # the link points lie far from the outlines: the distance is reported and noted
    d = float(m.loc[0, "distance_m"])
    assert 90_000 < d < 150_000 and "outside this outline" in m.loc[0, "note"]
    # another id column: ids are the names, the RGI ids come from RGIId
    by_name = _no_warnings(wgms.match_outlines, outlines, links, id_column="name")
    assert by_name["glacier_id"].tolist() == ["six", "five", "other", "none"]
    assert by_name["wgms_id"].tolist()[:2] == [491, 507]


def test_links_without_coordinates_match_by_id_only():
    outlines = gpd.GeoDataFrame({"rgi_id": ["RGI60-11.00897", "RGI2000-v7.0-G-11-00001"]},
                                geometry=[box(10.7, 46.7, 10.8, 46.9), box(10.0, 46.0, 10.1, 46.1)],
                                crs="EPSG:4326")
    links = pd.DataFrame({"WGMS_ID": [491], "RGI60_ID": ["RGI60-11.00897"]})
    m = wgms.match_outlines(outlines, links)
    assert m.loc[0, "wgms_id"] == 491 and np.isnan(m.loc[0, "distance_m"])
    assert pd.isna(m.loc[1, "wgms_id"]) and "no WGMS coordinates" in m.loc[1, "note"]


def test_wgms_glacier_table_coordinates_replace_the_links():
    outlines = gpd.GeoDataFrame({"rgi_id": ["R7-A", "R7-B", "R7-C"]},
                                geometry=[box(10.0, 46.0, 10.1, 46.1), box(11.0, 46.0, 11.1, 46.1),
                                          box(12.0, 46.0, 12.1, 46.1)], crs="EPSG:4326")
    links = _links([(1, "ONE", None, "RGI60-11.00001", 10.05, 46.05)])
    # the glacier table moves glacier 1 into R7-B and adds glacier 2 (not in the links) in R7-C
    table = pd.DataFrame({"WGMS_ID": [1, 2], "NAME": ["ONE", "TWO"],
                          "LATITUDE": [46.05, 46.05], "LONGITUDE": [11.05, 12.05]})
    m = _no_warnings(wgms.match_outlines, outlines, links, wgms_glaciers=table)
    assert m["wgms_id"].tolist()[1:] == [1, 2] and pd.isna(m.loc[0, "wgms_id"])
    only = _no_warnings(wgms.match_outlines, outlines, None, wgms_glaciers=table)
    assert only["wgms_id"].tolist()[1:] == [1, 2] and only.loc[2, "wgms_name"] == "TWO"
    with pytest.raises(ValueError, match="LATITUDE"):
        wgms.match_outlines(outlines, None, wgms_glaciers=table.drop(columns="LATITUDE"))
    with pytest.raises(ValueError, match="links="):
        wgms.match_outlines(outlines, None)


# --------------------------------------------------------------------------- ambiguities
def test_two_wgms_points_in_one_outline_are_left_unmatched_with_a_warning():
    outlines = gpd.GeoDataFrame({"rgi_id": ["BIG", "SMALL"]},
                                geometry=[box(10.0, 46.0, 10.2, 46.2), box(11.0, 46.0, 11.1, 46.1)],
                                crs="EPSG:4326")
    links = _links([(1, "ONE", None, None, 10.05, 46.05), (2, "TWO", None, None, 10.15, 46.15),
                    (3, "THREE", None, None, 11.05, 46.05)])
    with pytest.warns(UserWarning, match=r"outline BIG holds the points of 2 WGMS glaciers"):
        m = wgms.match_outlines(outlines, links)
    assert pd.isna(m.loc[0, "wgms_id"]) and "WGMS 1 (ONE), WGMS 2 (TWO)" in m.loc[0, "note"]
    assert m.loc[1, "wgms_id"] == 3  # the unambiguous one is still matched
    assert len(m.attrs["ambiguities"]) == 1


def test_one_wgms_point_in_two_overlapping_outlines_matches_neither():
    outlines = gpd.GeoDataFrame({"rgi_id": ["L", "R", "FAR"]},
                                geometry=[box(10.0, 46.0, 10.2, 46.1), box(10.1, 46.0, 10.3, 46.1),
                                          box(11.0, 46.0, 11.1, 46.1)], crs="EPSG:4326")
    links = _links([(7, "SEVEN", None, None, 10.15, 46.05)])
    with pytest.warns(UserWarning, match=r"WGMS 7 \(SEVEN\) lies in 2 outlines \['L', 'R'\]"):
        m = wgms.match_outlines(outlines, links)
    assert m["wgms_id"].isna().all()
    assert m.loc[0, "note"] == m.loc[1, "note"] and "not matched by location" in m.loc[0, "note"]
    assert m.loc[2, "note"].startswith("no WGMS glacier matches")


def test_id_conflicts_are_reported():
    # one WGMS glacier linked by RGI 5 and RGI 6 id to two outlines; an id-matched outline that
    # also holds another WGMS glacier's point keeps its id match
    outlines = gpd.GeoDataFrame(
        {"rgi_id": ["RGI50-11.00001", "RGI60-11.00001", "RGI60-11.00002"]},
        geometry=[box(10.0, 46.0, 10.1, 46.1), box(10.2, 46.0, 10.3, 46.1), box(10.4, 46.0, 10.5, 46.1)],
        crs="EPSG:4326")
    links = _links([(1, "ONE", "RGI50-11.00001", "RGI60-11.00001", 10.05, 46.05),
                    (2, "TWO", None, "RGI60-11.00002", 10.45, 46.05),
                    (3, "THREE", None, None, 10.46, 46.06)])
    with pytest.warns(UserWarning, match="2 ambiguous WGMS match") as rec:
        m = wgms.match_outlines(outlines, links)
    assert len(rec) == 1
    assert m["wgms_id"].isna().tolist() == [True, True, False]
    assert "linked by RGI id to 2 outlines" in m.loc[0, "note"]
    assert m.loc[2, "wgms_id"] == 2 and m.loc[2, "method"] == "rgi_id"
    assert "WGMS 3 (THREE) lies in outline RGI60-11.00002 too" in m.loc[2, "note"]
    assert len(m.attrs["ambiguities"]) == 2


# --------------------------------------------------------------------------- balances
@pytest.fixture
def fog(tmp_path):
    """A FoG folder with two mbdata files and a dated link table (with CenLon/CenLat)."""
    (tmp_path / "mbdata_WGMS-00001.csv").write_text(
        MB_HEADER + "2000,1,AT,ONE,1.0,,,-1000.0,,\n2002,1,AT,ONE,1.0,1200.0,,500.0,,\n")
    (tmp_path / "mbdata_WGMS-00002.csv").write_text(MB_HEADER + "2001,2,AT,TWO,1.0,,,-250.0,,\n")
    (tmp_path / "rgi_wgms_links_20220112.csv").write_text(
        LINKS_HEADER + "10.05,46.05,AT,ONE,1,,RGI60-11.00001\n11.05,46.05,AT,TWO,2,,RGI60-11.00002\n"
        "12.05,46.05,AT,THREE,3,,RGI60-11.00003\n")
    return tmp_path


@pytest.fixture
def rgi7():
    return gpd.GeoDataFrame(
        {"rgi_id": ["R7-none", "R7-two", "R7-one", "R7-three"]},
        geometry=[box(9.0, 46.0, 9.1, 46.1), box(11.0, 46.0, 11.1, 46.1), box(10.0, 46.0, 10.1, 46.1),
                  box(12.0, 46.0, 12.1, 46.1)],
        crs="EPSG:4326")


def test_balances_for_outlines_are_keyed_by_the_outline_ids(fog, rgi7):
    b = _no_warnings(wgms.balances_for_outlines, rgi7, fog)
    # R7-none matches nothing, R7-three matches WGMS 3 which has no mbdata rows
    assert b.dims == ("year", "glacier") and b.glacier.values.tolist() == ["R7-two", "R7-one"]
    assert b.wgms_id.values.tolist() == [2, 1] and b.match_method.values.tolist() == ["location"] * 2
    assert b.year.values.tolist() == [2000, 2001, 2002] and b.attrs["units"] == "m w.e."
    np.testing.assert_allclose(b.sel(glacier="R7-one").values, [-1.0, np.nan, 0.5])
    np.testing.assert_allclose(b.sel(glacier="R7-two").values, [np.nan, -0.25, np.nan])
    w = wgms.balances_for_outlines(rgi7, fog, kind="winter")
    assert float(w.sel(glacier="R7-one", year=2002)) == pytest.approx(1.2)
    # the same numbers as balance_for by RGI 6 id
    ref = wgms.balance_for(["RGI60-11.00002", "RGI60-11.00001"], fog)
    np.testing.assert_array_equal(b.values, ref.values)
    # a hand-edited match table decides
    match = wgms.match_outlines(rgi7, fog)
    match.loc[match["glacier_id"] == "R7-none", ["wgms_id", "method"]] = [2, "manual"]
    e = wgms.balances_for_outlines(rgi7, fog, match=match)
    assert e.glacier.values.tolist() == ["R7-none", "R7-two", "R7-one"]
    assert e.match_method.values.tolist() == ["manual", "location", "location"]
    sub = wgms.balances_for_outlines(rgi7.iloc[[2]], fog, match=match)
    assert sub.glacier.values.tolist() == ["R7-one"]
    with pytest.raises(ValueError, match="kind"):
        wgms.balances_for_outlines(rgi7, fog, kind="net")


def test_balances_for_outlines_without_any_match_raises(fog, rgi7):
    with pytest.raises(ValueError, match=r"none of the 2 outline\(s\).*1 matched WGMS glacier\(s\) \[3\]"):
        wgms.balances_for_outlines(rgi7.iloc[[0, 3]], fog)
    with pytest.raises(ValueError, match="lacks column"):
        wgms.balances_for_outlines(rgi7, fog, match=pd.DataFrame({"glacier_id": ["R7-one"]}))


def test_balance_for_points_rgi7_users_to_location_matching(fog):
    with pytest.raises(ValueError, match="match_outlines"):
        wgms.balance_for(["RGI2000-v7.0-G-11-03116"], fog)


# --------------------------------------------------------------------------- dated link tables
def test_dated_link_table_names(fog, tmp_path_factory):
    links = wgms.read_links(fog)  # only a dated table in the folder
    assert links.attrs["path"].endswith("rgi_wgms_links_20220112.csv")
    assert links["wgms_id"].tolist() == [1, 2, 3] and links["cenlon"].tolist() == [10.05, 11.05, 12.05]
    b = wgms.balance_for(["RGI60-11.00001"], fog)  # the default links= finds it too
    assert float(b.sel(year=2000).item()) == pytest.approx(-1.0)
    # an older dated table is ignored; the undated name wins when present
    (fog / "rgi_wgms_links_20200415.csv").write_text("WGMS_ID,RGI60_ID\n99,RGI60-11.00099\n")
    assert wgms.read_links(fog)["wgms_id"].tolist() == [1, 2, 3]
    (fog / "rgi_wgms_links.csv").write_text("WGMS_ID,RGI60_ID\n42,RGI60-11.00042\n")
    assert wgms.read_links(fog)["wgms_id"].tolist() == [42]
    # nothing that looks like a link table: the error lists what is there
    empty = tmp_path_factory.mktemp("nolinks")
    (empty / "rgi_wgms_links_2022.csv").write_text("WGMS_ID,RGI60_ID\n1,RGI60-11.00001\n")
    (empty / "mbdata_WGMS-00001.csv").write_text(MB_HEADER)
    with pytest.raises(FileNotFoundError, match=r"no RGI-WGMS link table in .*rgi_wgms_links_YYYYMMDD\.csv"
                                                r".*\['mbdata_WGMS-00001\.csv', 'rgi_wgms_links_2022\.csv'\]"):
        wgms.read_links(empty)


# --------------------------------------------------------------------------- check_source
def test_check_source_accepts_valid_inputs(fog, tmp_path_factory):
    assert wgms.check_source(fog) is None
    d = tmp_path_factory.mktemp("tidy")
    (d / "b.csv").write_text("glacier,year,balance\nA,2020,-1.0\n")
    assert wgms.check_source(d / "b.csv") is None
    (d / "w.csv").write_text("glacier,year,winter_balance_mwe\nA,2020,1.0\n")
    assert wgms.check_source(d / "w.csv", kind="winter") is None
    assert wgms.check_source(fog / "mbdata_WGMS-00001.csv", links=fog) is None
    # the link table may live elsewhere
    other = tmp_path_factory.mktemp("mbonly")
    shutil.copy(fog / "mbdata_WGMS-00001.csv", other)
    assert wgms.check_source(other, links=fog / "rgi_wgms_links_20220112.csv") is None


def test_check_source_errors_name_path_missing_and_found(fog, tmp_path_factory):
    with pytest.raises(FileNotFoundError, match=r"WGMS input .*nowhere does not exist"):
        wgms.check_source(fog / "nowhere")
    d = tmp_path_factory.mktemp("wrong")
    (d / "readme.txt").write_text("x")
    (d / "mb_491.csv").write_text("a,b\n")
    with pytest.raises(FileNotFoundError,
                       match=r"no WGMS mass-balance files matching 'mbdata_WGMS-\*\.csv' in .*wrong.*"
                             r"\['mb_491\.csv', 'readme\.txt'\]"):
        wgms.check_source(d)
    nolinks = tmp_path_factory.mktemp("nolinks")
    shutil.copy(fog / "mbdata_WGMS-00001.csv", nolinks)
    with pytest.raises(FileNotFoundError, match=r"no RGI-WGMS link table .*\['mbdata_WGMS-00001\.csv'\]"):
        wgms.check_source(nolinks)
    (nolinks / "mbdata_WGMS-00002.csv").write_text("YEAR,WGMS_ID,BALANCE\n2000,2,-1\n")
    with pytest.raises(ValueError, match=r"mbdata_WGMS-00002\.csv .*missing column\(s\) \['ANNUAL_BALANCE'\]"
                                         r".*found \['YEAR', 'WGMS_ID', 'BALANCE'\]"):
        wgms.check_source(nolinks, links=fog)
    badlinks = tmp_path_factory.mktemp("badlinks")
    (badlinks / "rgi_wgms_links_20220112.csv").write_text("WGMS_ID,GLIMS_ID\n1,G1\n")
    with pytest.raises(ValueError, match=r"link table: it needs WGMS_ID and RGI50_ID or RGI60_ID.*GLIMS_ID"):
        wgms.check_source(fog / "mbdata_WGMS-00001.csv", links=badlinks)
    with pytest.raises(FileNotFoundError, match="needs the RGI-WGMS link table"):
        wgms.check_source(fog / "mbdata_WGMS-00001.csv")
    tidy = badlinks / "b.csv"
    tidy.write_text("glacier,year,mb\nA,2020,-1\n")
    with pytest.raises(ValueError, match=r"b\.csv .*missing \['balance or annual_balance_mwe or "
                                         r"annual_balance'\]; found \['glacier', 'year', 'mb'\]"):
        wgms.check_source(tidy)
    (badlinks / "w.csv").write_text("glacier,year,annual_balance_mwe\nA,2020,-1\n")
    with pytest.raises(ValueError, match="winter_balance_mwe"):
        wgms.check_source(badlinks / "w.csv", kind="winter")
    (badlinks / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty"):
        wgms.check_source(badlinks / "empty.csv")


# --------------------------------------------------------------------------- real records
@needs_shared("data", "wgms")
@needs_shared("data", "oetztal", "outlines")
def test_real_rgi7_outlines_match_by_location():
    shp = OUTLINES_DIR / "rgi7g_hef_complex.shp"
    m = _no_warnings(wgms.match_outlines, shp, WGMS_DIR)
    rgi7 = gpd.read_file(shp)
    assert len(m) == len(rgi7) == 23 and m["glacier_id"].tolist() == rgi7["rgi_id"].tolist()
    # independent: which RGI 7 polygon holds each link-table point (shapely, no reprojection needed:
    # both are lon/lat)
    raw = pd.read_csv(WGMS_DIR / "rgi_wgms_links.csv", encoding="latin-1")
    expected = {}
    for w, lon, lat in zip(raw["WGMS_ID"], raw["CenLon"], raw["CenLat"]):
        hits = [g for g, geom in zip(rgi7["rgi_id"], rgi7.geometry) if geom.covers(Point(lon, lat))]
        assert len(hits) <= 1
        if hits:
            expected[hits[0]] = int(w)
    got = {g: int(w) for g, w in zip(m["glacier_id"], m["wgms_id"]) if pd.notna(w)}
    assert got == expected
    names = dict(zip(rgi7["rgi_id"], rgi7["glac_name"]))
    by_w = {w: names[g] for g, w in got.items()}
    assert by_w[491] == "Hintereisferner" and by_w[507] == "Kesselwandferner"
    assert by_w.get(489) == "Vernagtferner" and 408 not in by_w  # Silvretta is not in this file
    assert set(m.loc[m["wgms_id"].notna(), "method"]) == {"location"}
    hef = m.set_index("glacier_id").loc["RGI2000-v7.0-G-11-03116"]
    assert hef["wgms_id"] == 491 and "RGI60-11.00897" in hef["note"]
    assert m["wgms_id"].isna().sum() == 20

    b = _no_warnings(wgms.balances_for_outlines, shp, WGMS_DIR)
    assert b.glacier.values.tolist() == sorted(got, key=rgi7["rgi_id"].tolist().index)
    assert float(b.sel(year=2020, glacier="RGI2000-v7.0-G-11-03116")) == pytest.approx(-0.97)
    assert int(b.sel(glacier="RGI2000-v7.0-G-11-03116").notnull().sum()) == 68
    ref = wgms.balance_for(["RGI60-11.00897", "RGI60-11.00787", "RGI60-11.00719"], WGMS_DIR)
    np.testing.assert_array_equal(b.values, ref.values)


@needs_shared("data", "wgms")
@needs_shared("data", "oetztal", "outlines")
def test_real_rgi6_outline_matches_by_id():
    m = _no_warnings(wgms.match_outlines, OUTLINES_DIR / "Hintereisferner_RGI6.shp", WGMS_DIR)
    assert m[["glacier_id", "wgms_id", "method"]].values.tolist() == [["RGI60-11.00897", 491, "rgi_id"]]
    assert m.loc[0, "distance_m"] == 0  # the link point lies inside the RGI 6 outline


@needs_shared("data", "wgms")
@needs_shared("data", "oetztal", "outlines")
def test_real_rgi5_outlines_mix_id_and_location():
    shp = OUTLINES_DIR / "rgi_oetztal.shp"
    m = _no_warnings(wgms.match_outlines, shp, WGMS_DIR).set_index("glacier_id")
    assert m.loc["RGI50-11.00897", ["wgms_id", "method"]].tolist() == [491, "rgi_id"]
    assert m.loc["RGI50-11.00787", ["wgms_id", "method"]].tolist() == [507, "rgi_id"]
    # Vernagtferner is split in two parts (_d01, _d02) in this file: the part holding the point
    rgi5 = gpd.read_file(shp).set_index("RGIId")
    part = [g for g in ("RGI50-11.00719_d01", "RGI50-11.00719_d02")
            if rgi5.geometry[g].covers(Point(10.818, 46.8762))]
    assert len(part) == 1
    assert m.loc[part[0], ["wgms_id", "method"]].tolist() == [489, "location"]
    assert m["wgms_id"].notna().sum() == 3


@needs_shared("data", "wgms")
def test_real_link_table_under_its_dated_name(tmp_path):
    shutil.copy(WGMS_DIR / "rgi_wgms_links.csv", tmp_path / "rgi_wgms_links_20220112.csv")
    for f in WGMS_DIR.glob("mbdata_WGMS-*.csv"):
        shutil.copy(f, tmp_path)
    dated = wgms.read_links(tmp_path)
    pd.testing.assert_frame_equal(dated, wgms.read_links(WGMS_DIR))
    assert dict(zip(dated["rgi60_id"], dated["wgms_id"]))["RGI60-11.00897"] == 491
    assert wgms.check_source(tmp_path) is None and wgms.check_source(WGMS_DIR) is None
    b = wgms.balance_for(["RGI60-11.00897"], tmp_path)
    assert float(b.sel(year=2020).item()) == pytest.approx(-0.97)


# --------------------------------------------------------------------------- usual layouts, overview and periods (#24 item 9)
def test_readers_find_the_files_in_the_usual_sub_folders(fog, rgi7, tmp_path_factory):
    """The same records from a flat folder and from a WGMS/OGGM-like tree (mbdata/ and a DOI
    folder holding the link table) under one root."""
    import shutil

    root = tmp_path_factory.mktemp("wgms_root")
    (root / "mbdata").mkdir()
    (root / "DOI-WGMS-FoG-2021-05").mkdir()
    for f in fog.glob("mbdata_*.csv"):
        shutil.copy(f, root / "mbdata" / f.name)
    shutil.copy(fog / "rgi_wgms_links_20220112.csv", root / "DOI-WGMS-FoG-2021-05" / "rgi_wgms_links_20220112.csv")
    flat = _no_warnings(wgms.balances_for_outlines, rgi7, fog)
    tree = _no_warnings(wgms.balances_for_outlines, rgi7, root)
    xr.testing.assert_identical(tree, flat)
    empty = tmp_path_factory.mktemp("nothing")
    with pytest.raises(FileNotFoundError, match=r"or its sub-folders \(up to 3 levels, e.g. mbdata/"):
        wgms.read_mass_balance(empty)


@needs_shared("data", "wgms")
@needs_shared("data", "oetztal", "outlines")
def test_real_overview_and_periods_keyed_by_rgi7_outline_ids():
    """AAR and survey periods of RGI 7 outlines (matched by location) equal those read by the RGI 6
    ids of the same WGMS glaciers; the periods feed end_of_season directly."""
    shp = OUTLINES_DIR / "rgi7g_hef_complex.shp"
    aar = _no_warnings(wgms.overview_for_outlines, shp, WGMS_DIR)
    ref = wgms.overview_for(["RGI60-11.00897", "RGI60-11.00787", "RGI60-11.00719"], WGMS_DIR)
    assert aar.wgms_id.values.tolist() == [491, 507, 489] and set(aar.match_method.values) == {"location"}
    np.testing.assert_array_equal(aar.values, ref.values)
    assert aar.attrs["units"] == ref.attrs["units"]
    per = wgms.periods_for_outlines(shp, WGMS_DIR)
    by6 = wgms.periods_for(["RGI60-11.00897"], WGMS_DIR)
    hef = per[per["glacier"] == "RGI2000-v7.0-G-11-03116"].reset_index(drop=True)
    pd.testing.assert_frame_equal(hef.drop(columns="glacier"), by6.drop(columns="glacier"))
    assert set(per.columns) >= {"glacier", "year", "begin", "end", "fallback"}
