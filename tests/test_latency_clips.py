"""The latency queries cycle through clips spread over the whole test split, not its first class."""

from types import SimpleNamespace

from evbench.harness.measure import _loadable


def _split(classes: int, per_class: int) -> SimpleNamespace:
    return SimpleNamespace(entries=[SimpleNamespace(id=f"c{c}_{i}", label=c)
                                    for c in range(classes) for i in range(per_class)])


def test_latency_clips_cover_every_class_of_a_class_ordered_split():
    ds = _split(6, 26)  # the default generated test split: 156 clips in class order
    idx = _loadable(ds, [e.id for e in ds.entries], 8)
    assert len(idx) == len(set(idx)) == 8
    assert {ds.entries[i].label for i in idx} == set(range(6))


def test_latency_clips_skip_clips_that_failed_to_load_and_keep_all_when_few():
    ds = _split(2, 3)
    ok = [e.id for e in ds.entries if e.id != "c0_0"]
    assert _loadable(ds, ok, 8) == [1, 2, 3, 4, 5]
    assert _loadable(ds, [], 8) == [0]


def test_counted_batches_are_evenly_spaced_and_all_by_default():
    from evbench.harness.measure import counted_batches

    assert counted_batches(10, 16, None) == set(range(10))
    assert counted_batches(10, 16, 32) == {0, 5}
    assert counted_batches(10, 16, 1) == {0}
    assert counted_batches(3, 16, 1000) == {0, 1, 2}
