"""The CPU reference backend against a float64 numpy forward pass written here from the
transformers modeling files (FORMATS.md), on small random models of each architecture. Both
sides use the same dequantized NVFP4 weights and round K/V as the engine's cache does, so they
compute the same function; the tolerance covers float32 arithmetic only. The formulas are checked
with float32 activations into the products (CpuBackend::set_bf16_products(false)), where
float32 and float64 differ by float32's noise; the engine's default, BF16 activations into every
product as the GPU holds them, is checked separately against the same reference with those
roundings, with a bound for values that round to the other BF16 neighbour."""
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import TOOLS, bf16_array, read_safetensors, run, save_tensors, write_random_model
from nvfp4_reference import (bf16_to_f32, dequantize_nvfp4, e4m3_decode, e4m3_encode, f32_to_bf16,
                              quantize_nvfp4)

H, HEADS, KV, D, VOCAB = 64, 4, 2, 16, 256


def config(family):
    base = {"hidden_size": H, "num_attention_heads": HEADS, "num_key_value_heads": KV,
            "head_dim": D, "vocab_size": VOCAB, "rms_norm_eps": 1e-6, "max_position_embeddings": 512}
    if family == "qwen3":
        return dict(base, architectures=["Qwen3ForCausalLM"], num_hidden_layers=2,
                    intermediate_size=96, rope_theta=1e6, tie_word_embeddings=False)
    if family == "qwen3_moe":
        return dict(base, architectures=["Qwen3MoeForCausalLM"], num_hidden_layers=3,
                    intermediate_size=96, moe_intermediate_size=32, num_experts=8,
                    num_experts_per_tok=3, norm_topk_prob=True, mlp_only_layers=[0],
                    decoder_sparse_step=1, rope_theta=1e6, tie_word_embeddings=True)
    return dict(base, architectures=["Gemma3ForCausalLM"], num_hidden_layers=4,
                intermediate_size=96, sliding_window=8, query_pre_attn_scalar=20,
                layer_types=["sliding_attention", "sliding_attention", "full_attention",
                             "sliding_attention"],
                rope_theta=1e6, rope_local_base_freq=1e4,
                rope_scaling={"rope_type": "linear", "factor": 4.0},
                final_logit_softcapping=20.0, hidden_activation="gelu_pytorch_tanh")


def shapes(c):
    fam = c["architectures"][0]
    s = {"model.embed_tokens.weight": (VOCAB, H), "model.norm.weight": (H,)}
    if not c.get("tie_word_embeddings", fam.startswith("Gemma")):
        s["lm_head.weight"] = (VOCAB, H)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        s.update({p + "self_attn.q_proj.weight": (HEADS * D, H), p + "self_attn.k_proj.weight": (KV * D, H),
                  p + "self_attn.v_proj.weight": (KV * D, H), p + "self_attn.o_proj.weight": (H, HEADS * D),
                  p + "self_attn.q_norm.weight": (D,), p + "self_attn.k_norm.weight": (D,),
                  p + "input_layernorm.weight": (H,), p + "post_attention_layernorm.weight": (H,)})
        if fam.startswith("Gemma"):
            s.update({p + "pre_feedforward_layernorm.weight": (H,), p + "post_feedforward_layernorm.weight": (H,)})
        if fam == "Qwen3MoeForCausalLM" and i not in c["mlp_only_layers"]:
            s[p + "mlp.gate.weight"] = (c["num_experts"], H)
            for e in range(c["num_experts"]):
                for n, shp in (("gate_proj", (32, H)), ("up_proj", (32, H)), ("down_proj", (H, 32))):
                    s[f"{p}mlp.experts.{e}.{n}.weight"] = shp
        else:
            inter = c["intermediate_size"]
            s.update({p + "mlp.gate_proj.weight": (inter, H), p + "mlp.up_proj.weight": (inter, H),
                      p + "mlp.down_proj.weight": (H, inter)})
    return s


def write_model(folder, c, seed):
    write_random_model(folder, c, shapes(c), seed)


def load_weights(folder):
    """Dequantized float64 weights of an fp4llm-quantized (ModelOpt layout) folder."""
    raw, _ = read_safetensors(folder / "model.safetensors")
    w = {}
    for k, (dt, v) in raw.items():
        if k.endswith((".weight_scale", ".weight_scale_2")):
            continue
        if dt == "U8":
            w[k] = dequantize_nvfp4(v, raw[k + "_scale"][1], np.float32(raw[k + "_scale_2"][1])).astype(np.float64)
        else:
            w[k] = (v.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return w


def round_cache(x, kv):
    x = x.astype(np.float32)
    if kv == "bf16":
        return (f32_to_bf16(x).astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return e4m3_decode(e4m3_encode(x)).astype(np.float64)  # scale 1.0: no k_scale in checkpoint


def fp8_row_scales(folder):
    """Per NVFP4 weight: each row's FP8 scale for the FP8 prefill products, 6 x its largest block
    scale x the global scale / 448 in float32 (the engine's rule), from the checkpoint's own
    scale tensors."""
    raw, _ = read_safetensors(folder / "model.safetensors")
    out = {}
    for k, (dt, _) in raw.items():
        if dt == "U8":
            largest = e4m3_decode(raw[k + "_scale"][1]).max(-1)
            scale = (np.float32(6) * largest * np.float32(raw[k + "_scale_2"][1])) / np.float32(448)
            out[k] = np.where(scale > 0, scale, np.float32(1)).astype(np.float32)
    return out


def fp8_product(a, weight, row_scales):
    """a @ weight.T as the FP8 prefill GEMM takes it: weight rows and BF16-rounded tokens each in
    E4M3 under their scale (tokens: about largest |value| / 448, on a grid of eighth powers of
    two), exact products, both scales after."""
    w8 = e4m3_decode(e4m3_encode(np.float32(weight) / row_scales[:, None])).astype(np.float64)
    a16 = bf16_to_f32(f32_to_bf16(np.asarray(a, np.float32)))
    amax = np.abs(a16).max(-1)
    # the least step of the grid float(2^(k/8)) x 2^e at or above amax / 448 (float32 quotient)
    m, e = np.frexp((amax / np.float32(448)).astype(np.float32))  # quotient = (2m) x 2^(e-1), 2m in [1, 2)
    steps = np.exp2(np.arange(9) / 8).astype(np.float32)
    k = np.argmax(steps[None, :] >= (2 * m)[:, None], axis=1)
    a_scales = np.where(amax > 0, np.ldexp(steps[k], e - 1), 1).astype(np.float32)
    a8 = e4m3_decode(e4m3_encode(a16 / a_scales[:, None])).astype(np.float64)
    return (a8 @ w8.T) * (a_scales[:, None].astype(np.float64) * row_scales[None, :])


def reference_logits(c, w, ids, kv, kv_amax=None, fp8_scales=None, bf16_products=False):
    """Logits at every position; kv_amax, when a list, receives each layer's (max |K|, max |V|)
    as the cache receives them (after norm and RoPE, before the cache's rounding). fp8_scales
    (fp8_row_scales): the attention and dense MLP products of a prompt over 64 tokens in FP8.
    bf16_products: the activations entering each product rounded to BF16 (the engine's default;
    the router's input is BF16 either way)."""
    fam = c["architectures"][0]
    gemma, moe = fam.startswith("Gemma"), fam == "Qwen3MoeForCausalLM"
    eps = c["rms_norm_eps"]

    def norm(x, weight):
        n = x / np.sqrt((x * x).mean(-1, keepdims=True) + eps)
        return n * ((1.0 + weight) if gemma else weight)

    def rope(x, theta, factor):
        inv = (1.0 / theta ** (np.arange(0, D, 2) / D) / factor).astype(np.float32)
        ang = (np.arange(len(ids), dtype=np.float32)[:, None] * inv[None, :]).astype(np.float64)
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        a, b = x[..., : D // 2], x[..., D // 2:]
        return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)

    def act(x):
        if gemma:
            return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
        return x / (1 + np.exp(-x))

    T = len(ids)

    def bf16(x):
        return bf16_to_f32(f32_to_bf16(np.asarray(x, np.float32))).astype(np.float64)

    def product_input(x):
        return bf16(x) if bf16_products else x

    def proj(x, name, fp8=True):
        if fp8 and fp8_scales is not None and T > 64:
            return fp8_product(x, w[name], fp8_scales[name])
        return product_input(x) @ w[name].T

    def mlp(x, p, fp8=True):  # the experts' products stay out of FP8 (the engine's rule)
        return proj(act(proj(x, p + "gate_proj.weight", fp8)) * proj(x, p + "up_proj.weight", fp8),
                    p + "down_proj.weight", fp8)

    scale = np.float32(np.sqrt(H)) if gemma else 1.0
    if gemma:
        scale = (f32_to_bf16(np.float32(np.sqrt(np.float32(H)))).astype(np.uint32) << 16).view(np.float32)
    x = w["model.embed_tokens.weight"][ids] * np.float64(scale)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        sliding = gemma and c["layer_types"][i] == "sliding_attention"
        h = norm(x, w[p + "input_layernorm.weight"])
        q = proj(h, p + "self_attn.q_proj.weight").reshape(T, HEADS, D)
        k = proj(h, p + "self_attn.k_proj.weight").reshape(T, KV, D)
        v = proj(h, p + "self_attn.v_proj.weight").reshape(T, KV, D)
        q, k = norm(q, w[p + "self_attn.q_norm.weight"]), norm(k, w[p + "self_attn.k_norm.weight"])
        if gemma and sliding:
            theta, factor = c["rope_local_base_freq"], 1.0
        elif gemma:
            theta, factor = c["rope_theta"], c["rope_scaling"]["factor"]
        else:
            theta, factor = c["rope_theta"], 1.0
        q, k = rope(q, theta, factor), rope(k, theta, factor)
        if kv_amax is not None:
            kv_amax.append((float(np.abs(k).max()), float(np.abs(v).max())))
        k, v = round_cache(k, kv), round_cache(v, kv)
        att_scale = (c["query_pre_attn_scalar"] if gemma else D) ** -0.5
        out = np.zeros((T, HEADS, D))
        for hd in range(HEADS):
            g = hd // (HEADS // KV)
            s = (q[:, hd] @ k[:, g].T) * att_scale
            ii, jj = np.meshgrid(np.arange(T), np.arange(T), indexing="ij")
            mask = jj <= ii
            if sliding:
                mask &= jj > ii - c["sliding_window"]
            s = np.where(mask, s, -np.inf)
            s = np.exp(s - s.max(-1, keepdims=True))
            out[:, hd] = (s / s.sum(-1, keepdims=True)) @ v[:, g]
        o = proj(out.reshape(T, HEADS * D), p + "self_attn.o_proj.weight")
        x = x + (norm(o, w[p + "post_attention_layernorm.weight"]) if gemma else o)
        h2 = norm(x, w[p + ("pre_feedforward_layernorm.weight" if gemma else "post_attention_layernorm.weight")])
        if moe and i not in c["mlp_only_layers"]:
            logits = bf16(h2) @ w[p + "mlp.gate.weight"].T
            probs = np.exp(logits - logits.max(-1, keepdims=True))
            probs /= probs.sum(-1, keepdims=True)
            m = np.zeros_like(h2)
            for t in range(T):
                top = np.argsort(-probs[t], kind="stable")[: c["num_experts_per_tok"]]
                wts = probs[t, top] / probs[t, top].sum()
                for e, we in zip(top, wts):
                    m[t] += we * mlp(h2[t:t + 1], f"{p}mlp.experts.{e}.", fp8=False)[0]
        else:
            m = mlp(h2, p + "mlp.")
        x = x + (norm(m, w[p + "post_feedforward_layernorm.weight"]) if gemma else m)
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    logits = product_input(norm(x, w["model.norm.weight"])) @ head.T
    cap = c.get("final_logit_softcapping")
    return cap * np.tanh(logits / cap) if cap else logits


def forward_dump(folder, prompts, kv, chunk, out, *extra):
    import subprocess
    (out.parent / "prompts.json").write_text(json.dumps(prompts))
    p = subprocess.run([str(TOOLS / "fp4llm_forward_dump"), str(folder), str(out.parent / "prompts.json"),
                        str(out), kv, str(chunk), *extra], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    from safetensors.numpy import load_file
    d = load_file(str(out))
    return [d[f"logits_{i}"] for i in range(len(prompts))]


PROMPTS = [[5], [1, 2, 3, 4, 5, 6, 7, 8, 9], list(np.random.default_rng(3).integers(0, VOCAB, 37))]


@pytest.fixture(scope="module", params=["qwen3", "qwen3_moe", "gemma3"])
def model(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    c = config(request.param)
    write_model(tmp / "bf16", c, seed=7)
    run("quantize", tmp / "bf16", tmp / "nvfp4", "--quiet")
    return c, tmp / "nvfp4", load_weights(tmp / "nvfp4")


@pytest.mark.parametrize("kv", ["bf16", "fp8"])
def test_logits_match_numpy_reference(model, kv, tmp_path):
    c, folder, w = model
    prompts = [[int(t) for t in p] for p in PROMPTS]
    got = forward_dump(folder, prompts, kv, 0, tmp_path / "out.safetensors", "cpu", "float32-products")
    for ids, g in zip(prompts, got):
        ref = reference_logits(c, w, ids, kv)
        rel = np.linalg.norm(g - ref) / np.linalg.norm(ref)
        # float32 vs float64; a K/V value near a rounding boundary of the cache format may round
        # the other way in float32 (one bf16 or e4m3 step), which moves logits by more than
        # float32 noise; both bounds stay far below the error of any wrong formula.
        assert rel < (2e-4 if kv == "bf16" else 5e-3), (c["architectures"], kv, len(ids), rel)
        assert (g.argmax(-1) == ref.argmax(-1)).mean() >= (1.0 if kv == "bf16" else 0.9)


@pytest.mark.parametrize("kv", ["bf16", "fp8"])
def test_bf16_product_inputs_match_numpy_reference(model, kv, tmp_path):
    """The engine's default: activations rounded to BF16 where they enter a product (q/k/v,
    o_proj, gate/up, down, experts, lm_head). Against the reference with the same roundings, and
    closer to it than to the float32-activation reference, so the roundings sit where the
    reference puts them. Values that float32 and float64 put on the two sides of a BF16 rounding
    boundary (one BF16 step, 2^-8 relative, in one element of these 64-wide models) set the bound
    and keep the margin modest: measured 1.7-2.4 times closer where it is smallest."""
    c, folder, w = model
    prompts = [[int(t) for t in p] for p in PROMPTS]
    got = forward_dump(folder, prompts, kv, 0, tmp_path / "out.safetensors")
    for ids, g in zip(prompts, got):
        ref = reference_logits(c, w, ids, kv, bf16_products=True)
        other = reference_logits(c, w, ids, kv)
        rel = np.linalg.norm(g - ref) / np.linalg.norm(ref)
        assert rel < (5e-3 if kv == "bf16" else 2e-2), (c["architectures"], kv, len(ids), rel)
        assert np.linalg.norm(g - other) / np.linalg.norm(other) > 1.3 * rel, (c["architectures"], kv, len(ids))
        assert (g.argmax(-1) == ref.argmax(-1)).mean() >= 0.9


def test_quantized_lm_head_matches_numpy_reference(model, tmp_path):
    """--quantize-lm-head: the 16-bit lm_head (Gemma3 and Qwen3-MoE: the tied embedding table)
    quantized by the numpy reference quantizer (ModelOpt's amax rule) gives the logits."""
    c, folder, w = model
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    packed, scodes, g = quantize_nvfp4(np.asarray(head, np.float32))
    quantized = dict(w)
    quantized["lm_head.weight"] = dequantize_nvfp4(packed, scodes, g).astype(np.float64)
    assert np.abs(quantized["lm_head.weight"] - head).max() > 0  # the quantization changes the head
    prompts = [[int(t) for t in p] for p in PROMPTS]
    got = forward_dump(folder, prompts, "bf16", 0, tmp_path / "out.safetensors", "cpu", "nvfp4-head",
                       "float32-products")
    for ids, g_logits in zip(prompts, got):
        ref = reference_logits(c, quantized, ids, "bf16")
        rel = np.linalg.norm(g_logits - ref) / np.linalg.norm(ref)
        # MoE: the router's BF16 input may round the other way from float32 than from float64.
        moe = c["architectures"][0] == "Qwen3MoeForCausalLM"
        assert rel < (4e-4 if moe else 2e-4), (c["architectures"], len(ids), rel)
        assert (g_logits.argmax(-1) == ref.argmax(-1)).mean() == 1.0


def test_fp8_prefill_products_match_numpy_reference(model, tmp_path):
    """CpuBackend::set_fp8_prefill, the specification of the GPU's FP8 prefill GEMM: a prompt over
    64 tokens with its attention and dense MLP products in E4M3 (fp8_product above, written from
    the rule, not from the engine), a short one unchanged."""
    c, folder, w = model
    scales = fp8_row_scales(folder)
    prompts = [[int(t) for t in np.random.default_rng(9).integers(0, VOCAB, 80)], [int(t) for t in PROMPTS[2]]]
    got = forward_dump(folder, prompts, "bf16", 0, tmp_path / "out.safetensors", "cpu", "fp8-prefill",
                       "float32-products")
    for ids, g in zip(prompts, got):
        ref = reference_logits(c, w, ids, "bf16", fp8_scales=scales)
        plain = reference_logits(c, w, ids, "bf16")
        rel = np.linalg.norm(g - ref) / np.linalg.norm(ref)
        # float32 against float64: a value at an E4M3 rounding boundary may round the other way
        # (one E4M3 step, 6%), and in the MoE model the router's near ties then send a token to
        # another expert; FP8 itself moves the long prompt's logits by far more (checked below).
        moe = c["architectures"][0] == "Qwen3MoeForCausalLM"
        assert rel < (2e-2 if moe else 5e-3), (c["architectures"], len(ids), rel)
        if len(ids) > 64:
            assert np.linalg.norm(plain - ref) / np.linalg.norm(ref) > (5 if moe else 10) * rel, c["architectures"]
        else:
            assert rel < 2e-4


def test_decoding_step_by_step_equals_prefill_and_batching(model, tmp_path):
    _, folder, _ = model
    prompts = [[int(t) for t in p] for p in PROMPTS]
    whole = forward_dump(folder, prompts, "fp8", 0, tmp_path / "a.safetensors")
    steps = forward_dump(folder, prompts, "fp8", 1, tmp_path / "b.safetensors")
    chunks = forward_dump(folder, prompts, "fp8", 5, tmp_path / "c.safetensors")
    batch = forward_dump(folder, prompts, "fp8", -1, tmp_path / "d.safetensors")
    lockstep = forward_dump(folder, prompts, "fp8", -2, tmp_path / "e.safetensors")
    for a, b, cc, d, e in zip(whole, steps, chunks, batch, lockstep):
        np.testing.assert_array_equal(a, e)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, cc)
        np.testing.assert_array_equal(a, d)


@pytest.mark.parametrize("chunk", [5, 1, -2])
def test_window_pool_gives_the_same_logits(model, chunk, tmp_path):
    """The sliding-window layers' K/V in a ring of as few blocks as each step allows (window 8:
    two blocks when decoding, so the 37-token prompt overwrites each block several times): the
    attention reads only keys of the window, so the logits equal the full cache's bit for bit."""
    c, folder, _ = model
    prompts = [[int(t) for t in p] for p in PROMPTS]
    if "sliding_window" not in c:
        with pytest.raises(AssertionError, match="sliding-window layers"):
            forward_dump(folder, prompts, "fp8", chunk, tmp_path / "b.safetensors", "cpu", "window-pool")
        return
    full = forward_dump(folder, prompts, "fp8", chunk, tmp_path / "a.safetensors")
    ring = forward_dump(folder, prompts, "fp8", chunk, tmp_path / "b.safetensors", "cpu", "window-pool")
    for a, b in zip(full, ring):
        np.testing.assert_array_equal(a, b)


def test_missing_tensor_and_wrong_shape_are_named(tmp_path):
    c = config("qwen3")
    write_model(tmp_path / "bf16", c, seed=1)
    run("quantize", tmp_path / "bf16", tmp_path / "q", "--quiet")
    cfg = json.loads((tmp_path / "q" / "config.json").read_text())
    cfg["intermediate_size"] = 112
    (tmp_path / "q" / "config.json").write_text(json.dumps(cfg))
    import subprocess
    (tmp_path / "p.json").write_text("[[1, 2]]")
    p = subprocess.run([str(TOOLS / "fp4llm_forward_dump"), str(tmp_path / "q"), str(tmp_path / "p.json"),
                        str(tmp_path / "o.safetensors")], capture_output=True, text=True)
    assert p.returncode == 1 and "mlp.gate_proj" in p.stderr and "[112, 64]" in p.stderr, p.stderr
