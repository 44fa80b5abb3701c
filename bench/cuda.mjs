// The CUDA backend against PyTorch on the same GPU, same weights (bf16), same run:
//  - DiT-XL/2 forward on 32x32x4 latents at batch 1, 8, 64: images/s of ours, PyTorch eager and
//    torch.compile, and our model FLOP rate over the bf16 matmul rate PyTorch (cuBLAS) reaches in the
//    same run;
//  - end to end: 20 steps of dpmpp-2m with classifier-free guidance at batch 64 (sample());
//  - DiT-MoE-XL-like (8 SwiGLU experts, top-2) against a dense DiT-XL of equal active parameters:
//    tokens per second of each, both ours.
// Without a usable CUDA device it says why and prints no figures.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { init, loadModel, measureCudaStepPass, randn, sample, schedules } from '../dist/index.js';
import { denseMacs, writeDit } from './dit-common.mjs';
import { findPython } from './torch-env.mjs';

const runs = Number(process.env.BENCH_RUNS ?? 5);
const here = dirname(fileURLToPath(import.meta.url));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

let info;
try {
  info = await init({ backend: process.env.ND_BACKEND ?? 'auto' });
} catch (err) {
  info = { backend: 'cpu', cudaUnavailableReason: err.message };
}
if (info.backend !== 'cuda') {
  console.log(`CUDA benchmark skipped: no usable CUDA device (${info.cudaUnavailableReason ?? 'the CPU backend is loaded'}).`);
  process.exit(0);
}

const cfg = { depth: 28, D: 1152, p: 2 };  // DiT-XL/2
const dir = mkdtempSync(join(tmpdir(), 'nd-bench-cuda-'));
const path = join(dir, 'dit-xl2-bf16.safetensors');
try {
  await writeDit(path, { ...cfg, dtype: 'bf16' });
  const model = await loadModel(path, { device: 'cuda', heads: 16 });
  const batches = [1, 8, 64];
  const ours = {};
  for (const n of batches) {
    const x = await randn([n, 4, 32, 32], { seed: 1, device: 'cuda:0' });
    const t = new Array(n).fill(500), y = Array.from({ length: n }, (_, i) => i % 1000);
    for (let i = 0; i < 3; i++) (await model.forward(x, t, y)).dispose();  // eager, capture, replay
    const secs = [];
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      const o = await model.forward(x, t, y);
      secs.push(Number(process.hrtime.bigint() - t0) / 1e9);
      o.dispose();
    }
    ours[n] = median(secs);
    x.dispose();
  }

  const python = findPython();
  const r = spawnSync(python, [join(here, 'cuda_torch.py'), path, '--heads', '16', '--batch', ...batches.map(String), '--runs', String(runs)],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 3_600_000 });
  if (r.status !== 0) throw new Error(`bench/cuda_torch.py failed (${r.status})`);
  const torch = JSON.parse(r.stdout.trim().split('\n').pop());

  console.log(`GPU: ${torch.device}; PyTorch ${torch.torch}; bf16 matmul (cuBLAS, 8192^3): ${torch.matmulTflops.toFixed(0)} TFLOP/s; ` +
    `device copy: ${torch.copyGBs.toFixed(0)} GB/s; medians of ${runs} runs\n`);
  console.log('| DiT-XL/2 bf16, 32x32x4 | ours images/s | eager images/s | compile images/s | ours / eager | ours / compile | model TFLOP/s | / matmul rate |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const n of batches) {
    const flops = 2 * denseMacs(cfg, n, 32, 32);
    const e = torch.eager[String(n)], c = torch.compile[String(n)];
    const tf = flops / ours[n] / 1e12;
    console.log(`| batch ${n} | ${(n / ours[n]).toFixed(1)} | ${(n / e).toFixed(1)} | ${c ? (n / c).toFixed(1) : '-'} | ` +
      `${(e / ours[n]).toFixed(2)}x | ${c ? (c / ours[n]).toFixed(2) + 'x' : '-'} | ${tf.toFixed(0)} | ${(tf / torch.matmulTflops * 100).toFixed(0)}% |`);
  }

  // End to end: 20 steps of dpmpp-2m with CFG 4 at batch 64 (the sampler's state stays on the host).
  const n = 64;
  const denoiser = model.denoiser({ classes: Array.from({ length: n }, (_, i) => i % 1000), guidanceScale: 4, height: 32, width: 32 });
  const schedule = schedules.vpDiscrete();
  (await sample({ denoiser, schedule, sampler: 'dpmpp-2m', steps: 2, seed: 1 })).dispose();
  const secs = [];
  for (let i = 0; i < Math.max(1, Math.min(runs, 3)); i++) {
    const t0 = process.hrtime.bigint();
    const out = await sample({ denoiser, schedule, sampler: 'dpmpp-2m', steps: 20, seed: 1 });
    secs.push(Number(process.hrtime.bigint() - t0) / 1e9);
    out.dispose();
  }
  console.log(`\nEnd to end, 20 steps dpmpp-2m, CFG 4, batch ${n}: ${(n / median(secs)).toFixed(1)} images/s (${median(secs).toFixed(2)} s per batch)`);
  model.dispose();

  // MoE vs dense at equal active parameters: a dense MLP has 2 matrices of 4D x D (8 D^2), two active
  // SwiGLU experts of width H have 6 H D, so H = 4D/3.
  const moePath = join(dir, 'dit-moe-xl-bf16.safetensors');
  await writeDit(moePath, { ...cfg, dtype: 'bf16', moe: { experts: 8, hidden: (4 * cfg.D) / 3, shared: 0 } });
  const moe = await loadModel(moePath, { device: 'cuda', heads: 16, topK: 2 });
  const dense = await loadModel(path, { device: 'cuda', heads: 16 });
  const tokens = (m, nb) => nb * (32 / cfg.p) * (32 / cfg.p) / m;
  console.log('\n| 8 samples, 32x32x4 | tokens/s | vs dense |');
  console.log('|---|---|---|');
  const perModel = {};
  for (const [name, m] of [['dense DiT-XL/2', dense], ['DiT-MoE-XL/2 8E2A (equal active)', moe]]) {
    const x = await randn([8, 4, 32, 32], { seed: 2, device: 'cuda:0' });
    const t = new Array(8).fill(500), y = Array.from({ length: 8 }, (_, i) => i);
    for (let i = 0; i < 3; i++) (await m.forward(x, t, y)).dispose();
    const ts = [];
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      (await m.forward(x, t, y)).dispose();
      ts.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    perModel[name] = median(ts);
    x.dispose();
  }
  const denseS = perModel['dense DiT-XL/2'];
  for (const [name, s] of Object.entries(perModel)) console.log(`| ${name} | ${tokens(s, 8).toFixed(0)} | ${(denseS / s).toFixed(2)}x |`);
  moe.dispose();
  dense.dispose();

  // The solver step on the device against a device copy, side by side (bytes moved per second).
  console.log('\n| solver step, f32 | elements | step GB/s | copy GB/s | step / copy |');
  console.log('|---|---|---|---|---|');
  for (const elements of [4 * 32 * 32 * 64, 4 * 128 * 128 * 64]) {
    const r = await measureCudaStepPass({ elements, reps: Math.max(runs, 20) });
    const sb = r.stepBytesPerSecond / 1e9, cb = r.copyBytesPerSecond / 1e9;
    console.log(`| dpmpp-2m pass | ${elements} | ${sb.toFixed(0)} | ${cb.toFixed(0)} | ${(sb / cb).toFixed(2)} |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
