"""Conversations for the real Qwen3 and Gemma3 chat templates: every case is rendered by both
Python jinja2 (reference_render.py) and fp4llm, and must match byte for byte (or both fail)."""

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
USER = {"role": "user", "content": "What is the capital of France?"}
ANSWER = {"role": "assistant", "content": "The capital of France is Paris."}
USER2 = {"role": "user", "content": "And of Germany?"}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city — «quoted» ünïcödé 天气",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": None},
                "days": {"type": "integer", "minimum": 1, "maximum": 14},
                "threshold": {"type": "number", "default": 0.5, "examples": [1.0, 2.25, 1e-7, 3e20]},
                "verbose": {"type": "boolean", "default": False},
            },
            "required": ["city"],
        },
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web.\nReturns \"snippets\" with <b>tags</b> & \\backslashes\\.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}},
                       "required": ["query"]},
    },
}
TOOLS = [WEATHER_TOOL, SEARCH_TOOL]


def tool_call(name, arguments, wrapped=True):
    call = {"name": name, "arguments": arguments}
    return {"type": "function", "id": "call_" + name, "function": call} if wrapped else call


def assistant_calls(*calls, content=""):
    return {"role": "assistant", "content": content, "tool_calls": list(calls)}


def tool_result(content, name="get_weather"):
    return {"role": "tool", "name": name, "content": content}


def qwen3_cases():
    weather_call = tool_call("get_weather", {"city": "Paris", "unit": "celsius", "days": 3})
    search_call = tool_call("search", '{"query": "Eiffel tower height"}')
    cases = {
        "single_user": dict(messages=[USER]),
        "single_user_gen": dict(messages=[USER], add_generation_prompt=True),
        "system_user_gen": dict(messages=[SYSTEM, USER], add_generation_prompt=True),
        "multi_turn": dict(messages=[SYSTEM, USER, ANSWER, USER2], add_generation_prompt=True),
        "thinking_off": dict(messages=[USER], add_generation_prompt=True,
                             kwargs={"enable_thinking": False}),
        "thinking_on": dict(messages=[SYSTEM, USER], add_generation_prompt=True,
                            kwargs={"enable_thinking": True}),
        "thinking_off_no_gen": dict(messages=[USER, ANSWER], kwargs={"enable_thinking": False}),
        "think_in_last_assistant": dict(messages=[USER, {
            "role": "assistant", "content": "<think>\nThe user asks about France.\n</think>\n\nParis."}]),
        "think_in_earlier_assistant": dict(messages=[USER, {
            "role": "assistant", "content": "<think>\nreasoning\n</think>\n\nParis."}, USER2],
            add_generation_prompt=True),
        "reasoning_content_field": dict(messages=[USER, {
            "role": "assistant", "content": "\n\nParis.", "reasoning_content": "\nFrance -> Paris\n"}]),
        "reasoning_content_none": dict(messages=[USER, {
            "role": "assistant", "content": "<think>x</think>Paris", "reasoning_content": None}]),
        "reasoning_content_history": dict(messages=[USER, {
            "role": "assistant", "content": "Paris.", "reasoning_content": "easy"}, USER2],
            add_generation_prompt=True),
        "tools_no_system": dict(messages=[USER], tools=TOOLS, add_generation_prompt=True),
        "tools_with_system": dict(messages=[SYSTEM, USER], tools=TOOLS, add_generation_prompt=True),
        "tool_call_dict_args": dict(messages=[
            USER, assistant_calls(weather_call), tool_result('{"temp": 21.5, "sky": "clear"}'),
            {"role": "assistant", "content": "It is 21.5 °C and clear."}], tools=TOOLS),
        "tool_call_string_args": dict(messages=[
            USER, assistant_calls(search_call, content="Let me search."),
            tool_result("330 m", "search")], tools=TOOLS, add_generation_prompt=True),
        "parallel_calls_consecutive_tools": dict(messages=[
            SYSTEM, USER, assistant_calls(weather_call, search_call,
                                          tool_call("get_weather", {"city": "Berlin"})),
            tool_result("sunny"), tool_result("330 m", "search"), tool_result("rainy")],
            tools=TOOLS, add_generation_prompt=True),
        "unwrapped_tool_call": dict(messages=[
            USER, assistant_calls(tool_call("search", {"query": "x"}, wrapped=False)),
            tool_result("none found", "search")], tools=TOOLS, add_generation_prompt=True),
        "multi_step_tools": dict(messages=[
            USER, assistant_calls(weather_call, content="<think>\nneed weather\n</think>\n\n"),
            tool_result("sunny"), assistant_calls(search_call), tool_result("330 m", "search")],
            tools=TOOLS, add_generation_prompt=True, kwargs={"enable_thinking": False}),
        "tool_call_then_answer_with_think": dict(messages=[
            USER, assistant_calls(weather_call), tool_result("sunny"),
            {"role": "assistant", "content": "<think>\nsunny means nice\n</think>\n\nIt is sunny."}],
            tools=TOOLS),
        "user_looks_like_tool_response": dict(messages=[
            USER, ANSWER, {"role": "user", "content": "<tool_response>\nfake\n</tool_response>"}],
            add_generation_prompt=True),
        "unicode": dict(messages=[
            {"role": "system", "content": "Réponds en français. 日本語も OK. مرحبا 🚀"},
            {"role": "user", "content": "Ça va ? 你好吗？ \u00a0\u3000 emoji 👩‍👩‍👧 and \U0001F600"},
            {"role": "assistant", "content": "Très bien ! 我很好。"}], add_generation_prompt=True),
        "jinja_like_content": dict(messages=[
            {"role": "user", "content": "Render {{ x }} and {% if y %}z{% endif %} {# c #} literally"},
            {"role": "assistant", "content": "{{ messages }} {%- raw %}"}], add_generation_prompt=True),
        "special_token_strings": dict(messages=[
            {"role": "user", "content": "<|im_start|>system\nfake<|im_end|> <|endoftext|> <think>"},
            {"role": "assistant", "content": "</think> <tool_call>{}</tool_call>"}]),
        "system_not_first": dict(messages=[USER, ANSWER, {"role": "system", "content": "Be brief."},
                                           USER2], add_generation_prompt=True),
        "whitespace_content": dict(messages=[
            {"role": "user", "content": "\n\n  spaced  \n"},
            {"role": "assistant", "content": "\n\n<think>\n\n\nthoughts\n\n</think>\n\n\nanswer\n"}]),
        "extra_message_keys": dict(messages=[
            {"role": "user", "content": "hi", "name": "alice", "metadata": {"a": 1}}],
            add_generation_prompt=True),
        "null_content_with_tool_calls": dict(messages=[
            USER, {"role": "assistant", "content": None, "tool_calls": [weather_call]}], tools=TOOLS),
        "empty_messages": dict(messages=[], add_generation_prompt=True),
        "kwargs_override_token": dict(messages=[USER], add_generation_prompt=True,
                                      kwargs={"eos_token": "<custom>", "enable_thinking": True}),
    }
    return cases


def gemma3_cases():
    text = lambda s: {"type": "text", "text": s}  # noqa: E731
    cases = {
        "single_user": dict(messages=[USER]),
        "single_user_gen": dict(messages=[USER], add_generation_prompt=True),
        "system_user_gen": dict(messages=[SYSTEM, USER], add_generation_prompt=True),
        "system_as_list": dict(messages=[{"role": "system", "content": [text("Be terse.")]}, USER],
                               add_generation_prompt=True),
        "user_content_list": dict(messages=[{"role": "user", "content": [
            text("  Describe  "), {"type": "image", "url": "x.png"}, text("this image.\n")]}],
            add_generation_prompt=True),
        "multi_turn": dict(messages=[SYSTEM, USER, ANSWER, USER2], add_generation_prompt=True),
        "long_conversation": dict(messages=[
            {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " + "x" * i}
            for i in range(11)], add_generation_prompt=True),
        "assistant_last_no_gen": dict(messages=[USER, ANSWER]),
        "trim_unicode_whitespace": dict(messages=[
            {"role": "user", "content": "\u3000\u00a0 hello \t\n\u2003"},
            {"role": "assistant", "content": "\n  world \u200b"}], add_generation_prompt=True),
        "unicode": dict(messages=[
            {"role": "user", "content": "Привет! こんにちは 🌍 ÀÉÎÕÜ ß ﬁ"},
            {"role": "assistant", "content": "مرحبا — שלום"}], add_generation_prompt=True),
        "jinja_like_content": dict(messages=[
            {"role": "user", "content": "{{ bos_token }} {% raw %} {#"}], add_generation_prompt=True),
        "special_token_strings": dict(messages=[
            {"role": "user", "content": "<start_of_turn>model\n<end_of_turn><bos>"}],
            add_generation_prompt=True),
        "error_two_users": dict(messages=[USER, USER2], add_generation_prompt=True),
        "error_assistant_first": dict(messages=[ANSWER, USER]),
        "error_system_then_assistant": dict(messages=[SYSTEM, ANSWER]),
        "invalid_content_int": dict(messages=[{"role": "user", "content": 5}]),
        "invalid_content_none": dict(messages=[{"role": "user", "content": None}]),
        "content_dict": dict(messages=[{"role": "user", "content": {"type": "text", "text": "t"}}],
                             add_generation_prompt=True),
        "multiple_text_items": dict(messages=[
            {"role": "user", "content": [text("one"), text(" two "), text("three")]},
            {"role": "assistant", "content": [text("ok")]}], add_generation_prompt=True),
        "tools_ignored": dict(messages=[USER], tools=TOOLS, add_generation_prompt=True),
        "thinking_kwarg_ignored": dict(messages=[USER], add_generation_prompt=True,
                                       kwargs={"enable_thinking": False}),
        "system_only": dict(messages=[SYSTEM], add_generation_prompt=True),
        "empty_messages": dict(messages=[], add_generation_prompt=True),
        "tool_role": dict(messages=[USER, {"role": "tool", "content": "result"}]),
        "system_list_with_image_first": dict(messages=[
            {"role": "system", "content": [{"type": "image"}, text("x")]}, USER]),
        "bos_override": dict(messages=[USER], kwargs={"bos_token": "[BOS]"}),
    }
    return cases
