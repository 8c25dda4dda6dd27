"""tools/trace_layers.py (one layer of a traced decode step, kernel by kernel) on a hand-made
trace whose per-layer averages are worked out by hand below."""
import csv
import pathlib
import subprocess
import sys

import pytest

TOOLS = pathlib.Path(__file__).resolve().parents[2] / "tools"
sys.path.insert(0, str(TOOLS))
import trace_layers  # noqa: E402

HEADER = ["batch", "launch", "kernel", "grid_x", "grid_y", "grid_z", "block_x", "start_ns", "end_ns"]


def row(launch, name, grid, start_us, end_us, batch=1):
    return [batch, launch, name, grid, 1, 1, 256, int(start_us * 1000), int(end_us * 1000)]


def make_trace(path):
    """Two steps of embed, 8 layers of A (grid 4), B (grid 2), C (grid 4), then head; a layer
    starts every 10 us: A +0..+4, B +2..+7 (step 2: +2..+8), C +7..+10, head 81..85. Charges
    (what each end adds to the latest end): A 4, B 3 (step 2: 4), C 3 (step 2: 2), embed 1, head 4.
    A third launch of one kernel (sampling) is not a step."""
    rows = []
    for launch, b_end in ((1, 7), (2, 8)):
        t = 1000.0 * launch  # steps far apart on the clock
        rows.append(row(launch, "embed", 1, t, t + 1))
        for layer in range(8):
            base = t + 1 + 10 * layer
            rows += [row(launch, "A", 4, base, base + 4), row(launch, "B", 2, base + 2, base + b_end),
                     row(launch, "C", 4, base + 7, base + 10)]
        rows.append(row(launch, "head", 66, t + 81, t + 85))
    rows.append(row(3, "sampling", 1, 5000, 5002))
    rows.reverse()  # the records' order must not matter
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)


def test_per_position_averages_and_edges(tmp_path):
    path = tmp_path / "trace.csv"
    make_trace(path)
    with open(path, newline="") as f:
        steps = trace_layers.steps_of(list(csv.DictReader(f)), None)
    assert len(steps) == 2
    period, rows, edges = trace_layers.reduce_layers(steps)
    assert period == 3
    got = {name: values for name, *values in rows}
    assert list(got) == ["A [4x1x1]", "B [2x1x1]", "C [4x1x1]"]
    assert got["A [4x1x1]"] == pytest.approx([0.0, 4.0, 4.0, 4.0])
    assert got["B [2x1x1]"] == pytest.approx([2.0, 7.5, 5.5, 3.5])
    assert got["C [4x1x1]"] == pytest.approx([7.0, 10.0, 3.0, 2.5])
    assert [name for name, _, _ in edges] == ["head [66x1x1]", "embed [1x1x1]"]  # largest charge first
    assert [(charge, count) for _, charge, count in edges] == [pytest.approx((4.0, 1.0)), pytest.approx((1.0, 1.0))]


def test_command_line_prints_the_layer(tmp_path):
    path = tmp_path / "trace.csv"
    make_trace(path)
    out = subprocess.run([sys.executable, str(TOOLS / "trace_layers.py"), str(path), "--batch", "1"],
                         capture_output=True, text=True, check=True).stdout
    assert "2 steps, a layer of 3 kernels" in out
    assert "10.00" in out.splitlines()[4] and "C [4x1x1]" in out.splitlines()[4]
    missing = subprocess.run([sys.executable, str(TOOLS / "trace_layers.py"), str(path), "--batch", "16"],
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "no traced step" in missing.stderr


def test_a_step_without_repeating_layers_is_refused():
    step = [(f"k{i}", i * 1000, i * 1000 + 500) for i in range(12)]
    with pytest.raises(ValueError, match="no repeating layer"):
        trace_layers.reduce_layers([step])
