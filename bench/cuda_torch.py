#!/usr/bin/env python3
"""PyTorch on the GPU beside bench/cuda.mjs: the same DiT checkpoint in bf16, eager and torch.compile,
plus the GPU's bf16 matmul rate (cuBLAS, 8192^3) measured in the same process.

    python3 bench/cuda_torch.py WEIGHTS.safetensors --heads 16 --batch 1 8 64 --runs 5

The model is written the way a user writes DiT in eager PyTorch: F.linear, F.layer_norm, the tanh
GELU, F.scaled_dot_product_attention (PyTorch's fused attention). Times are CUDA-event medians after
warm-up. Prints one JSON line: {"eager": {batch: seconds}, "compile": {...}, "matmulTflops": x, ...}.
"""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dit_torch  # noqa: E402  (the CPU benchmark: loader and config)
from dit_torch import read_safetensors  # noqa: E402


def attention(q, k, v):
    if hasattr(F, "scaled_dot_product_attention"):  # PyTorch >= 2.0: the fused kernels
        return F.scaled_dot_product_attention(q, k, v)
    return ((q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5).softmax(-1) @ v


def pos_embed(gh, gw, d, device):
    quarter = d // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    r, c = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
    oc = c.reshape(-1, 1) * omega[None]
    orow = r.reshape(-1, 1) * omega[None]
    return torch.cat([oc.sin(), oc.cos(), orow.sin(), orow.cos()], 1).float().to(device)


class DiT(dit_torch.DiT):
    """The CPU benchmark's model (same config reading) with a device-resident, bf16, SDPA forward."""

    def __init__(self, w, heads):
        super().__init__(w, heads)
        self.pos = {}

    def lin(self, x, name):
        return F.linear(x, self.w[name + ".weight"], self.w[name + ".bias"])

    def __call__(self, x, t, y):
        N, C, H, W = x.shape
        p, D, hd = self.p, self.D, self.D // self.heads
        dt = self.w["x_embedder.proj.weight"].dtype
        h = F.conv2d(x.to(dt), self.w["x_embedder.proj.weight"], self.w["x_embedder.proj.bias"], stride=p)
        key = (H // p, W // p)
        if key not in self.pos:
            self.pos[key] = pos_embed(key[0], key[1], D, x.device).to(dt)
        h = h.flatten(2).transpose(1, 2) + self.pos[key][None]
        half = 128
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=x.device) / half)
        args = t.float()[:, None] * freqs[None]
        temb = torch.cat([args.cos(), args.sin()], -1).to(dt)
        c = F.silu(self.lin(F.silu(self.lin(temb, "t_embedder.mlp.0")), "t_embedder.mlp.2") + self.w["y_embedder.embedding_table.weight"][y])
        for i in range(self.depth):
            b = f"blocks.{i}."
            sm, cm, gm, sf, cf, gf = self.lin(c, b + "adaLN_modulation.1").chunk(6, dim=1)
            z = F.layer_norm(h, (D,), eps=1e-6) * (1 + cm[:, None]) + sm[:, None]
            q, k, v = self.lin(z, b + "attn.qkv").reshape(N, -1, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
            a = attention(q, k, v)
            h = h + gm[:, None] * self.lin(a.transpose(1, 2).reshape(N, -1, D), b + "attn.proj")
            z = F.layer_norm(h, (D,), eps=1e-6) * (1 + cf[:, None]) + sf[:, None]
            h = h + gf[:, None] * self.lin(F.gelu(self.lin(z, b + "mlp.fc1"), approximate="tanh"), b + "mlp.fc2")
        shift, scale = self.lin(c, "final_layer.adaLN_modulation.1").chunk(2, dim=1)
        h = self.lin(F.layer_norm(h, (D,), eps=1e-6) * (1 + scale[:, None]) + shift[:, None], "final_layer.linear")
        h = h.reshape(N, H // p, W // p, p, p, self.outC)
        return torch.einsum("nhwpqc->nchpwq", h).reshape(N, self.outC, H, W).float()


def timed(fn, runs):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    secs = []
    for _ in range(runs):
        start.record()
        fn()
        end.record()
        end.synchronize()
        secs.append(start.elapsed_time(end) / 1000)
    return sorted(secs)[len(secs) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8, 64])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-compile", action="store_true")
    a = ap.parse_args()
    dev = torch.device("cuda")
    w = {k: v.to(dev, torch.bfloat16) for k, v in read_safetensors(a.weights).items()}
    model = DiT(w, a.heads)
    result = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0), "eager": {}, "compile": {}}
    compiled = None if a.no_compile else torch.compile(model.__call__)
    with torch.no_grad():
        for n in a.batch:
            x = torch.randn(n, model.C, a.size, a.size, device=dev)
            t = torch.full((n,), 500.0, device=dev)
            y = torch.arange(n, device=dev) % 1000
            for _ in range(3):
                model(x, t, y)
            result["eager"][str(n)] = timed(lambda: model(x, t, y), a.runs)
            if compiled is not None:
                for _ in range(3):
                    compiled(x, t, y)
                result["compile"][str(n)] = timed(lambda: compiled(x, t, y), a.runs)
        m = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
        for _ in range(3):
            m @ m
        s = timed(lambda: m @ m, a.runs)
        result["matmulTflops"] = 2 * 8192 ** 3 / s / 1e12
        # Device copy bandwidth (read + write of 1 GiB), the yardstick of memory-bound passes.
        src = torch.empty(1 << 30, dtype=torch.uint8, device=dev)
        dst = torch.empty_like(src)
        dst.copy_(src)
        s = timed(lambda: dst.copy_(src), a.runs)
        result["copyGBs"] = 2 * (1 << 30) / s / 1e9
    print(json.dumps(result))


if __name__ == "__main__":
    main()
