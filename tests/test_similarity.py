"""Linear CKA and SVCCA against hand-computed values, the N x N kernel definition, and their
known invariances (hypothesis)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memdash.analysis.measures.similarity import (
    canonical_correlations,
    cka_kernel,
    cka_matrix,
    linear_cka,
    svcca,
)


def test_cka_by_hand():
    """X spans two centred directions equally; Y keeps one of them: X^T X = 2 I,
    Y^T Y = 2, Y^T X = (2, 0), so CKA = 4 / (sqrt(8) * 2) = 1/sqrt(2)."""
    x = np.array([[1.0, 0], [0, 1], [-1, 0], [0, -1]])
    assert linear_cka(x, x[:, :1]) == pytest.approx(1 / np.sqrt(2))
    assert linear_cka(np.array([[1.0], [2], [3]]), np.array([[2.0], [4], [6]])) == pytest.approx(1)
    # uncentred inputs: the means are removed (a constant shift changes nothing)
    assert linear_cka(x + 5, x[:, :1] - 3) == pytest.approx(1 / np.sqrt(2))


shapes = st.tuples(st.integers(4, 30), st.integers(1, 6), st.integers(1, 6), st.integers(0, 99))


@given(shapes)
@settings(max_examples=60, deadline=None)
def test_feature_space_cka_equals_the_kernel_definition(shape):
    n, p, q, seed = shape
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, p)) + 3, rng.normal(size=(n, q)) * 10
    y[:, 0] += x[:, 0]  # some shared signal
    assert linear_cka(x, y) == pytest.approx(cka_kernel(x, y), rel=1e-9, abs=1e-12)


@given(shapes, st.floats(0.01, 100))
@settings(max_examples=60, deadline=None)
def test_cka_is_invariant_to_orthogonal_maps_and_isotropic_scaling(shape, scale):
    n, p, q, seed = shape
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, p)), rng.normal(size=(n, q))
    orthogonal, _ = np.linalg.qr(rng.normal(size=(p, p)))
    base = linear_cka(x, y)
    assert linear_cka(x @ orthogonal, y) == pytest.approx(base, rel=1e-9, abs=1e-12)
    assert linear_cka(scale * x, y) == pytest.approx(base, rel=1e-9, abs=1e-12)
    assert linear_cka(x, x @ orthogonal * scale) == pytest.approx(1.0)
    assert 0 <= base <= 1 + 1e-12


def test_cka_is_not_invariant_to_other_linear_maps():
    """x isotropic (X^T X ~ N I) against x D: CKA ~ tr(D^2) / (sqrt(3) ||D^2||_F), for
    D = diag(1, 1, 20): 402 / (sqrt(3) sqrt(160002)) = 0.580, not 1."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20000, 3))
    stretch = np.diag([1.0, 1.0, 20.0])
    expected = 402 / (np.sqrt(3) * np.sqrt(160002))
    assert linear_cka(x, x @ stretch) == pytest.approx(expected, abs=0.02)


def test_cka_matrix_holds_every_pair():
    rng = np.random.default_rng(1)
    a = [rng.normal(size=(50, d)) for d in (3, 5)]
    b = [a[1] @ np.diag([1, 2, 3, 4, 5.0]), rng.normal(size=(50, 2)), a[0]]
    matrix = cka_matrix(a, b)
    assert matrix.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert matrix[i, j] == pytest.approx(cka_kernel(a[i], b[j]))
    assert matrix[0, 2] == pytest.approx(1.0)


@given(shapes)
@settings(max_examples=40, deadline=None)
def test_svcca_keeping_every_direction_ignores_invertible_maps(shape):
    n, p, _, seed = shape
    if n < p + 2:
        return
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    mix = rng.normal(size=(p, p)) + 3 * np.eye(p)  # invertible (almost surely)
    assert svcca(x, x @ mix, keep=1.0) == pytest.approx(1.0, abs=1e-6)


def test_svcca_of_unrelated_representations_is_small_and_canonical_correlations_by_hand():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(2000, 3)), rng.normal(size=(2000, 3))
    assert svcca(x, y) < 0.1
    # y = (x0, noise): one canonical correlation 1, the other that of noise (about 0)
    z = np.c_[x[:, 0], rng.normal(size=2000)]
    rho = canonical_correlations(x[:, :2], z)
    assert rho[0] == pytest.approx(1.0) and rho[1] < 0.1
