"""Helpers of ``bench/gpu_check.sh``: the NVML probe and the summary of a GPU check's output folder.

``python bench/gpu_check.py nvml`` prints what NVML offers for ``cuda:0`` (JSON);
``python bench/gpu_check.py summary OUT`` reads the files the script wrote into
``OUT`` and writes ``OUT/summary.md`` (printed too) and ``OUT/summary.json``:

* **CUDA profiles** (``profile-<method>-<precision>.json``, ``evbench profile
  --config paper --device cuda``): p50 latency (CUDA events), the latency
  breakdown by costed module role and whether its parts sum to the hooked
  queries' mean within :data:`evbench.harness.breakdown.SUM_TOLERANCE`, the
  harness overhead as a share of p50 (target < 1 %), NVML energy per clip, and
  the fp16 / bf16 speed-up over fp32 of the same method (p50 ratio);
* **ONNX Runtime** (``ort-<method>-<provider>.json``): p50, providers loaded,
  max |logit difference| to torch eager;
* **claims** (``claims.json``): every row carrying ``gmac_ratio`` /
  ``realised_speedup`` (issue 13 item 4), with the device it was measured on;
* **modeled-device validation** (``cuda-validation.json``): held-out mean /
  max |error| of the roofline on this GPU.

Exit status of ``summary``: 0 when every check passed, 1 otherwise (the
failed checks are listed in ``summary.md``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: Harness overhead must stay below this share of p50 (issue 13, "Done when").
OVERHEAD_SHARE = 0.01


def nvml_probe(device: str = "cuda:0") -> dict[str, Any]:
    """What NVML offers for ``device``: name, NVML index, total-energy counter support, power now.

    Returns:
        ``{"nvml_index", "name", "driver", "energy_counter_supported", "energy_counter_mj",
        "power_w", "error"}`` (``error`` set and the rest None where NVML is unusable).
    """
    from evbench.harness.devices.energy import nvml_index

    out: dict[str, Any] = {"device": device, "nvml_index": nvml_index(device), "name": None, "driver": None,
                           "energy_counter_supported": None, "energy_counter_mj": None, "power_w": None,
                           "error": None}
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 — reported, not fatal
        out["error"] = f"NVML unusable: {type(exc).__name__}: {exc}"
        return out
    try:
        h = pynvml.nvmlDeviceGetHandleByIndex(out["nvml_index"])
        name = pynvml.nvmlDeviceGetName(h)
        out["name"] = name.decode() if isinstance(name, bytes) else str(name)
        drv = pynvml.nvmlSystemGetDriverVersion()
        out["driver"] = drv.decode() if isinstance(drv, bytes) else str(drv)
        try:
            out["energy_counter_mj"] = int(pynvml.nvmlDeviceGetTotalEnergyConsumption(h))
            out["energy_counter_supported"] = True
        except Exception:  # noqa: BLE001 — pre-Volta: NotSupported
            out["energy_counter_supported"] = False
        try:
            out["power_w"] = float(pynvml.nvmlDeviceGetPowerUsage(h)) / 1000.0
        except Exception as exc:  # noqa: BLE001
            out["error"] = f"nvmlDeviceGetPowerUsage: {exc}"
    finally:
        pynvml.nvmlShutdown()
    return out


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _f(v: Any, spec: str = ".2f") -> str:
    return "—" if v is None else format(v, spec)


def summarise(out: Path) -> tuple[dict[str, Any], str]:
    """The summary of a GPU check's folder ``out``: a JSON-able dict and its markdown.

    Returns:
        ``(summary, markdown)``; ``summary["failed_checks"]`` lists every
        check that did not pass (empty: all passed).
    """
    from evbench.harness.breakdown import SUM_TOLERANCE

    checks: list[str] = []
    profiles: list[dict[str, Any]] = []
    for path in sorted(out.glob("profile-*-*.json")):
        method, precision = path.stem[len("profile-"):].rsplit("-", 1)
        row = _load(path)
        if not isinstance(row, dict):
            checks.append(f"{path.name}: no profile row (see {path.name}.err)")
            continue
        p50, mean = row.get("latency_ms_p50"), row.get("latency_ms_mean")
        parts, bd_mean = row.get("latency_breakdown_ms") or {}, row.get("latency_breakdown_mean_ms")
        bd_err = abs(sum(parts.values()) - bd_mean) / bd_mean if parts and bd_mean else None
        overhead = row.get("harness_overhead_ms")
        share = overhead / p50 if overhead is not None and p50 else None
        conv = row.get("latency_convention") or ""
        rec = {"method": method, "precision": precision, "row_precision": row.get("precision"),
               "p50_ms": p50, "mean_ms": mean, "breakdown_ms": parts, "breakdown_mean_ms": bd_mean,
               "breakdown_sum_rel_error": bd_err, "harness_overhead_ms": overhead, "overhead_share": share,
               "energy_j_per_clip": row.get("energy_j_per_clip"), "energy_source": row.get("energy_source"),
               "gmacs_per_video": row.get("gmacs_per_video"), "cuda_event_timer": "torch.cuda.Event" in conv,
               "gpu": (row.get("env") or {}).get("gpu_name")}
        profiles.append(rec)
        name = f"{method} {precision}"
        if rec["row_precision"] != precision:
            checks.append(f"{name}: row precision {rec['row_precision']!r}")
        if not rec["cuda_event_timer"]:
            checks.append(f"{name}: latency not timed with CUDA events ({conv[:60]!r})")
        if bd_err is None or bd_err > SUM_TOLERANCE:
            checks.append(f"{name}: breakdown parts sum {_f(bd_err, '.1%')} off the hooked mean (> {SUM_TOLERANCE:.0%})")
        if share is None or share >= OVERHEAD_SHARE:
            checks.append(f"{name}: harness overhead {_f(share, '.2%')} of p50 (target < {OVERHEAD_SHARE:.0%})")
        if rec["energy_source"] != "nvml" or rec["energy_j_per_clip"] is None:
            checks.append(f"{name}: no NVML energy per clip (source {rec['energy_source']!r})")
    fp32 = {p["method"]: p["p50_ms"] for p in profiles if p["precision"] == "fp32"}
    for p in profiles:
        base = fp32.get(p["method"])
        p["speedup_vs_fp32"] = base / p["p50_ms"] if base and p["p50_ms"] else None

    ort = []
    for path in sorted(out.glob("ort-*-*.json")):
        row = _load(path)
        method, provider = path.stem[len("ort-"):].rsplit("-", 1)
        if not isinstance(row, dict):
            checks.append(f"{path.name}: no ONNX Runtime row (see {path.name}.err)")
            continue
        detail = row.get("backend_detail") or {}
        ort.append({"method": method, "provider": provider, "p50_ms": row.get("latency_ms_p50"),
                    "backend": detail.get("backend"), "providers_active": detail.get("providers_active"),
                    "max_abs_logit_diff": row.get("max_abs_logit_diff"), "decisions_match": row.get("decisions_match")})
    ort_skipped = [p.read_text().strip() for p in sorted(out.glob("ort-*.skipped"))]

    claims_rows = _load(out / "claims.json")
    realised = []
    for c in claims_rows if isinstance(claims_rows, list) else []:
        if not isinstance(c, dict) or c.get("realised_speedup") is None:
            continue
        realised.append({k: c.get(k) for k in ("id", "paper", "claimed", "unit", "gmac_ratio", "realised_speedup",
                                               "realised_speedup_ci", "realised_verdict", "verdict", "device",
                                               "backend")})
    not_run = [p.read_text().strip() for p in sorted(out.glob("*.not-run"))]
    claims_note = "not run on cuda" if (out / "claims.not-run").exists() else "measured on cuda"
    if claims_rows is None and not (out / "claims.not-run").exists():
        checks.append("claims.json: no claims output (see claims.json.err)")

    val = _load(out / "cuda-validation.json")
    validation = (val or {}).get("summary") if isinstance(val, dict) else None
    if validation is None:
        checks.append("cuda-validation.json: no modeled-device validation on the GPU")

    summary = {"profiles": profiles, "onnxruntime": ort, "onnxruntime_skipped": ort_skipped,
               "realised_speedups": realised, "claims_note": claims_note, "modeled_validation": validation,
               "nvml": _load(out / "nvml.json"), "not_run": not_run, "failed_checks": checks}
    md = [f"# evbench GPU check — {profiles[0]['gpu'] if profiles else 'GPU'}", "",
          "## CUDA profiles (paper configs, batch 1, CUDA events)", "",
          "| method | precision | p50 ms | vs fp32 | breakdown ms (role: ms) | sum err | overhead % p50 | J/clip |",
          "|---|---|---|---|---|---|---|---|"]
    for p in profiles:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in (p["breakdown_ms"] or {}).items())
        md.append(f"| {p['method']} | {p['precision']} | {_f(p['p50_ms'])} | {_f(p['speedup_vs_fp32'], '.2f')}x | "
                  f"{parts or '—'} | {_f(p['breakdown_sum_rel_error'], '.1%')} | {_f(p['overhead_share'], '.2%')} | "
                  f"{_f(p['energy_j_per_clip'], '.3f')} |")
    md += ["", "## ONNX Runtime execution providers", ""]
    md += [f"- {o['method']} {o['provider']}: p50 {_f(o['p50_ms'])} ms, {o['backend']}, loaded "
           f"{o['providers_active']}, max |logit diff| {_f(o['max_abs_logit_diff'], '.2e')}" for o in ort]
    md += [f"- {s}" for s in ort_skipped]
    md += ["", f"## Realised speed-ups ({claims_note})", ""]
    md += [f"- {r['id']}: claimed {r['claimed']} {r.get('unit') or ''}, GMAC ratio {_f(r['gmac_ratio'])}x, "
           f"realised {_f(r['realised_speedup'])}x {r.get('realised_speedup_ci') or ''} — "
           f"{r.get('realised_verdict') or r.get('verdict')}" for r in realised]
    if not realised:
        md.append("- no claim row carries gmac_ratio / realised_speedup")
    md += ["", "## Modeled-device validation on this GPU", ""]
    if validation:
        md.append(f"- {validation.get('runtime')} on {validation.get('gpu_name')}: held-out mean |error| "
                  f"{_f(validation.get('held_out_mean_abs_error_pct'), '.1f')} %, max "
                  f"{_f(validation.get('held_out_max_abs_error_pct'), '.1f')} % (MODELED vs measured p50)")
    md += ["", "## Not run", ""]
    md += [f"- {n}" for n in not_run] or ["- nothing"]
    md += ["", "## Checks", ""]
    md += [f"- FAILED {c}" for c in checks] or ["- all passed"]
    return summary, "\n".join(md) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``nvml`` or ``summary OUT`` (see the module docstring)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["nvml"]:
        print(json.dumps(nvml_probe(), indent=1))
        return 0
    if args[:1] == ["summary"] and len(args) == 2:
        out = Path(args[1])
        summary, md = summarise(out)
        (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
        print(md, end="")
        return 1 if summary["failed_checks"] else 0
    print("usage: python bench/gpu_check.py nvml | summary OUT", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
