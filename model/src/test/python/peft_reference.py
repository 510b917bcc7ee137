#!/usr/bin/env python3
"""PEFT and transformers as the reference for LoRA adapters (PeftInteropTest).

A server: once imported, one line {"ready": {versions}}; then one JSON command per line on stdin,
one JSON answer per line on stdout ({"ok": ...} or {"error": "..."}), so that one process (one
import of torch, transformers and peft) serves a whole test class. Commands:

  {"cmd": "checkpoint", "dir": D, "config": {Qwen3Config kwargs}, "seed": S}
      a random Qwen3ForCausalLM (norm weights perturbed too, so none is left at one), saved with
      save_pretrained (float32).
  {"cmd": "adapter", "base": D, "out": D, "config": {LoraConfig kwargs}, "seed": S}
      get_peft_model on the checkpoint with that LoraConfig, every lora_A and lora_B then drawn at
      random (a trained adapter, B not zero), saved with save_pretrained.
  {"cmd": "logits", "base": D, "adapter": D or null, "ids": [[...], ...], "out": FILE, "merged_out": FILE}
      the checkpoint loaded with from_pretrained, the adapter (if any) with
      PeftModel.from_pretrained; the float32 logits [len, vocab] of each sequence, one after the
      other, little-endian, to FILE; with an adapter, the same again after merge_adapter() (W += B A
      scaled, in place) to merged_out. Answers the shapes and the adapter's config as PEFT read it.
      With "masks": FILE (safetensors of elementwise masks named model.layers.{i}.{block}.{module}.mask),
      the adapter is merged first and each masked weight then multiplied by its mask, so the logits
      are those of W' = (W + (lora_alpha / r) B A) * M; masked modules need not be adapted.
"""
import json
import sys

import peft
import safetensors  # noqa: F401 (save_pretrained writes safetensors through it)
import torch
from safetensors.torch import load_file
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import Qwen3Config, Qwen3ForCausalLM

torch.set_num_threads(1)


def checkpoint(c):
    torch.manual_seed(c["seed"])
    model = Qwen3ForCausalLM(Qwen3Config(**c["config"])).float()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(c["dir"])
    return {"parameters": sorted(n for n, _ in model.named_parameters())}


def adapter(c):
    model = Qwen3ForCausalLM.from_pretrained(c["base"], dtype=torch.float32)
    peft = get_peft_model(model, LoraConfig(**c["config"]))
    torch.manual_seed(c["seed"])
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if ".lora_A." in name or ".lora_B." in name:
                p.copy_(0.1 * torch.randn_like(p))
    peft.save_pretrained(c["out"])
    return {"tensors": sorted(n for n, _ in peft.named_parameters() if "lora_" in n)}


def logits(c):
    model = Qwen3ForCausalLM.from_pretrained(c["base"], dtype=torch.float32)
    read = None
    if c.get("adapter"):
        model = PeftModel.from_pretrained(model, c["adapter"])
        cfg = model.peft_config["default"]
        read = {"r": cfg.r, "lora_alpha": cfg.lora_alpha, "target_modules": sorted(cfg.target_modules),
                "lora_tensors": sum(1 for n, _ in model.named_parameters() if "lora_" in n)}
    model.eval()
    if c.get("masks"):
        if c.get("adapter"):
            model = model.merge_and_unload()
        weights = dict(model.named_parameters())
        with torch.no_grad():
            for name, mask in load_file(c["masks"]).items():
                weights[name[: -len(".mask")] + ".weight"].mul_(mask.to(torch.float32))
    shapes = write_logits(model, c["ids"], c["out"])
    if c.get("adapter") and c.get("merged_out"):
        model.merge_adapter()
        write_logits(model, c["ids"], c["merged_out"])
    return {"shapes": shapes, "adapter": read}


def write_logits(model, sequences, path):
    shapes = []
    with torch.no_grad(), open(path, "wb") as f:
        for ids in sequences:
            out = model(input_ids=torch.tensor([ids])).logits[0].float().contiguous()
            shapes.append(list(out.shape))
            f.write(out.numpy().astype("<f4").tobytes())
    return shapes


COMMANDS = {"checkpoint": checkpoint, "adapter": adapter, "logits": logits}

sys.stdout.write(json.dumps({"ready": {"torch": torch.__version__, "transformers": transformers.__version__,
                                       "peft": peft.__version__}}) + "\n")
sys.stdout.flush()

for line in sys.stdin:
    if not line.strip():
        continue
    try:
        c = json.loads(line)
        answer = {"ok": COMMANDS[c["cmd"]](c)}
    except Exception as e:  # the answer carries it; the test fails with it
        answer = {"error": "%s: %s" % (type(e).__name__, e)}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
