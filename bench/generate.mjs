// `npm run bench -- --only generate` (or `node bench/generate.mjs`): images per second of the default
// built-in model (builtin:shapes), 20 steps of dpmpp-2m with classifier-free guidance (scale 3), at
// batch 1 and 16: Pipeline.generate() vs the same weights and the same sampler on the same step grid
// in eager PyTorch (bench/generate_torch.py), measured in the same run, medians of BENCH_RUNS (5).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pipeline, backendInfo } from '../dist/index.js';
import { findPython, tunedTorchEnv } from './torch-env.mjs';

const runs = Number(process.env.BENCH_RUNS ?? 5);
const here = dirname(fileURLToPath(import.meta.url));
const threads = backendInfo().threads ?? cpus().length;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const steps = 20, scale = 3, batches = [1, 16];

const pipe = await Pipeline.load();
const cfg = pipe.model.config;
const grid = pipe.schedule.timesteps({ steps, skip: 'logSNR' });
const dir = mkdtempSync(join(tmpdir(), 'nd-bench-generate-'));
const gridPath = join(dir, 'grid.json');
writeFileSync(gridPath, JSON.stringify({
  alpha: grid.map((t) => pipe.schedule.alpha(t)), sigma: grid.map((t) => pipe.schedule.sigma(t)),
  modelT: grid.map((t) => pipe.schedule.modelTimestep(t)), scale, classes: cfg.numClasses,
}));

const ours = {};
for (const b of batches) {
  const classes = Array.from({ length: b }, (_, i) => i % cfg.numClasses);
  (await pipe.generate({ classes, steps, sampler: 'dpmpp-2m', guidanceScale: scale, seed: 0 })).latents.dispose();
  const secs = [];
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    const out = await pipe.generate({ classes, steps, sampler: 'dpmpp-2m', guidanceScale: scale, seed: r });
    secs.push(Number(process.hrtime.bigint() - t0) / 1e9);
    out.latents.dispose();
  }
  ours[b] = median(secs);
}

const py = findPython();
const tunedEnv = tunedTorchEnv(threads);
function torchTimes(env) {
  if (!py) return null;
  const r = spawnSync(py, [join(here, 'generate_torch.py'), pipe.path, gridPath, '--heads', `${cfg.heads}`, '--batch', ...batches.map(String), '--runs', `${runs}`, '--threads', `${threads}`],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error('generate_torch.py failed');
  const j = JSON.parse(r.stdout.trim().split('\n').pop());
  return Object.fromEntries(Object.entries(j.batches).map(([b, s]) => [b, median(s)]));
}
const tuned = torchTimes(tunedEnv);
const installed = torchTimes({});
rmSync(dir, { recursive: true, force: true });

const f = (x, d = 2) => x.toFixed(d);
console.log(`| builtin:${pipe.name}, ${steps} steps dpmpp-2m, CFG ${scale} | batch | ours images/s | PyTorch (tuned OpenBLAS) images/s | speed-up | PyTorch as installed images/s | speed-up |`);
console.log('|---|---|---|---|---|---|---|');
for (const b of batches) {
  const o = b / ours[b];
  const t = tuned ? b / tuned[String(b)] : null, i = installed ? b / installed[String(b)] : null;
  console.log(`| ${cfg.family} D${cfg.hidden} depth ${cfg.depth} p${cfg.patch} | ${b} | ${f(o, 1)} | ${t ? f(t, 1) : 'n/a'} | ${t ? f(o / t) + 'x' : 'n/a'} | ${i ? f(i, 1) : 'n/a'} | ${i ? f(o / i) + 'x' : 'n/a'} |`);
}
console.log(`\n${threads} threads; ${runs} runs, medians; the same safetensors weights and step grid on both sides; PyTorch ${py ? 'from ' + py : 'not found'}.`);
pipe.dispose();
