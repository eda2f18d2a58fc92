import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memdash.analysis.record.corruption import (
    make_canaries,
    prepare,
    random_inputs,
    random_labels,
    symmetric_noise,
)
from memdash.analysis.record.data import synthetic


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 300),
    n_classes=st.integers(2, 12),
    rate=st.floats(0, 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_symmetric_noise_flips_exactly_and_never_keeps_the_label(n, n_classes, rate, seed):
    labels = np.random.default_rng(seed).integers(0, n_classes, n)
    noisy, flipped = symmetric_noise(
        labels, rate=rate, n_classes=n_classes, rng=np.random.default_rng(seed)
    )
    assert flipped.sum() == round(rate * n)
    assert np.all(noisy[flipped] != labels[flipped])
    assert np.all(noisy[~flipped] == labels[~flipped])
    assert noisy.min() >= 0 and noisy.max() < n_classes


def test_symmetric_noise_reaches_every_other_class_uniformly():
    # the original localization code never picks y - 1; here all C-1 others are drawn
    labels = np.zeros(30000, dtype=int)
    noisy, _ = symmetric_noise(labels, rate=1.0, n_classes=4, rng=np.random.default_rng(0))
    counts = np.bincount(noisy, minlength=4)
    assert counts[0] == 0
    np.testing.assert_allclose(counts[1:] / 30000, [1 / 3] * 3, atol=0.015)


def test_random_labels_shuffle_keeps_class_balance():
    labels = np.repeat(np.arange(5), 40)
    shuffled, flipped = random_labels(labels, rate=1.0, rng=np.random.default_rng(1))
    assert np.array_equal(np.bincount(shuffled), np.bincount(labels))
    assert np.array_equal(flipped, shuffled != labels)
    assert flipped.mean() > 0.6  # about 1 - 1/5 land on another class


def test_random_inputs_match_the_mean_and_std():
    rng = np.random.default_rng(0)
    x = (3.0 + 2.0 * rng.standard_normal((2000, 10))).astype(np.float32)
    out, replaced = random_inputs(x, rate=0.5, rng=np.random.default_rng(2))
    assert replaced.sum() == 1000
    assert np.array_equal(out[~replaced], x[~replaced])
    assert out[replaced].mean() == pytest.approx(x.mean(), abs=0.05)
    assert out[replaced].std() == pytest.approx(x.std(), rel=0.03)
    assert not np.shares_memory(out, x)


def test_canaries_lie_in_the_value_range():
    like = np.array([[0.0, 1.0], [0.5, 0.25]], dtype=np.float32)
    x, y = make_canaries(50, like=like, n_classes=3, rng=np.random.default_rng(0))
    assert x.shape == (50, 2) and x.min() >= 0.0 and x.max() <= 1.0
    assert set(y) <= {0, 1, 2}


def test_prepare_lays_out_train_canaries_test_references():
    data = synthetic(n_examples=100, shape=(4,), n_classes=4, seed=0)
    p = prepare(data, noise=0.1, canaries=2, canary_repeats=(1, 3), reference_canaries=5, seed=0)
    ex = p.examples
    assert ex["example_id"].tolist() == list(range(80 + 4 + 20 + 5))
    assert ex["split"].tolist() == ["train"] * 84 + ["test"] * 20 + ["reference"] * 5
    assert ex["is_noisy"].sum() == 8
    assert ex["is_canary"].tolist() == [False] * 80 + [True] * 4 + [False] * 20 + [True] * 5
    assert ex.loc[80:83, "canary_repeats"].tolist() == [1, 1, 3, 3]
    # canaries 80, 81 once each; 82, 83 three times each
    assert np.bincount(p.train_ids)[80:].tolist() == [1, 1, 3, 3]
    assert len(p.train_ids) == 80 + 2 + 6
    noisy = ex[ex.is_noisy]
    assert (noisy["label"] != noisy["true_label"]).all()
    assert (ex.loc[~ex.is_noisy, "label"] == ex.loc[~ex.is_noisy, "true_label"]).all()
    assert p.inputs.shape == (109, 4)


def test_prepare_is_deterministic_and_seed_dependent():
    data = synthetic(n_examples=100, shape=(4,), n_classes=4, seed=0)
    a, b = prepare(data, noise=0.3, seed=5), prepare(data, noise=0.3, seed=5)
    c = prepare(data, noise=0.3, seed=6)
    assert a.examples.equals(b.examples)
    assert not a.examples["label"].equals(c.examples["label"])


def test_prepare_rejects_unknown_corruption():
    data = synthetic(n_examples=40, shape=(4,), n_classes=4, seed=0)
    with pytest.raises(ValueError, match="unknown corruption 'blur'.*symmetric"):
        prepare(data, corruption="blur", noise=0.1)
