// `npm run bench -- --only models` (or `node bench/models.mjs`): the native DiT / DiT-MoE forward on
// the CPU, each figure a ratio against a peer measured in the same run (medians of BENCH_RUNS runs,
// default 5; random weights, the speed does not depend on their values):
//   - forward time vs eager PyTorch (bench/dit_torch.py, same safetensors weights widened to f32,
//     torch.set_num_threads = our thread count): DiT-XL/2 at 32x32x4 batch 1 and 8, DiT-S/2 batch 1;
//   - the model FLOP rate (2 x multiply-adds of every Linear, attention and the patch embedding) vs
//     the f32 GEMM rate of the engine's own GEMM on the model's largest GEMM shape, in the same run;
//   - DiT-MoE-S/2 (8 experts, top-2, shared expert): time per token of the MoE MLP vs the
//     dense-equivalent MLP (all experts as one dense SwiGLU) times the routed top-k + shared share;
//   - peak RSS of a DiT-XL/2 forward with f16 weights (a fresh process) vs weights + activations.
// Set BENCH_MODELS_SKIP_XL=1 to skip the XL/2 rows (2.7 GB of f32 weights are written to $TMPDIR).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backendInfo, loadModel, measureGemmRate, randn } from '../dist/index.js';
import { denseMacs, writeDit } from './dit-common.mjs';
import { findPython, tunedTorchEnv } from './torch-env.mjs';

const runs = Number(process.env.BENCH_RUNS ?? 5);
const here = dirname(fileURLToPath(import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'nd-bench-models-'));
const threads = backendInfo().threads ?? cpus().length;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Median forward time; with `gemm` ({ m, k, n }) each run is paired with one GEMM of that shape right
// after it, and the median of the per-run rate ratios is returned too (noise hits both alike).
async function timeOurs(model, n, h, w, gemm) {
  const x = await randn([n, 4, h, w], { seed: 1 });
  const t = new Array(n).fill(500), y = Array.from({ length: n }, (_, i) => i % model.config.numClasses);
  (await model.forward(x, t, y)).dispose();
  const secs = [], gemmRates = [], ratios = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const o = await model.forward(x, t, y);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    secs.push(s);
    o.dispose();
    if (gemm) {
      const g = (await measureGemmRate({ ...gemm, reps: 3 })).gflops;
      gemmRates.push(g);
      ratios.push(gemm.modelFlops / s / 1e9 / g);
    }
  }
  x.dispose();
  return gemm ? { seconds: median(secs), gemm: median(gemmRates), ratio: median(ratios) } : median(secs);
}

const py = findPython();
const torchEnv = tunedTorchEnv(threads);
const torchBlas = torchEnv.LD_LIBRARY_PATH ? `OpenBLAS (${torchEnv.OPENBLAS_CORETYPE} kernels)` : 'the system libblas.so.3';
function timeTorch(path, heads, batches, tuned = true) {
  if (!py) return null;
  const r = spawnSync(py, [join(here, 'dit_torch.py'), path, '--heads', `${heads}`, '--batch', ...batches.map(String), '--runs', `${tuned ? runs : Math.min(runs, 3)}`, '--threads', `${threads}`],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 3_600_000, env: { ...process.env, ...(tuned ? torchEnv : {}) } });
  if (r.status !== 0) throw new Error('dit_torch.py failed');
  const j = JSON.parse(r.stdout.trim().split('\n').pop());
  return Object.fromEntries(Object.entries(j.batches).map(([b, s]) => [b, median(s)]));
}

const rows = [];
const f = (x, d = 2) => x.toFixed(d);
console.log(`| model | batch | ours ms | PyTorch, tuned OpenBLAS, ms | speed-up | PyTorch as installed, ms | speed-up | model GFLOP/s | GEMM GFLOP/s (same run) | model / GEMM |`);
console.log(`|---|---|---|---|---|---|---|---|---|---|`);
async function denseRow(name, cfg, heads, batches) {
  const path = join(dir, `${name.replace(/\W/g, "-")}.safetensors`);
  await writeDit(path, cfg);
  const model = await loadModel(path);
  const torch = timeTorch(path, heads, batches);
  const torchInstalled = timeTorch(path, heads, batches, false);
  for (const b of batches) {
    const T = (32 / cfg.p) ** 2;
    const flops = 2 * denseMacs(cfg, b, 32, 32);
    const r = await timeOurs(model, b, 32, 32, { m: b * T, k: cfg.D, n: 4 * cfg.D, modelFlops: flops });
    const ours = r.seconds;
    const gf = flops / ours / 1e9;
    const tt = torch?.[String(b)], ti = torchInstalled?.[String(b)];
    const line = `| ${name} | ${b} | ${f(ours * 1e3, 1)} | ${tt ? f(tt * 1e3, 1) : 'n/a'} | ${tt ? f(tt / ours) + 'x' : 'n/a'} | ${ti ? f(ti * 1e3, 1) : 'n/a'} | ${ti ? f(ti / ours) + 'x' : 'n/a'} | ${f(gf, 1)} | ${f(r.gemm, 1)} | ${f(r.ratio)} |`;
    console.log(line);
    rows.push(line);
  }
  model.dispose();
  rmSync(path, { force: true });
}

try {
  await denseRow('DiT-S/2', { depth: 12, D: 384, p: 2 }, 6, [1, 8]);
  if (!process.env.BENCH_MODELS_SKIP_XL) await denseRow('DiT-XL/2', { depth: 28, D: 1152, p: 2 }, 16, [1, 8]);

  // ---- MoE: the routed MLP's time per token vs its share of the dense-equivalent MLP ---------------
  // Three S-width models that differ only in their MLP: the MoE (8 x 1536 experts, top-2, shared 768),
  // the dense equivalent (one 8 x 1536 expert + the shared one, all active), and a trunk with a
  // negligible MLP (one 8-wide expert); MLP time = model time - trunk time.
  const D = 384, E = 8, H = 4 * D, S = 2 * D, k = 2;
  const mk = async (name, moe) => { const p = join(dir, name + '.safetensors'); await writeDit(p, { depth: 12, D, p: 2, moe }); return p; };
  const pMoe = await mk('moe', { experts: E, hidden: H, shared: S });
  const pDense = await mk('dense-eq', { experts: 1, hidden: E * H, shared: S });
  const pTrunk = await mk('trunk', { experts: 1, hidden: 8, shared: 0 });
  const share = (k * H + S) / (E * H + S);
  console.log(`\n| DiT-MoE-S/2 8E2A | batch | MoE MLP ms | dense-equivalent MLP ms | x share ${f(share, 3)} | MoE / (share x dense) |`);
  console.log(`|---|---|---|---|---|---|`);
  for (const b of [1, 8]) {
    const times = {};
    for (const [name, p] of [['moe', pMoe], ['dense', pDense], ['trunk', pTrunk]]) {
      const m = await loadModel(p, { layout: 'dit-moe', topK: name === 'moe' ? k : 1 });
      times[name] = await timeOurs(m, b, 32, 32);
      m.dispose();
    }
    const moeMlp = times.moe - times.trunk, denseMlp = times.dense - times.trunk;
    const line = `| routed top-2 + shared | ${b} | ${f(moeMlp * 1e3, 1)} | ${f(denseMlp * 1e3, 1)} | ${f(share * denseMlp * 1e3, 1)} | ${f(moeMlp / (share * denseMlp))} |`;
    console.log(line);
    rows.push(line);
  }

  // ---- memory: a fresh process loads DiT-XL/2 with f16 weights and runs one forward ----------------
  if (!process.env.BENCH_MODELS_SKIP_XL) {
    const p16 = join(dir, 'xl-f16.safetensors');
    await writeDit(p16, { depth: 28, D: 1152, p: 2, dtype: 'f16' });
    const child = spawnSync(process.execPath, [join(here, 'models_rss.mjs'), p16, '8'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (child.status !== 0) throw new Error('models_rss.mjs failed');
    const r = JSON.parse(child.stdout.trim().split('\n').pop());
    const MB = 2 ** 20;
    console.log(`\n| DiT-XL/2 f16, batch ${r.batch} | MB |`);
    console.log(`|---|---|`);
    console.log(`| weights (file bytes) | ${f(r.weights / MB, 1)} |`);
    console.log(`| activations (forward scratch + input + output) | ${f(r.activations / MB, 1)} |`);
    console.log(`| peak RSS - RSS before loading | ${f(r.peakDelta / MB, 1)} |`);
    console.log(`| budget: weights + 1.3 x activations | ${f((r.weights + 1.3 * r.activations) / MB, 1)} |`);
    console.log(`| peak / budget | ${f(r.peakDelta / (r.weights + 1.3 * r.activations), 3)} |`);
  }
  console.log(`\n${threads} threads; ${runs} runs, medians (model / GEMM: median of per-run ratios, each forward paired with a GEMM of the model's [tokens, D] x [D, 4D] shape). PyTorch ${py ? 'from ' + py : 'not found'}: "tuned" with ${torchBlas}, "as installed" with the system libblas.so.3 (${runs > 3 ? 3 : runs} runs).`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
