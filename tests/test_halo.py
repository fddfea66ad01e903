"""xfacies.halo.map_halo against dask's own map_overlap, and the memory property it exists for."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xfacies.halo import ChunkWarning, _strip, map_halo, min_chunks


def _stencil(block: np.ndarray) -> np.ndarray:
    """Position-sensitive, so any misplaced halo shows: a weighted 3-neighbour sum per axis."""
    out = 3 * block
    for ax in (-2, -1):
        out = out + np.roll(block, 1, axis=ax) - 2 * np.roll(block, -1, axis=ax)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ny=st.integers(3, 30), nx=st.integers(3, 30), cy=st.integers(1, 12), cx=st.integers(1, 12),
       dy=st.integers(1, 4), dx=st.integers(1, 4),
       boundary=st.sampled_from(["nearest", np.nan, -7.0]))
def test_map_halo_equals_dask_map_overlap(ny, nx, cy, cx, dy, dx, boundary):
    x = np.random.default_rng(ny * 31 + nx).random((2, ny, nx)).astype(np.float32)
    arr = da.from_array(x, chunks=(1, cy, cx))
    got = map_halo(_stencil, arr, {1: dy, 2: dx}, boundary=boundary).compute()
    # the unchunked answer: pad the whole array, apply, trim (np.roll's wrap stays in the padding)
    pads = ((0, 0), (dy, dy), (dx, dx))
    padded = np.pad(x, pads, mode="edge") if boundary == "nearest" else np.pad(x, pads, constant_values=boundary)
    whole = _stencil(padded)[:, dy:dy + ny, dx:dx + nx]
    np.testing.assert_allclose(got, whole, rtol=1e-6)
    if ny >= 2 * dy and nx >= 2 * dx and 3 * dy <= cy and 3 * dx <= cx:
        # dask's own map_overlap where it applies (chunks and the array must exceed the depth)
        ref = da.map_overlap(_stencil, arr, depth={0: 0, 1: dy, 2: dx}, trim=True,
                             boundary={0: "none", 1: boundary, 2: boundary}).compute()
        np.testing.assert_array_equal(got, ref)


def test_untrimmed_output_with_other_chunks_and_dtype():
    lab = np.random.default_rng(1).integers(-1, 5, (20, 23)).astype(np.int8)
    arr = da.from_array(lab, chunks=(7, 6))

    def count_neighbours_equal(block):  # (H+2, W+2) -> (H, W) int16
        c = block[1:-1, 1:-1]
        return sum((block[1 + a:block.shape[0] - 1 + a, 1 + b:block.shape[1] - 1 + b] == c)
                   for a in (-1, 0, 1) for b in (-1, 0, 1)).astype(np.int16)

    got = map_halo(count_neighbours_equal, arr, {0: 1, 1: 1}, boundary=-1, trim=False,
                   dtype=np.int16).compute()
    padded = np.pad(lab, 1, constant_values=-1)
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, count_neighbours_equal(padded))


def test_strips_are_copies_not_views():
    """A view would keep the whole neighbour chunk alive (what made memory grow with scene width)."""
    chunk = np.zeros((12, 512, 512), np.float32)
    strip = _strip(chunk, (slice(None), slice(0, 28), slice(None)))
    assert strip.base is None and not np.shares_memory(strip, chunk)
    assert strip.nbytes == 12 * 28 * 512 * 4


def test_graph_takes_only_strips_from_neighbours():
    arr = da.zeros((30, 30), chunks=10)
    out = map_halo(lambda b: b, arr, {0: 2, 1: 2}, boundary=0.0)
    from dask._task_spec import convert_legacy_graph

    g = convert_legacy_graph(dict(out.__dask_graph__()))
    deps = set(g[(out.name, 1, 1)].dependencies)
    assert (arr.name, 1, 1) in deps  # its own chunk
    assert not any(d[0] == arr.name and d[1:] != (1, 1) for d in deps)  # neighbours only via strips
    assert sum(1 for d in deps if "strip" in d[0]) == 8


def test_min_chunks_merges_and_warns():
    arr = da.zeros((50, 50), chunks=(5, 50))
    with pytest.warns(ChunkWarning, match="smaller than a 7 px halo"):
        out = min_chunks(arr, {0: 7}, warn="a 7 px halo")
    assert min(out.chunks[0]) >= 7 and sum(out.chunks[0]) == 50
    assert min_chunks(da.zeros((4, 4), chunks=2), {0: 9}).chunks[0] == (4,)
