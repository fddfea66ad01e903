"""Terrain kernels against closed forms and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xfacies.features import terrain

RES = 10.0


def plane(angle_deg: float, facing_deg: float, n: int = 21) -> np.ndarray:
    """A plane of the given slope whose downslope direction is ``facing_deg`` (clockwise from north)."""
    rows, cols = np.mgrid[0:n, 0:n].astype(float)
    east, north = cols * RES, -rows * RES
    f = math.radians(facing_deg)
    # elevation decreases along the facing direction
    return -math.tan(math.radians(angle_deg)) * (east * math.sin(f) + north * math.cos(f))


@pytest.mark.parametrize("angle", [0.0, 5.0, 20.0, 37.0, 60.0])
@pytest.mark.parametrize("facing", [0.0, 90.0, 200.0, 315.0])
def test_slope_and_aspect_of_planes(angle, facing):
    dem = plane(angle, facing)
    slope = terrain.slope_horn(dem, RES)
    np.testing.assert_allclose(slope[1:-1, 1:-1], angle, atol=1e-9)
    if angle > 0:
        asp = terrain.aspect_horn(dem, RES)[1:-1, 1:-1]
        diff = (asp - facing + 180.0) % 360.0 - 180.0
        np.testing.assert_allclose(diff, 0.0, atol=1e-9)
    else:
        assert np.isnan(terrain.aspect_horn(dem, RES)).all()


def test_slope_edges_use_nearest_padding():
    dem = plane(30.0, 90.0)
    slope = terrain.slope_horn(dem, RES)
    # on the east/west edge the repeated column halves the difference
    expected = math.degrees(math.atan(math.tan(math.radians(30.0)) / 2))
    np.testing.assert_allclose(slope[5, 0], expected, atol=1e-9)


def test_slope_of_a_cone():
    n, h, radius = 201, 800.0, 700.0
    rows, cols = np.mgrid[0:n, 0:n].astype(float)
    r = np.hypot(rows - 100, cols - 100) * RES
    dem = np.maximum(h - r * h / radius, 0.0)
    slope = terrain.slope_horn(dem, RES)
    ring = (r > 100) & (r < radius - 100)
    np.testing.assert_allclose(slope[ring], math.degrees(math.atan(h / radius)), atol=0.3)
    assert np.all(slope[r > radius + 30] == 0)


@pytest.mark.parametrize("az,el", [(150.0, 50.0), (90.0, 30.0), (300.0, 20.0), (0.0, 60.0)])
@pytest.mark.parametrize("angle,facing", [(25.0, 180.0), (40.0, 0.0), (15.0, 120.0)])
def test_hillshade_of_a_plane_is_cos_incidence(az, el, angle, facing):
    dem = plane(angle, facing)
    hs = terrain.hillshade(dem, RES, az, el)
    s, e = math.radians(angle), math.radians(el)
    cos_i = math.cos(s) * math.sin(e) + math.sin(s) * math.cos(e) * math.cos(math.radians(az - facing))
    np.testing.assert_allclose(hs[1:-1, 1:-1], max(cos_i, 0.0), atol=1e-12)


def test_hillshade_of_flat_ground_is_sin_elevation_not_one():
    hs = terrain.hillshade(np.zeros((5, 5)), RES, 123.0, 35.0)
    np.testing.assert_allclose(hs, math.sin(math.radians(35.0)))


def wall_dem(n: int = 200, h: float = 150.0, axis: str = "ew") -> np.ndarray:
    dem = np.zeros((n, n))
    if axis == "ew":
        dem[n // 2, :] = h
    else:
        dem[:, n // 2] = h
    return dem


@pytest.mark.parametrize("el", [20.0, 35.0, 50.0, 70.0])
@pytest.mark.parametrize("az", [180.0, 150.0, 220.0])
def test_wall_shadow_length_and_side_sun_from_south(az, el):
    h, n = 150.0, 200
    dem = wall_dem(n, h, "ew")
    lit = terrain.cast_shadow(dem, RES, az, el)
    length = h / math.tan(math.radians(el)) * abs(math.cos(math.radians(az)))  # northward extent, m
    col = n // 2
    shaded = np.flatnonzero(lit[: n // 2, col] == 0)
    assert shaded.size, "the wall must cast a shadow"
    assert shaded.max() == n // 2 - 1  # contiguous up to the wall, on the north (anti-sun) side
    measured = (n // 2 - shaded.min()) * RES
    assert abs(measured - length) <= 1.5 * RES
    assert lit[n // 2 + 1 :, :].all()  # nothing on the sunny side
    assert lit[n // 2, :].all()  # the wall top is lit


@pytest.mark.parametrize("el", [25.0, 45.0])
def test_wall_shadow_sun_from_east_falls_west(el):
    h, n = 120.0, 160
    dem = wall_dem(n, h, "ns")
    lit = terrain.cast_shadow(dem, RES, 90.0, el)
    shaded = np.flatnonzero(lit[80, : n // 2] == 0)
    assert abs((n // 2 - shaded.min()) * RES - h / math.tan(math.radians(el))) <= 1.5 * RES
    assert lit[:, n // 2 + 1 :].all()


def test_cone_shadow_tip():
    n, h, radius, el = 301, 600.0, 600.0, 30.0  # cone slope 45 deg > sun elevation
    rows, cols = np.mgrid[0:n, 0:n].astype(float)
    r = np.hypot(rows - 150, cols - 150) * RES
    dem = np.maximum(h - r * h / radius, 0.0)
    lit = terrain.cast_shadow(dem, RES, 180.0, el)  # sun in the south: shadow to the north
    north = lit[:150, 150]
    tip = (150 - np.flatnonzero(north == 0).min()) * RES
    assert abs(tip - h / math.tan(math.radians(el))) <= 2 * RES
    # the sunny flank of the cone and the ground south of it are lit
    assert lit[151:, 150].all()
    # shadow is symmetric about the north-south axis
    np.testing.assert_array_equal(lit, lit[:, ::-1])
    # with the sun higher than the cone slope there is no cast shadow at all
    assert terrain.cast_shadow(dem, RES, 180.0, 50.0).all()


def test_cast_shadow_max_distance_and_degenerate_suns():
    dem = wall_dem(100, 200.0, "ew")
    lit = terrain.cast_shadow(dem, RES, 180.0, 30.0, max_distance=100.0)
    assert np.flatnonzero(lit[:50, 50] == 0).min() == 40  # cut at 100 m
    assert not terrain.cast_shadow(dem, RES, 180.0, -1.0).any()
    assert terrain.cast_shadow(np.zeros((8, 8)), RES, 180.0, 10.0).all()
    assert terrain.cast_shadow(dem, RES, 180.0, 30.0).dtype == np.uint8


def test_shadow_length_bound():
    assert terrain.shadow_length_bound(1000.0, 45.0) == pytest.approx(1000.0)
    assert terrain.shadow_length_bound(500.0, 30.0) == pytest.approx(500.0 * math.sqrt(3))


def test_distance_to_edge_matches_brute_force():
    rng = np.random.default_rng(4)
    mask = rng.random((23, 19)) < 0.3
    d = terrain.distance_to_edge(mask, 10.0)
    rr, cc = np.mgrid[0:23, 0:19]
    for r in range(23):
        for c in range(19):
            other = mask != mask[r, c]
            expect = np.hypot(rr[other] - r, cc[other] - c).min() * 10.0
            assert d[r, c] == pytest.approx(expect)


def test_distance_to_edge_single_class_is_inf():
    assert np.isinf(terrain.distance_to_edge(np.ones((3, 3), bool), 10.0)).all()
