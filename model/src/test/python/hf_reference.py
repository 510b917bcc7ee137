"""Reference results from transformers itself, for the Java model's parity tests.

One run builds every case of a spec, so a test class starts Python once:

    hf_reference.py --spec SPEC.json --out DIR [--device cpu|cuda:N]

SPEC.json: {"cases": [CASE, ...]}, each CASE
    {"name": str, "seed": int, "dtype": "float32" | "bfloat16" | "float16",
     "style": "transformers5" | "transformers4" | "given", "max_shard_size": null | "NNKB",
     "config": {Qwen3Config keyword arguments}, "checkpoint": DIR (style "given" only),
     "sequences": [[ids], ...], "prompts": [[ids], ...], "greedy_new": int}

For each case, DIR/<name>/ receives:
  checkpoint/  written by Qwen3ForCausalLM.save_pretrained (sharded with an index when max_shard_size
               is set). "transformers4" then rewrites config.json the way transformers 4 wrote it:
               top-level rope_theta and rope_scaling (null, or the scaling without its rope_theta)
               instead of rope_parameters, torch_dtype
               instead of dtype, no layer_types.
               Style "given" builds nothing: the checkpoint at "checkpoint" (written by Tailguard) is used.
  ref.json     computed by a model that transformers loads back from checkpoint/ with
               from_pretrained (float32 compute, BF16 weights upcast exactly):
    "rope_theta":        the base transformers resolved from config.json
    "forward_logprobs":  per sequence, log_softmax of the logits at every position, [T][V]
    "greedy_tokens":     per prompt, model.generate(do_sample=False) with its KV cache, [greedy_new]
    "greedy_logprobs":   per prompt, log_softmax of the logits of every generated step, [greedy_new][V]
    "greedy_margin":     the smallest gap between the top two logits over all greedy steps (a tie
                         would make the tokens an accident of rounding)

The weights are drawn here, not by transformers' initializer (std 0.02 gives logits too flat to tell
models apart): matrices N(0, 0.3^2) scaled by 1/sqrt(fan_in) * 4, norm gains 1 + N(0, 0.2^2).
"""
import argparse
import json
import math
import os

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM


def build(case, out):
    torch.manual_seed(case["seed"])
    config = Qwen3Config(**case["config"])
    model = Qwen3ForCausalLM(config)
    g = torch.Generator().manual_seed(case["seed"])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * (1.2 / math.sqrt(p.shape[1])))
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[case["dtype"]]
    model = model.to(dtype)
    ckpt = os.path.join(out, "checkpoint")
    kwargs = {}
    if case.get("max_shard_size"):
        kwargs["max_shard_size"] = case["max_shard_size"]
    model.save_pretrained(ckpt, **kwargs)
    if case["style"] == "transformers4":
        path = os.path.join(ckpt, "config.json")
        with open(path) as f:
            c = json.load(f)
        rp = c.pop("rope_parameters")
        c["rope_theta"] = rp.pop("rope_theta")
        c["rope_scaling"] = None if rp["rope_type"] == "default" else rp
        c["torch_dtype"] = c.pop("dtype")
        c.pop("layer_types", None)
        c["transformers_version"] = "4.51.0"
        with open(path, "w") as f:
            json.dump(c, f, indent=2)
    else:
        assert case["style"] == "transformers5", case["style"]
    return ckpt


def reference(case, ckpt, device):
    model = Qwen3ForCausalLM.from_pretrained(ckpt, dtype=torch.float32).to(device)
    model.eval()
    ref = {"rope_theta": model.config.rope_parameters["rope_theta"], "files": sorted(os.listdir(ckpt))}
    with torch.no_grad():
        ref["forward_logprobs"] = [
            torch.log_softmax(model(torch.tensor([s], device=device)).logits[0].double(), -1).tolist()
            for s in case["sequences"]]
        tokens, logprobs, margin = [], [], float("inf")
        for p in case["prompts"]:
            o = model.generate(torch.tensor([p], device=device),
                               attention_mask=torch.ones(1, len(p), dtype=torch.long, device=device),
                               do_sample=False, max_new_tokens=case["greedy_new"], min_new_tokens=case["greedy_new"],
                               output_logits=True, return_dict_in_generate=True, pad_token_id=0, eos_token_id=None)
            tokens.append(o.sequences[0, len(p):].tolist())
            steps = torch.stack([l[0] for l in o.logits]).double()
            logprobs.append(torch.log_softmax(steps, -1).tolist())
            top2 = steps.topk(2, dim=-1).values
            margin = min(margin, (top2[:, 0] - top2[:, 1]).min().item())
        ref["greedy_tokens"] = tokens
        ref["greedy_logprobs"] = logprobs
        ref["greedy_margin"] = margin
    return ref


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cpu", help="where the reference computes: cpu or cuda:N (float32, TF32 off)")
    a = ap.parse_args()
    # float32 products exactly as float32 on a GPU too (the default; stated because parity depends on it)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    with open(a.spec) as f:
        spec = json.load(f)
    torch.set_num_threads(1)
    for case in spec["cases"]:
        out = os.path.join(a.out, case["name"])
        os.makedirs(out, exist_ok=True)
        ckpt = case["checkpoint"] if case["style"] == "given" else build(case, out)
        ref = reference(case, ckpt, a.device)
        with open(os.path.join(out, "ref.json"), "w") as f:
            json.dump(ref, f)


if __name__ == "__main__":
    main()
