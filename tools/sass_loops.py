#!/usr/bin/env python3
"""Instruction budgets of kernels without a GPU: registers, stack and the loops (backward branches)
of every kernel in a CUDA object whose mangled name matches a pattern, with the opcodes of each
large loop counted. The decode GEMV is bound by instruction issue (docs/PERFORMANCE.md), so its
SASS instructions per chunk are a figure a change can be judged by before a GPU is lent.

  python3 tools/sass_loops.py build/src/backend/cuda/CMakeFiles/fp4llm_cuda.dir/nvfp4_linear.cu.o \
      'nvfp4_gemv_direct_kernelILi1ELb0ELb0E' [--min-loop 200]

cuobjdump comes from the CUDA toolkit, or from the Python registry's nvidia-cuda-cuobjdump wheel
(CUOBJDUMP=path/to/cuobjdump)."""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys


def cuobjdump():
    path = os.environ.get("CUOBJDUMP") or shutil.which("cuobjdump")
    if not path:
        sys.exit("cuobjdump not found: install the CUDA toolkit's, or `pip download --no-deps "
                 "nvidia-cuda-cuobjdump` and point CUOBJDUMP at the binary in the wheel")
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("object")
    ap.add_argument("pattern", help="regular expression on the mangled kernel name")
    ap.add_argument("--min-loop", type=int, default=200, help="loops of at least this many instructions get opcode counts")
    a = ap.parse_args()
    tool = cuobjdump()
    usage = subprocess.run([tool, "-res-usage", a.object], capture_output=True, text=True).stdout
    resources = dict(re.findall(r"Function (\S+):\s*\n\s*(REG:\d+ STACK:\d+ SHARED:\d+ LOCAL:\d+)", usage))
    sass = subprocess.run([tool, "-sass", a.object], capture_output=True, text=True).stdout
    for block in re.split(r"\n\s+Function : ", sass)[1:]:
        name = block.split("\n", 1)[0].strip()
        if not re.search(a.pattern, name):
            continue
        lines = [l.strip() for l in block.split("\n") if re.search(r"/\*[0-9a-f]{4}\*/", l)]
        demangled = subprocess.run(["c++filt", name], capture_output=True, text=True).stdout.strip() or name
        print(f"{demangled}\n  {resources.get(name, '')}  {len(lines)} instructions")
        for i, line in enumerate(lines):
            m = re.search(r"BRA (0x[0-9a-f]+)", line)
            if not m:
                continue
            here = int(re.search(r"/\*([0-9a-f]{4})\*/", line).group(1), 16)
            target = int(m.group(1), 16)
            if target >= here:
                continue
            size = (here - target) // 16 + 1
            counts = collections.Counter()
            for body in lines[i - size + 1:i + 1]:
                op = re.sub(r"/\*[0-9a-f]{4}\*/\s+", "", body).split(";")[0]
                op = re.sub(r"^@!?U?P\w+\s+", "", op).split()
                counts[op[0] if op else "?"] += 1
            print(f"  loop of {size} instructions at {hex(target)}", end="")
            if size >= a.min_loop:
                mma = sum(v for k, v in counts.items() if k.startswith("HMMA"))
                print(f" ({mma} HMMA): " + ", ".join(f"{k} {v}" for k, v in counts.most_common(12)))
            else:
                print()


if __name__ == "__main__":
    main()
