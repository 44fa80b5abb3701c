#!/usr/bin/env python3
"""torch.nn.functional.linear GFLOP/s on the DiT GEMM shapes (the baseline for bench/gemm_bench.cpp).

Run with the system torch:  /usr/bin/python3 bench/gemm_torch.py [runs=7]
2 threads (torch.set_num_threads(2)); f32 weights, and f16 weights widened per call (what a
model keeping f16 weights would do in eager mode); median (and best) of `runs` samples of >= 20 ms.
"""
import sys
import time

import torch

runs = max(5, int(sys.argv[1])) if len(sys.argv) > 1 else 7
torch.set_num_threads(2)
torch.manual_seed(0)
print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, median (best) of {runs}")
cfg = torch.__config__.show()
blas = [t.strip(",") for t in cfg.split() if t.startswith("BLAS_INFO=")]
print("torch", ", ".join(blas) or "BLAS_INFO unknown", "(generic = the system libblas.so.3; see docs/design.md)")

shapes = [(m, k, n) for m in (256, 2048) for (k, n) in
          ((1152, 3456), (1152, 1152), (1152, 4608), (4608, 1152), (384, 1152), (384, 1536), (1536, 384))]
shapes += [(m, 1152, 6912) for m in (1, 2, 4, 8, 16)]

print(f"{'m':>5} {'k':>5} {'n':>5} | {'f32 GF/s med (best)':>20} | {'f16->f32 GF/s med (best)':>24}")
with torch.no_grad():
    for m, k, n in shapes:
        x = torch.rand(m, k) * 2 - 1
        w = (torch.rand(n, k) * 2 - 1) * 0.05
        b = torch.rand(n) * 2 - 1
        wh = w.half()
        flop = 2.0 * m * n * k

        def f32():
            torch.nn.functional.linear(x, w, b)

        def f16():
            torch.nn.functional.linear(x, wh.float(), b)

        res = []
        for fn in (f32, f16):
            fn()
            t0 = time.perf_counter()
            fn()
            one = max(time.perf_counter() - t0, 1e-6)
            reps = int(min(2000, max(1, 20e-3 / one)))
            g = []
            for _ in range(runs):
                t0 = time.perf_counter()
                for _ in range(reps):
                    fn()
                g.append(flop * reps / (time.perf_counter() - t0) * 1e-9)
            g.sort()
            res.append((g[len(g) // 2], g[-1]))
        print(f"{m:5d} {k:5d} {n:5d} | {res[0][0]:10.1f} ({res[0][1]:6.1f}) | {res[1][0]:13.1f} ({res[1][1]:6.1f})")
