"""WGMS Fluctuations of Glaciers readers: synthetic latin-1 files (core) and the real records (../shared)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED, needs_shared
from xfacies.massbalance import wgms

WGMS_DIR = SHARED / "data" / "wgms"

MB_HEADER = ("YEAR,WGMS_ID,POLITICAL_UNIT,NAME,AREA,WINTER_BALANCE,SUMMER_BALANCE,"
             "ANNUAL_BALANCE,REMARKS,RGI_ID\n")


@pytest.fixture
def fog_dir(tmp_path):
    """A small FoG folder: two mbdata files, a latin-1 overview, a link table."""
    (tmp_path / "mbdata_WGMS-00001.csv").write_bytes((
        MB_HEADER
        + "2000,1,CH,GLÄRNISCHFIRN,2.1,1500.0,-2500.0,-1000.0,\"multi-line\nremark\",RGI50-11.01000\n"
        + "2001,1,CH,GLÄRNISCHFIRN,2.1,,,250.0,,RGI50-11.01000\n"
        + "2003,1,CH,GLÄRNISCHFIRN,2.0,,,-1500.0,,RGI50-11.01000\n"
    ).encode("latin-1"))
    (tmp_path / "mbdata_WGMS-00002.csv").write_bytes((
        MB_HEADER + "2001,2,AT,HINTEREIS F.,6.2,1650.0,-2330.0,-680.0,,RGI60-11.00002\n"
    ).encode("latin-1"))
    (tmp_path / "E-MASS-BALANCE-OVERVIEW.csv").write_bytes((
        "POLITICAL_UNIT,NAME,WGMS_ID,Year,TIME_SYSTEM,BEGIN_PERIOD,END_WINTER,END_PERIOD,ELA_PREFIX,"
        "ELA,ELA_UNC,ACC_AREA,ABL_AREA,AAR,INVESTIGATOR,REMARKS\n"
        "CH,GLÄRNISCHFIRN,1,2000,FXD,19991001,20000430,20000930,,2800,,1.2,0.9,57,VAW / ETH Zürich,\n"
        "CH,GLÄRNISCHFIRN,1,2001,OTH,20000930,20010599,20010999,,2700,,,,70.5,,\n"
        "CH,GLÄRNISCHFIRN,1,2003,,,,,>,3400,,,,0,,\n"
        "AT,HINTEREIS F.,2,2001,FXD,20001001,20010430,20010930,,3100,,,,40,,\n"
    ).encode("latin-1"))
    (tmp_path / "rgi_wgms_links.csv").write_text(
        "NAME,WGMS_ID,RGI50_ID,RGI60_ID\n"
        "GLÄRNISCHFIRN,1,RGI50-11.01000,RGI60-11.01000\n"
        "HINTEREIS F.,2,RGI50-11.00002,RGI60-11.00002\n"
        "LINKED ONLY,3,RGI50-11.00003,RGI60-11.00003\n", encoding="latin-1")
    return tmp_path


def test_mass_balance_is_read_in_m_we_with_latin1_names(fog_dir):
    mb = wgms.read_mass_balance(fog_dir)
    assert list(mb["wgms_id"]) == [1, 1, 1, 2] and list(mb["year"]) == [2000, 2001, 2003, 2001]
    assert mb.loc[0, "name"] == "GLÄRNISCHFIRN"
    np.testing.assert_allclose(mb["annual_balance_mwe"], [-1.0, 0.25, -1.5, -0.68])
    np.testing.assert_allclose(mb.loc[0, ["winter_balance_mwe", "summer_balance_mwe"]].astype(float),
                               [1.5, -2.5])
    assert np.isnan(mb.loc[1, "winter_balance_mwe"])
    assert mb.loc[0, "remarks"] == "multi-line\nremark"
    assert mb.attrs["units"]["annual_balance_mwe"] == "m w.e."
    one = wgms.read_mass_balance(fog_dir / "mbdata_WGMS-00002.csv")
    assert len(one) == 1 and one.loc[0, "area_km2"] == 6.2


def test_overview_parses_aar_ela_and_99_dates(fog_dir):
    ov = wgms.read_overview(fog_dir / "E-MASS-BALANCE-OVERVIEW.csv")
    g = ov[ov["wgms_id"] == 1].set_index("year")
    np.testing.assert_allclose(g["aar"], [0.57, 0.705, 0.0])
    np.testing.assert_allclose(g["aar_percent"], [57, 70.5, 0])
    np.testing.assert_allclose(g["ela_m"], [2800, 2700, 3400])
    assert g.loc[2003, "ela_prefix"] == ">"
    assert g.loc[2000, "end_period"] == pd.Timestamp("2000-09-30")
    assert pd.isna(g.loc[2001, "end_period"]) and pd.isna(g.loc[2001, "end_winter"])
    assert g.loc[2001, "end_period_raw"] == "20010999"
    assert pd.isna(g.loc[2003, "begin_period"])
    assert g.loc[2000, "investigator"] == "VAW / ETH Zürich"  # latin-1 decoded
    mid = wgms.read_overview(fog_dir / "E-MASS-BALANCE-OVERVIEW.csv", unknown_day="mid-month")
    assert mid.set_index(["wgms_id", "year"]).loc[(1, 2001), "end_period"] == pd.Timestamp("2001-09-15")


def test_parse_wgms_date_unknown_parts():
    s = wgms.parse_wgms_date(["19991001", 20009999, 20000231, "", None, 20000101.0])
    assert s.iloc[0] == pd.Timestamp("1999-10-01") and s.iloc[5] == pd.Timestamp("2000-01-01")
    assert s.iloc[1:5].isna().all()  # unknown month, invalid day, empty
    with pytest.raises(ValueError, match="unknown_day"):
        wgms.parse_wgms_date([20000101], unknown_day="zero")


def test_balance_for_joins_rgi5_rgi6_and_wgms_ids(fog_dir):
    ids = ["RGI60-11.01000", "RGI50-11.00002"]
    b = wgms.balance_for(ids, fog_dir)
    assert b.dims == ("year", "glacier") and list(b.glacier.values) == ids
    assert list(b.year.values) == [2000, 2001, 2002, 2003] and b.attrs["units"] == "m w.e."
    assert list(b.wgms_id.values) == [1, 2]
    np.testing.assert_allclose(b.sel(glacier="RGI60-11.01000").values, [-1.0, 0.25, np.nan, -1.5])
    assert float(b.sel(glacier="RGI50-11.00002", year=2001)) == pytest.approx(-0.68)
    same = wgms.balance_for([1, 2], wgms.read_mass_balance(fog_dir), links=fog_dir / "rgi_wgms_links.csv")
    np.testing.assert_allclose(same.values, b.values)
    w = wgms.balance_for(["RGI50-11.01000"], fog_dir, kind="winter")
    assert float(w.sel(year=2000).item()) == pytest.approx(1.5)
    aar = wgms.overview_for(ids, fog_dir / "E-MASS-BALANCE-OVERVIEW.csv", links=fog_dir)
    np.testing.assert_allclose(aar.sel(year=2001).values, [0.705, 0.40])


def test_balance_for_accepts_outlines_frame(fog_dir):
    gdf = pd.DataFrame({"RGIId": ["RGI60-11.00002"]})
    assert list(wgms.balance_for(gdf, fog_dir).glacier.values) == ["RGI60-11.00002"]


def test_unmatched_ids_give_a_clear_error(fog_dir):
    with pytest.raises(ValueError, match=r"RGI60-11\.09999.*match no WGMS glacier.*RGI50-11\.00002"):
        wgms.balance_for(["RGI60-11.01000", "RGI60-11.09999", "RGI2000-v7.0-G-11-01"], fog_dir)
    with pytest.raises(ValueError, match="no rows for them"):
        wgms.balance_for(["RGI60-11.00003"], fog_dir)  # linked, but no mbdata file
    with pytest.raises(ValueError, match="same WGMS glacier"):
        wgms.balance_for(["RGI50-11.01000", "RGI60-11.01000"], fog_dir)
    with pytest.raises(ValueError, match="links="):
        wgms.balance_for(["RGI60-11.01000"], wgms.read_mass_balance(fog_dir))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        wgms.read_mass_balance(fog_dir / "nowhere")


def test_periods_for_gives_summer_windows(fog_dir):
    p = wgms.periods_for(["RGI60-11.01000"], fog_dir / "E-MASS-BALANCE-OVERVIEW.csv", links=fog_dir)
    assert list(p["year"]) == [2000]  # 2001 has an unknown end, 2003 no dates
    assert p.loc[0, "begin"] == pd.Timestamp("2000-04-30") and p.loc[0, "end"] == pd.Timestamp("2000-09-30")
    a = wgms.periods_for(["RGI60-11.01000"], fog_dir / "E-MASS-BALANCE-OVERVIEW.csv", links=fog_dir,
                         season="annual")
    assert a.loc[0, "begin"] == pd.Timestamp("1999-10-01")


# --------------------------------------------------------------------------- real records
@needs_shared("data", "wgms")
def test_real_mass_balance_tables():
    mb = wgms.read_mass_balance(WGMS_DIR)
    assert mb.groupby("wgms_id").size().to_dict() == {408: 102, 489: 56, 491: 68, 507: 68}
    hef = mb[mb["wgms_id"] == 491].set_index("year")
    assert hef.loc[1953, "annual_balance_mwe"] == pytest.approx(-0.540)
    assert hef.loc[2020, "annual_balance_mwe"] == pytest.approx(-0.970)
    assert hef.loc[2020, "winter_balance_mwe"] == pytest.approx(1.396)
    raw = pd.read_csv(WGMS_DIR / "mbdata_WGMS-00408.csv", encoding="latin-1")
    sil = mb[mb["wgms_id"] == 408]
    np.testing.assert_allclose(sil["annual_balance_mwe"].to_numpy(), raw["ANNUAL_BALANCE"].to_numpy() / 1000)


@needs_shared("data", "wgms")
def test_real_overview_and_links():
    ov = wgms.read_overview(WGMS_DIR / "WGMS-FoG-2021-05-E-MASS-BALANCE-OVERVIEW.subset.csv")
    assert set(ov["wgms_id"]) == {408, 489, 491, 507}
    assert ov["aar"].dropna().between(0, 1).all() and ov["aar"].notna().sum() > 250
    hef = ov[ov["wgms_id"] == 491].set_index("year")
    assert hef.loc[2020, "aar"] == pytest.approx(0.32) and hef.loc[1953, "ela_m"] == 3020
    sil = ov[ov["wgms_id"] == 408].set_index("year")
    assert sil.loc[2010, "end_period_raw"] == "20100999" and pd.isna(sil.loc[2010, "end_period"])
    assert sil.loc[2009, "end_period"] == pd.Timestamp("2009-09-26")
    links = wgms.read_links(WGMS_DIR)
    assert dict(zip(links["rgi50_id"], links["wgms_id"]))["RGI50-11.00897"] == 491


@needs_shared("data", "wgms")
def test_real_balance_for_mixed_id_forms():
    # the mbdata files mix RGI50 and RGI60 ids; the link table resolves both forms
    ids = ["RGI60-11.00897", "RGI60-11.00787", "RGI50-11.00719", "RGI60-11.00804"]
    b = wgms.balance_for(ids, WGMS_DIR)
    assert list(b.wgms_id.values) == [491, 507, 489, 408]
    assert int(b.notnull().sum()) == 68 + 68 + 56 + 102
    assert float(b.sel(year=2020, glacier="RGI60-11.00897")) == pytest.approx(-0.97)
    with pytest.raises(ValueError, match="RGI60-11.00898"):
        wgms.balance_for(["RGI60-11.00898"], WGMS_DIR)


# --------------------------------------------------------------------------- unit slips are refused
def test_balances_already_in_m_we_are_refused_not_divided_again(tmp_path):
    (tmp_path / "mbdata_WGMS-00001.csv").write_text(
        MB_HEADER + "".join(f"{y},1,CH,X,2.1,,,{b},,\n" for y, b in ((2000, -0.97), (2001, 0.25), (2002, -1.5))))
    with pytest.raises(ValueError, match=r"ANNUAL_BALANCE has a median magnitude of 0.97, which looks like "
                                         r"m w.e.*Multiply that column by 1000"):
        wgms.read_mass_balance(tmp_path)


def test_overview_aar_given_as_a_fraction_is_refused_not_divided_again(tmp_path):
    (tmp_path / "E-MASS-BALANCE-OVERVIEW.csv").write_text(
        "POLITICAL_UNIT,NAME,WGMS_ID,YEAR,AAR\n" + "".join(f"CH,X,1,{y},{a}\n" for y, a in
                                                          ((2000, 0.57), (2001, 0.705), (2002, 0.4))))
    with pytest.raises(ValueError, match=r"AAR values \[0.57, 0.705, 0.4\] .* look like fractions.*Multiply "
                                         r"the AAR column by 100"):
        wgms.read_overview(tmp_path)


def test_a_fractional_year_is_refused_not_truncated(tmp_path):
    (tmp_path / "mbdata_WGMS-00001.csv").write_text(MB_HEADER + "1953.5,1,CH,X,2.1,,,-970,,\n")
    with pytest.raises(ValueError, match=r"YEAR values \[1953.5\] are not whole years"):
        wgms.read_mass_balance(tmp_path)


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path):
    (tmp_path / "mbdata_WGMS-00001.csv").write_bytes(
        "\ufeff".encode() + (MB_HEADER + "2000,1,CH,GLÄRNISCHFIRN,2.1,,,-970,,\n").encode("utf-8"))
    mb = wgms.read_mass_balance(tmp_path)
    assert list(mb["year"]) == [2000] and mb["annual_balance_mwe"].tolist() == [-0.97]


def test_country_and_region_filters(fog_dir):
    """political_unit= and rgi_region= keep exactly the rows whose code / RGI region match (checked
    against a plain pandas selection of the unfiltered table); an empty selection is an error
    naming what the files hold."""
    full = wgms.read_mass_balance(fog_dir)
    ch = wgms.read_mass_balance(fog_dir, political_unit="ch")
    pd.testing.assert_frame_equal(ch, full[full.political_unit == "CH"].reset_index(drop=True))
    both = wgms.read_mass_balance(fog_dir, political_unit=["AT", "CH"], rgi_region=11)
    assert len(both) == len(full)
    with pytest.raises(ValueError, match=r"hold \['AT', 'CH'\]"):
        wgms.read_mass_balance(fog_dir, political_unit="NO")
    with pytest.raises(ValueError, match=r"regions \[11\]"):
        wgms.read_mass_balance(fog_dir, rgi_region=8)
    ov = wgms.read_overview(fog_dir / "E-MASS-BALANCE-OVERVIEW.csv", political_unit="AT")
    assert ov.wgms_id.tolist() == [2]
    with pytest.raises(ValueError, match="no RGI ids"):
        wgms.select_region(ov, rgi_region=11)


@needs_shared("data", "wgms")
def test_country_filter_on_the_real_records():
    mb = wgms.read_mass_balance(WGMS_DIR, political_unit="CH")
    assert set(mb.name) == {"SILVRETTA"}
    at = wgms.read_mass_balance(WGMS_DIR, political_unit="AT", rgi_region=11)
    assert set(at.wgms_id) == {489, 491, 507}
