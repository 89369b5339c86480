"""The oracle bound on the generated dataset: the cheapest schedule that sees the evidence.

The generated dataset (:mod:`evbench.harness.data.generate`, SYNTHETIC) writes a
manifest that knows, per video, the frames that carry the class evidence
(``evidence.start .. evidence.end``, end exclusive) and whether the class needs
high resolution (``evidence.needs_high_res``).  For every test video and every
method family this module finds the **oracle schedule**: the cheapest schedule
in the family's action space that *sees the evidence at a sufficient
resolution*, and its GMACs with the method's own cost table.  A method's row
then says how far its policy is from that bound (``oracle_gap``) and whether
its own decisions saw the evidence at all (``evidence_seen_fraction``) — which
separates a weak policy (evidence reachable, not looked at) from an impossible
task (evidence not reachable in the action space, ``oracle_evidence_fraction``
below 1).  No published benchmark reports this.

**Seeing rule** (one rule for the oracle and for the method's executed
trace).  The clip given to a method holds ``T`` frame slots; slot ``t`` is
source frame ``dataset.indices(i)[t]`` (TSN test sampling, segment centres).
A slot is an *evidence slot* when its source frame lies in the evidence
window.  A schedule *sees* a video's evidence when one of its trace steps on
an evidence slot ran on pixels (input shape ``(3, r, r)``) with side
``r >= need``, where ``need`` is

* fine classes (``needs_high_res``): the manifest's
  ``fine_texture.min_resolution`` (112 px for the default 128 px videos — the
  smallest side at which the 1-pixel texture keeps its period; generator
  docstring and :func:`~evbench.harness.data.generate.fine_texture_min_resolution`);
* coarse classes: :data:`COARSE_MIN_RESOLUTION` = 56 px (the generator
  docstring: "recognisable at 56 px"), or the manifest's
  ``coarse_min_resolution`` when it has one.

Every step with a pixel input counts — a policy CNN on the frame counts as a
look at the frame (its state feeds the decision and, for AR-Net, the
all-skipped fallback prediction).  The manifest says nothing about network
depth, so a layer exit after layer2 (TLEE, dyngrid) sees the frame as well as
layer4: the oracle is a lower bound on what a policy needs, not on what a
classifier needs.

**Cost**: every candidate schedule is a trace of the method itself — a
``forward`` on a zero clip of the row's shape under a content-independent
knob setting (a forced schedule, a frame count, a threshold above 1) — summed
with the method's own cost table (:func:`evbench.harness.costs.trace_gmacs`),
so the oracle uses exactly the per-module GMACs of the method's own
accounting for the configuration in the row.  Per action space (the card's ``action_space``) the
candidates provably contain the cheapest seeing schedule (all costs are
non-negative):

* ``uniform``/``uniform_lstm``/``uniform_stream`` (TSN): ``k = 1..T`` evenly
  spaced frames (the ``frames`` knob).
* ``frameexit``: exit after ``n = 1..T`` frames of the coarse-to-fine order
  (``force=n``).
* ``tlee``: every forced schedule ``n@layer`` (the cheapest seeing one is
  ``n@layer2``: the first ``n`` frames of the order stop at layer2 and the video
  exits at the ``n``-th).
* ``dyngrid``: every route of the ``route`` knob, stopping at every cell of it
  (a cell = the steps up to and including its checkpoint head).
* ``rsee``: for every frame ``t'`` and resolution ``r``: frames before ``t'``
  at their cheapest resolution, frame ``t'`` at ``r``, exit after ``t'``
  (per-frame costs from ``force=r`` traces with ``threshold`` 1.01, which never
  exits).
* ``liteeval``: the coarse path on every frame (always run) with the fine
  path on no frame or on one frame ``t'`` (``force=coarse`` / ``force=fine``).
* ``arnet`` (pixels): for every frame ``t'`` and action ``a`` (a branch, the
  policy head, or a skip), the cheapest roll-out that takes ``a`` on ``t'``:
  a shortest path over frames with the skip lengths of the method (per-frame
  policy and action costs from ``force=<res>`` traces; the ``lite_fc``
  fallback charged when no frame predicts; with ``rollout="official"`` the
  policy runs on skipped frames too, as in the method).

A video whose evidence no candidate sees (e.g. a fine class for a method
whose largest resolution is below ``need``) costs the cheapest candidate: an
oracle spends nothing on a video its action space cannot resolve.  Such
videos lower ``oracle_evidence_fraction``.

Not computed (fields ``None``, the reason in ``oracle_note``): datasets
without a generator manifest (every real dataset), feature inputs, and
methods whose family has no action space here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from evbench.harness.api import Method, TraceStep
from evbench.harness.costs import cost_table, trace_gmacs

__all__ = [
    "COARSE_MIN_RESOLUTION",
    "ACTION_SPACES",
    "Evidence",
    "OracleUnavailable",
    "Schedule",
    "cheapest_seeing",
    "evidence_of",
    "family_schedules",
    "oracle_fields",
    "sees",
]

#: Smallest frame side (px) at which the generated dataset's coarse classes are recognisable
#: (``harness/data/generate.py`` module docstring: "recognisable at 56 px").
COARSE_MIN_RESOLUTION = 56

_NOTE = (
    "oracle = cheapest schedule in the method family's action space whose trace runs on an evidence frame "
    "(manifest window) at >= the needed side (fine classes: manifest fine_texture.min_resolution; coarse: "
    "{coarse} px), GMACs from the method's own cost table; mean over {n} test videos; "
    "oracle_gap = gmacs_per_video / oracle_gmacs_per_video"
)


#: Candidates per build (:func:`_build_key`), shared by the cells of a run that rebuild one configuration.
_SCHEDULES: dict[str, tuple[Schedule, ...]] = {}


class OracleUnavailable(ValueError):
    """No oracle for this method or dataset (the message is the row's ``oracle_note``)."""


@dataclass(frozen=True)
class Evidence:
    """Where one test video's class evidence is, in the slots of the clip given to the method.

    Attributes:
        video_id: The dataset entry id (``Class/v_Class_gXX_cYY.mp4``).
        slots: Frame slots (0-based, of the ``T`` given) whose source frame is in the evidence window.
        need: Smallest pixel side (px) at which the evidence is visible.
    """

    video_id: str
    slots: frozenset[int]
    need: int


@dataclass(frozen=True)
class Schedule:
    """One candidate schedule of a family's action space.

    Attributes:
        name: What it does (e.g. ``"force=3@layer2"``, ``"frame 2 at 56 px, exit"``).
        gmacs: GMACs per video (the method's cost table over its trace).
        seen: Frame slot -> the largest pixel side any step on that slot ran at.
    """

    name: str
    gmacs: float
    seen: Mapping[int, int]


def _pixel_side(shape: Sequence[int]) -> int:
    """Side in px of a ``(3, H, W)`` pixel input, else 0 (feature maps, vectors)."""
    shape = tuple(shape)
    return int(min(shape[1], shape[2])) if len(shape) == 3 and shape[0] == 3 else 0


def _seen_map(steps: Iterable[TraceStep]) -> dict[int, int]:
    seen: dict[int, int] = {}
    for s in steps:
        r = _pixel_side(s.input_shape)
        if s.frame >= 0 and r:
            seen[s.frame] = max(seen.get(s.frame, 0), r)
    return seen


def sees(trace_or_seen: Sequence[TraceStep] | Mapping[int, int], ev: Evidence) -> bool:
    """Whether a trace (or a seen map) ran on one of ``ev``'s evidence slots at ``>= ev.need`` px."""
    seen = trace_or_seen if isinstance(trace_or_seen, Mapping) else _seen_map(trace_or_seen)
    return any(seen.get(t, 0) >= ev.need for t in ev.slots)


def cheapest_seeing(schedules: Sequence[Schedule], ev: Evidence) -> tuple[Schedule, bool]:
    """The cheapest schedule that sees ``ev``, or the cheapest of all when none does.

    Returns:
        ``(schedule, seen)``.

    Raises:
        ValueError: ``schedules`` is empty.
    """
    if not schedules:
        raise ValueError("no candidate schedules")
    ordered = sorted(schedules, key=lambda s: s.gmacs)
    for s in ordered:
        if sees(s.seen, ev):
            return s, True
    return ordered[0], False


# ----------------------------------------------------------------------------- family action spaces


def _run(method: Method, example: torch.Tensor, knobs: Mapping[str, Any] | None) -> list[TraceStep]:
    with torch.inference_mode():
        out = method(example, knobs=dict(knobs) if knobs else None)
    return list(out.trace[0])


def _frame_costs(trace: Sequence[TraceStep], table: Mapping, t_total: int,
                 keep: Callable[[TraceStep], bool] = lambda s: True) -> tuple[np.ndarray, float]:
    """Per-slot GMACs ``(T,)`` of the kept steps and the clip-level (frame -1) GMACs."""
    per = np.zeros(t_total)
    clip = 0.0
    for s in trace:
        if not keep(s):
            continue
        if 0 <= s.frame < t_total:
            per[s.frame] += table[s.key]
        else:
            clip += table[s.key]
    return per, clip


def _whole(method: Method, example: torch.Tensor, knob_list: Iterable[Mapping[str, Any]],
           name: Callable[[Mapping[str, Any]], str]) -> list[Schedule]:
    table = cost_table(method)
    out = []
    for knobs in knob_list:
        tr = _run(method, example, knobs)
        out.append(Schedule(name(knobs), trace_gmacs(tr, table), _seen_map(tr)))
    return out


def _uniform(method: Method, example: torch.Tensor) -> list[Schedule]:
    t_total = int(example.shape[1])
    high = method.card.knob("frames").high
    ks = range(1, min(t_total, int(high) if high else t_total) + 1)
    return _whole(method, example, [{"frames": k} for k in ks], lambda k: f"{k['frames']} evenly spaced frames")


def _forced(method: Method, example: torch.Tensor) -> list[Schedule]:
    return _whole(method, example, [{"force": f} for f in method.card.force_options], lambda k: f"force={k['force']}")


def _dyngrid(method: Method, example: torch.Tensor) -> list[Schedule]:
    table = cost_table(method)
    spec = method.card.knob("route")
    routes = spec.choices or (spec.default,)
    out = []
    for route in routes:
        tr = _run(method, example, {"threshold": 1.01, "route": route})
        cells: list[list[TraceStep]] = [[]]
        for s in tr:
            cells[-1].append(s)
            if s.role == "head":  # a cell ends with its checkpoint head
                cells.append([])
        prefix: list[TraceStep] = []
        for n, cell in enumerate(c for c in cells if c):
            prefix += cell
            out.append(Schedule(f"route={route}, stop at cell {n + 1}", trace_gmacs(prefix, table),
                                _seen_map(prefix)))
    return out


def _rsee(method: Method, example: torch.Tensor) -> list[Schedule]:
    table = cost_table(method)
    t_total = int(example.shape[1])
    res = list(method.card.force_options)
    cost, seen = {}, {}
    for r in res:
        tr = _run(method, example, {"force": r, "threshold": 1.01})
        cost[r], _clip = _frame_costs(tr, table, t_total)
        seen[r] = [_seen_map(s for s in tr if s.frame == t).get(t, 0) for t in range(t_total)]
    cheap = [min(res, key=lambda r, t=t: cost[r][t]) for t in range(t_total)]
    out = []
    for tp in range(t_total):
        before = sum(cost[cheap[t]][t] for t in range(tp))
        for r in res:
            s = {t: seen[cheap[t]][t] for t in range(tp)}
            s[tp] = seen[r][tp]
            out.append(Schedule(f"frames 0..{tp - 1} at the cheapest resolution, frame {tp} at {r} px, exit"
                                if tp else f"frame 0 at {r} px, exit", before + cost[r][tp], s))
    return out


def _liteeval(method: Method, example: torch.Tensor) -> list[Schedule]:
    table = cost_table(method)
    t_total = int(example.shape[1])
    coarse = _run(method, example, {"force": "coarse"})
    fine = _run(method, example, {"force": "fine"})
    c_per, c_clip = _frame_costs(coarse, table, t_total)
    f_per, _ = _frame_costs(fine, table, t_total)
    c_seen, f_seen = _seen_map(coarse), _seen_map(fine)
    base = float(c_per.sum() + c_clip)
    out = [Schedule("coarse path only", base, dict(c_seen))]
    for tp in range(t_total):
        s = dict(c_seen)
        s[tp] = max(s.get(tp, 0), f_seen.get(tp, 0))
        out.append(Schedule(f"coarse path, fine on frame {tp}", base - c_per[tp] + f_per[tp], s))
    return out


def _arnet(method: Method, example: torch.Tensor) -> list[Schedule]:
    """AR-Net's roll-out as a shortest path over frame slots (see the module docstring)."""
    table = cost_table(method)
    t_total = int(example.shape[1])
    skips = tuple(int(s) for s in method.skips)
    official = getattr(method, "rollout", "evbench") == "official"
    actions = list(method.card.force_options)
    is_policy = lambda s: s.role == "policy"  # noqa: E731
    ref = _run(method, example, {"force": actions[0]})
    pol, _ = _frame_costs(ref, table, t_total, is_policy)
    pol_seen = [_seen_map(s for s in ref if is_policy(s) and s.frame == t).get(t, 0) for t in range(t_total)]
    act_cost, act_seen = {}, {}
    for a in actions:
        tr = _run(method, example, {"force": a})
        act_cost[a], _ = _frame_costs(tr, table, t_total, lambda s: not is_policy(s))
        act_seen[a] = [_seen_map(s for s in tr if not is_policy(s) and s.frame == t).get(t, 0)
                       for t in range(t_total)]
    # all frames skipped: lite_fc on the final policy state (rollout "official": zero logits, nothing run)
    fallback = 0.0 if official else float(table.get(("lite_fc", (int(method.hidden),)), 0.0))
    inf = math.inf

    def edge(t: int, step: int) -> float:
        """Policy cost of leaving slot ``t`` by ``step`` slots (official roll-out: the skipped slots' too)."""
        end = min(t + step, t_total)
        return float(pol[t:end].sum()) if official else float(pol[t])

    moves = [(s, None) for s in skips] + [(1, a) for a in actions]  # (slots advanced, prediction action)
    # fwd[p][t]: cheapest cost to reach slot t as the next policy step; p = some frame predicted already
    fwd = [[inf] * (t_total + 1) for _ in range(2)]
    fwd[0][0] = 0.0
    for t in range(t_total):
        for p in (0, 1):
            if fwd[p][t] == inf:
                continue
            for step, a in moves:
                nt, npred = min(t + step, t_total), 1 if a is not None else p
                c = fwd[p][t] + edge(t, step) + (act_cost[a][t] if a is not None else 0.0)
                fwd[npred][nt] = min(fwd[npred][nt], c)
    # bwd[p][t]: cheapest cost from slot t (as the next policy step) to the end, p = predicted already
    bwd = [[inf] * (t_total + 1) for _ in range(2)]
    bwd[0][t_total], bwd[1][t_total] = fallback, 0.0
    for t in range(t_total - 1, -1, -1):
        for p in (0, 1):
            best = inf
            for step, a in moves:
                nt, npred = min(t + step, t_total), 1 if a is not None else p
                best = min(best, edge(t, step) + (act_cost[a][t] if a is not None else 0.0) + bwd[npred][nt])
            bwd[p][t] = best
    out = []
    for tp in range(t_total):
        for step, a in moves:
            nt = min(tp + step, t_total)
            best = inf
            for p in (0, 1):
                npred = 1 if a is not None else p
                here = edge(tp, step) + (act_cost[a][tp] if a is not None else 0.0)
                best = min(best, fwd[p][tp] + here + bwd[npred][nt])
            if best == inf:
                continue
            r = max(pol_seen[tp], act_seen[a][tp] if a is not None else 0)
            what = f"force-{a} action" if a is not None else f"skip {step}"
            seen = {t: pol_seen[t] for t in range(t_total)} if official else {}
            seen[tp] = max(seen.get(tp, 0), r)
            out.append(Schedule(f"frame {tp}: {what} (cheapest roll-out around it)", best, seen))
    return out


#: Action space (the card's ``action_space``, data each method declares) -> candidate schedules in it
#: (``(method, zero clip) -> list``). The harness never names a method: a new method whose policy acts in
#: one of these spaces gets its oracle by declaring it.
ACTION_SPACES: dict[str, Callable[[Method, torch.Tensor], list[Schedule]]] = {
    "uniform-frames": _uniform,
    "forced-exits": _forced,
    "grid-routes": _dyngrid,
    "resolution-exit": _rsee,
    "coarse-fine": _liteeval,
    "skip-policy": _arnet,
}


def family_schedules(method: Method, example: torch.Tensor) -> list[Schedule]:
    """Candidate schedules of ``method``'s family on a clip shaped like ``example``.

    Args:
        method: A pixel method (eval mode, on ``example``'s device).
        example: ``(1, T, 3, R, R)`` — only its shape and device are used (a zero clip is run).

    Returns:
        The candidates (each a trace of the method itself, costed with its cost table).

    Raises:
        OracleUnavailable: Feature inputs, or a family without an action space here.
    """
    card = method.card
    if card.input_kind != "pixels":
        raise OracleUnavailable(f"not computed: {card.name} reads features; the manifest's resolution rule "
                                "applies to pixels")
    fn = ACTION_SPACES.get(card.action_space)
    if fn is None:
        raise OracleUnavailable(f"not computed: {card.name} declares action space {card.action_space!r}, which has "
                                f"no oracle here (harness/oracle.py ACTION_SPACES: {', '.join(sorted(ACTION_SPACES))})")
    device = next((p.device for p in method.parameters()), torch.device("cpu"))
    key = _build_key(method, tuple(example.shape))
    if key in _SCHEDULES:
        return list(_SCHEDULES[key])
    zero = torch.zeros(tuple(example.shape), dtype=torch.float32, device=device)
    was = method.training
    method.eval()
    try:
        out = fn(method, zero)
    finally:
        method.train(was)
    if len(_SCHEDULES) >= 64:
        _SCHEDULES.pop(next(iter(_SCHEDULES)))
    _SCHEDULES[key] = tuple(out)
    return out


def _build_key(method: Method, shape: tuple[int, ...]) -> str:
    """What the candidates depend on: the card, the cost table, the parameter shapes, the inference settings, T.

    The candidates are traces under content-independent knobs, so the weights' values do not matter: the
    cells of one run that rebuild the same configuration (one cell per knob setting) share them.
    """
    import json

    table = sorted((m, list(s), g) for (m, s), g in cost_table(method).items())
    params = [(n, list(t.shape)) for n, t in method.state_dict().items()]
    return json.dumps([method.card.to_dict(), table, params, getattr(method, "inference_settings", None),
                       getattr(method, "rollout", None), list(getattr(method, "skips", ()) or ()), list(shape)],
                      sort_keys=True, default=str)


# ----------------------------------------------------------------------------- evidence from the manifest


def _need(manifest: Mapping[str, Any], video: Mapping[str, Any]) -> int:
    ev = video.get("evidence") or {}
    if ev.get("needs_high_res"):
        fine = (manifest.get("fine_texture") or {}).get("min_resolution")
        if fine is None:
            from evbench.harness.data.generate import fine_texture_min_resolution

            fine = fine_texture_min_resolution(int((manifest.get("params") or {}).get("size", 128)))
        return int(fine)
    return int(manifest.get("coarse_min_resolution", COARSE_MIN_RESOLUTION))


def evidence_of(manifest: Mapping[str, Any], video_id: str, slot_frames: Sequence[int]) -> Evidence:
    """The :class:`Evidence` of one video from the generator manifest.

    Args:
        manifest: The generated dataset's ``manifest.json`` (parsed).
        video_id: Entry id of the video (``videos[].id`` in the manifest).
        slot_frames: Source frame index of each slot of the clip given to the method.

    Raises:
        KeyError: The manifest has no such video.
    """
    videos = {v["id"]: v for v in manifest.get("videos", [])}
    return _evidence(manifest, videos[video_id], slot_frames)


def _evidence(manifest: Mapping[str, Any], video: Mapping[str, Any], slot_frames: Sequence[int]) -> Evidence:
    video_id = str(video["id"])
    ev = video["evidence"]
    lo, hi = int(ev["start"]), int(ev["end"])
    slots = frozenset(t for t, f in enumerate(slot_frames) if lo <= int(f) < hi)
    return Evidence(video_id, slots, _need(manifest, video))


def _slot_frames(dataset: Any, index: Mapping[str, int], video_id: str, t_total: int,
                 manifest_video: Mapping[str, Any]) -> list[int]:
    if hasattr(dataset, "indices") and video_id in index and not getattr(dataset, "train", False):
        return list(dataset.indices(index[video_id]))
    from evbench.harness.data.sampling import tsn_indices

    return tsn_indices(int(manifest_video["num_frames"]), t_total, train=False)


def _none(reason: str) -> dict[str, Any]:
    return {"oracle_gmacs_per_video": None, "oracle_gap": None, "oracle_evidence_fraction": None,
            "evidence_seen_fraction": None, "oracle_note": reason}


def oracle_fields(method: Method, dataset: Any, video_ids: Sequence[str], traces: Sequence[Sequence[TraceStep]],
                  example: torch.Tensor, gmacs_per_video: float | None) -> dict[str, Any]:
    """The oracle columns of a result row (:class:`~evbench.harness.row.CellResult`).

    Args:
        method: The measured torch method (its cost table is used).
        dataset: The evaluated dataset; only a generated one (``dataset.manifest``) has an oracle.
        video_ids: Ids of the evaluated videos, in the order of ``traces``.
        traces: The method's executed trace per video.
        example: A clip of the evaluated shape ``(1, T, 3, R, R)`` (shape and device only).
        gmacs_per_video: The row's measured mean GMACs per video.

    Returns:
        ``oracle_gmacs_per_video`` (GMACs, mean over the videos), ``oracle_gap``
        (``gmacs_per_video / oracle_gmacs_per_video``), ``oracle_evidence_fraction``
        (fraction of videos whose evidence some schedule of the family sees),
        ``evidence_seen_fraction`` (fraction whose evidence the executed trace
        saw) and ``oracle_note`` (the definition, or why the rest is None).
    """
    manifest = getattr(dataset, "manifest", None)
    if not manifest:
        return _none(f"not computed: dataset {getattr(dataset, 'name', '?')!r} has no generator manifest "
                     "(the oracle needs the per-video evidence windows of the generated dataset)")
    try:
        schedules = family_schedules(method, example)
    except OracleUnavailable as e:
        return _none(str(e))
    except (RuntimeError, ValueError, KeyError) as e:  # a candidate forward failed: the cell's numbers still stand
        return _none(f"not computed: a candidate schedule failed ({type(e).__name__}: {e})")
    by_id = {v["id"]: v for v in manifest.get("videos", [])}
    entries = getattr(dataset, "entries", None) or []
    index = {e.id: i for i, e in enumerate(entries)}
    t_total = int(example.shape[1])
    costs, reach, seen = [], [], []
    for vid, tr in zip(video_ids, traces, strict=True):
        if vid not in by_id:
            return _none(f"not computed: video {vid!r} is not in the generator manifest")
        ev = _evidence(manifest, by_id[vid], _slot_frames(dataset, index, vid, t_total, by_id[vid]))
        best, ok = cheapest_seeing(schedules, ev)
        costs.append(best.gmacs)
        reach.append(ok)
        seen.append(sees(tr, ev))
    if not costs:
        return _none("not computed: no evaluated video")
    oracle = float(np.mean(costs))
    coarse = int(manifest.get("coarse_min_resolution", COARSE_MIN_RESOLUTION))
    return {
        "oracle_gmacs_per_video": oracle,
        "oracle_gap": (float(gmacs_per_video) / oracle) if gmacs_per_video is not None and oracle > 0 else None,
        "oracle_evidence_fraction": float(np.mean(reach)),
        "evidence_seen_fraction": float(np.mean(seen)),
        "oracle_note": _NOTE.format(coarse=coarse, n=len(costs)),
    }
