#!/usr/bin/env bash
# Downloads (here, where the Debian mirror is reachable) the packages the GPU machine's image
# lacks into .deps/ (git-ignored), to be carried there (device tool: carry [".deps"]) and
# unpacked by tools/gpu_env.sh. The GPU machine itself reaches no network.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps
cd .deps
apt-get download \
  libfmt9 libfmt-dev libcli11-dev nlohmann-json3-dev libgtest-dev \
  libpcre2-8-0 libpcre2-dev libicu72 libicu-dev \
  libcpp-httplib0.11 libcpp-httplib-dev libssl3 libssl-dev zlib1g-dev libbrotli1 libbrotli-dev
ls -la
