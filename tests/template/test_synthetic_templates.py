"""Small synthetic templates (whitespace control, loops, filters, tests, slicing, tojson, printing,
errors) and random whitespace-control templates: fp4llm against Python jinja2, in one batch."""
import reference_render
import synthetic_cases
from conftest import compare, run_batch


def check_all(fp4llm_bin, cases, tmp_path):
    results = run_batch(fp4llm_bin, cases, tmp_path)
    failures = []
    for i, (case, ours) in enumerate(zip(cases, results)):
        reference = reference_render.render_template(case["template"], case["variables"])
        problem = compare(f"case {i} {case['template']!r}", reference, ours)
        if problem:
            failures.append(problem)
    assert not failures, f"{len(failures)} of {len(cases)} differ:\n" + "\n".join(failures)


def test_synthetic_templates_match_jinja2(fp4llm_bin, tmp_path):
    check_all(fp4llm_bin, synthetic_cases.synthetic_cases(), tmp_path)


def test_random_whitespace_templates_match_jinja2(fp4llm_bin, tmp_path):
    check_all(fp4llm_bin, synthetic_cases.random_whitespace_cases(), tmp_path)


def test_address_printing_is_refused(fp4llm_bin, tmp_path):
    cases = [{"template": t, "variables": synthetic_cases.V} for t in synthetic_cases.ADDRESS_PRINTING]
    for case, ours in zip(cases, run_batch(fp4llm_bin, cases, tmp_path)):
        status, text = reference_render.render_template(case["template"], case["variables"])
        assert status == "ok" and " at 0x" in text, (case, text)
        assert "error" in ours and "memory address" in ours["error"], (case, ours)
