"""Every bad input gets an OpenAI-style error body with the right status, and the server stays
healthy: malformed JSON, fields of the wrong type, absurd max_tokens, a prompt over
--max-model-len (both lengths named), unknown model (404), wrong API key (401), oversized body
(413), unknown routes, and a full queue (429)."""
import http.client
import json
import os
import threading

import openai
import pytest

from conftest import API_KEY, MAX_MODEL_LEN, MODEL_NAME, Server, render_prompt_tokens

OK_MESSAGES = [{"role": "user", "content": "hi"}]


def raw_post(server, path, body, headers=None):
    """POST with the standard library: (status, parsed JSON body)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    h = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}
    h.update(headers or {})
    conn.request("POST", path, body=body if isinstance(body, (bytes, str)) else json.dumps(body), headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, json.loads(data)


def assert_openai_error(status, body, expected_status, *fragments):
    assert status == expected_status, body
    err = body["error"]
    assert set(err) >= {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    for f in fragments:
        assert f in err["message"], err["message"]


@pytest.mark.parametrize("body, fragment", [
    (b"{not json", "not valid JSON"),
    (b"", "empty"),
    (b"[1, 2]", "JSON object"),
    (b"[" * 100 + b"]" * 100, "nests deeper"),
    (b'{"max_tokens": 1e99999}', "not valid JSON"),  # found by server_request_fuzz
])
def test_malformed_bodies(server, body, fragment):
    assert_openai_error(*raw_post(server, "/v1/chat/completions", body), 400, fragment)
    assert_openai_error(*raw_post(server, "/v1/completions", body), 400, fragment)


@pytest.mark.parametrize("fields, param", [
    ({"temperature": "hot"}, "temperature"),
    ({"temperature": -1}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
    ({"max_tokens": "ten"}, "max_tokens"),
    ({"max_tokens": 2.5}, "max_tokens"),
    ({"max_tokens": -5}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": 10 ** 30}, "max_tokens"),
    ({"max_tokens": 10 ** 12}, "max_tokens"),
    ({"max_completion_tokens": -1}, "max_tokens"),
    ({"n": 0}, "n"),
    ({"n": 1000}, "n"),
    ({"stop": 5}, "stop"),
    ({"stop": ["a", 3]}, "stop"),
    ({"seed": "abc"}, "seed"),
    ({"stream": "yes"}, "stream"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"top_logprobs": 3}, "top_logprobs"),
    ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ({"presence_penalty": 3}, "presence_penalty"),
    ({"top_k": "many"}, "top_k"),
    ({"logit_bias": {"11": 5}}, "logit_bias"),
    ({"messages": "hello"}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages"),
    ({"messages": [{"content": "hi"}]}, "messages"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, "messages"),
    ({"messages": [{"role": "user", "content": 42}]}, "messages"),
    ({"chat_template_kwargs": 3}, "chat_template_kwargs"),
])
def test_bad_chat_fields(server, fields, param):
    body = {"model": MODEL_NAME, "messages": OK_MESSAGES, "max_tokens": 4}
    body.update(fields)
    status, err = raw_post(server, "/v1/chat/completions", body)
    assert_openai_error(status, err, 400)
    assert err["error"]["param"] == param
    assert err["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("fields", [
    {"prompt": 5}, {"prompt": []}, {"prompt": [1, "a"]}, {"prompt": [-1]}, {"prompt": [10 ** 9]},
    {"logprobs": 50}, {"echo": True, "logprobs": 1}, {"suffix": "x"}, {},
])
def test_bad_completion_fields(server, fields):
    body = {"model": MODEL_NAME, "max_tokens": 4}
    body.update(fields)
    assert_openai_error(*raw_post(server, "/v1/completions", body), 400)


def test_the_openai_client_sees_bad_request(server):
    with pytest.raises(openai.BadRequestError):
        server.client().chat.completions.create(model=MODEL_NAME, messages=OK_MESSAGES, max_tokens=-1)


def test_prompt_longer_than_max_model_len_names_both_lengths(server, tokenizer_dir):
    messages = [{"role": "user", "content": "word " * 1500}]
    _, ids = render_prompt_tokens(tokenizer_dir, messages)
    assert len(ids) > MAX_MODEL_LEN
    with pytest.raises(openai.BadRequestError) as e:
        server.client().chat.completions.create(model=MODEL_NAME, messages=messages, max_tokens=4)
    assert str(MAX_MODEL_LEN) in str(e.value) and str(len(ids)) in str(e.value)
    # prompt that fits but leaves too little room for max_tokens: both lengths again
    short = [{"role": "user", "content": "hi"}]
    _, short_ids = render_prompt_tokens(tokenizer_dir, short)
    status, err = raw_post(server, "/v1/chat/completions",
                           {"model": MODEL_NAME, "messages": short, "max_tokens": MAX_MODEL_LEN})
    assert_openai_error(status, err, 400, str(MAX_MODEL_LEN), str(len(short_ids)))


def test_unknown_model_is_404(server):
    with pytest.raises(openai.NotFoundError) as e:
        server.client().chat.completions.create(model="gpt-17", messages=OK_MESSAGES, max_tokens=4)
    assert e.value.status_code == 404 and "gpt-17" in str(e.value)
    status, err = raw_post(server, "/v1/completions", {"model": "gpt-17", "prompt": "x", "max_tokens": 2})
    assert_openai_error(status, err, 404)
    assert err["error"]["code"] == "model_not_found"


def test_wrong_or_missing_api_key_is_401(server):
    with pytest.raises(openai.AuthenticationError):
        server.client(api_key="wrong").chat.completions.create(model=MODEL_NAME, messages=OK_MESSAGES, max_tokens=4)
    with pytest.raises(openai.AuthenticationError):
        server.client(api_key="wrong").models.list()
    status, err = raw_post(server, "/v1/completions", {"prompt": "x"}, headers={"Authorization": ""})
    assert_openai_error(status, err, 401)
    # health and metrics stay open, as in vLLM
    assert server.get("/health")[0] == 200


def test_body_over_the_limit_is_413(server):
    body = json.dumps({"model": MODEL_NAME, "messages": [{"role": "user", "content": "a" * (2 << 20)}]})
    assert_openai_error(*raw_post(server, "/v1/chat/completions", body), 413, "limit")


def test_unknown_route_and_method(server):
    assert_openai_error(*raw_post(server, "/v1/embeddings", {"input": "x"}), 404)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", "/v1/chat/completions")
    r = conn.getresponse()
    assert r.status in (404, 405) and "error" in json.loads(r.read())


def test_server_survives_everything(server):
    r = server.client().chat.completions.create(model=MODEL_NAME, messages=OK_MESSAGES, max_tokens=3)
    assert r.usage.completion_tokens == 3
    m = server.wait_idle()
    assert m["fp4llm:kv_cache_blocks_used"] == 0


def test_full_queue_answers_429(model_dir):
    """One sequence at a time and one waiting: of 6 simultaneous long requests some must be
    refused with 429, the others complete. On a GPU the tiny model needs far longer answers to
    still be busy when the last request arrives."""
    tokens = 2000 if os.environ.get("FP4LLM_TEST_DEVICE") == "cuda" else 60
    s = Server(model_dir, "--max-num-seqs", 1, "--max-queued-requests", 1, "--kv-cache-memory", "4MiB",
               "--max-model-len", max(256, tokens + 64))
    try:
        results = []

        def one():
            try:
                r = s.client().completions.create(model=MODEL_NAME, prompt="count", max_tokens=tokens,
                                                  temperature=0, extra_body={"ignore_eos": True})
                results.append(r.usage.completion_tokens)
            except openai.RateLimitError as e:
                results.append(e.status_code)

        threads = [threading.Thread(target=one) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert 429 in results, results
        assert tokens in results, results
        assert all(r in (tokens, 429) for r in results), results
        assert s.wait_idle()["fp4llm:kv_cache_blocks_used"] == 0
    finally:
        s.stop()
