"""The oracle bound (harness/oracle.py): known answers per method family on hand-built evidence."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from evbench.harness.api import TraceStep
from evbench.harness.costs import cost_table
from evbench.harness.oracle import (
    COARSE_MIN_RESOLUTION,
    Evidence,
    cheapest_seeing,
    evidence_of,
    family_schedules,
    oracle_fields,
    sees,
)
from evbench.harness.registry import create_method
from evbench.methods.exits import coarse_to_fine_order

FINE = 112  # fine_texture.min_resolution of the default 128 px generated videos


def _build(name: str, **kw):
    torch.manual_seed(0)
    return create_method(name, config="lite", num_classes=6, **kw).eval()


def _clip(m) -> torch.Tensor:
    r = m.card.resolution
    return torch.zeros(1, m.card.frames, 3, r, r)


def _ev(slots, need=COARSE_MIN_RESOLUTION) -> Evidence:
    return Evidence("v", frozenset(slots), need)


def _g(table, module, shape) -> float:
    return table[(module, tuple(shape))]


@pytest.fixture(scope="module")
def methods():
    return {n: _build(n) for n in ("uniform", "frameexit", "tlee", "rsee", "liteeval", "arnet", "dyngrid")}


def test_uniform_needs_the_fewest_frames_that_cover_the_window(methods):
    m = methods["uniform"]
    table = cost_table(m)
    sched = family_schedules(m, _clip(m))
    per_frame = _g(table, m.encoder.module_name, m.encoder.input_shape) + _g(table, "head", (m.encoder.dim,))
    t = m.card.frames  # 4 in lite: k=1 -> slot 2, k=2 -> slots 1, 3
    assert t == 4
    best, ok = cheapest_seeing(sched, _ev({3}, FINE))
    assert ok and best.gmacs == pytest.approx(2 * per_frame)
    best, ok = cheapest_seeing(sched, _ev({2}, FINE))
    assert ok and best.gmacs == pytest.approx(per_frame)
    best, ok = cheapest_seeing(sched, _ev({0}, FINE))  # k=3 samples slots 0, 2, 3
    assert ok and best.gmacs == pytest.approx(3 * per_frame)
    # a resolution the 112 px backbone cannot give: not seeable, the oracle spends the least it can
    best, ok = cheapest_seeing(sched, _ev({2}, 168))
    assert not ok and best.gmacs == pytest.approx(per_frame)


def test_frameexit_exits_at_the_first_evidence_frame_of_its_order(methods):
    m = methods["frameexit"]
    table = cost_table(m)
    order = coarse_to_fine_order(m.card.frames)
    target = order[2]  # third frame visited
    best, ok = cheapest_seeing(family_schedules(m, _clip(m)), _ev({target, order[5]}, FINE))
    r = m.resolution
    frame = _g(table, "backbone", (3, r, r)) + _g(table, "mlp", (m.dim,))
    expected = (3 * frame + _g(table, "classifiers.0", (m.mlp_dim,)) + _g(table, "exit_selector.0", (m.mlp_dim,))
                + _g(table, "exit_selector.1", (m.mlp_dim,)) + _g(table, "classifiers.2", (m.mlp_dim,)))
    assert ok and best.name == "force=3" and best.gmacs == pytest.approx(expected)


def test_tlee_stops_every_frame_at_layer2_and_exits_at_the_evidence(methods):
    m = methods["tlee"]
    table = cost_table(m)
    order = coarse_to_fine_order(m.card.frames)
    best, ok = cheapest_seeing(family_schedules(m, _clip(m)), _ev({order[1]}))
    layer2 = (_g(table, "stages.0", m.stage_inputs[0]) + _g(table, "branches.0", m.stage_inputs[1])
              + _g(table, "mlp", (m.dim,)))
    clf, gate = _g(table, "classifier", (m.mlp_dim,)), _g(table, "gate", (m.mlp_dim,))
    # frame 1 of the order: classifier (first-frame test); frame 2: gate + classifier (exit there)
    assert ok and best.name == "force=2@layer2"
    assert best.gmacs == pytest.approx(2 * layer2 + clf + gate + clf)


def test_rsee_runs_the_cheapest_resolution_until_the_evidence(methods):
    m = methods["rsee"]
    table = cost_table(m)
    sched = family_schedules(m, _clip(m))
    pol = sum(table[s.key] for s in m.policy.steps(0))
    a = m.aggregator
    agg = _g(table, "aggregator.rnn", (a.dim,)) + _g(table, "aggregator.fc2", (a.hidden,)) + _g(table, "new_fc", (m.dim,))
    fc1 = _g(table, "aggregator.fc1", (a.dim,))
    bb = {r: _g(table, "backbone", (3, r, r)) for r in m.resolutions}
    lo = min(m.resolutions, key=bb.get)
    assert lo == 56
    frame = lambda t, r: pol + bb[r] + agg + (fc1 if t else 0.0)  # noqa: E731
    best, ok = cheapest_seeing(sched, _ev({2, 5}))  # coarse: 56 px is enough
    assert ok and best.gmacs == pytest.approx(sum(frame(t, lo) for t in range(3)))
    best, ok = cheapest_seeing(sched, _ev({2, 5}, FINE))  # fine: frame 2 at 112 px
    assert ok and best.gmacs == pytest.approx(frame(0, lo) + frame(1, lo) + frame(2, 112))


def test_liteeval_coarse_path_suffices_for_coarse_classes_fine_needs_one_fine_frame(methods):
    m = methods["liteeval"]
    table = cost_table(m)
    sched = family_schedules(m, _clip(m))
    t_total = m.card.frames
    c = m.core
    coarse = (_g(table, "coarse.backbone", m.coarse.input_shape) + _g(table, "core.small_proj_mlp", (c.coarse_in,))
              + _g(table, "core.small_rnn", (c.coarse_embed,))
              + _g(table, "core.linear", (c.coarse_embed + 2 * c.large_cell,)))
    fine = (_g(table, "fine.backbone", m.fine.input_shape) + _g(table, "core.proj_mlp", (c.fine_in,))
            + _g(table, "core.large_rnn", (c.fine_embed + c.coarse_embed,)))
    clf = _g(table, "core.classifier", (c.large_cell,))
    assert m.coarse.resolution == 56 and m.fine.resolution == 112
    best, ok = cheapest_seeing(sched, _ev({4}))
    assert ok and best.name == "coarse path only" and best.gmacs == pytest.approx(t_total * coarse + clf)
    best, ok = cheapest_seeing(sched, _ev({4}, FINE))
    assert ok and best.gmacs == pytest.approx(t_total * coarse + fine + clf)


def test_arnet_skips_to_the_evidence_and_runs_the_cheapest_sufficient_branch(methods):
    m = methods["arnet"]
    table = cost_table(m)
    sched = family_schedules(m, _clip(m))
    assert m.card.frames == 8 and m.skips == (1, 2, 4) and m.policy_resolution < COARSE_MIN_RESOLUTION
    pol = sum(table[s.key] for s in m.policy.steps(0))
    branch = {r: table[br.cost_entry().key] + _g(table, f"heads.{i}", (br.dim,))
              for i, (r, br) in enumerate(zip(m.resolutions, m.branches, strict=True))}
    # evidence on slot 5: policy on 0 (skip 4), 4 (skip 1), 5 (branch), 6 (skip past the end) = 4 policy steps
    best, ok = cheapest_seeing(sched, _ev({5}))
    assert ok and best.gmacs == pytest.approx(4 * pol + branch[56])
    best, ok = cheapest_seeing(sched, _ev({5}, FINE))
    assert ok and best.gmacs == pytest.approx(4 * pol + branch[112])
    # slot 0: branch on 0, then 1 (skip 4), 5 (skip 4) = 3 policy steps
    best, ok = cheapest_seeing(sched, _ev({0}, FINE))
    assert ok and best.gmacs == pytest.approx(3 * pol + branch[112])
    # unreachable side: skip 4 twice and the lite_fc fallback
    best, ok = cheapest_seeing(sched, _ev({5}, 168))
    assert not ok and best.gmacs == pytest.approx(2 * pol + _g(table, "lite_fc", (m.hidden,)))


def test_dyngrid_takes_the_route_that_reaches_the_evidence_frame_first(methods):
    m = methods["dyngrid"]
    table = cost_table(m)
    sched = family_schedules(m, _clip(m))
    cell0 = _g(table, "stages.0", m.stage_inputs[0]) + _g(table, "heads.0", m.stage_inputs[1])
    # the second frame of the order is the second cell of the diagonal and frame-first routes
    best, ok = cheapest_seeing(sched, _ev({m.order[1]}, FINE))
    assert ok and best.gmacs == pytest.approx(2 * cell0)
    best, ok = cheapest_seeing(sched, _ev({m.order[0]}, FINE))
    assert ok and best.gmacs == pytest.approx(cell0)


@pytest.mark.parametrize("name", ["uniform", "frameexit", "tlee", "rsee", "liteeval", "arnet", "dyngrid"])
def test_no_candidate_exceeds_the_static_upper_bound_and_the_dearest_matches_it(methods, name):
    """The candidates are the method's own traces: none dearer than its upper-bound forward."""
    m = methods[name]
    x = _clip(m)
    with torch.inference_mode():
        out = m(x, knobs=dict(m.card.upper_bound_knobs) or None)
    upper = sum(cost_table(m)[s.key] for s in out.trace[0])
    sched = family_schedules(m, x)
    assert min(s.gmacs for s in sched) > 0
    if name != "tlee":  # TLEE's forced T@layer4 runs the last frame deeper than the free path ever does
        assert max(s.gmacs for s in sched) <= upper * (1 + 1e-9)
    if name in ("uniform", "frameexit", "dyngrid"):  # their upper bound is itself a candidate
        assert max(s.gmacs for s in sched) == pytest.approx(upper)


def test_sees_reads_pixel_inputs_on_evidence_slots_only():
    trace = [TraceStep(0, "enc", (3, 56, 56)), TraceStep(2, "enc", (3, 112, 112)), TraceStep(2, "fc", (512,)),
             TraceStep(-1, "head", (3, 224, 224))]
    assert sees(trace, _ev({2}, 112)) and not sees(trace, _ev({0}, 112)) and sees(trace, _ev({0}, 56))
    assert not sees(trace, _ev({1, 3}, 56))


MANIFEST = {
    "generator": "evbench.harness.data.generate",
    "params": {"size": 128, "num_frames": 48},
    "fine_texture": {"min_resolution": 112},
    "videos": [
        {"id": "A/v_A_g01_c01.mp4", "num_frames": 48,
         "evidence": {"start": 18, "end": 26, "needs_high_res": False}},
        {"id": "B/v_B_g01_c01.mp4", "num_frames": 48,
         "evidence": {"start": 0, "end": 7, "needs_high_res": True}},
    ],
}


def test_evidence_of_maps_the_window_onto_tsn_slots():
    from evbench.harness.data.sampling import tsn_indices

    idx = tsn_indices(48, 4, train=False)  # [6, 18, 30, 42]
    ev = evidence_of(MANIFEST, "A/v_A_g01_c01.mp4", idx)
    assert ev.slots == frozenset({1}) and ev.need == COARSE_MIN_RESOLUTION
    ev = evidence_of(MANIFEST, "B/v_B_g01_c01.mp4", idx)
    assert ev.slots == frozenset({0}) and ev.need == 112


@dataclass
class _Entry:
    id: str


class _Generated:
    name = "generated"
    manifest = MANIFEST
    entries = [_Entry(v["id"]) for v in MANIFEST["videos"]]
    train = False

    def indices(self, i: int) -> list[int]:
        from evbench.harness.data.sampling import tsn_indices

        return tsn_indices(48, 4, train=False)


def test_oracle_fields_on_a_hand_built_manifest(methods):
    m = methods["uniform"]
    table = cost_table(m)
    per_frame = _g(table, m.encoder.module_name, m.encoder.input_shape) + _g(table, "head", (m.encoder.dim,))
    ids = [v["id"] for v in MANIFEST["videos"]]
    x = _clip(m)
    with torch.inference_mode():
        trace = m(x, knobs={"frames": 1}).trace[0]  # slot 2 only: sees neither video's evidence
        full = m(x).trace[0]
    out = oracle_fields(m, _Generated(), ids, [trace, full], x, gmacs_per_video=2.5 * per_frame)
    # video A: slot 1 -> k=2 (slots 1, 3); video B: slot 0 -> k=3 (slots 0, 2, 3)
    assert out["oracle_gmacs_per_video"] == pytest.approx(2.5 * per_frame)
    assert out["oracle_gap"] == pytest.approx(1.0)
    assert out["oracle_evidence_fraction"] == 1.0 and out["evidence_seen_fraction"] == 0.5
    assert "cheapest schedule" in out["oracle_note"]


def test_oracle_fields_are_none_with_a_reason_elsewhere(methods):
    m = methods["uniform"]

    class Real:
        name = "ucf101"
        manifest = None

    out = oracle_fields(m, Real(), ["x"], [[]], _clip(m), 1.0)
    assert out["oracle_gmacs_per_video"] is None and out["oracle_gap"] is None
    assert "no generator manifest" in out["oracle_note"]
    feats = create_method("uniform", config="features", num_classes=6)
    out = oracle_fields(feats, _Generated(), ["A/v_A_g01_c01.mp4"], [[]], torch.zeros(1, 25, 4096), 1.0)
    assert out["oracle_gmacs_per_video"] is None and "features" in out["oracle_note"]


def test_row_carries_the_oracle_columns():
    from evbench.harness.row import CellResult, column_meta

    row = CellResult(oracle_gmacs_per_video=1.5, oracle_gap=2.0).to_row()
    assert row["oracle_gmacs_per_video"] == 1.5 and row["oracle_gap"] == 2.0
    assert column_meta("oracle_gmacs_per_video")["short"] == "GMACs"
    assert column_meta("evidence_seen_fraction")["unit"].startswith("fraction")


@pytest.mark.slow
def test_measure_cell_rows_carry_the_oracle_on_generated_data_only(tmp_path):
    """End to end: a tiny generated dataset through measure_cell; random clips get None and the reason."""
    from evbench.harness.data import RandomClips, generate_dataset, open_dataset
    from evbench.harness.measure import measure_cell
    from evbench.harness.settings import MeasureSettings

    root = generate_dataset(tmp_path / "gen", seed=3, num_classes=4, videos_per_class=4, num_frames=16, size=64)
    m = _build("frameexit")
    ds = open_dataset(f"generated:{root}", split="test", frames=m.card.frames, size=m.card.resolution,
                      cache_dir=str(tmp_path / "cache"))
    settings = MeasureSettings(latency=False, count_executed=False)
    res = measure_cell(m, ds, settings, knobs={"threshold": 1.01})  # never exits: sees every frame
    assert res.oracle_gmacs_per_video is not None and 0 < res.oracle_gmacs_per_video < res.gmacs_per_video
    assert res.oracle_gap == pytest.approx(res.gmacs_per_video / res.oracle_gmacs_per_video)
    # 64 px videos: the fine texture needs 56 px, the coarse shapes 56 px; 112 px sees everything
    assert res.oracle_evidence_fraction == 1.0 and res.evidence_seen_fraction == 1.0
    row = res.to_row()
    assert "oracle_gmacs_per_video" in row and "cheapest schedule" in row["oracle_note"]
    r = m.card.resolution
    rnd = measure_cell(m, RandomClips((m.card.frames, 3, r, r), n=2), settings)
    assert rnd.oracle_gmacs_per_video is None and "no generator manifest" in rnd.oracle_note
