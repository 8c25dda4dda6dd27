"""The reference renderer: Python jinja2 set up exactly as Hugging Face transformers sets it up
for chat templates (transformers.utils.chat_template_utils._compile_jinja_template and
render_jinja_template), without needing transformers itself.
"""
import json
import os
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

SPECIAL_TOKEN_KEYS = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                      "cls_token", "mask_token"]


def _raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers replaces jinja's tojson (which escapes HTML) with plain json.dumps.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def _strftime_now(format):
    return datetime.now().strftime(format)


def make_environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


_ENV = make_environment()


def render_template(source, variables):
    """Renders a raw template; returns ("ok", text) or ("error", message)."""
    try:
        return "ok", _ENV.from_string(source).render(**variables)
    except Exception as e:  # noqa: BLE001 - any failure is a result to compare
        return "error", f"{type(e).__name__}: {e}"


def _token_text(token):
    if isinstance(token, str):
        return token
    if isinstance(token, dict) and isinstance(token.get("content"), str):
        return token["content"]
    return None


def special_tokens_map(config):
    """tokenizer.special_tokens_map as transformers builds it from tokenizer_config.json."""
    tokens = {}
    for key in SPECIAL_TOKEN_KEYS:
        text = _token_text(config.get(key))
        if text:
            tokens[key] = text
    extra = [t for t in (_token_text(x) for x in config.get("additional_special_tokens") or [])
             if t is not None]
    if extra:
        tokens["additional_special_tokens"] = extra
    if isinstance(config.get("extra_special_tokens"), dict):
        for key, value in config["extra_special_tokens"].items():
            text = _token_text(value)
            if text:
                tokens[key] = text
    return tokens


def load_chat_template(model_dir):
    with open(os.path.join(model_dir, "tokenizer_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    jinja_path = os.path.join(model_dir, "chat_template.jinja")
    if os.path.exists(jinja_path):
        with open(jinja_path, encoding="utf-8") as f:
            return f.read(), config
    template = config["chat_template"]
    if isinstance(template, list):
        template = next(t["template"] for t in template if t["name"] == "default")
    return template, config


def render_chat(model_dir, messages, tools=None, add_generation_prompt=False, kwargs=None):
    """apply_chat_template(messages, tools=tools, tokenize=False, ...); ("ok"|"error", text)."""
    source, config = load_chat_template(model_dir)
    template_kwargs = {**special_tokens_map(config), **(kwargs or {})}
    try:
        text = _ENV.from_string(source).render(messages=messages, tools=tools, documents=None,
                                               add_generation_prompt=add_generation_prompt,
                                               **template_kwargs)
        return "ok", text
    except Exception as e:  # noqa: BLE001
        return "error", f"{type(e).__name__}: {e}"
