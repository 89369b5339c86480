"""Runs built from real stored rows for the history / compare / trend tests.

The rows come from the reference run committed under ``results/`` (measured by
``evbench run``); a test night resamples each row's real latency samples
(seeded) and may scale them, so the distributions are those of real timing on
this project's CPU, not a textbook normal.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from evbench.harness.results import append_jsonl

REFERENCE_RUN = Path(__file__).resolve().parent.parent / "results" / "default-backends-20261130" / "results.jsonl"


def real_rows(n: int = 3) -> list[dict[str, Any]]:
    """The first ``n`` ok torch-backend rows with latency samples and top-1 of the reference run."""
    rows = []
    with open(REFERENCE_RUN, encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            if (r.get("status") == "ok" and r.get("backend") == "torch" and r.get("latency_samples_ms")
                    and r.get("top1") is not None):
                rows.append(r)
            if len(rows) == n:
                break
    assert len(rows) == n, f"{REFERENCE_RUN} has fewer than {n} usable rows"
    return rows


def night_rows(rows: list[dict[str, Any]], *, seed: int, shift: float = 1.0, started: str = "2026-11-01T02:00:00Z",
               commit: str | None = None, noisy: bool = False, n_samples: int = 128) -> list[dict[str, Any]]:
    """Copies of ``rows`` with latency samples resampled (seeded) from the real ones and scaled by ``shift``."""
    rng = np.random.default_rng(seed)
    out = []
    for r in rows:
        r = copy.deepcopy(r)
        s = rng.choice(np.asarray(r["latency_samples_ms"], dtype=float), n_samples) * shift
        p50, p90, p99 = np.percentile(s, [50, 90, 99])
        r.update(latency_samples_ms=s.tolist(), latency_ms_p50=float(p50), latency_ms_p90=float(p90),
                 latency_ms_p99=float(p99), latency_ms_mean=float(s.mean()), latency_queries=len(s),
                 started=started, noisy=noisy,
                 machine_state={"others_cpu_cores": 1.2 if noisy else 0.01, "noisy_threshold_cores": 0.25})
        r["env"] = {**r["env"], "time": started}
        if commit is not None:
            r["env"]["git_commit"] = commit
        out.append(r)
    return out


def clip_frame(row: dict[str, Any], *, flip: int = 0) -> pd.DataFrame:
    """Per-clip outcomes consistent with the row's ``num_videos`` and ``top1``; ``flip`` right clips turned wrong."""
    n = int(row["num_videos"])
    k = int(round(float(row["top1"]) * n))
    labels = np.arange(n) % max(int(row.get("num_classes") or 2), 2)
    right = np.arange(n) < k
    right[np.flatnonzero(right)[:flip]] = False
    preds = np.where(right, labels, (labels + 1) % max(int(row.get("num_classes") or 2), 2))
    return pd.DataFrame({"id": [f"clip{i:03d}" for i in range(n)], "label": labels, "pred": preds,
                         "cell_id": row["cell_id"]})


def write_run(out: Path, rows: list[dict[str, Any]], *, flip: int = 0, clip_ids: list[str] | None = None) -> Path:
    """Write ``rows`` as an evbench run directory (``results.jsonl`` + ``samples/<cell_id>.parquet``)."""
    (out / "samples").mkdir(parents=True, exist_ok=True)
    for r in rows:
        frame = clip_frame(r, flip=flip)
        if clip_ids is not None:
            frame["id"] = clip_ids[: len(frame)]
        frame.to_parquet(out / "samples" / f"{r['cell_id']}.parquet", index=False)
    append_jsonl(out / "results.jsonl", rows)
    return out
