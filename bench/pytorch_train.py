#!/usr/bin/env python3
"""Eager PyTorch training-step benchmark of a Qwen3 checkpoint (CPU, float32): the peer of
`tailguard bench learner`, run on torch 2.13 (TAILGUARD_PYTHON).

One step = forward over B random sequences of L tokens, cross-entropy of every next token,
backward, torch.optim.AdamW step (weight decay 0.1 on matrices, betas 0.9/0.95, gradient clipping
at 1.0), as a user would write it in eager PyTorch, with what makes such a step fast on a CPU:
q/k/v and gate/up fused into one parameter each (as Tailguard does); causal grouped-query attention
through F.scaled_dot_product_attention (enable_gqa, no repeated K/V; --attention eager gives the
explicit L x L softmax); AdamW with fused=True where this build of torch has the fused CPU kernel,
else foreach=True.

    $TAILGUARD_PYTHON bench/pytorch_train.py --checkpoint DIR --batch B --seq L [--steps N] [--warmup W] [--seed S]

Prints one JSON line: {"tokens_per_s": B*L*N/seconds, "batch", "seq", "steps", "seconds", "torch_version",
"threads", "loss", "optimizer" ("adamw_fused" or "adamw_foreach"), "attention"}.
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_checkpoint  # noqa: E402


class Model(torch.nn.Module):
    def __init__(self, cfg, w, sdpa):
        super().__init__()
        self.cfg = cfg
        self.sdpa = sdpa
        self.H, self.KV, self.D = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
        self.I = cfg["intermediate_size"]
        self.eps = cfg["rms_norm_eps"]
        P = torch.nn.Parameter
        self.embed = P(w["model.embed_tokens.weight"].clone())
        self.tied = "lm_head.weight" not in w or cfg.get("tie_word_embeddings", False)
        if not self.tied:
            self.lm_head = P(w["lm_head.weight"].clone())
        self.norm = P(w["model.norm.weight"].clone())
        self.layers = torch.nn.ModuleList()
        for i in range(cfg["num_hidden_layers"]):
            p = "model.layers.%d." % i
            m = torch.nn.Module()
            m.ln1 = P(w[p + "input_layernorm.weight"].clone())
            m.ln2 = P(w[p + "post_attention_layernorm.weight"].clone())
            m.qkv = P(torch.cat([w[p + "self_attn.%s_proj.weight" % n] for n in "qkv"], 0))
            m.o = P(w[p + "self_attn.o_proj.weight"].clone())
            m.q_norm = P(w[p + "self_attn.q_norm.weight"].clone())
            m.k_norm = P(w[p + "self_attn.k_norm.weight"].clone())
            m.gate_up = P(torch.cat([w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"]], 0))
            m.down = P(w[p + "mlp.down_proj.weight"].clone())
            self.layers.append(m)

    def rms(self, x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    def forward(self, ids):
        B, T = ids.shape
        H, KV, D = self.H, self.KV, self.D
        r = H // KV
        cos, sin = peer_checkpoint.rope_cos_sin(torch.arange(T), D, self.cfg["rope_theta"])
        cos, sin = cos.view(1, T, 1, D), sin.view(1, T, 1, D)
        mask = None if self.sdpa else torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        x = F.embedding(ids, self.embed)
        for L in self.layers:
            h = self.rms(x, L.ln1)
            qkv = F.linear(h, L.qkv).view(B, T, H + 2 * KV, D)
            q, k, v = qkv.split((H, KV, KV), dim=2)
            q = peer_checkpoint.apply_rope(self.rms(q, L.q_norm), cos, sin)
            k = peer_checkpoint.apply_rope(self.rms(k, L.k_norm), cos, sin)
            if self.sdpa:
                y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                   is_causal=True, enable_gqa=True)        # [B, H, T, D]
                y = y.transpose(1, 2).reshape(B, T, H * D)
            else:
                qg = (q * D ** -0.5).view(B, T, KV, r, D).permute(0, 2, 3, 1, 4)   # [B, KV, r, T, D]
                kt = k.permute(0, 2, 3, 1).unsqueeze(2)                            # [B, KV, 1, D, T]
                s = (qg @ kt).masked_fill(mask, float("-inf"))                     # [B, KV, r, T, T]
                y = torch.softmax(s, -1) @ v.permute(0, 2, 1, 3).unsqueeze(2)      # [B, KV, r, T, D]
                y = y.permute(0, 3, 1, 2, 4).reshape(B, T, H * D)
            x = x + F.linear(y, L.o)
            h = self.rms(x, L.ln2)
            g, u = F.linear(h, L.gate_up).split((self.I, self.I), -1)
            x = x + F.linear(F.silu(g) * u, L.down)
        x = self.rms(x, self.norm)
        return F.linear(x, self.embed if self.tied else self.lm_head)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--seq", type=int, required=True)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--attention", choices=("sdpa", "eager"), default="sdpa")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg, w = peer_checkpoint.load_checkpoint(a.checkpoint)
    model = Model(cfg, w, a.attention == "sdpa")
    decay = [p for p in model.parameters() if p.dim() > 1]
    keep = [p for p in model.parameters() if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": keep, "weight_decay": 0.0}]
    try:  # the fused CPU kernel (torch >= 2.4); a build without it raises here
        opt = torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.95), eps=1e-8, fused=True)
        optimizer = "adamw_fused"
    except RuntimeError:
        opt = torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.95), eps=1e-8, foreach=True)
        optimizer = "adamw_foreach"
    g = torch.Generator().manual_seed(a.seed)
    ids = torch.randint(0, cfg["vocab_size"], (a.batch, a.seq), generator=g)

    def step():
        opt.zero_grad(set_to_none=False)
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    loss = 0.0
    for _ in range(a.steps):
        loss = step()
    dt = time.perf_counter() - t0
    print(json.dumps({"tokens_per_s": a.batch * a.seq * a.steps / dt, "batch": a.batch, "seq": a.seq, "steps": a.steps,
                      "seconds": dt, "torch_version": torch.__version__, "threads": torch.get_num_threads(), "loss": loss,
                      "optimizer": optimizer, "attention": a.attention}))


if __name__ == "__main__":
    main()
