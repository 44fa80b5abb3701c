#!/usr/bin/env python3
"""Eager PyTorch DiT / DiT-MoE forward on the CPU, for bench/models.mjs (side by side with ours).

    python3 bench/dit_torch.py WEIGHTS.safetensors --heads 16 --batch 1 --height 32 --width 32 --runs 5 [--threads 2]

Loads the same safetensors file as the engine (original DiT or DiT-MoE layout), widens the weights to
float32 (PyTorch CPU computes f32), and times `model(x, t, y)` under torch.no_grad() the way a user
would write the model in eager mode: nn.Linear-style F.linear calls, F.layer_norm, the tanh GELU,
softmax(q kᵀ / sqrt(d)) v attention, and DiT-MoE's gather-per-expert routing. Prints one JSON line:
{"seconds": [...], "threads": N, "torch": version}.
"""
import argparse
import json
import math
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F

ST_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[b:e]
        if info["dtype"] == "BF16":
            u = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=ST_DTYPES[info["dtype"]])
        out[name] = torch.from_numpy(np.array(arr, dtype=np.float32 if arr.dtype.kind == "f" else arr.dtype)).reshape(info["shape"])
    return out


def timestep_embedding(t, dim=256, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def pos_embed(gh, gw, d):
    quarter = d // 4
    omega = 1.0 / 10000 ** (np.arange(quarter, dtype=np.float64) / quarter)
    r, c = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
    oc = c.reshape(-1)[:, None] * omega[None]
    orow = r.reshape(-1)[:, None] * omega[None]
    return torch.from_numpy(np.concatenate([np.sin(oc), np.cos(oc), np.sin(orow), np.cos(orow)], 1).astype(np.float32))


class DiT:
    def __init__(self, w, heads):
        self.w = w
        self.heads = heads
        self.D, self.C, self.p, _ = w["x_embedder.proj.weight"].shape
        self.depth = 0
        while f"blocks.{self.depth}.adaLN_modulation.1.weight" in w:
            self.depth += 1
        self.moe = "blocks.0.moe.gate.weight" in w
        self.outC = w["final_layer.linear.weight"].shape[0] // (self.p * self.p)

    def lin(self, x, name, bias=True):
        return F.linear(x, self.w[name + ".weight"], self.w.get(name + ".bias") if bias else None)

    def swiglu(self, x, pre):
        return self.lin(F.silu(self.lin(x, pre + "gate_proj", False)) * self.lin(x, pre + "up_proj", False), pre + "down_proj", False)

    def moe_mlp(self, x, i, k=2):
        pre = f"blocks.{i}.moe."
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        probs = F.linear(flat, self.w[pre + "gate.weight"]).softmax(-1)
        wts, idx = torch.topk(probs, k, dim=-1)
        out = torch.zeros_like(flat)
        for e in range(self.w[pre + "gate.weight"].shape[0]):
            rows, slot = torch.nonzero(idx == e, as_tuple=True)
            if rows.numel() == 0:
                continue
            y = self.swiglu(flat[rows], pre + f"experts.{e}.")
            out.index_add_(0, rows, y * wts[rows, slot][:, None])
        if pre + "shared_experts.gate_proj.weight" in self.w:
            out = out + self.swiglu(flat, pre + "shared_experts.")
        return out.reshape(shape)

    def __call__(self, x, t, y):
        N, C, H, W = x.shape
        p, D = self.p, self.D
        h = F.conv2d(x, self.w["x_embedder.proj.weight"], self.w["x_embedder.proj.bias"], stride=p)
        h = h.flatten(2).transpose(1, 2) + pos_embed(H // p, W // p, D)[None]
        te = self.lin(F.silu(self.lin(timestep_embedding(t), "t_embedder.mlp.0")), "t_embedder.mlp.2")
        c = F.silu(te + self.w["y_embedder.embedding_table.weight"][y])
        hd = D // self.heads
        for i in range(self.depth):
            b = f"blocks.{i}."
            sm, cm, gm, sf, cf, gf = self.lin(c, b + "adaLN_modulation.1").chunk(6, dim=1)
            z = F.layer_norm(h, (D,), eps=1e-6) * (1 + cm[:, None]) + sm[:, None]
            qkv = self.lin(z, b + "attn.qkv").reshape(N, -1, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            a = ((q @ k.transpose(-2, -1)) * hd ** -0.5).softmax(-1) @ v
            h = h + gm[:, None] * self.lin(a.transpose(1, 2).reshape(N, -1, D), b + "attn.proj")
            z = F.layer_norm(h, (D,), eps=1e-6) * (1 + cf[:, None]) + sf[:, None]
            if self.moe:
                m = self.moe_mlp(z, i)
            else:
                m = self.lin(F.gelu(self.lin(z, b + "mlp.fc1"), approximate="tanh"), b + "mlp.fc2")
            h = h + gf[:, None] * m
        shift, scale = self.lin(c, "final_layer.adaLN_modulation.1").chunk(2, dim=1)
        h = self.lin(F.layer_norm(h, (D,), eps=1e-6) * (1 + scale[:, None]) + shift[:, None], "final_layer.linear")
        h = h.reshape(N, H // p, W // p, p, p, self.outC)
        return torch.einsum("nhwpqc->nchpwq", h).reshape(N, self.outC, H, W)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--batch", type=int, nargs="+", default=[1])
    ap.add_argument("--height", type=int, default=32)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = DiT(read_safetensors(a.weights), a.heads)
    g = torch.Generator().manual_seed(0)
    result = {"threads": torch.get_num_threads(), "torch": torch.__version__, "batches": {}}
    with torch.no_grad():
        for n in a.batch:
            x = torch.randn(n, model.C, a.height, a.width, generator=g)
            t = torch.full((n,), 500.0)
            y = torch.arange(n) % 1000
            model(x, t, y)  # warm-up
            secs = []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                model(x, t, y)
                secs.append(time.perf_counter() - t0)
            result["batches"][str(n)] = secs
    print(json.dumps(result))


if __name__ == "__main__":
    main()
