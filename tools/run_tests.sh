#!/usr/bin/env bash
# Runs every test of a build folder: the CPU tests in parallel, then the GPU-labelled tests,
# printing the reason when they skip (no CUDA device on this machine).
set -euo pipefail
build=${1:-build}
jobs=${2:-$(nproc)}
cd "$build"
ctest --output-on-failure -j "$jobs" -LE gpu
echo "--- GPU tests (label gpu) ---"
set +e
ctest --output-on-failure -L gpu -V > gpu-tests.log 2>&1
status=$?
set -e
grep -E "Test +#|no CUDA device|tests passed|tests failed" gpu-tests.log | sed 's/^[0-9]*: //' \
  | awk '!seen[$0]++'
[ $status -eq 0 ] || { cat gpu-tests.log; exit $status; }
