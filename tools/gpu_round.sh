#!/usr/bin/env bash
# One device call that checks and measures a tree on a one-GPU machine, for a session's first (or
# last) run: sm_90a build of everything, the GPU tests (py_gpu_forward verbose, for its printed
# agreement), the decode/prefill bench of the three synthetic shapes, the issue-5 targets
# (tools/gpu_targets.sh), and the serving suite on the CUDA backend when its inputs were carried
# (.whl/gpu with the openai wheels, .gpu-shared/testdata/tokenizers/qwen3). Prints a summary;
# $OUT gets summary.txt and round.tgz (every log and JSON), two files, under the fetch limit.
#   device: after tools/gpu_carry.sh here, run with carry [".deps", ".whl/gpu", ".gpu-shared"];
#   about 6 minutes (with the GPU-narrowing comparison); the knob comparisons are in
#   tools/gpu_variants.sh, a second call on the same warm machine
#   FP4LLM_SANITIZE=1 adds compute-sanitizer memcheck on the gtest binaries. ROUND_TESTS=REGEX runs
#   those ctest entries too (knob tests), last, in the round's environment (gpu_env.sh: a command
#   after the round in the same call lacks the carried libraries).
set -uo pipefail
cd "$(dirname "$0")/.."
results=${OUT:-build-gpu/logs}
mkdir -p "$results"
work=/tmp/fp4llm-round
rm -rf "$work" && mkdir -p "$work"
source tools/gpu_env.sh
summary=$results/summary.txt  # written as it grows: kept if the call is cut off
: > "$summary"
say() { echo "$*" | tee -a "$summary"; }

say "commit $FP4LLM_COMMIT, $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1), $(date -u +%FT%TZ)"
start=$(date +%s)
OUT=$work gpu_build || { say "build FAILED"; tar czf "$results/round.tgz" -C /tmp fp4llm-round; exit 1; }
say "build: $(( $(date +%s) - start )) s"

(cd build-gpu && timeout 400 ctest -L gpu -LE gpu_knob -V > "$work/gpu-tests.log" 2>&1)
say "ctest -L gpu -LE gpu_knob: exit $? | $(grep -E '^[0-9]+/[0-9]+ Test' "$work/gpu-tests.log" | sed -E 's/ +Test +#[0-9]+: / /; s/ \.+ */ /; s/ +[0-9.]+ sec//' | tr '\n' ';')"
say "py_gpu_forward: $(grep -E '[0-9]+ passed' "$work/gpu-tests.log" | tail -1 | sed 's/^[0-9]*: //')"

if [ "${FP4LLM_SANITIZE:-0}" = 1 ]; then
  for t in build-gpu/gpu_*; do
    [ -x "$t" ] || continue
    if [ $(( $(date +%s) - start )) -gt 330 ]; then say "memcheck $(basename "$t"): skipped (time)"; continue; fi
    timeout 120 compute-sanitizer --tool memcheck "$t" --gtest_brief=1 > "$work/memcheck-$(basename "$t").log" 2>&1
    say "memcheck $(basename "$t"): $(grep -h 'ERROR SUMMARY' "$work/memcheck-$(basename "$t").log")"
  done
  # Shared-memory hazards in the kernels that stage rows or routing in shared memory (the norm
  # prologue, the routing in the experts, the attention); cuBLAS's own kernels report some (docs/GPU_TESTS.md).
  for t in gpu_moe gpu_paged_attention; do
    if [ $(( $(date +%s) - start )) -gt 360 ]; then say "racecheck $t: skipped (time)"; continue; fi
    timeout 120 compute-sanitizer --tool racecheck "build-gpu/$t" --gtest_brief=1 > "$work/racecheck-$t.log" 2>&1
    say "racecheck $t: $(grep -h 'RACECHECK SUMMARY\|ERROR SUMMARY' "$work/racecheck-$t.log" | tail -1)"
  done
fi

bench() {  # NAME BATCHES
  timeout 150 ./build-gpu/fp4llm bench --synthetic "$1" --batch "$2" --quiet --json "$work/bench-$1.json" \
    > "$work/bench-$1.txt" 2>&1 || say "bench $1 FAILED"
}
bench qwen3-8b 1,16,64
bench qwen3-30b-a3b 1,16,64
bench gemma3-27b 1,16
python3 - "$work" <<'PY' | tee -a "$summary"
import json, pathlib, sys
for f in sorted(pathlib.Path(sys.argv[1]).glob("bench-*.json")):
    r = json.loads(f.read_text())
    rows = ", ".join(f"b{d['batch']} {d['decode_tokens_per_s']:.1f} tok/s ({100 * d['fraction_of_bandwidth_floor']:.1f}%)"
                     for d in r["decode"])
    knobs = " ".join(f"{k}={v}" for k, v in (r.get("knobs") or {}).items() if k != "unknown")
    print(f"{r['model']}{' [' + knobs + ']' if knobs else ''}: {rows}; prefill {r['prefill']['linear_tflops']:.0f} TFLOP/s; "
          f"{r['memory']['gpu_used_bytes'] / 1e9:.2f} GB; copy {r['copy_bandwidth_gb_per_s']:.0f} GB/s")
PY

OUT=$work timeout 200 bash tools/gpu_targets.sh > "$work/targets.txt" 2>&1
tail -7 "$work/targets.txt" | tee -a "$summary"

if [ -d .whl/gpu ] && [ -d .gpu-shared ]; then
  python3 -m pip install --no-index --find-links .whl/gpu openai -t /tmp/fp4llm-pylib -q > "$work/pip.log" 2>&1
  PYTHONPATH=/tmp/fp4llm-pylib FP4LLM_SHARED_DIR=$PWD/.gpu-shared OUT=$work timeout 300 bash tools/gpu_serve_check.sh \
    > "$work/serve.txt" 2>&1
  say "serving suite on CUDA: $(tail -1 "$work/serve.txt")"
  if [ $(( $(date +%s) - start )) -lt 420 ]; then  # the second run only while the call has time for it
    FP4LLM_GPU_NARROWING=1 PYTHONPATH=/tmp/fp4llm-pylib FP4LLM_SHARED_DIR=$PWD/.gpu-shared OUT=$work/narrowing \
      timeout 150 bash -c 'mkdir -p "$OUT" && bash tools/gpu_serve_check.sh' > "$work/serve-narrowing.txt" 2>&1
    say "serving suite on CUDA, candidates narrowed on the GPU (FP4LLM_GPU_NARROWING=1): $(tail -1 "$work/serve-narrowing.txt")"
  else
    say "serving suite with FP4LLM_GPU_NARROWING=1: skipped (time)"
  fi
else
  say "serving suite: skipped (carry .whl/gpu and .gpu-shared)"
fi

if [ -n "${ROUND_TESTS:-}" ]; then
  (cd build-gpu && timeout 200 ctest --no-tests=error -R "$ROUND_TESTS" > "$work/round-tests.log" 2>&1)
  say "ctest -R '$ROUND_TESTS': exit $? | $(grep -E '^ *[0-9]+/[0-9]+ Test' "$work/round-tests.log" | sed -E 's/ +Test +#[0-9]+: / /; s/ \.+ */ /; s/ +[0-9.]+ sec//' | tr '\n' ';')"
fi

tar czf "$results/round.tgz" -C /tmp fp4llm-round
