#!/usr/bin/env python3
"""Compares fp4llm's CPU reference backend with Hugging Face transformers (run where torch and
transformers are installed, e.g. the GPU machine).

For each architecture: build a small random-initialised model from a config, save it as BF16,
quantize it with `fp4llm quantize`, dequantize that NVFP4 checkpoint with the independent numpy
reference (tests/python/nvfp4_reference.py) into a float32 transformers model (eager attention),
and compare logits at every position of several prompts with fp4llm's (BF16 and FP8 KV cache).
Both sides therefore compute the same function up to float32 arithmetic and the KV cache's
rounding. Prints a markdown table; --json writes the figures.
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "python"))
from nvfp4_reference import dequantize_nvfp4  # noqa: E402

PROMPT_LENGTHS = [1, 7, 40, 97]
# A top-k decision whose logit gap (k-th minus (k+1)-th expert) is below this can flip under the
# engine's float32 summation order and KV rounding; such near ties are tested by flipping them.
NEAR_TIE_LOGIT_GAP = 1e-2


class RouterProbe:
    """Wraps each MoE router of a transformers model: records the logit gap of every top-k
    decision and, for chosen (layer, position) pairs, swaps the k-th expert for the runner-up
    (renormalising as the router does), so that transformers can follow the other side of a
    near tie."""

    def __init__(self, model):
        self.gaps, self.forced = {}, set()
        for layer_index, layer in enumerate(model.model.layers):
            gate = getattr(layer.mlp, "gate", None)
            if gate is not None and hasattr(gate, "top_k"):
                gate.forward = self._wrap(gate, gate.forward, layer_index)

    def _wrap(self, gate, forward, layer_index):
        def probed(hidden_states):
            logits, scores, indices = forward(hidden_states)
            ranked = torch.sort(logits.float(), dim=-1, descending=True)
            k = gate.top_k
            self.gaps[layer_index] = (ranked.values[:, k - 1] - ranked.values[:, k]).numpy()
            for layer, pos in self.forced:
                if layer == layer_index:
                    indices[pos, k - 1] = ranked.indices[pos, k]
                    probs = torch.softmax(logits[pos].float(), dim=-1)[indices[pos]]
                    scores[pos] = probs / probs.sum() if gate.norm_topk_prob else probs
            return logits, scores, indices
        return probed

    def near_ties(self):
        return sorted((float(g[pos]), layer, pos) for layer, g in self.gaps.items()
                      for pos in np.flatnonzero(g < NEAR_TIE_LOGIT_GAP))


def position_errors(got, ref):
    return np.linalg.norm(got - ref, axis=-1) / np.linalg.norm(ref, axis=-1)


def follow_near_ties(model, probe, prompt, got):
    """Flips transformers' routing at each near tie in turn, keeping a flip when it brings the
    prompt's logits closer to fp4llm's. Returns the flips kept and the logits after them."""
    with torch.no_grad():
        ref = model(torch.tensor([prompt])).logits[0].numpy()
    kept = []
    for gap, layer, pos in probe.near_ties():
        probe.forced = {(l, p) for _, l, p in kept} | {(layer, pos)}
        with torch.no_grad():
            trial = model(torch.tensor([prompt])).logits[0].numpy()
        if np.linalg.norm(got - trial) < np.linalg.norm(got - ref):
            kept.append((gap, layer, pos))
            ref = trial
    probe.forced = set()
    return kept, ref


def configs():
    from transformers import Gemma3TextConfig, Qwen3Config, Qwen3MoeConfig
    common = dict(hidden_size=128, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                  vocab_size=512, max_position_embeddings=1024, rms_norm_eps=1e-6)
    return {
        "qwen3": (Qwen3Config(num_hidden_layers=3, intermediate_size=256, tie_word_embeddings=False,
                              rope_theta=1e6, **common), "Qwen3ForCausalLM"),
        "qwen3_moe": (Qwen3MoeConfig(num_hidden_layers=3, intermediate_size=256,
                                     moe_intermediate_size=64, num_experts=8, num_experts_per_tok=2,
                                     norm_topk_prob=True, mlp_only_layers=[1], decoder_sparse_step=1,
                                     tie_word_embeddings=False, **common), "Qwen3MoeForCausalLM"),
        "gemma3": (Gemma3TextConfig(num_hidden_layers=6, intermediate_size=256, sliding_window=16,
                                    query_pre_attn_scalar=24, final_logit_softcapping=30.0,
                                    rope_parameters={
                                        "full_attention": {"rope_type": "linear", "factor": 8.0,
                                                           "rope_theta": 1e6},
                                        "sliding_attention": {"rope_type": "default",
                                                              "rope_theta": 1e4}},
                                    **common), "Gemma3ForCausalLM"),
    }


def randomise(model, family, seed):
    """Weights large enough that logits are well separated; norms away from their identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g)
            if "norm" in name:
                p.copy_((0.0 if family == "gemma3" else 1.0) + 0.2 * r)
            elif "embed" in name or "lm_head" in name:
                p.copy_(0.5 * r)
            else:
                p.copy_(r / p.shape[-1] ** 0.5)


def per_expert_state(state):
    """transformers 5 keeps experts fused (gate_up_proj [E, 2I, H], down_proj [E, H, I]);
    checkpoints people download store them per expert. Write the per-expert form."""
    out = {}
    for k, v in state.items():
        if k.endswith("mlp.experts.gate_up_proj"):
            base = k[: -len("gate_up_proj")]
            inter = v.shape[1] // 2
            for e in range(v.shape[0]):
                out[f"{base}{e}.gate_proj.weight"] = v[e, :inter].contiguous()
                out[f"{base}{e}.up_proj.weight"] = v[e, inter:].contiguous()
        elif k.endswith("mlp.experts.down_proj"):
            base = k[: -len("down_proj")]
            for e in range(v.shape[0]):
                out[f"{base}{e}.down_proj.weight"] = v[e].contiguous()
        else:
            out[k] = v
    return out


def fused_from_per_expert(flat, model_keys):
    """The inverse, for loading dequantized per-expert weights into a fused transformers model."""
    out, used = {}, set()
    for key in model_keys:
        for suffix, parts in (("gate_up_proj", ("gate_proj", "up_proj")), ("down_proj", ("down_proj",))):
            if not key.endswith("mlp.experts." + suffix):
                continue
            base, stack, e = key[: -len(suffix)], [], 0
            while f"{base}{e}.{parts[0]}.weight" in flat:
                names = [f"{base}{e}.{p}.weight" for p in parts]
                stack.append(torch.cat([flat[n] for n in names]))
                used.update(names)
                e += 1
            out[key] = torch.stack(stack)
    out.update({k: v for k, v in flat.items() if k not in used})
    return out


def dequantized_state(nvfp4_dir):
    from safetensors.torch import load_file as load_torch

    def as_numpy(t):  # numpy has no bf16/fp8: scales as raw bytes, 16-bit tensors as float32
        if t.dtype in (torch.uint8, torch.float8_e4m3fn):
            return t.view(torch.uint8).numpy()
        return t.float().numpy()

    tensors = {}
    for f in sorted(Path(nvfp4_dir).glob("*.safetensors")):
        tensors.update({k: as_numpy(v) for k, v in load_torch(str(f)).items()})
    state = {}
    for k, v in tensors.items():
        if k.endswith(".weight_scale") or k.endswith(".weight_scale_2"):
            continue
        if v.dtype == np.uint8 and k + "_scale" in tensors:
            w = dequantize_nvfp4(v, tensors[k + "_scale"], np.float32(tensors[k + "_scale_2"]))
            state[k] = torch.from_numpy(w.copy())
        else:
            state[k] = torch.from_numpy(np.asarray(v, np.float32).copy())
    return state


def agreement(got, ref):
    rels = [float(np.linalg.norm(g - r) / np.linalg.norm(r)) for g, r in zip(got, ref)]
    pos_rel = np.concatenate([position_errors(g, r) for g, r in zip(got, ref)])
    agree = sum(int((g.argmax(-1) == r.argmax(-1)).sum()) for g, r in zip(got, ref))
    return {"max_rel_error": max(rels), "rel_error_by_prompt": rels,
            "median_position_rel_error": float(np.median(pos_rel)),
            "top1_agreement": agree / len(pos_rel)}


def print_table(rows):
    print(f"prompt lengths {PROMPT_LENGTHS}; relative error = ||fp4llm - hf|| / ||hf|| over a prompt's logits")
    print("| architecture | KV cache | positions | max relative error | per prompt | median per position | top-1 agreement |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        for label, fig in [("", r)] + ([(" (router near ties followed)", r["after_flips"])]
                                       if "after_flips" in r else []):
            per = " ".join(f"{e:.1e}" for e in fig["rel_error_by_prompt"])
            print(f"| {r['arch']}{label} | {r['kv_cache']} | {r['positions']} | {fig['max_rel_error']:.2e} | "
                  f"{per} | {fig['median_position_rel_error']:.1e} | {100 * fig['top1_agreement']:.2f}% |")
    for r in rows:
        for f in r.get("router_flips", []):
            print(f"{r['arch']} {r['kv_cache']}: prompt {f['prompt']} layer {f['layer']} position "
                  f"{f['position']}: top-k logit gap {f['logit_gap']:.1e}, followed fp4llm's side")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--json")
    args = ap.parse_args()
    from transformers import AutoModelForCausalLM

    fp4llm = Path(args.build) / "fp4llm"
    dump = Path(args.build) / "fp4llm_forward_dump"
    rows = []
    for family, (cfg, arch) in configs().items():
        cfg.architectures = [arch]
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            torch.manual_seed(0)
            model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32,
                                                     attn_implementation="eager")
            randomise(model, family, seed=1)
            bf16 = tmp / "bf16"
            bf16.mkdir()
            state = {k: v.to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}
            if cfg.tie_word_embeddings:
                state.pop("lm_head.weight", None)
            save_file(per_expert_state(state), str(bf16 / "model.safetensors"), metadata={"format": "pt"})
            cfg.save_pretrained(bf16)
            subprocess.run([str(fp4llm), "quantize", str(bf16), str(tmp / "nvfp4"), "--quiet"], check=True)

            deq = fused_from_per_expert(dequantized_state(tmp / "nvfp4"), model.state_dict().keys())
            if cfg.tie_word_embeddings:
                deq["lm_head.weight"] = deq["model.embed_tokens.weight"]
            missing, unexpected = model.load_state_dict(deq, strict=False)
            assert not [m for m in missing if "embed_scale" not in m] and not unexpected, (missing, unexpected)
            if family == "gemma3":  # the engine multiplies by sqrt(hidden) rounded to bf16
                emb = model.model.embed_tokens
                emb.embed_scale.fill_(float(torch.tensor(cfg.hidden_size ** 0.5).to(torch.bfloat16)))
            model.eval()
            probe = RouterProbe(model)

            rng = np.random.default_rng(2)
            prompts = [rng.integers(0, cfg.vocab_size, n).tolist() for n in PROMPT_LENGTHS]
            (tmp / "prompts.json").write_text(json.dumps(prompts))
            with torch.no_grad():
                ref = [model(torch.tensor([p])).logits[0].numpy() for p in prompts]
            for kv in ("bf16", "fp8"):
                out = tmp / f"logits-{kv}.safetensors"
                subprocess.run([str(dump), str(tmp / "nvfp4"), str(tmp / "prompts.json"), str(out), kv, "0"],
                               check=True)
                got = load_file(str(out))
                row = {"arch": arch, "kv_cache": kv, "positions": sum(len(r) for r in ref)}
                row.update(agreement([got[f"logits_{i}"] for i in range(len(ref))], ref))
                if probe.gaps:
                    flips, followed = [], []
                    for i, prompt in enumerate(prompts):
                        kept, r = follow_near_ties(model, probe, prompt, got[f"logits_{i}"])
                        flips += [{"prompt": i, "layer": l, "position": int(p), "logit_gap": g}
                                  for g, l, p in kept]
                        followed.append(r)
                    row["router_flips"] = flips
                    row["after_flips"] = agreement([got[f"logits_{i}"] for i in range(len(ref))], followed)
                rows.append(row)

    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
