"""`fp4llm serve` through the official `openai` client: chat and completions, streaming and not,
stop strings, seeds, n, logprobs and usage. Expected values come from outside the server: token
counts from jinja2 + `tokenizers`, stop-string cuts computed here from an unstopped output,
log-probabilities checked against their own definition."""
import math

import openai

import pytest

from conftest import MAX_MODEL_LEN, MODEL_NAME, encode, render_prompt_tokens

MESSAGES = [{"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name three prime numbers, please."}]


def chat(client, **kw):
    args = dict(model=MODEL_NAME, messages=MESSAGES, max_tokens=12, temperature=0)
    args.update(kw)
    return client.chat.completions.create(**args)


def stream_text(stream):
    """Concatenated content of a streamed chat, its finish reasons, and the chunks."""
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    return text, reasons, chunks


def test_models_and_health(server):
    models = server.client().models.list()
    assert [m.id for m in models.data] == [MODEL_NAME]
    assert server.get("/health")[0] == 200


def test_chat_usage_counts_match_jinja2_and_tokenizers(server, tokenizer_dir):
    r = chat(server.client())
    _, ids = render_prompt_tokens(tokenizer_dir, MESSAGES)
    assert r.usage.prompt_tokens == len(ids)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 12
    assert r.usage.total_tokens == len(ids) + 12
    assert r.model == MODEL_NAME and r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"


def test_enable_thinking_false_reaches_the_template(server, tokenizer_dir):
    r = chat(server.client(), extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    text, ids = render_prompt_tokens(tokenizer_dir, MESSAGES, enable_thinking=False)
    assert "<think>\n\n</think>" in text
    assert r.usage.prompt_tokens == len(ids)
    assert r.usage.prompt_tokens != len(render_prompt_tokens(tokenizer_dir, MESSAGES)[1])


def test_streaming_equals_non_streaming(server):
    c = server.client()
    full = chat(c, max_tokens=20).choices[0].message.content
    text, reasons, chunks = stream_text(chat(c, max_tokens=20, stream=True))
    assert text == full
    assert reasons == ["length"]
    first = chunks[0].choices[0]
    assert first.delta.role == "assistant" and first.finish_reason is None
    assert all(ch.object == "chat.completion.chunk" and ch.id == chunks[0].id for ch in chunks)


def test_stream_include_usage(server, tokenizer_dir):
    chunks = list(chat(server.client(), max_tokens=7, stream=True, stream_options={"include_usage": True}))
    assert all(ch.usage is None for ch in chunks[:-1])
    last = chunks[-1]
    assert last.choices == []
    _, ids = render_prompt_tokens(tokenizer_dir, MESSAGES)
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (len(ids), 7)


def test_completion_and_its_stream(server, tokenizer_dir):
    c = server.client()
    prompt = "The quick brown fox"
    r = c.completions.create(model=MODEL_NAME, prompt=prompt, max_tokens=10, temperature=0)
    assert r.object == "text_completion"
    assert r.usage.prompt_tokens == len(encode(tokenizer_dir, prompt))
    assert r.usage.completion_tokens == 10 and r.choices[0].finish_reason == "length"
    chunks = list(c.completions.create(model=MODEL_NAME, prompt=prompt, max_tokens=10, temperature=0, stream=True))
    assert "".join(ch.choices[0].text for ch in chunks) == r.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "length"


def test_completion_token_id_prompts_and_batches(server, tokenizer_dir):
    c = server.client()
    ids = encode(tokenizer_dir, "Once upon a time")
    by_text = c.completions.create(model=MODEL_NAME, prompt="Once upon a time", max_tokens=6, temperature=0)
    by_ids = c.completions.create(model=MODEL_NAME, prompt=ids, max_tokens=6, temperature=0)
    assert by_ids.choices[0].text == by_text.choices[0].text
    batch = c.completions.create(model=MODEL_NAME, prompt=["Once upon a time", "Hello"], max_tokens=6,
                                 temperature=0, n=2)
    assert [ch.index for ch in batch.choices] == [0, 1, 2, 3]
    assert batch.choices[0].text == batch.choices[1].text == by_text.choices[0].text
    assert batch.usage.prompt_tokens == len(ids) + len(encode(tokenizer_dir, "Hello"))
    assert batch.usage.completion_tokens == 4 * 6
    # One prompt of more token ids than a request may hold prompts (64): still one prompt.
    long_ids = (ids * 30)[:100]
    one = c.completions.create(model=MODEL_NAME, prompt=long_ids, max_tokens=2, temperature=0)
    assert len(one.choices) == 1 and one.usage.prompt_tokens == 100
    with pytest.raises(openai.BadRequestError, match="more than 64 prompts"):
        c.completions.create(model=MODEL_NAME, prompt=["Hello"] * 65, max_tokens=1)


def test_stop_string_cuts_where_python_finds_it(server):
    c = server.client()
    full = chat(c, max_tokens=40).choices[0].message.content
    assert len(full) > 12
    stop = full[8:12]
    cut = full[:full.index(stop)]
    r = chat(c, max_tokens=40, stop=[stop])
    assert r.choices[0].message.content == cut
    assert r.choices[0].finish_reason == "stop"
    text, reasons, _ = stream_text(chat(c, max_tokens=40, stop=stop, stream=True))
    assert text == cut and reasons == ["stop"]
    # a stop string that never appears changes nothing
    r = chat(c, max_tokens=40, stop=["\x01never\x02"])
    assert r.choices[0].message.content == full and r.choices[0].finish_reason == "length"


def test_seed_reproduces_and_differs(server):
    c = server.client()
    kw = dict(max_tokens=10, temperature=1.0)
    a = chat(c, seed=1234, **kw).choices[0].message.content
    b = chat(c, seed=1234, **kw).choices[0].message.content
    d = chat(c, seed=4321, **kw).choices[0].message.content
    assert a == b
    assert a != d
    streamed, _, _ = stream_text(chat(c, seed=1234, stream=True, **kw))
    assert streamed == a


def test_n_choices_with_seed(server):
    c = server.client()
    # ignore_eos: every choice runs to max_tokens whatever the draws, so the count is exact.
    r = chat(c, n=3, seed=7, max_tokens=8, temperature=1.0, extra_body={"ignore_eos": True})
    texts = [ch.message.content for ch in r.choices]
    assert [ch.index for ch in r.choices] == [0, 1, 2]
    assert len(set(texts)) == 3  # choice i samples with seed + i
    assert r.usage.completion_tokens == 3 * 8
    # choice 1 of seed 7 is choice 0 of seed 8 (vLLM's rule), the same request alone
    alone = chat(c, n=1, seed=8, max_tokens=8, temperature=1.0, extra_body={"ignore_eos": True}).choices[0].message.content
    assert alone == texts[1]
    greedy = chat(c, n=3, max_tokens=4)
    assert len({ch.message.content for ch in greedy.choices}) == 1


def test_logprobs_are_log_probabilities(server):
    r = chat(server.client(), max_tokens=6, logprobs=True, top_logprobs=5)
    items = r.choices[0].logprobs.content
    assert len(items) == 6
    assert "".join(i.token for i in items) == r.choices[0].message.content
    for i in items:
        tops = [t.logprob for t in i.top_logprobs]
        assert len(tops) == 5 and tops == sorted(tops, reverse=True)
        assert all(t <= 0 for t in tops) and sum(math.exp(t) for t in tops) <= 1 + 1e-5
        # greedy: the chosen token is the most likely one
        assert i.token == i.top_logprobs[0].token and i.logprob == pytest.approx(tops[0])
        assert bytes(i.bytes) == i.token.encode()


def test_completion_logprobs(server):
    r = server.client().completions.create(model=MODEL_NAME, prompt="abc", max_tokens=4, temperature=0, logprobs=3)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 4
    assert lp.text_offset[0] == 0 and lp.text_offset[1] == len(lp.tokens[0])
    assert all(len(t) == 3 for t in lp.top_logprobs)


def test_max_tokens_defaults_to_the_model_length(server, tokenizer_dir):
    r = server.client().completions.create(model=MODEL_NAME, prompt="x " * 1000, temperature=0,
                                           extra_body={"ignore_eos": True})
    n = len(encode(tokenizer_dir, "x " * 1000))
    assert r.usage.completion_tokens == MAX_MODEL_LEN - n
    assert r.choices[0].finish_reason == "length"


def test_stop_token_ids(server, tokenizer_dir):
    c = server.client()
    r = c.completions.create(model=MODEL_NAME, prompt="Hello", max_tokens=8, temperature=0, logprobs=0)
    tokens = r.choices[0].logprobs.tokens
    assert tokens[2] not in tokens[:2]
    ids = encode(tokenizer_dir, tokens[2])
    assert len(ids) == 1, (tokens[2], ids)
    s = c.completions.create(model=MODEL_NAME, prompt="Hello", max_tokens=8, temperature=0,
                             extra_body={"stop_token_ids": ids})
    assert s.choices[0].text == "".join(tokens[:2])  # the stop token itself has no text
    assert s.choices[0].finish_reason == "stop" and s.usage.completion_tokens == 3


def test_no_blocks_leak_after_all_of_the_above(server):
    m = server.wait_idle()
    assert m["fp4llm:kv_cache_blocks_used"] == 0
    assert m["fp4llm:generation_tokens_total"] > 0
