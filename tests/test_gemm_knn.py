"""measures/_knn_kernel.py, the fused pass of measures/gemm_knn.py after each GEMM: the
entries it keeps by hand, and blocks of given products against a brute-force sort.
(gemm_knn against FAISS's flat index: tests/test_neighbors_gemm.py.)"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import memdash.analysis.measures.gemm_knn as gemm_module
from memdash.analysis.measures._knn_kernel import CHUNK, VALUE_SHIFT, scan_tile


def scan(tile: np.ndarray, k: int, *, start: int = 0, heap=None, filled=None):
    """Run the kernel once: (rows, values, ids) of the kept entries, heap, filled."""
    tile = np.ascontiguousarray(tile, np.float32)
    rows, width = tile.shape
    heap = np.empty((rows, k), np.float32) if heap is None else heap
    filled = np.zeros(rows, np.int64) if filled is None else filled
    keys = np.empty(rows * width, np.uint64)
    count = scan_tile(tile, tile.view(np.uint32), start, heap, filled, keys, 0)
    keys = keys[:count]
    values, ids = gemm_module._unpack(keys)
    return (keys >> np.uint64(32 + VALUE_SHIFT)).astype(int), values, ids, heap, filled


def test_keeps_the_first_k_then_what_beats_the_running_kth():
    # row 0: 3 and 1 kept (the first k=2), then 2 < 3, 0.5 < 2; the last 1 equals the k-th
    # (1, from point 1): it loses the tie and is dropped. Row 1: below 0 is clamped to 0
    tile = [[3, 1, 2, 0.5, 1], [-1, -2, -3, 0, -2]]
    rows, values, ids, heap, filled = scan(tile, 2)
    np.testing.assert_array_equal(rows, [0, 0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(ids, [0, 1, 2, 3, 0, 1, 2])
    np.testing.assert_array_equal(values, [3, 1, 2, 0.5, 0, 0, 0])
    assert not np.signbit(values).any()  # -0.0 never: FAISS's 0.0
    np.testing.assert_array_equal(np.sort(heap, axis=1), [[0.5, 1], [-3, -2]])
    np.testing.assert_array_equal(heap[:, 0], [1, -2])  # the max-heap's top: the k-th
    np.testing.assert_array_equal(filled, [2, 2])


def test_tiles_in_turn_equal_one_tile_past_chunk_boundaries():
    """A row wider than the kernel's chunks, scanned whole or as two tiles (ids from
    `start`, the heap carried over), keeps the same entries."""
    width = 2 * CHUNK + 7
    noise = np.random.default_rng(0).integers(0, 40, (3, width))
    tile = (np.linspace(200, 0, width) + noise).astype(np.float32)  # later ones still kept
    whole = scan(tile, 4)
    cut = CHUNK + 3
    first = scan(tile[:, :cut], 4)
    second = scan(tile[:, cut:], 4, start=cut, heap=first[3], filled=first[4])
    # the two calls' keys, each sorted by row, then the first call's before the second's
    order = np.argsort(np.concatenate([first[0], second[0]]), kind="stable")
    for got, want in zip(
        (np.concatenate([a, b])[order] for a, b in zip(first[:3], second[:3], strict=True)),
        whole[:3],
        strict=True,
    ):
        np.testing.assert_array_equal(got, want)
    assert (whole[2] >= 2 * CHUNK).any()  # some kept in the last, partial chunk


def test_a_row_shorter_than_k_fills_its_heap_over_the_next_tile():
    rows, values, ids, heap, filled = scan([[5, 4]], 3)
    np.testing.assert_array_equal(filled, [2])
    rows, values, ids, heap, filled = scan([[6, 1, 9]], 3, start=2, heap=heap, filled=filled)
    np.testing.assert_array_equal(ids, [2, 3])  # 6 fills the heap (top 6); 1 beats it; 9 not
    np.testing.assert_array_equal(values, [6, 1])
    np.testing.assert_array_equal(filled, [3])


def brute_force(products: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """FAISS's answer on given products: clamp at 0, sort each row by (value, id)."""
    clamped = np.maximum(products, 0) + np.float32(0)
    ids = np.stack([np.lexsort((np.arange(len(row)), row))[:k] for row in clamped])
    return np.take_along_axis(clamped, ids, axis=1), ids


@settings(max_examples=40, deadline=None)
@given(data=st.data(), rows=st.integers(1, 5), n=st.integers(1, 1300))
def test_blocks_of_given_products_equal_a_sort_with_ties_and_negatives(data, rows, n):
    """One-hot queries times a product matrix give the products exactly: the first tile
    (512), the next (1,024) and ties among values below and at 0 included."""
    values = st.sampled_from([-2.0, -1.0, -0.0, 0.0, 0.5, 1.0, 2.0, 3.0])
    products = data.draw(arrays(np.float32, (rows, n), elements=values))
    k = data.draw(st.integers(1, n))
    squared, ids = gemm_module._search_block(np.eye(rows, dtype=np.float32), products, k)
    want_squared, want_ids = brute_force(products, k)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(squared, want_squared)
    assert not np.signbit(squared).any()
