#!/usr/bin/env python3
"""transformers' own KV-cached greedy generation of a Qwen3 checkpoint directory (float32, on the CPU or
with --device cuda:N on a GPU, where each token's time stamp waits for the GPU): the
second decode peer of `tailguard bench decode`, beside the eager script pytorch_decode.py.

The checkpoint is loaded with Qwen3ForCausalLM.from_pretrained (float32, eval) and decoded with
model.generate(do_sample=False), once with each cache implementation asked for ("dynamic", the
default DynamicCache, and "static", a preallocated StaticCache; no torch.compile on the CPU). Inside
generate, a stopping criterion (called once per generated token, always answering "go on") stamps
the time of each token; so

    prefill seconds = generate's start -> the first token (the prompt forward, which transformers
                      runs with logits only for the last position, and the first argmax)
    decode seconds  = the first token -> the last, over `steps` = tokens - 1 decode steps

and tokens/s = B * steps / decode seconds, prefill tokens/s = B * L / prefill seconds. On a CPU this
generation is slow, so it is bounded: at most --new-tokens tokens, and it stops after
--max-decode-seconds of decoding (the number of steps actually timed is reported). Before the timed
runs, an untimed warm-up generate of 2 tokens over 8 prompt tokens.

    $TAILGUARD_PYTHON bench/transformers_decode.py --checkpoint DIR --batch B --context L \
        --new-tokens N [--caches dynamic,static] [--max-decode-seconds S] [--seed S] [--device cuda:0]

Prompts: B x L ids from torch.randint with a Generator seeded by --seed (those of pytorch_decode.py).
Prints one JSON line: {"tokens_per_s", "prefill_tokens_per_s" (the faster cache implementation's
decode and the best prefill), "cache", "runs": {impl: {"tokens_per_s", "prefill_tokens_per_s",
"steps", "decode_seconds", "prefill_seconds"}}, "batch", "context", "new_tokens", "torch_version",
"transformers_version", "threads"}.
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as pytorch_decode.py: sleeping OpenMP waiters

import torch
import transformers
from transformers import Qwen3ForCausalLM, StoppingCriteria, StoppingCriteriaList


class Stamps(StoppingCriteria):
    """Records the time each new token is appended; never stops generation early unless the decode
    has run past its time budget."""

    def __init__(self, budget_s, device):
        self.times = []
        self.budget_s = budget_s
        self.cuda = device.type == "cuda"

    def __call__(self, input_ids, scores, **kwargs):
        if self.cuda:
            torch.cuda.synchronize()  # the token exists only once the GPU has computed it
        now = time.perf_counter()
        self.times.append(now)
        over = len(self.times) > 1 and now - self.times[0] > self.budget_s
        return torch.full((input_ids.shape[0],), over, dtype=torch.bool)


def run(model, prompts, new_tokens, cache, budget_s):
    stamps = Stamps(budget_s, prompts.device)
    mask = torch.ones_like(prompts)
    t0 = time.perf_counter()
    model.generate(prompts, attention_mask=mask, do_sample=False, max_new_tokens=new_tokens,
                   min_new_tokens=new_tokens, stopping_criteria=StoppingCriteriaList([stamps]),
                   pad_token_id=0, eos_token_id=None, cache_implementation=cache)
    return t0, stamps.times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--context", type=int, required=True)
    ap.add_argument("--new-tokens", type=int, required=True, help="timed decode steps (at most)")
    ap.add_argument("--caches", default="dynamic,static")
    ap.add_argument("--max-decode-seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--device", default="cpu", help="cpu or cuda:N (float32, TF32 off)")
    a = ap.parse_args()
    caches = [c for c in a.caches.split(",") if c]
    for c in caches:
        if c not in ("dynamic", "static"):
            raise SystemExit("--caches: unknown cache implementation %r (dynamic, static)" % c)
    if a.batch < 1 or a.context < 1 or a.new_tokens < 1 or not caches:
        raise SystemExit("--batch, --context, --new-tokens must be >= 1 and --caches non-empty")
    torch.set_num_threads(a.threads)
    B, L, N = a.batch, a.context, a.new_tokens
    device = torch.device(a.device)
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 products as float32, as Tailguard's libtorch does
    model = Qwen3ForCausalLM.from_pretrained(a.checkpoint, dtype=torch.float32).eval().to(device)
    vocab = model.config.vocab_size
    prompts = torch.randint(0, vocab, (B, L), generator=torch.Generator().manual_seed(a.seed)).to(device)
    runs = {}
    with torch.inference_mode():
        for c in caches:
            run(model, prompts[:, :min(L, 8)], 2, c, a.max_decode_seconds)  # warm-up, untimed
            # N timed steps need N + 1 tokens: the first comes from the prefill.
            t0, times = run(model, prompts, N + 1, c, a.max_decode_seconds)
            steps = len(times) - 1
            prefill_s = times[0] - t0
            decode_s = times[-1] - times[0]
            runs[c] = {"tokens_per_s": B * steps / decode_s if steps > 0 else 0.0,
                       "prefill_tokens_per_s": B * L / prefill_s, "steps": steps,
                       "decode_seconds": decode_s, "prefill_seconds": prefill_s}
            print("transformers %s cache: %.1f tokens/s over %d steps, prefill %.2fs"
                  % (c, runs[c]["tokens_per_s"], steps, prefill_s), file=sys.stderr)
    best = max(caches, key=lambda c: runs[c]["tokens_per_s"])
    print(json.dumps({"tokens_per_s": runs[best]["tokens_per_s"],
                      "prefill_tokens_per_s": max(r["prefill_tokens_per_s"] for r in runs.values()),
                      "cache": best, "runs": runs, "batch": B, "context": L, "new_tokens": N,
                      "max_decode_seconds": a.max_decode_seconds, "torch_version": torch.__version__,
                      "transformers_version": transformers.__version__, "threads": torch.get_num_threads(),
                      "device": str(device)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
