#!/usr/bin/env bash
# `make run`: the main job on the default model. Until the reference engine lands (issue 4),
# this is an honest placeholder: it generates a random-weight BF16 checkpoint of a Qwen3-0.6B-like
# shape (4 layers), quantizes it to NVFP4 with `fp4llm quantize`, and inspects both folders.
set -euo pipefail
build=${1:-build}
model=$build/demo-model
rm -rf "$model" "$model-nvfp4"
.venv/bin/python tools/make_random_checkpoint.py "$model"
"$build/fp4llm" inspect "$model"
echo
"$build/fp4llm" quantize "$model" "$model-nvfp4"
echo
"$build/fp4llm" inspect "$model-nvfp4"
echo
echo "(placeholder: text generation arrives with the reference engine, issue 4)"
