"""TSN / uniform frame sampling and stratified splits."""

from __future__ import annotations

import numpy as np
import pytest
from evbench.harness.data import stratified_split, tsn_indices, uniform_indices


def test_tsn_test_mode_takes_segment_centres():
    assert tsn_indices(48, 8, train=False) == [3, 9, 15, 21, 27, 33, 39, 45]
    assert tsn_indices(10, 1, train=False) == [5]
    assert tsn_indices(8, 8, train=False) == list(range(8))


def test_tsn_train_mode_draws_one_frame_inside_each_segment():
    rng = np.random.default_rng(0)
    for _ in range(200):
        idx = tsn_indices(50, 8, train=True, rng=rng)
        assert len(idx) == 8
        for k, i in enumerate(idx):
            assert k * 50 / 8 - 1e-9 <= i < (k + 1) * 50 / 8
    seen = {tuple(tsn_indices(48, 8, train=True, rng=rng)) for _ in range(20)}
    assert len(seen) > 1  # random offsets


def test_tsn_train_is_reproducible_with_a_seeded_generator():
    a = tsn_indices(100, 16, train=True, rng=np.random.default_rng(7))
    b = tsn_indices(100, 16, train=True, rng=np.random.default_rng(7))
    assert a == b


@pytest.mark.parametrize("train", [False, True])
def test_tsn_short_clip_repeats_and_clamps(train):
    idx = tsn_indices(3, 8, train=train, rng=np.random.default_rng(0))
    assert len(idx) == 8
    assert all(0 <= i < 3 for i in idx)
    assert idx == sorted(idx)
    assert set(idx) == {0, 1, 2}
    assert tsn_indices(1, 4, train=train, rng=np.random.default_rng(0)) == [0, 0, 0, 0]


def test_tsn_rejects_empty_clip():
    with pytest.raises(ValueError):
        tsn_indices(0, 8, train=False)
    with pytest.raises(ValueError):
        tsn_indices(10, 0, train=False)


def test_uniform_indices():
    assert uniform_indices(25, 5) == [2, 7, 12, 17, 22]
    assert uniform_indices(2, 4) == [0, 0, 1, 1]
    assert uniform_indices(100, 1) == [50]


def test_stratified_split_is_deterministic_and_stratified():
    labels = np.repeat(np.arange(5), [10, 20, 2, 1, 7])
    tr, va = stratified_split(labels, 0.2, seed=0)
    tr2, va2 = stratified_split(labels, 0.2, seed=0)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    assert len(np.intersect1d(tr, va)) == 0
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(len(labels)))
    counts = np.bincount(labels[va], minlength=5)
    assert counts.tolist() == [2, 4, 1, 0, 1]  # >=1 for every class with >=2 samples
    assert 3 in labels[tr]  # singleton stays in train
    _, va3 = stratified_split(labels, 0.2, seed=1)
    assert not np.array_equal(va, va3)


def test_stratified_split_rejects_bad_fraction():
    with pytest.raises(ValueError):
        stratified_split(np.zeros(4, dtype=int), 0.0, 0)
    with pytest.raises(ValueError):
        stratified_split(np.zeros(4, dtype=int), 1.0, 0)


def test_blocked_split_keeps_neighbours_together_and_is_stratified():
    from evbench.harness.data import blocked_stratified_split

    labels = np.repeat([0, 1, 2], 10)
    ids = np.array([f"v_{i:04d}" for i in range(30)])
    train, val = blocked_stratified_split(labels, ids, 0.2)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(30))
    assert val.tolist() == [8, 9, 18, 19, 28, 29]  # the last two of each class, in id order
    shuffled = np.random.default_rng(0).permutation(30)
    t2, v2 = blocked_stratified_split(labels[shuffled], ids[shuffled], 0.2)
    assert sorted(ids[shuffled][v2].tolist()) == sorted(ids[val].tolist())
