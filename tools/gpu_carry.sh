#!/usr/bin/env bash
# Here (a machine with the Debian mirror and the Python registry), before the first device call of
# a checkout: everything tools/gpu_round.sh wants carried to the GPU machine, which reaches no
# network. All three folders are git-ignored; pass them as the device tool's carry:
#   .deps        Debian packages the GPU image lacks (tools/fetch_gpu_debs.sh)
#   .whl/gpu     the openai client and its dependencies as wheels for the image's Python 3.12
#   .gpu-shared  the Qwen3 tokenizer files the serving tests load (FP4LLM_SHARED_DIR there)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d .deps ] || bash tools/fetch_gpu_debs.sh > /dev/null
mkdir -p .whl/gpu
python3 -m pip download -q openai --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux2014_x86_64 -d .whl/gpu
mkdir -p .gpu-shared/testdata/tokenizers
cp -r ../shared/testdata/tokenizers/qwen3 .gpu-shared/testdata/tokenizers/
du -sh .deps .whl/gpu .gpu-shared
