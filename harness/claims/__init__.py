"""Published claims and ``evbench claims``: reproduced, not reproduced, needs device, needs dataset.

The registry (:file:`harness/claims.toml`, package data, parsed with
:mod:`tomllib`) lists published numbers — each with its paper, where it is
printed, the quantity and unit, the claimed value, a stated tolerance and the
measurement that checks it.  :func:`check_claims` measures what this machine
can measure with the harness's own instruments and :func:`judge` turns a
measurement into a verdict:

``reproduced``
    measured here, ``|measured − claimed| ≤ tolerance``;
``not reproduced``
    measured here, outside the tolerance (the row carries the measured value
    and the difference);
``needs device``
    a hardware claim (e.g. FPS on a Jetson Nano) for a device that is not
    attached; a roofline estimate from :mod:`evbench.harness.devices.modeled` is
    attached as information, labelled *modeled*, when that model is available —
    the verdict stays ``needs device``;
``needs dataset``
    accuracy, or a per-video cost that depends on a trained policy's decisions
    on a dataset that is not here; ``--results RUN`` answers it from a stored
    row of the same method (``paper`` configuration) on that dataset;
``error``
    the measurement raised; the row says why.

Measurement kinds (:data:`MEASUREMENT_KINDS`; GMACs = multiply-accumulates ×
1e-9, the unit the papers call GFLOPs):

``cost_table``
    the sum of cost-table entries (``modules``: ``[[name, shape], ...]``) of
    ``create_method(method, config=...)`` counted with fvcore
    (:func:`evbench.harness.costs.cost_table`), GMACs; ``also`` adds other sums as
    information.
``gmacs_per_video``
    one forward of a seeded random-normal clip with the given ``knobs``
    (a forced schedule, thresholds), GMACs/video as the trace sum
    (:func:`evbench.harness.costs.trace_gmacs`).
``data_gmacs``
    GMACs/video under a trained policy's decisions on ``dataset`` — needs that
    dataset; ``bounds`` (forced schedules) are measured as information and the
    claimed value is placed between them.
``ratio``
    ``numerator / denominator`` (``form = "ratio"``, ×) or
    ``100·(1 − numerator / denominator)`` (``form = "reduction_pct"``, %) of
    two nested measurements.
``latency_ratio``
    ``p50(numerator) / p50(denominator)`` of two schedules timed here with
    :func:`evbench.harness.measure.measure_cell` at small settings (batch 1, a few queries);
    with ``requires_dataset`` the claim's own schedules are unknown, the timed
    pair is an illustration only and the verdict is ``needs dataset``.
``accuracy``
    top-1 / mAP on ``dataset`` — needs the dataset and a trained model, or a
    ``--results`` row.
``fps``
    frames/s on ``device`` — needs the device, or a ``--results`` row measured
    on it.

**Realised speed-ups.**  Every claim of a compute saving or a speed-up
(:func:`~evbench.harness.claims.realised.is_saving_claim`: unit ``x``, a
reduction, or an adaptive method's GMACs/video) has a ``[claims.realised]``
table: the baseline the paper compares with and the method's ``paper``
configuration under forced decision schedules mixed to the paper's published
decision mix (its usage fractions, or a mix with its published mean cost).
``evbench claims`` times both sides at batch 1 through
:func:`evbench.harness.measure.measure_cell` and adds ``gmac_ratio``,
``realised_speedup`` (p50 ratio) with ``realised_speedup_ci`` (seeded
bootstrap over the raw latency samples), ``device``, ``backend``, ``threads``
and ``realised_verdict`` ("compute saving 1.96× realised as 1.71× [1.66, 1.77]
on AMD EPYC, torch fp32, 2 threads") to the row, without changing its verdict
(:mod:`evbench.harness.claims.realised`).  ``--queries`` and ``--max-seconds``
bound each timed schedule (recorded in the row); ``--no-realised`` skips the
pass.

:func:`run_claims` is ``evbench claims`` (``--json``, ``--paper``, ``--out``,
``--results``, ``--registry``, ``--threads``, ``--no-realised``, ``--queries``,
``--max-seconds``, ``--quiet``).  Cost tables and forwards are
cached within a run; without the realised pass the whole shipped registry
checks in well under a minute on a 2-core CPU (1 thread); the realised pass
times the paper configurations and takes minutes.

Which claims reproduce here is what ``evbench claims`` prints (claimed vs
measured, difference, verdict); the committed reference verdicts are in
``results/claims-20261130/claims.jsonl``.  Published numbers live only in
``claims.toml``: a method card lists the ids of its claims
(:func:`claim_ids_for`), never the numbers.

The package, one job per module:

==============  ======================================================================
``schema``      data model (Paper, Tolerance, Claim, Measurement), kinds, verdicts
``registry``    loading and validating ``claims.toml``; the claims a method config makes
``judge``       the verdict of a claim given a measurement (pure)
``measure``     the measurer (cost tables, forwards, latency) and :func:`check_claims`
``realised``    realised speed-ups: decision mixes, bootstrap interval, verdict text
``query``       answering claims from stored results (``--results``)
``format``      the text table of verdict rows
``store``       ``claims.jsonl`` in a run directory
``cli``         ``evbench claims``
==============  ======================================================================
"""

from __future__ import annotations

from evbench.harness.claims.cli import run_claims
from evbench.harness.claims.format import format_realised, format_text
from evbench.harness.claims.judge import judge
from evbench.harness.claims.measure import Measurer, check_claims
from evbench.harness.claims.realised import REALISED_FIELDS, RealisedSettings, is_saving_claim
from evbench.harness.claims.registry import (
    REGISTRY_PATH,
    claim_ids_for,
    claims_by_id,
    load_registry,
    shipped_claims,
)
from evbench.harness.claims.schema import (
    MEASUREMENT_KINDS,
    VERDICTS,
    Claim,
    ClaimRegistryError,
    Measurement,
    Paper,
    Tolerance,
)
from evbench.harness.claims.store import CLAIMS_FILE, append_rows, load_claim_rows

__all__ = [
    "ClaimRegistryError",
    "Paper",
    "Tolerance",
    "Claim",
    "Measurement",
    "MEASUREMENT_KINDS",
    "VERDICTS",
    "REGISTRY_PATH",
    "CLAIMS_FILE",
    "load_registry",
    "shipped_claims",
    "claims_by_id",
    "claim_ids_for",
    "judge",
    "Measurer",
    "check_claims",
    "format_text",
    "format_realised",
    "RealisedSettings",
    "REALISED_FIELDS",
    "is_saving_claim",
    "append_rows",
    "load_claim_rows",
    "run_claims",
]
