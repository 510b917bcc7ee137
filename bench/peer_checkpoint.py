"""The checkpoint reader shared by the eager PyTorch peers (pytorch_decode.py, pytorch_train.py).

A Qwen3 checkpoint directory as transformers writes it (and as Tailguard writes it): config.json and
model.safetensors, or shards listed in model.safetensors.index.json. The RoPE base is read where
transformers 5 puts it (rope_parameters, possibly nested by layer type) or where transformers 4 did
(top-level rope_theta, rope_scaling); any rope type other than "default" is refused, as are sliding
windows, since these peers implement neither.
"""
import json
import os

import torch
from safetensors.torch import load_file


def load_config(ckpt_dir):
    with open(os.path.join(ckpt_dir, "config.json")) as f:
        cfg = json.load(f)
    cfg.setdefault("rms_norm_eps", 1e-6)
    cfg.setdefault("tie_word_embeddings", False)
    cfg.setdefault("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
    if cfg.get("num_key_value_heads") is None:
        cfg["num_key_value_heads"] = cfg["num_attention_heads"]
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    rope = rope.get("full_attention", rope)
    kind = rope.get("rope_type", rope.get("type", "default"))
    if kind != "default":
        raise SystemExit("%s: rope type %r is not implemented by this peer" % (ckpt_dir, kind))
    if cfg.get("use_sliding_window"):
        raise SystemExit("%s: use_sliding_window is not implemented by this peer" % ckpt_dir)
    cfg["rope_theta"] = float(rope.get("rope_theta", cfg.get("rope_theta", 10000.0)))
    return cfg


def load_weights(ckpt_dir):
    """Every tensor of the checkpoint as contiguous float32."""
    single = os.path.join(ckpt_dir, "model.safetensors")
    if os.path.exists(single):
        files = [single]
    else:
        with open(os.path.join(ckpt_dir, "model.safetensors.index.json")) as f:
            files = [os.path.join(ckpt_dir, s) for s in sorted(set(json.load(f)["weight_map"].values()))]
    w = {}
    for path in files:
        w.update({k: v.float().contiguous() for k, v in load_file(path).items()})
    return w


def load_checkpoint(ckpt_dir):
    """(cfg, weights); lm_head.weight is the embedding when the checkpoint ties them (as transformers
    does: a stored lm_head copy loses to the embedding)."""
    cfg = load_config(ckpt_dir)
    w = load_weights(ckpt_dir)
    if cfg["tie_word_embeddings"] or "lm_head.weight" not in w:
        w["lm_head.weight"] = w["model.embed_tokens.weight"]
    return cfg, w


def rope_cos_sin(positions, head_dim, theta):
    """transformers' Qwen3RotaryEmbedding: inv_freq = 1/theta^(arange(0,D,2)/D), emb = cat(freqs, freqs)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def apply_rope(x, cos, sin):
    """x * cos + rotate_half(x) * sin, rotate_half(x) = cat(-x2, x1)."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin
