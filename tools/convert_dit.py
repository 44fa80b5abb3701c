#!/usr/bin/env python3
"""Convert a released DiT / DiT-MoE PyTorch checkpoint (.pt) to safetensors for node-diffusion.

    python3 tools/convert_dit.py DiT-XL-2-256x256.pt dit-xl2-256.safetensors [--dtype f16|bf16|f32]
    python3 tools/convert_dit.py dit_moe_s_8E2A.pt dit-moe-s.safetensors --dtype bf16 --config '{"topK": 2}'

Accepts a plain state_dict, or a training checkpoint {"ema": ..., "model": ...} (the EMA weights are
taken, as DiT's find_model does). Tensor names are kept as they are (the original DiT or DiT-MoE
layout; loadModel's layout 'auto' recognises both). The fixed pos_embed is kept: the engine
recomputes it for any latent size and only checks its shape. --config writes a JSON beside the output
(<out>.json) with what the shapes cannot say (heads, topK, variant, timeInput).

Needs PyTorch (Debian: python3-torch). The writer is our own (no safetensors package needed): an
8-byte little-endian header length, a space-padded JSON header, then the tensors back to back.
"""
import argparse
import json
import struct
import sys

import torch

DTYPES = {"f32": (torch.float32, "F32"), "f16": (torch.float16, "F16"), "bf16": (torch.bfloat16, "BF16")}


def tensor_bytes(t):
    t = t.contiguous().cpu()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: go through the raw 16-bit pattern
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for name, (t, code) in tensors.items():
        b = tensor_bytes(t)
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    import os
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="f32", help="storage dtype of the floating tensors")
    ap.add_argument("--config", help="JSON object written beside the output (heads, topK, variant, timeInput)")
    a = ap.parse_args()
    ckpt = torch.load(a.input, map_location="cpu")
    if isinstance(ckpt, dict) and "ema" in ckpt:
        ckpt = ckpt["ema"]
    elif isinstance(ckpt, dict) and "model" in ckpt and isinstance(ckpt["model"], dict):
        ckpt = ckpt["model"]
    if not isinstance(ckpt, dict) or not all(torch.is_tensor(v) for v in ckpt.values()):
        sys.exit("convert_dit: expected a state_dict (name -> tensor), or a checkpoint with 'ema' / 'model'")
    target, code = DTYPES[a.dtype]
    out = {}
    for name, t in ckpt.items():
        name = name[len("module."):] if name.startswith("module.") else name
        if t.is_floating_point():
            out[name] = (t.to(target), code)
        elif t.dtype == torch.int64:
            out[name] = (t, "I64")
        else:
            sys.exit(f"convert_dit: tensor {name} has unsupported dtype {t.dtype}")
    write_safetensors(a.output, out, {"format": "pt", "converted_by": "node-diffusion tools/convert_dit.py"})
    if a.config:
        cfg = json.loads(a.config)
        if not isinstance(cfg, dict):
            sys.exit("convert_dit: --config must be a JSON object")
        stem = a.output[:-len(".safetensors")] if a.output.endswith(".safetensors") else a.output
        with open(stem + ".json", "w") as f:
            json.dump(cfg, f, indent=2)
    n = sum(t.numel() for t, _ in out.values())
    print(f"wrote {a.output}: {len(out)} tensors, {n:,} parameters, {a.dtype}")


if __name__ == "__main__":
    main()
