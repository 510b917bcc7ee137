#!/usr/bin/env python3
"""Independent PyTorch reference of the Qwen3 decoder (Hugging Face semantics), float32 throughout.

The Java model is tested against this file, so it is written from the math, not from the Java code:

    x = embed(ids)
    for each layer:
        h = x + o_proj(attn(rmsnorm(x)))
        x = h + down(silu(gate(n)) * up(n)),   n = rmsnorm(h)
    logits = lm_head(rmsnorm(x))

attn: q, k, v projections; per-head RMSNorm of q and k over head_dim (q_norm, k_norm) BEFORE RoPE;
RoPE in HF's rotate_half form; grouped-query attention (query head h reads KV head h // r,
r = heads / kv_heads); causal softmax with scale 1/sqrt(head_dim).

Run with the reference Python (TAILGUARD_PYTHON; .ci/run builds it with torch 2.13):

    qwen3_ref.py logits   --checkpoint DIR --input IN.json --out OUT.bin
    qwen3_ref.py decode   --checkpoint DIR --input IN.json --out OUT.bin --prefill N
    qwen3_ref.py random   --out DIR [--shape tiny|small] [--set key=value ...] [--seed S] [--dtype F32|BF16|F16]
    qwen3_ref.py random-lora --checkpoint DIR --out DIR --rank R --alpha A [--targets q_proj,...] [--seed S]
    qwen3_ref.py selftest

logits and decode take --lora DIR (a PEFT adapter: adapter_config.json and lora.safetensors) and
--masks FILE (safetensors of elementwise masks named model.layers.{i}.{block}.{module}.mask): the
model then computes with W' = (W + (lora_alpha / r) * B @ A) * M for every adapted or masked module,
the LoRA of Hu et al. as PEFT applies it, here merged into the weights before the forward.

IN.json is {"sequences": [[ids], [ids], ...]} (lengths may differ; each sequence runs on its own, no
padding). OUT.bin is raw little-endian float32: the logits of every position of every sequence, in
order (sequence 0's [len0, V] row-major, then sequence 1's, ...).
"""
import argparse
import json
import math
import os
import struct
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------
# Files on disk: config.json and model.safetensors (parsed by hand)

CONFIG_DEFAULTS = {"rms_norm_eps": 1e-6, "tie_word_embeddings": False, "head_dim": 128}


def load_config(ckpt_dir):
    """config.json as transformers' Qwen3Config reads it: the RoPE base from rope_scaling or
    rope_parameters (transformers 5, possibly nested by layer type), else the top-level rope_theta
    (transformers 4), else 10000; only the default rope type."""
    with open(os.path.join(ckpt_dir, "config.json")) as f:
        cfg = dict(CONFIG_DEFAULTS, **json.load(f))
    if cfg.get("num_key_value_heads") is None:
        cfg["num_key_value_heads"] = cfg["num_attention_heads"]
    rope = cfg.get("rope_scaling") or cfg.get("rope_parameters") or {}
    rope = rope.get("full_attention", rope)
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        raise ValueError("only the default rope type is supported by this reference: %r" % (rope,))
    cfg["rope_theta"] = rope.get("rope_theta", cfg.get("rope_theta", 10000.0))
    return cfg


def _decode_tensor(raw, dtype, shape):
    """Bytes of one tensor -> float32 torch tensor (BF16/F16 upcast exactly)."""
    if dtype == "F32":
        a = np.frombuffer(raw, dtype="<f4")
    elif dtype == "F16":
        a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    elif dtype == "BF16":  # bf16 is the top 16 bits of a float32
        a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    elif dtype == "F64":
        a = np.frombuffer(raw, dtype="<f8").astype(np.float32)
    else:
        raise ValueError("unsupported safetensors dtype " + dtype)
    return torch.from_numpy(a.reshape(shape).copy())


def read_safetensors(path):
    """safetensors: u64 little-endian header length, JSON header, then the raw byte buffer."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        tensors[name] = _decode_tensor(data[base + begin:base + end], info["dtype"], info["shape"])
    return tensors


def write_safetensors(path, tensors, dtype="F32"):
    """Writes float tensors as F32, BF16 (truncated) or F16, 8-byte aligned header."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = tensors[name].detach().to(torch.float32).contiguous().numpy()
        if dtype == "F32":
            b = a.astype("<f4").tobytes()
        elif dtype == "F16":
            b = a.astype("<f2").tobytes()
        elif dtype == "BF16":
            b = (a.view(np.uint32) >> 16).astype("<u2").tobytes()
        else:
            raise ValueError(dtype)
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_weights(ckpt_dir):
    single = os.path.join(ckpt_dir, "model.safetensors")
    if os.path.exists(single):
        return read_safetensors(single)
    with open(os.path.join(ckpt_dir, "model.safetensors.index.json")) as f:  # sharded HF checkpoint
        shards = sorted(set(json.load(f)["weight_map"].values()))
    tensors = {}
    for s in shards:
        tensors.update(read_safetensors(os.path.join(ckpt_dir, s)))
    return tensors


def load_checkpoint(ckpt_dir):
    """Returns (cfg, weights) with weights a dict of float32 tensors; lm_head filled in when tied."""
    cfg = load_config(ckpt_dir)
    w = load_weights(ckpt_dir)
    if "lm_head.weight" not in w:
        if not cfg["tie_word_embeddings"]:
            print("warning: lm_head.weight absent; using embed_tokens (tied)", file=sys.stderr)
        w["lm_head.weight"] = w["model.embed_tokens.weight"]
    elif cfg["tie_word_embeddings"]:
        # HF ties the parameters, so the embedding wins over any stored lm_head copy.
        w["lm_head.weight"] = w["model.embed_tokens.weight"]
    return cfg, w


# ----------------------------------------------------------------------------------------------
# The model: one function per block. Shapes: B batch, T new positions, S cached+new positions,
# H query heads, KV kv heads, D head_dim, C hidden.

def linear(x, w, prefix):
    """y = x W^T (+ b when the checkpoint has a bias, e.g. attention_bias=true)."""
    return F.linear(x, w[prefix + ".weight"], w.get(prefix + ".bias"))


def rms_norm(x, weight, eps):
    """y = w * x / sqrt(mean(x^2) + eps) over the last dimension, in float32."""
    x = x.float()
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rope_cos_sin(positions, head_dim, theta):
    """HF Qwen3RotaryEmbedding: inv_freq = 1/theta^(arange(0,D,2)/D), emb = cat(freqs, freqs)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]  # [T, D/2]
    emb = torch.cat((freqs, freqs), dim=-1)  # [T, D]
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x, cos, sin):
    """x: [B, heads, T, D]; cos, sin: [T, D]."""
    return x * cos + rotate_half(x) * sin


def attention(x, w, p, cfg, cache, start):
    """x: [B, T, C] (already normed). cache: dict with 'k','v' [B, KV, S_prev, D] or empty; updated."""
    B, T, _ = x.shape
    H, KV, D = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps = cfg["rms_norm_eps"]
    q = linear(x, w, p + "q_proj").view(B, T, H, D)
    k = linear(x, w, p + "k_proj").view(B, T, KV, D)
    v = linear(x, w, p + "v_proj").view(B, T, KV, D)
    q = rms_norm(q, w[p + "q_norm.weight"], eps).transpose(1, 2)  # [B, H, T, D]
    k = rms_norm(k, w[p + "k_norm.weight"], eps).transpose(1, 2)  # [B, KV, T, D]
    v = v.transpose(1, 2)  # [B, KV, T, D]
    cos, sin = rope_cos_sin(torch.arange(start, start + T), D, cfg["rope_theta"])
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    if "k" in cache:
        k = torch.cat((cache["k"], k), dim=2)
        v = torch.cat((cache["v"], v), dim=2)
    cache["k"], cache["v"] = k, v
    S = k.shape[2]
    r = H // KV
    k = k.repeat_interleave(r, dim=1)  # [B, H, S, D]: query head h reads KV head h // r
    v = v.repeat_interleave(r, dim=1)
    scores = (q @ k.transpose(-1, -2)) * D ** -0.5  # [B, H, T, S]; HF eager: matmul * scaling
    qpos = torch.arange(start, start + T)[:, None]
    kpos = torch.arange(S)[None, :]
    scores = scores.masked_fill(kpos > qpos, float("-inf"))  # causal
    y = torch.softmax(scores, dim=-1) @ v  # [B, H, T, D]
    y = y.transpose(1, 2).reshape(B, T, H * D)
    return linear(y, w, p + "o_proj")


def mlp(x, w, p):
    return linear(F.silu(linear(x, w, p + "gate_proj")) * linear(x, w, p + "up_proj"), w, p + "down_proj")


def decoder_layer(x, w, i, cfg, cache, start):
    p = "model.layers.%d." % i
    eps = cfg["rms_norm_eps"]
    h = x + attention(rms_norm(x, w[p + "input_layernorm.weight"], eps), w, p + "self_attn.", cfg, cache, start)
    return h + mlp(rms_norm(h, w[p + "post_attention_layernorm.weight"], eps), w, p + "mlp.")


def forward(cfg, w, ids, caches=None, start=0):
    """ids: [B, T] int64 at positions start..start+T-1. caches: list (one dict per layer) or None.
    Returns logits [B, T, V] float32."""
    if caches is None:
        caches = [{} for _ in range(cfg["num_hidden_layers"])]
    x = w["model.embed_tokens.weight"][ids]  # [B, T, C]
    for i in range(cfg["num_hidden_layers"]):
        x = decoder_layer(x, w, i, cfg, caches[i], start)
    x = rms_norm(x, w["model.norm.weight"], cfg["rms_norm_eps"])
    return F.linear(x, w["lm_head.weight"])


def new_caches(cfg):
    return [{} for _ in range(cfg["num_hidden_layers"])]


# ----------------------------------------------------------------------------------------------
# Modes

@torch.no_grad()
def logits_full(cfg, w, seq):
    """Logits [len, V] of one sequence, one full causal forward."""
    return forward(cfg, w, torch.tensor([seq], dtype=torch.long))[0]


@torch.no_grad()
def logits_incremental(cfg, w, seq, prefill):
    """Prefill the first `prefill` tokens through a KV cache, then feed the rest one at a time."""
    n = max(0, min(prefill, len(seq)))
    caches, out = new_caches(cfg), []
    if n > 0:
        out.append(forward(cfg, w, torch.tensor([seq[:n]], dtype=torch.long), caches, 0)[0])
    for t in range(n, len(seq)):
        out.append(forward(cfg, w, torch.tensor([[seq[t]]], dtype=torch.long), caches, t)[0])
    return torch.cat(out, dim=0)


# ----------------------------------------------------------------------------------------------
# LoRA (PEFT layout)

LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
BLOCK = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
         "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}


def peft_name(layer, module, which):
    return "base_model.model.model.layers.%d.%s.%s.lora_%s.weight" % (layer, BLOCK[module], module, which)


def read_lora(lora_dir):
    """Returns (scale, {(layer, module): (A [r, in], B [out, r])}) from a PEFT adapter directory."""
    with open(os.path.join(lora_dir, "adapter_config.json")) as f:
        cfg = json.load(f)
    assert cfg.get("peft_type", "LORA") == "LORA", cfg.get("peft_type")
    assert not cfg.get("use_rslora", False)
    targets = cfg["target_modules"]
    if targets == "all-linear":
        targets = LINEAR_MODULES
    r, alpha = cfg["r"], cfg["lora_alpha"]
    weights = os.path.join(lora_dir, "adapter_model.safetensors")  # an adapter directory, as PEFT names it
    if not os.path.exists(weights):
        weights = os.path.join(lora_dir, "lora.safetensors")  # inside a checkpoint
    t = read_safetensors(weights)
    pairs = {}
    for name in t:
        parts = name.split(".")  # base_model.model.model.layers.{i}.{block}.{module}.lora_{A|B}.weight
        layer, module, which = int(parts[4]), parts[6], parts[7][-1]
        assert module in targets, name
        pairs.setdefault((layer, module), {})[which] = t[name]
    for (layer, module), ab in pairs.items():
        assert ab["A"].shape[0] == r and ab["B"].shape[1] == r, (layer, module)
    return alpha / r, {k: (v["A"], v["B"]) for k, v in pairs.items()}


def apply_lora(w, lora_dir=None, masks_file=None):
    """A copy of the weights with W' = (W + s B A) * M for every adapted or masked module."""
    w = dict(w)
    if lora_dir:
        scale, pairs = read_lora(lora_dir)
        for (layer, module), (a, b) in pairs.items():
            key = "model.layers.%d.%s.%s.weight" % (layer, BLOCK[module], module)
            w[key] = w[key] + scale * (b @ a)
    if masks_file:
        for name, m in read_safetensors(masks_file).items():
            key = name[: -len(".mask")] + ".weight"
            w[key] = w[key] * (m != 0).float()
    return w


def random_lora(ckpt_dir, out_dir, rank, alpha, targets, seed):
    """A PEFT adapter with A as PEFT initialises it and a nonzero B (a trained adapter, in effect)."""
    cfg = load_config(ckpt_dir)
    w = load_weights(ckpt_dir)
    g = torch.Generator().manual_seed(seed)
    t = {}
    for i in range(cfg["num_hidden_layers"]):
        for module in targets:
            out_f, in_f = w["model.layers.%d.%s.%s.weight" % (i, BLOCK[module], module)].shape
            bound = 1.0 / math.sqrt(in_f)
            t[peft_name(i, module, "A")] = (torch.rand(rank, in_f, generator=g) * 2 - 1) * bound
            t[peft_name(i, module, "B")] = torch.randn(out_f, rank, generator=g) * 0.2 / math.sqrt(rank)
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(os.path.join(out_dir, "lora.safetensors"), t)
    with open(os.path.join(out_dir, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": alpha,
                   "target_modules": list(targets), "lora_dropout": 0.0, "bias": "none",
                   "fan_in_fan_out": False, "inference_mode": True}, f, indent=2)


def write_logits(path, blocks):
    with open(path, "wb") as f:
        for b in blocks:
            f.write(b.contiguous().numpy().astype("<f4").tobytes())


def read_sequences(path):
    with open(path) as f:
        seqs = json.load(f)["sequences"]
    return [[int(t) for t in s] for s in seqs]


# ----------------------------------------------------------------------------------------------
# Random checkpoints (for the selftest, the benchmark and the Java tests)

SHAPES = {
    "tiny": dict(vocab_size=37, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, head_dim=16),
    "small": dict(vocab_size=99, hidden_size=512, intermediate_size=1536, num_hidden_layers=12,
                  num_attention_heads=8, num_key_value_heads=2, head_dim=64),
}


def random_config(shape="tiny", **overrides):
    cfg = dict(SHAPES[shape], rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True,
               max_position_embeddings=40960, model_type="qwen3", architectures=["Qwen3ForCausalLM"])
    cfg.update(overrides)
    return cfg


def random_weights(cfg, seed=0):
    """Random weights with O(1) activations: N(0, 1/fan_in) linears, norms near 1."""
    g = torch.Generator().manual_seed(seed)
    C, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    H, KV, D = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]

    def mat(m, n):
        return torch.randn(m, n, generator=g) / math.sqrt(n)

    def norm(n):
        return 1.0 + 0.1 * torch.randn(n, generator=g)

    w = {"model.embed_tokens.weight": torch.randn(V, C, generator=g), "model.norm.weight": norm(C)}
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        w[p + "self_attn.q_proj.weight"] = mat(H * D, C)
        w[p + "self_attn.k_proj.weight"] = mat(KV * D, C)
        w[p + "self_attn.v_proj.weight"] = mat(KV * D, C)
        w[p + "self_attn.o_proj.weight"] = mat(C, H * D)
        w[p + "self_attn.q_norm.weight"] = norm(D)
        w[p + "self_attn.k_norm.weight"] = norm(D)
        w[p + "mlp.gate_proj.weight"] = mat(I, C)
        w[p + "mlp.up_proj.weight"] = mat(I, C)
        w[p + "mlp.down_proj.weight"] = mat(C, I)
        w[p + "input_layernorm.weight"] = norm(C)
        w[p + "post_attention_layernorm.weight"] = norm(C)
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = torch.randn(V, C, generator=g) / math.sqrt(C)
    return w


def save_checkpoint(ckpt_dir, cfg, w, dtype="F32"):
    os.makedirs(ckpt_dir, exist_ok=True)
    with open(os.path.join(ckpt_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_safetensors(os.path.join(ckpt_dir, "model.safetensors"), w, dtype)


# ----------------------------------------------------------------------------------------------
# Selftest

def selftest():
    torch.manual_seed(0)
    failures = []

    def check(name, a, b, tol):
        # tol is relative to the logits' scale: max|a-b| <= tol * max(1, max|b|)
        err = (a - b).abs().max().item()
        scale = max(1.0, b.abs().max().item())
        ok = err <= tol * scale
        print("%-52s max|diff| = %.3e (scale %5.1f)  %s" % (name, err, scale, "ok" if ok else "FAIL (tol %.0e)" % tol))
        if not ok:
            failures.append(name)

    g = torch.Generator().manual_seed(1)
    with tempfile.TemporaryDirectory() as tmp:
        def ckpt(name, cfg, w, dtype="F32"):
            d = os.path.join(tmp, name)
            save_checkpoint(d, cfg, w, dtype)
            return load_checkpoint(d)

        # 1. safetensors round trip per dtype (BF16 truncation, F16 rounding are exact upcasts).
        t = {"a": torch.randn(3, 5, generator=g), "b": torch.randn(7, generator=g)}
        for dt in ("F32", "BF16", "F16"):
            path = os.path.join(tmp, "rt_%s.safetensors" % dt)
            write_safetensors(path, t, dt)
            back = read_safetensors(path)
            for k in t:
                if dt == "F32":
                    want = t[k]
                elif dt == "F16":
                    want = t[k].half().float()
                else:
                    want = torch.from_numpy((t[k].numpy().view(np.uint32) & 0xFFFF0000).view(np.float32))
                check("safetensors %s round trip (%s)" % (dt, k), back[k], want, 0.0)

        seqs = [torch.randint(0, 37, (n,), generator=g).tolist() for n in (1, 9, 23)]

        # 2. logits mode == decode mode (several prefill lengths), GQA model, tied.
        cfg = random_config("tiny")
        cfg_, w = ckpt("gqa", cfg, random_weights(cfg, seed=2))
        for s in seqs:
            full = logits_full(cfg_, w, s)
            for n in sorted({0, 1, len(s) // 2, len(s)}):
                check("logits == decode (len %d, prefill %d)" % (len(s), n),
                      logits_incremental(cfg_, w, s, n), full, 1e-5)
            # causality: a prefix's logits do not depend on later tokens
            if len(s) > 3:
                check("prefix logits unchanged by later tokens (len %d)" % len(s),
                      logits_full(cfg_, w, s[:3]), full[:3], 1e-5)

        # 3. GQA == the same model with K/V heads explicitly repeated (multi-head attention).
        r = cfg["num_attention_heads"] // cfg["num_key_value_heads"]
        mha_cfg = dict(cfg, num_key_value_heads=cfg["num_attention_heads"])
        w_mha = dict(random_weights(cfg, seed=2))
        C, D = cfg["hidden_size"], cfg["head_dim"]
        for i in range(cfg["num_hidden_layers"]):
            for name in ("k_proj", "v_proj"):
                key = "model.layers.%d.self_attn.%s.weight" % (i, name)
                w_mha[key] = w_mha[key].view(-1, D, C).repeat_interleave(r, dim=0).reshape(-1, C)
        mcfg, mw = ckpt("mha", mha_cfg, w_mha)
        for s in seqs:
            check("GQA == repeated-KV MHA (len %d)" % len(s), logits_full(mcfg, mw, s), logits_full(cfg_, w, s), 1e-5)

        # 4. tied == untied with lm_head a copy of the embedding.
        w_untied = dict(random_weights(cfg, seed=2))
        w_untied["lm_head.weight"] = w_untied["model.embed_tokens.weight"].clone()
        ucfg, uw = ckpt("untied", dict(cfg, tie_word_embeddings=False), w_untied)
        for s in seqs:
            check("tied == untied copy (len %d)" % len(s), logits_full(ucfg, uw, s), logits_full(cfg_, w, s), 0.0)

        # 5. BF16 checkpoint == F32 checkpoint of the bf16-truncated weights.
        wt = {k: torch.from_numpy((v.numpy().view(np.uint32) & 0xFFFF0000).view(np.float32))
              for k, v in random_weights(cfg, seed=2).items()}
        bcfg, bw = ckpt("bf16", cfg, random_weights(cfg, seed=2), "BF16")
        tcfg, tw = ckpt("trunc", cfg, wt)
        check("BF16 checkpoint == F32 of truncated weights", logits_full(bcfg, bw, seqs[2]),
              logits_full(tcfg, tw, seqs[2]), 0.0)

        # 6. CLI round trip: logits and decode write the documented layout.
        d = os.path.join(tmp, "gqa")
        inp, out1, out2 = (os.path.join(tmp, n) for n in ("in.json", "a.bin", "b.bin"))
        with open(inp, "w") as f:
            json.dump({"sequences": seqs}, f)
        main(["logits", "--checkpoint", d, "--input", inp, "--out", out1])
        main(["decode", "--checkpoint", d, "--input", inp, "--out", out2, "--prefill", "4"])
        a = torch.from_numpy(np.fromfile(out1, dtype="<f4"))
        b = torch.from_numpy(np.fromfile(out2, dtype="<f4"))
        want = torch.cat([logits_full(cfg_, w, s) for s in seqs]).reshape(-1)
        check("CLI logits file layout", a, want, 0.0)
        check("CLI decode file vs logits file", b, a, 1e-5)

        # 7. LoRA: a zero B changes nothing; "all-linear" is the list of all seven; the merged weight
        #    equals the low-rank path x W^T + s (x A^T) B^T.
        lora_dir = os.path.join(tmp, "lora")
        random_lora(d, lora_dir, 4, 8.0, LINEAR_MODULES, 5)
        scale, pairs = read_lora(lora_dir)
        (a, b) = pairs[(0, "q_proj")]
        x = torch.randn(3, cfg["hidden_size"], generator=g)
        wq = w["model.layers.0.self_attn.q_proj.weight"]
        merged = apply_lora(w, lora_dir)["model.layers.0.self_attn.q_proj.weight"]
        check("LoRA merged product == low-rank path", x @ merged.T, x @ wq.T + scale * ((x @ a.T) @ b.T), 1e-5)
        zero_dir = os.path.join(tmp, "lora0")
        os.makedirs(zero_dir)
        t0 = {k: (v * 0 if k.endswith("lora_B.weight") else v)
              for k, v in read_safetensors(os.path.join(lora_dir, "lora.safetensors")).items()}
        write_safetensors(os.path.join(zero_dir, "lora.safetensors"), t0)
        with open(os.path.join(lora_dir, "adapter_config.json")) as f:
            c0 = json.load(f)
        c0["target_modules"] = "all-linear"
        with open(os.path.join(zero_dir, "adapter_config.json"), "w") as f:
            json.dump(c0, f)
        check("LoRA with B = 0 leaves the logits", logits_full(cfg_, apply_lora(w, zero_dir), seqs[2]),
              logits_full(cfg_, w, seqs[2]), 0.0)

    if failures:
        print("SELFTEST FAILED: %d check(s): %s" % (len(failures), ", ".join(failures)))
        return 1
    print("SELFTEST PASSED")
    return 0


# ----------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    for mode in ("logits", "decode"):
        sp = sub.add_parser(mode)
        sp.add_argument("--checkpoint", required=True)
        sp.add_argument("--input", required=True)
        sp.add_argument("--out", required=True)
        if mode == "decode":
            sp.add_argument("--prefill", type=int, required=True)
        sp.add_argument("--lora", help="a PEFT adapter directory to apply")
        sp.add_argument("--masks", help="safetensors of elementwise weight masks")
    sp = sub.add_parser("random-lora", help="write a random PEFT LoRA adapter for a checkpoint")
    sp.add_argument("--checkpoint", required=True)
    sp.add_argument("--out", required=True)
    sp.add_argument("--rank", type=int, required=True)
    sp.add_argument("--alpha", type=float, required=True)
    sp.add_argument("--targets", default=",".join(LINEAR_MODULES))
    sp.add_argument("--seed", type=int, default=0)
    sp = sub.add_parser("random", help="write a random checkpoint directory")
    sp.add_argument("--out", required=True)
    sp.add_argument("--shape", default="tiny", choices=sorted(SHAPES))
    sp.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="override a config key")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--dtype", default="F32", choices=("F32", "BF16", "F16"))
    sub.add_parser("selftest")
    args = ap.parse_args(argv)

    if args.mode == "selftest":
        return selftest()
    if args.mode == "random":
        cfg = random_config(args.shape, **{k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)})
        save_checkpoint(args.out, cfg, random_weights(cfg, args.seed), args.dtype)
        return 0
    if args.mode == "random-lora":
        random_lora(args.checkpoint, args.out, args.rank, args.alpha, args.targets.split(","), args.seed)
        return 0
    torch.set_num_threads(os.cpu_count() or 1)
    cfg, w = load_checkpoint(args.checkpoint)
    w = apply_lora(w, args.lora, args.masks)
    seqs = read_sequences(args.input)
    if args.mode == "logits":
        blocks = [logits_full(cfg, w, s) for s in seqs]
    else:
        blocks = [logits_incremental(cfg, w, s, args.prefill) for s in seqs]
    write_logits(args.out, blocks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
