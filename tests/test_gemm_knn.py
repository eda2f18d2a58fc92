"""measures/_knn_kernel.py, the fused pass of measures/gemm_knn.py after each GEMM: the
entries it keeps by hand, and blocks of given products against a brute-force sort.
(gemm_knn against FAISS's flat index: tests/test_neighbors_gemm.py.)"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import memdash.analysis.measures.gemm_knn as gemm_module
from memdash.analysis.measures._knn_kernel import (
    CHUNK,
    ROW_SHIFT,
    VALUE_SHIFT,
    final_keys,
    first_tile,
    scan_tile,
)


def keys_of(keys: np.ndarray, count: int):
    """(rows, values, ids) of the first `count` keys."""
    keys = keys[:count]
    values, ids = gemm_module._unpack(keys)
    return (keys >> np.uint64(32 + VALUE_SHIFT)).astype(int), values, ids


def scan(tile, heap: np.ndarray, *, start: int = 1000):
    """A later tile through the kernel: (rows, values, ids) of the kept entries."""
    tile = np.ascontiguousarray(tile, np.float32)
    keys = np.empty(tile.size, np.uint64)
    return keys_of(keys, scan_tile(tile, tile.view(np.uint32), start, heap, keys, 0))


def max_heap(rows) -> np.ndarray:
    """Each row's values descending: a max-heap, its k-th smallest first."""
    return -np.sort(-np.asarray(rows, np.float32), axis=1)


def test_a_later_tile_keeps_what_beats_the_running_kth_and_lowers_it():
    # row 0 starts at k-th 3: 2 < 3 (k-th now 2), 0.5 < 2 (now 1), then 1 equals the k-th
    # (a point with a smaller id): it loses and is dropped; row 1: below 0 is clamped to 0
    heap = max_heap([[3, 1], [-1, -2]])
    rows, values, ids = scan([[2, 0.5, 1, 7], [-3, 0, -2, -2.5]], heap)
    np.testing.assert_array_equal(rows, [0, 0, 1, 1])
    np.testing.assert_array_equal(ids, [1000, 1001, 1000, 1003])
    np.testing.assert_array_equal(values, [2, 0.5, 0, 0])
    assert not np.signbit(values).any()  # -0.0 never: FAISS's 0.0
    np.testing.assert_array_equal(np.sort(heap, axis=1), [[0.5, 1], [-3, -2.5]])
    np.testing.assert_array_equal(heap[:, 0], [1, -2.5])  # the max-heap's top: the k-th


def test_the_first_tile_keeps_up_to_its_bound_ties_included():
    tile = np.array([[3, 1, 2, 1, 5], [-1, -3, 0, 2, -2]], np.float32)
    keys = np.empty(tile.size, np.uint64)
    count = first_tile(tile, tile.view(np.uint32), np.float32([1, 0]), keys)
    rows, values, ids = keys_of(keys, count)
    np.testing.assert_array_equal(rows, [0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(ids, [1, 3, 0, 1, 2, 4])
    np.testing.assert_array_equal(values, [1, 1, 0, 0, 0, 0])


def test_tiles_in_turn_equal_one_tile_past_chunk_boundaries():
    """A row wider than the kernel's chunks, scanned whole or as two tiles (the heap carried
    over), keeps the same entries."""
    width = 2 * CHUNK + 7
    noise = np.random.default_rng(0).integers(0, 40, (3, width))
    tile = (np.linspace(200, 0, width) + noise).astype(np.float32)  # later ones still kept
    start = max_heap(np.full((3, 4), 250))
    whole = scan(tile, start.copy())
    heap, cut = start.copy(), CHUNK + 3
    first, second = scan(tile[:, :cut], heap), scan(tile[:, cut:], heap, start=1000 + cut)
    # the two calls' keys, each sorted by row, then the first call's before the second's
    order = np.argsort(np.concatenate([first[0], second[0]]), kind="stable")
    for got, want in zip(
        (np.concatenate([a, b])[order] for a, b in zip(first, second, strict=True)),
        whole,
        strict=True,
    ):
        np.testing.assert_array_equal(got, want)
    assert (whole[2] >= 1000 + 2 * CHUNK).any()  # some kept in the last, partial chunk


def test_final_keys_keeps_those_at_most_their_rows_bound_in_order():
    keys = np.array([5, 1, 9, 3, 7], np.uint64)
    keys |= np.array([0, 1, 0, 1, 0], np.uint64) << np.uint64(ROW_SHIFT)
    bounds = np.array([7, (1 << ROW_SHIFT) | 2], np.uint64)
    count = final_keys(keys, bounds)
    np.testing.assert_array_equal(keys[:count], [5, (1 << ROW_SHIFT) | 1, 7])


def brute_force(products: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """FAISS's answer on given products: clamp at 0, sort each row by (value, id)."""
    clamped = np.maximum(products, 0) + np.float32(0)
    ids = np.stack([np.lexsort((np.arange(len(row)), row))[:k] for row in clamped])
    return np.take_along_axis(clamped, ids, axis=1), ids


@settings(max_examples=40, deadline=None)
@given(data=st.data(), rows=st.integers(1, 5), n=st.integers(1, 1300))
def test_blocks_of_given_products_equal_a_sort_with_ties_and_negatives(data, rows, n):
    """One-hot queries times a product matrix give the products exactly: the first tile
    (512 or k), the next ones and ties among values below and at 0 included."""
    values = st.sampled_from([-2.0, -1.0, -0.0, 0.0, 0.5, 1.0, 2.0, 3.0])
    products = data.draw(arrays(np.float32, (rows, n), elements=values))
    k = data.draw(st.integers(1, n))
    squared, ids = gemm_module._search_block(np.eye(rows, dtype=np.float32), products, k)
    want_squared, want_ids = brute_force(products, k)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(squared, want_squared)
    assert not np.signbit(squared).any()


def test_the_key_holds_a_point_id_of_gemm_knns_width():
    assert VALUE_SHIFT == gemm_module.POINT_BITS and ROW_SHIFT == 32 + gemm_module.POINT_BITS
