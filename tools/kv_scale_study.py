#!/usr/bin/env python3
"""Which FP8 (E4M3) KV-cache scale keeps accuracy on a model with several KV heads per layer:
1.0 (the default, as vLLM), one calibrated scale per layer (`--kv-scales calibrate`), or one
calibrated scale per KV head (not implemented; this measures whether it would be worth it).

A random Qwen3 model (4 layers, 8 query / 4 KV heads, head_dim 64) runs in transformers with
float32 K/V as the reference, and again with K and V rounded to E4M3 under each scale rule, as
the engine's cache stores them (after q/k-norm and RoPE). The V heads of each layer are given
magnitudes spread over a chosen factor (head h scaled by spread^(h/3), and o_proj's columns
reading it by the inverse, so that the model computes the same function and only the cached
numbers change); K needs no spread because
Qwen3 and Gemma3 RMS-normalise every K head with one shared weight, so K heads share a range.
Calibrated scales are amax/448 over the scored prompt itself. Prints a markdown table of mean
KL divergence, top-1 agreement and relative logit error against the float32-KV reference.
Needs torch and transformers (CPU is enough).
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch
from transformers import AttentionInterface, AutoModelForCausalLM, Qwen3Config
from transformers.models.qwen3.modeling_qwen3 import eager_attention_forward

E4M3_MAX = 448.0
KV_HEADS = 4
SPREADS = [1, 10, 100, 1000, 10000]
RULES = ["scale 1.0", "per layer", "per head"]


def e4m3_round(x, scale):
    """Rounds x/scale to E4M3 (saturating at ±448, as the engine's cache writer) and back."""
    q = torch.clamp(x / scale, -E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
    return q.to(torch.float32) * scale


def kv_scale(x, rule):
    """x: [batch, kv_heads, seq, head_dim]; the scale each rule stores for it."""
    if rule == "scale 1.0":
        return torch.tensor(1.0)
    if rule == "per layer":
        return x.abs().amax().clamp_min(1e-30) / E4M3_MAX
    return x.abs().amax(dim=(0, 2, 3), keepdim=True).clamp_min(1e-30) / E4M3_MAX


class Fp8KvAttention:
    """Eager attention whose K and V are first rounded through E4M3 under `rule` (None: float32)."""
    rule = None

    @classmethod
    def __call__(cls, module, query, key, value, attention_mask, **kwargs):
        if cls.rule is not None:
            key = e4m3_round(key, kv_scale(key, cls.rule))
            value = e4m3_round(value, kv_scale(value, cls.rule))
        return eager_attention_forward(module, query, key, value, attention_mask, **kwargs)


def build_model(spread, v_magnitude, seed):
    cfg = Qwen3Config(hidden_size=256, num_attention_heads=8, num_key_value_heads=KV_HEADS, head_dim=64,
                      num_hidden_layers=4, intermediate_size=512, vocab_size=512,
                      max_position_embeddings=1024, rms_norm_eps=1e-6, tie_word_embeddings=False)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32, attn_implementation="fp8_study")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g)
            if "norm" in name:
                p.copy_(1.0 + 0.2 * r)
            elif "embed" in name or "lm_head" in name:
                p.copy_(0.5 * r)
            else:
                p.copy_(r / p.shape[-1] ** 0.5)
        group = cfg.num_attention_heads // KV_HEADS
        for layer in model.model.layers:
            v = layer.self_attn.v_proj.weight.view(KV_HEADS, cfg.head_dim, cfg.hidden_size)
            o = layer.self_attn.o_proj.weight.view(cfg.hidden_size, KV_HEADS, group * cfg.head_dim)
            for h in range(KV_HEADS):
                factor = spread ** (h / (KV_HEADS - 1))
                v[h] *= v_magnitude * factor
                o[:, h] /= v_magnitude * factor  # the model computes the same function
    return model.eval()


def logits(model, prompts, rule):
    Fp8KvAttention.rule = rule
    with torch.no_grad():
        return [model(torch.tensor([p])).logits[0].double() for p in prompts]


def compare(got, ref):
    kl, agree, rel, n = 0.0, 0, [], 0
    for g, r in zip(got, ref):
        lp_r, lp_g = torch.log_softmax(r, -1), torch.log_softmax(g, -1)
        kl += float((lp_r.exp() * (lp_r - lp_g)).sum())
        agree += int((g.argmax(-1) == r.argmax(-1)).sum())
        rel.append(float(torch.linalg.norm(g - r) / torch.linalg.norm(r)))
        n += len(r)
    return {"mean_kl_nats": kl / n, "top1_agreement": agree / n, "max_rel_error": max(rel)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--v-magnitude", type=float, default=1.0,
                    help="multiplier on every V head before the spread (tests scale 1.0's range)")
    ap.add_argument("--json")
    args = ap.parse_args()
    AttentionInterface.register("fp8_study", Fp8KvAttention())
    rng = np.random.default_rng(3)
    prompts = [rng.integers(0, 512, n).tolist() for n in (16, 64, 200)]
    rows = []
    for spread in SPREADS:
        model = build_model(spread, args.v_magnitude, seed=5)
        ref = logits(model, prompts, None)
        for rule in RULES:
            rows.append({"v_head_spread": spread, "v_magnitude": args.v_magnitude, "rule": rule,
                         **compare(logits(model, prompts, rule), ref)})
    print(f"V magnitude {args.v_magnitude}; {sum(map(len, prompts))} positions; reference: float32 K/V")
    print("| V head spread | scale rule | mean KL (nats) | top-1 agreement | max relative error |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['v_head_spread']}x | {r['rule']} | {r['mean_kl_nats']:.2e} | "
              f"{100 * r['top1_agreement']:.2f}% | {r['max_rel_error']:.2e} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
