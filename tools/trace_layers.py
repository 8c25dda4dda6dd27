#!/usr/bin/env python3
"""One decoder layer of a traced decode step, kernel by kernel, from `fp4llm bench --trace`'s CSV.

  tools/trace_layers.py TRACE.csv [--batch B]

The step's kernels (one launch of at least 8 kernels) repeat with the layers. The layer is the
shortest period P at which the kernel names repeat over most of the step. Each position in the
layer is averaged over every layer of every traced step:
- its start and end from the layer's first kernel's start;
- its duration;
- what its end adds to the latest end so far (the critical-path charge of fp4llm bench --trace).
The kernels before the first whole layer and after the last (embedding, final norm, lm_head)
are listed once each, averaged over the steps."""
import argparse
import csv
import sys
from collections import defaultdict


def steps_of(rows, batch):
    by_launch = defaultdict(list)
    for r in rows:
        if batch is None or int(r["batch"]) == batch:
            by_launch[(r["batch"], r["launch"])].append(r)
    steps = []
    for kernels in by_launch.values():
        if len(kernels) < 8:
            continue
        kernels.sort(key=lambda r: (int(r["start_ns"]), int(r["end_ns"]), r["kernel"]))
        steps.append([(f'{r["kernel"]} [{r["grid_x"]}x{r["grid_y"]}x{r["grid_z"]}]', int(r["start_ns"]), int(r["end_ns"]))
                      for r in kernels])
    return steps


def layer_period(names):
    """The shortest period P (at most a quarter of the step) at which at least 90% of the names
    equal the name P places later; None when there is none."""
    n = len(names)
    for p in range(2, n // 4 + 1):
        same = sum(names[i] == names[i + p] for i in range(n - p))
        if same >= 0.9 * (n - p):
            return p
    return None


def first_layer_start(names, p):
    """The first index from which names repeat with period p for a whole layer and onwards."""
    for i in range(len(names) - 2 * p):
        if all(names[i + j] == names[i + j + p] for j in range(p)):
            return i
    return 0


def charges(step):
    """What each kernel's end adds to the latest end so far (in start order)."""
    frontier = step[0][1]
    out = []
    for _, start, end in step:
        out.append(max(0, end - frontier))
        frontier = max(frontier, end)
    return out


def reduce_layers(steps):
    """(period, per-position rows, edge rows): rows are (name, start us, end us, duration us,
    charge us) averaged; edge rows are the kernels outside whole layers."""
    names = [k[0] for k in steps[0]]
    p = layer_period(names)
    if p is None:
        raise ValueError("no repeating layer in the step's kernel names")
    begin = first_layer_start(names, p)
    sums = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0, 0])
    edges = defaultdict(lambda: [0.0, 0])
    for step in steps:
        charge = charges(step)
        step_names = [k[0] for k in step]
        layers = (len(step) - begin) // p
        while layers > 0 and step_names[begin + (layers - 1) * p:begin + layers * p] != names[begin:begin + p]:
            layers -= 1
        inside = set()
        for layer in range(layers):
            base = begin + layer * p
            t0 = step[base][1]
            for j in range(p):
                name, start, end = step[base + j]
                s = sums[j]
                s[0] += start - t0
                s[1] += end - t0
                s[2] += end - start
                s[3] += charge[base + j]
                s[4] += 1
                inside.add(base + j)
        for i, (name, start, end) in enumerate(step):
            if i not in inside:
                edges[name][0] += charge[i]
                edges[name][1] += 1
    rows = [(names[begin + j], *(v / 1e3 / s[4] for v in s[:4])) for j, s in sorted(sums.items())]
    edge_rows = [(name, total / 1e3 / len(steps), count / len(steps)) for name, (total, count) in edges.items()]
    return p, rows, sorted(edge_rows, key=lambda r: -r[1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv")
    ap.add_argument("--batch", type=int, help="the batch size to show (default: every row)")
    a = ap.parse_args()
    with open(a.csv, newline="") as f:
        steps = steps_of(list(csv.DictReader(f)), a.batch)
    if not steps:
        sys.exit(f"{a.csv}: no traced step of at least 8 kernels")
    p, rows, edges = reduce_layers(steps)
    print(f"{len(steps)} steps, a layer of {p} kernels; us from the layer's first kernel's start")
    print(f"{'start':>8} {'end':>8} {'duration':>9} {'adds':>7}  kernel [grid]")
    for name, start, end, duration, charge in rows:
        print(f"{start:8.2f} {end:8.2f} {duration:9.2f} {charge:7.2f}  {name}")
    print(f"{'':>8} {'':>8} {'a layer':>9} {sum(r[4] for r in rows):7.2f}")
    for name, charge, count in edges:
        print(f"outside the layers: {charge:7.2f} us a step, {count:g} a step  {name}")


if __name__ == "__main__":
    main()
