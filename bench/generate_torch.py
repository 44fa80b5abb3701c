#!/usr/bin/env python3
"""The built-in model's 20-step DPM-Solver++(2M) generation with classifier-free guidance in eager
PyTorch on the CPU, for bench/generate.mjs (side by side with Pipeline.generate()).

    python3 bench/generate_torch.py WEIGHTS.safetensors GRID.json --heads 3 --batch 1 16 --runs 5 --threads 2

GRID.json (written by the Node side from the engine's schedule): {"alpha": [...], "sigma": [...],
"modelT": [...], "scale": 3, "classes": 10}: the step boundaries tStart..tEnd, so both sides walk the
same grid. The update is the multistep second-order DPM-Solver++ in data prediction (first order on
the first step), the model is bench/dit_torch.py's eager DiT on the same weights widened to f32, and
the cond/uncond halves run as one batch. Prints one JSON line: {"batches": {"1": [seconds...], ...}}.
"""
import argparse
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dit_torch import DiT, read_safetensors  # noqa: E402


@torch.no_grad()
def generate(model, grid, y, scale, null_class, gen):
    n = y.shape[0]
    C, p = model.C, model.p
    x = torch.randn(n, C, 32, 32, generator=gen) * grid["sigma"][0]
    y2 = torch.cat([y, torch.full_like(y, null_class)])
    prev_x0, prev_h = None, None
    steps = len(grid["alpha"]) - 1
    for i in range(steps):
        a, s = grid["alpha"][i], grid["sigma"][i]
        a1, s1 = grid["alpha"][i + 1], grid["sigma"][i + 1]
        out = model(torch.cat([x, x]), torch.full((2 * n,), grid["modelT"][i]), y2)[:, :C]
        cond, uncond = out[:n], out[n:]
        eps = cond.clone()
        g = min(3, C)
        eps[:, :g] = uncond[:, :g] + scale * (cond[:, :g] - uncond[:, :g])
        x0 = (x - s * eps) / a
        h = math.log(a1 / s1) - math.log(a / s)
        if prev_x0 is None:
            d = x0
        else:
            r = prev_h / h
            d = x0 + (x0 - prev_x0) / (2 * r)
        x = (s1 / s) * x - a1 * math.expm1(-h) * d
        prev_x0, prev_h = x0, h
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("grid")
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--batch", type=int, nargs="+", default=[1])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = DiT(read_safetensors(args.weights), args.heads)
    with open(args.grid) as f:
        grid = json.load(f)
    gen = torch.Generator().manual_seed(0)
    result = {}
    for b in args.batch:
        y = torch.arange(b) % grid["classes"]
        generate(model, grid, y, grid["scale"], grid["classes"], gen)  # warm-up
        secs = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            generate(model, grid, y, grid["scale"], grid["classes"], gen)
            secs.append(time.perf_counter() - t0)
        result[str(b)] = secs
    print(json.dumps({"batches": result, "threads": args.threads, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
