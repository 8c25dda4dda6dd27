#!/usr/bin/env bash
# `make run`: the default real model, Gemma 3 270M (GGUF Q4_K_M from the Python registry),
# requantized to NVFP4 at load and run on the CPU backend with an FP8 KV cache. Its tokenizer is
# the real Gemma 3 tokenizer.json in ../shared (GGUF tokenizer metadata is not read yet).
set -euo pipefail
build=${1:-build}
model=$(bash tools/default_model.sh)
tokenizer=../shared/testdata/tokenizers/gemma3
[ -f "$tokenizer/tokenizer.json" ] || { echo "missing $tokenizer/tokenizer.json (the shared folder beside the checkout)" >&2; exit 1; }
"$build/fp4llm" inspect "$model"
echo
prompt="The capital of France is"
echo "fp4llm run (base model, plain prompt, greedy): $prompt"
"$build/fp4llm" run "$model" "$prompt" --tokenizer "$tokenizer" --no-chat --temperature 0 --max-tokens 32
