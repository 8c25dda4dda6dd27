#!/usr/bin/env bash
# On a GPU machine after tools/gpu_bench.sh built build-gpu: the serving tests against the CUDA
# backend (FP4LLM_TEST_DEVICE=cuda) when the `openai` package is importable, else a curl smoke
# test of `fp4llm serve --device cuda` on the tiny test model. FP4LLM_SHARED_DIR must hold
# testdata/tokenizers/qwen3.
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/gpu_env.sh
export FP4LLM_BIN=$PWD/build-gpu/fp4llm FP4LLM_TEST_DEVICE=cuda
if python3 -c "import openai" 2>/dev/null; then
  log=${OUT:-/tmp}/serve-pytest.log
  (cd tests/server && python3 -m pytest -q -p no:cacheprovider . > "$log" 2>&1)
  rc=$?
  grep -E "^(FAILED|ERROR)|passed|failed" "$log" | tail -15
  exit $rc
fi
echo "openai package missing: curl smoke test instead"
dir=$(mktemp -d)
python3 -c "import sys; sys.path.insert(0, 'tests/server'); from tiny_model import write_tiny_qwen3; write_tiny_qwen3('$dir/m')"
"$FP4LLM_BIN" serve "$dir/m" --device cuda --port 8765 --quiet --served-model-name tiny > "$dir/log" 2>&1 &
pid=$!
for i in $(seq 60); do grep -q "listening" "$dir/log" && break; sleep 1; done
cat "$dir/log"
curl -s localhost:8765/v1/completions -H 'Content-Type: application/json' \
  -d '{"model": "tiny", "prompt": "Hello there", "max_tokens": 8, "temperature": 0}'; echo
curl -s localhost:8765/v1/chat/completions -H 'Content-Type: application/json' \
  -d '{"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8, "stream": true}' | tail -3
curl -s localhost:8765/metrics | grep -E "^fp4llm_(kv|requests|prompt|generation)" | head
kill -TERM $pid; wait $pid; echo "serve exit $?"
