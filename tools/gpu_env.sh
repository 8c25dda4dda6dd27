# Sourced by the tools/gpu_*.sh scripts (from the repository root, with OUT set). The GPU image
# lacks some Debian packages the build needs, so the ones carried in .deps/ are unpacked (once)
# under /opt/fp4llm-deps and found there:
# CMake packages through CMAKE_PREFIX_PATH, cpp-httplib and its pkg-config requirements
# (openssl, zlib, brotli) through a pkg-config sysroot, shared libraries through LD_LIBRARY_PATH.
FP4LLM_DEPS_ROOT=${FP4LLM_DEPS_ROOT:-/opt/fp4llm-deps}
if compgen -G ".deps/*.deb" > /dev/null; then
  if [ ! -e "$FP4LLM_DEPS_ROOT/.unpacked" ]; then
    for f in .deps/*.deb; do dpkg -x "$f" "$FP4LLM_DEPS_ROOT"; done
    touch "$FP4LLM_DEPS_ROOT/.unpacked"
  fi
  export CMAKE_PREFIX_PATH=$FP4LLM_DEPS_ROOT/usr
  export LD_LIBRARY_PATH=$FP4LLM_DEPS_ROOT/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
  export PKG_CONFIG_LIBDIR=$FP4LLM_DEPS_ROOT/usr/lib/x86_64-linux-gnu/pkgconfig:$FP4LLM_DEPS_ROOT/usr/share/pkgconfig
  export PKG_CONFIG_SYSROOT_DIR=$FP4LLM_DEPS_ROOT
else
  echo "note: no .deps/*.deb to unpack (carry .deps to the GPU machine)" >&2
fi

# The tree's commit, which `fp4llm bench` writes into its JSON.
export FP4LLM_COMMIT=${FP4LLM_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}

# The lent GPUs are Hopper: build for sm_90a only unless FP4LLM_CMAKE_ARGS says otherwise.
export FP4LLM_CMAKE_ARGS=${FP4LLM_CMAKE_ARGS:--DFP4LLM_CUDA_ARCH_FLAGS=-gencode=arch=compute_90a,code=sm_90a}

# gpu_build [TARGET...]: configure and build build-gpu (Release, FP4LLM_CMAKE_ARGS as above), all
# targets by default; logs to $OUT, first errors on failure.
gpu_build() {
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DFP4LLM_PYTHON="$(command -v python3)" \
    ${FP4LLM_CMAKE_ARGS:-} > "$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; return 1; }
  cmake --build build-gpu -j "$(nproc)" ${1:+--target "$@"} > "$OUT/build.log" 2>&1 ||
    { grep -E "error" -A5 "$OUT/build.log" | head -60; return 1; }
}

# bench_variant DIR LABEL MODEL BATCHES [VAR=VALUE...]: `fp4llm bench --synthetic MODEL` under those
# environment settings (build-gpu/fp4llm; JSON and log in DIR as bench-LABEL.*), then one line:
# "LABEL: b1 335.3, b16 4579.8 tok/s", or "LABEL: FAILED (see DIR/bench-LABEL.txt)".
bench_variant() {
  local dir=$1 label=$2 model=$3 batches=$4; shift 4
  if env "$@" timeout 150 ./build-gpu/fp4llm bench --synthetic "$model" --batch "$batches" --quiet \
      --json "$dir/bench-$label.json" > "$dir/bench-$label.txt" 2>&1; then
    echo "$label: $(python3 -c "import json, sys; print(', '.join(f\"b{d['batch']} {d['decode_tokens_per_s']:.1f}\" for d in json.load(open(sys.argv[1]))['decode']) + ' tok/s')" "$dir/bench-$label.json")"
  else
    echo "$label: FAILED (see $dir/bench-$label.txt)"
  fi
}
