#!/usr/bin/env python3
"""Eager PyTorch KV-cached greedy decode benchmark of a Qwen3 checkpoint directory (CPU, float32).

The baseline the Java decoder is compared against, so it is made as fast as eager PyTorch allows:
torch.inference_mode, all cores, contiguous float32 weights with q/k/v and gate/up fused into one
F.linear each, a preallocated KV cache [B, KV, max_len, D] written in place, grouped-query attention
by reshaping queries to [B, KV, r, D] against the un-repeated cache (no repeat_kv copy), RoPE from a
precomputed table, logits only for the last position.

    $TAILGUARD_PYTHON bench/pytorch_decode.py --checkpoint DIR --batch B --context L --new-tokens N \
        [--warmup W] [--seed S] [--prefill-chunk 512] [--check]

Random prompts (seeded) of L tokens for each of the B sequences; prefill in chunks of at most 512
query positions (never an L x L score matrix); then N greedy decode steps, of which only the decode
steps are timed. Prints one JSON line on stdout:
    {"tokens_per_s": B*N/decode_seconds, "prefill_tokens_per_s": B*L/prefill_seconds, "batch",
     "context", "new_tokens", "decode_seconds", "prefill_seconds", "torch_version", "threads", ...}
--check also runs transformers' Qwen3ForCausalLM (loaded with from_pretrained) over prompt +
generated tokens, one full uncached forward, and requires its greedy argmax at every generated
position to equal this benchmark's tokens (use small L, N).
"""
import argparse
import json
import os
import sys
import time

# OpenMP threads that spin between parallel regions made oneDNN's decode step 10-30x slower and
# erratic on a shared 2-vCPU VM (26 ms to 870 ms for the same step); sleeping waiters gave a stable
# ~45 ms. Must be set before torch loads the OpenMP runtime; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_checkpoint  # noqa: E402

# Every weight product x @ W^T goes through oneDNN's inner product (mkldnn_linear) on weights kept in
# oneDNN's layout, when available. On torch 2.13 (CPU build with MKL) at decode's batch-8 shapes it
# ran 2-4x faster than F.linear's MKL GEMM on this 2-vCPU VM (1024 x 4096 to 1024 x 151936 weights).
# --no-mkldnn gives plain F.linear.
USE_MKLDNN = torch.backends.mkldnn.is_available()


def to_weight(w):
    """A weight as the linear() below wants it: oneDNN layout when used, else contiguous float32."""
    w = w.contiguous().float()
    return w.to_mkldnn() if USE_MKLDNN else w


def linear(x, w, b=None):
    """x [..., K] @ w[N, K]^T (+ b). w from to_weight (oneDNN) or any contiguous dense [N, K]."""
    if not USE_MKLDNN:
        return F.linear(x, w, b)
    y = torch._C._nn.mkldnn_linear(x.reshape(-1, x.shape[-1]).contiguous().to_mkldnn(), w, None).to_dense()
    y = y.view(*x.shape[:-1], y.shape[-1])
    return y if b is None else y + b


class Layer:
    def __init__(self, w, i):
        p = "model.layers.%d." % i
        c = lambda t: t.contiguous().float()  # noqa: E731
        wt = to_weight
        self.ln1 = c(w[p + "input_layernorm.weight"])
        self.ln2 = c(w[p + "post_attention_layernorm.weight"])
        self.qkv = wt(torch.cat([w[p + "self_attn.%s_proj.weight" % n] for n in "qkv"], dim=0))
        biases = [w.get(p + "self_attn.%s_proj.bias" % n) for n in "qkv"]
        self.qkv_b = c(torch.cat(biases)) if all(b is not None for b in biases) else None
        self.o = wt(w[p + "self_attn.o_proj.weight"])
        self.o_b = w.get(p + "self_attn.o_proj.bias")
        self.q_norm = c(w[p + "self_attn.q_norm.weight"])
        self.k_norm = c(w[p + "self_attn.k_norm.weight"])
        self.gate_up = wt(torch.cat([w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"]], dim=0))
        self.down = wt(w[p + "mlp.down_proj.weight"])


class FastQwen3:
    def __init__(self, cfg, w, batch, max_len):
        self.cfg = cfg
        self.H, self.KV, self.D = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
        self.r = self.H // self.KV
        self.I = cfg["intermediate_size"]
        self.eps = cfg["rms_norm_eps"]
        self.embed = w["model.embed_tokens.weight"].contiguous().float()
        self.norm = w["model.norm.weight"].contiguous().float()
        self.lm_head = to_weight(w["lm_head.weight"])
        self.layers = [Layer(w, i) for i in range(cfg["num_hidden_layers"])]
        # RoPE table: emb = cat(freqs, freqs), so both halves share cos/sin; keep one half [max_len, D/2].
        cos, sin = peer_checkpoint.rope_cos_sin(torch.arange(max_len), self.D, cfg["rope_theta"])
        self.cos, self.sin = cos[:, : self.D // 2].contiguous(), sin[:, : self.D // 2].contiguous()
        shape = (batch, self.KV, max_len, self.D)
        self.k_cache = [torch.zeros(shape) for _ in self.layers]
        self.v_cache = [torch.zeros(shape) for _ in self.layers]

    def rms(self, x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    def rope(self, x, pos, T):
        """x: [B, T, heads, D]. Same products as x*cos + rotate_half(x)*sin, on halves."""
        c = self.cos[pos:pos + T].view(1, T, 1, -1)
        s = self.sin[pos:pos + T].view(1, T, 1, -1)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1)

    def attention(self, x, L, pos):
        B, T, _ = x.shape
        H, KV, D, r = self.H, self.KV, self.D, self.r
        qkv = linear(x, L.qkv, L.qkv_b).view(B, T, H + 2 * KV, D)
        q, k, v = qkv.split((H, KV, KV), dim=2)  # [B, T, heads, D]
        q = self.rope(self.rms(q, L.q_norm), pos, T)
        k = self.rope(self.rms(k, L.k_norm), pos, T)
        kc, vc = self.k_cache[self.li], self.v_cache[self.li]
        kc[:, :, pos:pos + T] = k.transpose(1, 2)  # in-place write into the preallocated cache
        vc[:, :, pos:pos + T] = v.transpose(1, 2)
        S = pos + T
        keys, vals = kc[:, :, :S], vc[:, :, :S]  # [B, KV, S, D], views
        # GQA without repeat: queries of one KV group side by side, [B, KV, r*T, D]
        qg = (q * D ** -0.5).transpose(1, 2).reshape(B, KV, r * T, D)
        # Attention products stay on bmm: oneDNN builds a new primitive for every new context length
        # S, which made per-step mkldnn attention ~10x slower than bmm in a trial.
        scores = qg @ keys.transpose(-1, -2)  # [B, KV, r*T, S]
        if T > 1:  # causal mask, only needed inside a prefill chunk
            qpos = torch.arange(pos, pos + T).view(T, 1)
            mask = torch.arange(S).view(1, S) > qpos  # [T, S]
            scores = scores.view(B, KV, r, T, S).masked_fill_(mask, float("-inf")).view(B, KV, r * T, S)
        y = torch.softmax(scores, dim=-1) @ vals  # [B, KV, r*T, D]
        y = y.view(B, H, T, D).transpose(1, 2).reshape(B, T, H * D)
        return linear(y, L.o, L.o_b)

    def mlp(self, x, L):
        gu = linear(x, L.gate_up)
        g, u = gu.split((self.I, self.I), dim=-1)
        return linear(F.silu(g) * u, L.down)

    def step(self, ids, pos):
        """ids [B, T] at positions pos..pos+T-1 -> logits of the last position [B, V]."""
        x = F.embedding(ids, self.embed)
        for self.li, L in enumerate(self.layers):
            x = x + self.attention(self.rms(x, L.ln1), L, pos)
            x = x + self.mlp(self.rms(x, L.ln2), L)
        return linear(self.rms(x[:, -1], self.norm), self.lm_head)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--context", type=int, required=True)
    ap.add_argument("--new-tokens", type=int, required=True)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prefill-chunk", type=int, default=512)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--check", action="store_true", help="compare greedy tokens with transformers' full forward")
    ap.add_argument("--no-mkldnn", action="store_true", help="plain F.linear instead of oneDNN's inner product")
    a = ap.parse_args()
    global USE_MKLDNN
    USE_MKLDNN = USE_MKLDNN and not a.no_mkldnn
    torch.set_num_threads(a.threads)
    B, Lc, N = a.batch, a.context, a.new_tokens
    chunk = max(1, min(a.prefill_chunk, 512))

    cfg, w = peer_checkpoint.load_checkpoint(a.checkpoint)
    gen = torch.Generator().manual_seed(a.seed)
    prompts = torch.randint(0, cfg["vocab_size"], (B, Lc), generator=gen)
    # The warm-up steps decode from the prefilled state and are then discarded by rewinding the
    # position: the cache is preallocated and only slots < pos are read, so rewinding restores the
    # exact post-prefill state (equivalent to warming up on a copy). Hence max_len covers both.
    model = FastQwen3(cfg, w, B, Lc + max(N, a.warmup))

    with torch.inference_mode():
        t0 = time.perf_counter()
        for s in range(0, Lc, chunk):
            logits = model.step(prompts[:, s:s + chunk], s)
        prefill_s = time.perf_counter() - t0
        first = logits.argmax(-1)  # [B], the first generated token

        tok = first
        for i in range(a.warmup):  # warm-up from the post-prefill state, then rewound
            tok = model.step(tok.view(B, 1), Lc + i).argmax(-1)

        out = []
        tok = first
        t0 = time.perf_counter()
        for i in range(N):
            out.append(tok)
            tok = model.step(tok.view(B, 1), Lc + i).argmax(-1)
        decode_s = time.perf_counter() - t0
    # N timed steps: feed generated token i at position Lc+i. Tokens generated: first + N more;
    # we report the N fed tokens (out) and keep the last argmax for the check.
    generated = torch.stack(out + [tok], dim=1)  # [B, N+1]

    result = {"tokens_per_s": B * N / decode_s, "prefill_tokens_per_s": B * Lc / prefill_s, "batch": B, "context": Lc, "new_tokens": N,
              "decode_seconds": decode_s, "prefill_seconds": prefill_s, "warmup": a.warmup,
              "torch_version": torch.__version__, "threads": torch.get_num_threads(), "mkldnn": USE_MKLDNN,
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}

    if a.check:
        from transformers import Qwen3ForCausalLM
        hf = Qwen3ForCausalLM.from_pretrained(a.checkpoint, dtype=torch.float32).eval()
        mismatches, max_diff = 0, 0.0
        with torch.no_grad():
            for b in range(B):
                seq = prompts[b].tolist() + generated[b, :N].tolist()  # every fed token
                ref = hf(torch.tensor([seq])).logits[0, Lc - 1:]  # predictions for generated[b, 0..N]
                ref_tok = ref.argmax(-1)
                mismatches += int((ref_tok != generated[b]).sum())
                # gap between the bench's token and the ref's best, in ref logits (0 when equal)
                max_diff = max(max_diff, float((ref.max(-1).values - ref.gather(1, generated[b].view(-1, 1))[:, 0]).max()))
        result["check"] = {"positions": B * (N + 1), "mismatches": mismatches,
                           "max_ref_logit_gap": max_diff, "ok": mismatches == 0}
    print(json.dumps(result))
    return 0 if not a.check or mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
