#!/usr/bin/python3
"""torch baseline for bench/attention_bench.cpp: softmax(q @ k^T * scale) @ v (torch 1.13 has no
scaled_dot_product_attention), same shapes (batch 1, heads 16, tokens 256/1024/4096, headDim 64/72),
2 threads, GFLOP/s counted as 4 * tokens^2 * headDim * heads. Run: /usr/bin/python3 bench/attention_torch.py"""
import time

import torch

torch.set_num_threads(2)
torch.manual_seed(0)


def attention(q, k, v, scale):
    return torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * scale, dim=-1).matmul(v)


print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
print(f"{'tokens':>6} {'heads':>5} {'dim':>5} {'torch GFLOP/s':>14}")
heads = 16
with torch.no_grad():
    for dim in (64, 72):
        for tokens in (256, 1024, 4096):
            qkv = torch.randn(1, tokens, 3, heads, dim)
            q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))  # [1, heads, tokens, dim] views
            scale = dim ** -0.5
            attention(q, k, v, scale)
            best, total, reps = 1e30, 0.0, 0
            while total < 1.0 or reps < 2:
                t0 = time.perf_counter()
                attention(q, k, v, scale)
                dt = time.perf_counter() - t0
                best, total, reps = min(best, dt), total + dt, reps + 1
            flops = 4.0 * tokens * tokens * dim * heads
            print(f"{tokens:>6} {heads:>5} {dim:>5} {flops / best * 1e-9:>14.1f}")
