"""`fp4llm run model.gguf` with no --tokenizer: the tokenizer and the chat template come from the
GGUF's metadata. A tiny random qwen3moe GGUF gets a byte-level "gpt2" vocabulary and a ChatML
template; the prompt length fp4llm reports must equal what jinja2 renders and Hugging Face
`tokenizers` encodes from the same vocabulary."""
import re

import gguf
import jinja2
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

from helpers import run
from test_fused_experts import moe_config, per_expert_tensors, write_gguf
from test_cpu_forward import VOCAB, write_model

TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
SPECIALS = ["<|im_start|>", "<|im_end|>"]


def byte_level_tokens():
    return sorted(pre_tokenizers.ByteLevel.alphabet())[:VOCAB - 3] + ["he"] + SPECIALS


def add_tokenizer(w):
    tokens = byte_level_tokens()
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.NORMAL] * (len(tokens) - 2) + [gguf.TokenType.CONTROL] * 2)
    w.add_token_merges(["h e"])
    w.add_eos_token_id(tokens.index("<|im_end|>"))
    w.add_chat_template(TEMPLATE)


def hf_tokenizer():
    tokens = byte_level_tokens()
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens[:-2])}, merges=[("h", "e")]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    assert [tok.token_to_id(t) for t in SPECIALS] == [VOCAB - 2, VOCAB - 1]
    return tok


def test_run_takes_tokenizer_and_chat_template_from_the_gguf(tmp_path):
    c = moe_config()
    write_model(tmp_path / "per_expert", c, seed=5)
    write_gguf(per_expert_tensors(tmp_path / "per_expert"), c, tmp_path / "chat.gguf", add_tokenizer)
    prompt = "Hi there"
    text = jinja2.Template(TEMPLATE).render(messages=[{"role": "user", "content": prompt}],
                                            add_generation_prompt=True)
    want = len(hf_tokenizer().encode(text).ids)
    p = run("run", tmp_path / "chat.gguf", prompt, "--max-tokens", "2", "--temperature", "0")
    got = re.search(r"\[(\d+) prompt tokens", p.stderr)
    assert got and int(got.group(1)) == want, p.stderr
    plain = run("run", tmp_path / "chat.gguf", prompt, "--no-chat", "--max-tokens", "2", "--temperature", "0")
    want_plain = len(hf_tokenizer().encode(prompt).ids)
    assert f"[{want_plain} prompt tokens" in plain.stderr, plain.stderr
