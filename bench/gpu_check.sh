#!/usr/bin/env bash
# evbench GPU check (issue 13 item 6): everything evbench does on an NVIDIA GPU, in one short run.
#
#   bash bench/gpu_check.sh [OUT_DIR]        (default: $OUT, else ./gpu-check-<time>)
#
# On a machine with a CUDA GPU visible to torch it runs, each step under its own timeout, and writes to OUT_DIR:
#   env.json, nvidia-smi.txt       the fingerprint (GPU, driver, CUDA, cuDNN, ONNX Runtime providers)
#   nvml.json                      NVML: total-energy counter supported?, power now, NVML index of cuda:0
#   pytest.txt                     tests/test_gpu_paths.py with real CUDA (the CUDA-only tests run here)
#   profile-<method>-fp32.json     `evbench profile --config paper --device cuda` of every registered method:
#                                  CUDA-event latency, latency breakdown by role on CUDA events
#                                  (item 1), harness overhead, NVML energy per clip
#   profile-<method>-fp16.json     the same at --precision fp16 (autocast; the Jetson numbers' precision)
#   profile-<method>-bf16.json     bf16 for the uniform baseline and one adaptive method
#   ort-<method>-{cuda,tensorrt}.json  ONNX Runtime CUDA (uniform, arnet) / TensorRT fp16 (uniform) execution
#                                  providers (ort-*.skipped with the reason where onnxruntime-gpu lacks them)
#   claims.json                    `evbench claims --json --device cuda` (realised speed-ups, item 4); where
#                                  claims takes no --device: claims.not-run says so (no CPU timing here)
#   cuda-validation.json           `evbench model-validate --device cuda --precision fp16`: the modeled-device
#                                  roofline fitted and checked on this GPU
#   summary.md, summary.json       one table per topic and the checks (breakdown sums within 5 %, harness
#                                  overhead < 1 % of p50, CUDA-event timer, NVML energy present)
#   steps.log                      every step, its exit status and seconds
# Without a GPU it prints one line saying so, writes OUT_DIR/gpu_check.txt and exits 0.
# Exit status: 0 all steps ran and every check passed (or no GPU), 1 a step failed or a check did not pass.
# GPU_CHECK_PLAN=1 prints the step commands instead of running them (no GPU needed; the tests parse them).
set -u
OUT_DIR="${1:-${OUT:-gpu-check-$(date -u +%Y%m%d-%H%M%S)}}"
mkdir -p "$OUT_DIR"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$HERE"
PY="${PYTHON:-python}"
if command -v evbench >/dev/null 2>&1; then EV=(evbench); else EV=("$PY" -m evbench.harness.cli); fi
STEP_TIMEOUT="${GPU_CHECK_STEP_TIMEOUT:-240}"   # s per step
MAX_SECONDS="${GPU_CHECK_MAX_SECONDS:-20}"      # evbench profile --max-seconds per profile
LOG="$OUT_DIR/steps.log"
failed=0

PLAN="${GPU_CHECK_PLAN:-}"
gpu=$("$PY" - <<'EOF' 2>/dev/null
import torch
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(0))
EOF
)
[ -n "$PLAN" ] && gpu="PLAN (commands only)"
if [ -z "$gpu" ]; then
  why=$("$PY" -c "import torch; print(f'torch {torch.__version__}, built for CUDA {torch.version.cuda}, torch.cuda.is_available() False')" 2>&1 | tail -1)
  command -v nvidia-smi >/dev/null 2>&1 || why="$why; no nvidia-smi"
  msg="gpu_check: no NVIDIA GPU visible to torch ($why); nothing run. Every CUDA path is tested on CPU with fakes (tests/test_gpu_paths.py): not run on a GPU."
  echo "$msg" | tee "$OUT_DIR/gpu_check.txt"
  exit 0
fi
echo "gpu_check: $gpu -> $OUT_DIR" | tee "$LOG"

step() {  # step NAME OUTFILE CMD... : run CMD under the timeout, stdout to OUTFILE, stderr to OUTFILE.err
  local name="$1" outfile="$2"; shift 2
  local t0=$SECONDS rc
  if [ -n "$PLAN" ]; then printf 'STEP\t%s\n' "$*"; return 0; fi
  timeout --kill-after=10 "$STEP_TIMEOUT" "$@" >"$outfile" 2>"$outfile.err"
  rc=$?
  printf '%-34s rc=%-3s %4ss  %s\n' "$name" "$rc" "$((SECONDS - t0))" "$*" | tee -a "$LOG"
  [ "$rc" -eq 0 ] || failed=1
  return 0
}

# environment
[ -n "$PLAN" ] || nvidia-smi >"$OUT_DIR/nvidia-smi.txt" 2>&1 || true
step env "$OUT_DIR/env.json" "$PY" -c "import json; from evbench.harness.env import fingerprint; print(json.dumps(fingerprint(device='cuda', backend='torch'), indent=1, default=str))"
step nvml "$OUT_DIR/nvml.json" "$PY" bench/gpu_check.py nvml
# the CUDA-only tests (and every fake-backed CUDA path test) on the real GPU
step pytest "$OUT_DIR/pytest.txt" "$PY" -m pytest tests/test_gpu_paths.py -q -rs -p no:cacheprovider

methods=$("$PY" -c "from evbench.harness.registry import list_methods; print(' '.join(list_methods()))")
common=(--config paper --device cuda --json --quiet --no-crosscheck --max-seconds "$MAX_SECONDS")
for m in $methods; do   # item 1 on CUDA: breakdown, overhead, energy at fp32 and fp16
  step "profile $m fp32" "$OUT_DIR/profile-$m-fp32.json" "${EV[@]}" profile --method "$m" "${common[@]}"
  step "profile $m fp16" "$OUT_DIR/profile-$m-fp16.json" "${EV[@]}" profile --method "$m" "${common[@]}" \
    --precision fp16 --no-offline
done
for m in uniform arnet; do
  step "profile $m bf16" "$OUT_DIR/profile-$m-bf16.json" "${EV[@]}" profile --method "$m" "${common[@]}" \
    --precision bf16 --no-offline
done

# ONNX Runtime CUDA / TensorRT execution providers
providers=$("$PY" -c "import onnxruntime as o; print(' '.join(o.get_available_providers()))" 2>/dev/null || echo none)
[ -n "$PLAN" ] && providers="TensorrtExecutionProvider CUDAExecutionProvider CPUExecutionProvider"
echo "onnxruntime providers: $providers" | tee -a "$LOG"
for ep in cuda tensorrt; do
  full=$([ "$ep" = cuda ] && echo CUDAExecutionProvider || echo TensorrtExecutionProvider)
  if [[ " $providers " == *" $full "* ]]; then
    extra=(); [ "$ep" = tensorrt ] && extra=(--precision fp16)
    step "onnxruntime $ep uniform" "$OUT_DIR/ort-uniform-$ep.json" "${EV[@]}" profile --method uniform \
      "${common[@]}" --no-offline --backend onnxruntime --providers "$ep" "${extra[@]}"
    # TensorRT builds one engine per exported graph (AR-Net paper: a dozen), minutes: CUDA only for AR-Net
    [ "$ep" = cuda ] && step "onnxruntime $ep arnet" "$OUT_DIR/ort-arnet-$ep.json" "${EV[@]}" profile \
      --method arnet "${common[@]}" --no-offline --backend onnxruntime --providers "$ep"
  else
    echo "skipped: $full not in onnxruntime's providers ($providers); pip install onnxruntime-gpu" \
      >"$OUT_DIR/ort-$ep.skipped"
    echo "onnxruntime $ep                     skipped ($full not available)" | tee -a "$LOG"
  fi
done

# item 4: realised speed-ups (claims), on cuda when claims can be told the device
claims_help=$("${EV[@]}" claims --help 2>/dev/null)
claims_budget=(); [[ "$claims_help" == *--max-seconds* ]] && claims_budget=(--max-seconds "$MAX_SECONDS" --quiet)
if [[ "$claims_help" == *--device* ]]; then
  step "claims (cuda)" "$OUT_DIR/claims.json" "${EV[@]}" claims --json --device cuda "${claims_budget[@]}"
else  # timing the paper configurations on this host's CPU would spend the GPU session on CPU numbers
  echo "not run: evbench claims takes no --device, so its realised speed-ups cannot be timed on cuda" \
    | tee "$OUT_DIR/claims.not-run" | tee -a "$LOG"
fi

# the modeled-device validation on the GPU (Jetson runtime pytorch-fp16)
step "model-validate cuda fp16" "$OUT_DIR/model-validate.txt" "${EV[@]}" model-validate --device cuda \
  --precision fp16 --resolution 224 --out "$OUT_DIR" --quiet

step summary "$OUT_DIR/summary.md" "$PY" bench/gpu_check.py summary "$OUT_DIR"
[ -n "$PLAN" ] && exit 0
cat "$OUT_DIR/summary.md"
if [ "$failed" -ne 0 ]; then
  echo "gpu_check: a step failed or a check did not pass; see $LOG and $OUT_DIR/*.err" >&2
  exit 1
fi
echo "gpu_check: all steps ran, all checks passed ($OUT_DIR)"
