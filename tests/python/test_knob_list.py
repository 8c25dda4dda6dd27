"""The kernel knobs the sources read, the list `fp4llm bench` checks environment variables against
(src/util/tuning_knob.hpp, kKernelKnobs) and the table of docs/PERFORMANCE.md must name the same
variables: a knob missing from the list would be reported as unknown, one missing from the table
would be undocumented, and a retired one left in either would pass for a measured variant."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def knobs_read_by_the_sources():
    found = set()
    for path in (ROOT / "src").rglob("*"):
        if path.suffix in {".cpp", ".hpp", ".cu", ".cuh"}:
            found |= set(re.findall(r'knob_(?:int|is|on|flag|text|pair)\(\s*"(FP4LLM_\w+)"', path.read_text()))
    return found


def knobs_listed():
    text = (ROOT / "src/util/tuning_knob.hpp").read_text()
    body = re.search(r"kKernelKnobs\[\] = \{(.*?)\};", text, re.S)
    assert body, "kKernelKnobs not found in tuning_knob.hpp"
    return set(re.findall(r'"(FP4LLM_\w+)"', body.group(1)))


def knobs_documented():
    text = (ROOT / "docs/PERFORMANCE.md").read_text()
    section = re.search(r"## Kernel knobs.*?\n(.*?)\n## ", text, re.S)
    assert section, "the knob section of docs/PERFORMANCE.md is missing"
    table = [line for line in section.group(1).splitlines() if line.startswith("| `")]
    return {re.match(r"\| `(FP4LLM_\w+)`", line).group(1) for line in table}


def test_the_sources_read_at_least_five_knobs():
    assert len(knobs_read_by_the_sources()) >= 5


def test_the_bench_list_names_exactly_the_knobs_the_sources_read():
    read, listed = knobs_read_by_the_sources(), knobs_listed()
    assert read - listed == set(), f"read but not in kKernelKnobs: {sorted(read - listed)}"
    assert listed - read == set(), f"in kKernelKnobs but read nowhere: {sorted(listed - read)}"


def test_the_performance_table_documents_exactly_those_knobs():
    read, documented = knobs_read_by_the_sources(), knobs_documented()
    assert read - documented == set(), f"read but not in docs/PERFORMANCE.md: {sorted(read - documented)}"
    assert documented - read == set(), f"documented but read nowhere: {sorted(documented - read)}"
