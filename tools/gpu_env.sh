# Sourced by the tools/gpu_*.sh scripts: the GPU image lacks some Debian packages the build
# needs, so the ones carried in .deps/ are unpacked (once) under /opt/fp4llm-deps and found there:
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
