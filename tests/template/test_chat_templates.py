"""The real Qwen3 and Gemma3 chat templates, rendered by fp4llm and by Python jinja2 set up as
transformers sets it up, must agree byte for byte (and fail together on invalid input)."""
import os
import subprocess

import chat_cases
import reference_render
from conftest import compare, run_batch

# Cases where the template itself raises: fp4llm's error must carry the template's message.
EXPECTED_MESSAGES = {
    ("gemma3", "error_two_users"): "Conversation roles must alternate user/assistant/user/assistant/...",
    ("gemma3", "error_assistant_first"): "Conversation roles must alternate",
    ("gemma3", "error_system_then_assistant"): "Conversation roles must alternate",
    ("gemma3", "invalid_content_int"): "Invalid content type",
    ("gemma3", "invalid_content_none"): "Invalid content type",
}


def all_cases(tokenizers_dir):
    for family, cases in (("qwen3", chat_cases.qwen3_cases()), ("gemma3", chat_cases.gemma3_cases())):
        model_dir = os.path.join(tokenizers_dir, family)
        for name, case in cases.items():
            yield family, name, dict(model_dir=model_dir, **case)


def test_case_counts():
    assert len(chat_cases.qwen3_cases()) >= 20
    assert len(chat_cases.gemma3_cases()) >= 20


def test_real_templates_match_jinja2(fp4llm_bin, tokenizers_dir, tmp_path):
    cases = list(all_cases(tokenizers_dir))
    results = run_batch(fp4llm_bin, [c for _, _, c in cases], tmp_path)
    failures = []
    for (family, name, case), ours in zip(cases, results):
        reference = reference_render.render_chat(case["model_dir"], case["messages"], case.get("tools"),
                                                 case.get("add_generation_prompt", False),
                                                 case.get("kwargs"))
        problem = compare(f"{family}/{name}", reference, ours)
        if problem:
            failures.append(problem)
        expected_message = EXPECTED_MESSAGES.get((family, name))
        if expected_message:
            assert reference[0] == "error" and expected_message in reference[1], reference
            if expected_message not in ours.get("error", ""):
                failures.append(f"{family}/{name}: error lacks the template's message: {ours}")
    assert not failures, "\n".join(failures)


def test_cli_prints_prompt_exactly(fp4llm_bin, tokenizers_dir, tmp_path):
    messages = tmp_path / "messages.json"
    messages.write_text('{"messages": [{"role": "user", "content": "Hi"}]}', encoding="utf-8")
    tools = tmp_path / "tools.json"
    tools.write_text('[{"type": "function", "function": {"name": "f", "parameters": {}}}]')
    model_dir = os.path.join(tokenizers_dir, "qwen3")
    proc = subprocess.run([fp4llm_bin, "chat-template", model_dir, "--messages-file", str(messages),
                           "--tools-file", str(tools), "--add-generation-prompt",
                           "--enable-thinking", "false"], capture_output=True, check=True)
    status, expected = reference_render.render_chat(
        model_dir, [{"role": "user", "content": "Hi"}],
        tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        add_generation_prompt=True, kwargs={"enable_thinking": False})
    assert status == "ok"
    assert proc.stdout.decode("utf-8") == expected
    assert proc.stdout.endswith(b"</think>\n\n")


def test_cli_reports_template_exception(fp4llm_bin, tokenizers_dir, tmp_path):
    messages = tmp_path / "messages.json"
    messages.write_text('[{"role": "assistant", "content": "Hi"}]', encoding="utf-8")
    proc = subprocess.run([fp4llm_bin, "chat-template", os.path.join(tokenizers_dir, "gemma3"),
                           "--messages-file", str(messages)], capture_output=True)
    assert proc.returncode != 0
    assert b"Conversation roles must alternate" in proc.stderr
    assert proc.stdout == b""
