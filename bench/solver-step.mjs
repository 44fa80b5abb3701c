// `npm run bench -- --only solver-step` (or `node bench/solver-step.mjs [--out FILE]`): the per-step
// overhead of our samplers (everything but the denoiser) on a batch of 8 latents 4x128x128 f32
// (n = 524288 floats, 2 MiB per tensor), through the step-wise API, against two peers measured in
// the same run:
//   - memcpy bandwidth of this process: Float32Array.prototype.set into a preallocated array (V8
//     copies same-type arrays with memmove), for the latent's 2 MiB and for 64 MiB, on one thread and
//     split over as many threads as our pool has (the main thread and workers, each copying its own
//     slice of private memory); bytes moved by a copy = 2 x size (read + write)
//   - the same samplers written in eager PyTorch (bench/solver_step_torch.py, torch.set_num_threads
//     = our thread count), when a python3 with torch is found ($PYTHON, python3, /usr/bin/python3)
// Every sampler: 5 warm-up steps, then the median over BENCH_RUNS (default 15) blocks of 4 steps of
// the block time / 4. step() returns a new tensor: it copies x (allocation from our caching allocator
// plus one read + write of n floats) and then runs the sampler's fused pass in place on the copy.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { backendInfo, createSampler, getThreads, randn, schedules } from '../dist/index.js';

const runs = Number(process.env.BENCH_RUNS ?? 15);
const warmup = 5;
const stepsPerRun = 4;
const outArg = process.argv.indexOf('--out');
const shape = [8, 4, 128, 128];
const n = shape.reduce((a, b) => a * b, 1);
const F32 = 4;
const MiB = 2 ** 20;
const threads = getThreads();

// Floats moved per step, in units of n, read from native/solvers (StepPass: the fused pass reads x,
// m and each history term or noise vector it is given once, and writes d (the converted model output,
// kept as history) and out once). Steady state, i.e. after the warm-up steps; the noise of the
// stochastic samplers is generated first (randn writes n floats) and read by the pass.
const COPY = 2; // step(): the copy of x (read x, write the new tensor)
const pass = (reads, writes) => ({ reads, writes });
const SAMPLERS = [
  { name: 'ddim', passes: [pass(['x', 'm'], ['d', 'x'])] },
  { name: 'euler', passes: [pass(['x', 'm'], ['d', 'x'])] },
  { name: 'dpmpp-2m', passes: [pass(['x', 'm', 'h1'], ['h0', 'x'])] },
  { name: 'dpmpp-3m', passes: [pass(['x', 'm', 'h1', 'h2'], ['h0', 'x'])] },
  // UniPC (bh2, order 2, corrector on): UniC reads x, m, the last predicted point and two history
  // entries, writes the new history entry and the corrected point; UniP reads the corrected point and
  // two history entries and writes x.
  { name: 'unipc', passes: [pass(['x', 'm', 'last', 'h2', 'h1'], ['h0', 'last']), pass(['last', 'h1', 'h0'], ['x'])] },
  { name: 'dpmpp-2m-sde', noise: true, passes: [pass(['x', 'm', 'h1', 'z'], ['h0', 'x'])] },
  { name: 'euler-ancestral', noise: true, passes: [pass(['x', 'm', 'z'], ['d', 'x'])] },
];
for (const s of SAMPLERS) {
  s.floats = COPY + (s.noise ? 1 : 0) + s.passes.reduce((a, p) => a + p.reads.length + p.writes.length, 0);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
const now = () => process.hrtime.bigint();
const secs = (t0) => Number(now() - t0) / 1e9;

// Median over `runs` blocks of `per` calls, after `warm` calls; seconds per call.
async function timeBlocks(fn, per, warm = warmup) {
  for (let i = 0; i < warm; i++) await fn();
  const ts = [];
  for (let r = 0; r < runs; r++) {
    const t0 = now();
    for (let i = 0; i < per; i++) await fn();
    ts.push(secs(t0) / per);
  }
  return median(ts);
}
function timeBlocksSync(fn, per, warm = warmup) {
  for (let i = 0; i < warm; i++) fn();
  const ts = [];
  for (let r = 0; r < runs; r++) {
    const t0 = now();
    for (let i = 0; i < per; i++) fn();
    ts.push(secs(t0) / per);
  }
  return median(ts);
}

// ---- memcpy peers ----------------------------------------------------------------------------------
function copyOneThread(floats, per) {
  const src = new Float32Array(floats).map((_, i) => i);
  const dst = new Float32Array(floats);
  return timeBlocksSync(() => dst.set(src), per, 8);
}

// The same copy on `threads` threads: the main thread and threads - 1 workers each copy 1/threads of
// the bytes between their own (unshared, so V8 uses memmove) arrays. Like OpenMP's threads between
// parallel regions, each side spins a while on a shared counter before it sleeps in Atomics.wait, so
// that back-to-back copies do not pay a wake-up each. The workers end before the samplers run.
const SPIN = 200_000;
async function copyThreads(floats, per) {
  const ctl = new Int32Array(new SharedArrayBuffer(8)); // [generation, workers done]
  const slice = Math.ceil(floats / threads / 16) * 16;
  const len = (w) => Math.max(0, Math.min(slice, floats - w * slice));
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    const ctl = new Int32Array(workerData.ctl);
    const src = new Float32Array(workerData.len).map((_, i) => i), dst = new Float32Array(workerData.len);
    parentPort.postMessage('ready');
    for (let gen = 0; ; ) {
      for (let i = 0; i < ${SPIN} && Atomics.load(ctl, 0) === gen; i++);
      Atomics.wait(ctl, 0, gen);
      gen = Atomics.load(ctl, 0);
      if (gen < 0) break;
      dst.set(src);
      Atomics.add(ctl, 1, 1);
      Atomics.notify(ctl, 1);
    }`;
  const workers = [];
  for (let w = 1; w < threads; w++) {
    const worker = new Worker(code, { eval: true, workerData: { ctl: ctl.buffer, len: len(w) } });
    await new Promise((resolve) => worker.once('message', resolve));
    workers.push(worker);
  }
  const src = new Float32Array(len(0)).map((_, i) => i);
  const dst = new Float32Array(len(0));
  const copy = () => {
    Atomics.store(ctl, 1, 0);
    Atomics.add(ctl, 0, 1);
    Atomics.notify(ctl, 0);
    dst.set(src);
    for (let i = 0; i < SPIN && Atomics.load(ctl, 1) !== threads - 1; i++);
    for (let v = Atomics.load(ctl, 1); v !== threads - 1; v = Atomics.load(ctl, 1)) Atomics.wait(ctl, 1, v);
  };
  const t = timeBlocksSync(copy, per, 8);
  Atomics.store(ctl, 0, -1);
  Atomics.notify(ctl, 0);
  await Promise.all(workers.map((w) => new Promise((resolve) => w.once('exit', resolve))));
  return t;
}

// ---- our samplers ------------------------------------------------------------------------------------
const schedule = schedules.vpDiscrete({ betaSchedule: 'scaled-linear' });
const m = await randn(shape, { seed: 2 });
function makeSampler(name) {
  return createSampler({ schedule, sampler: name, steps: 1000, skip: 'time-uniform', shape, dtype: 'f32', prediction: 'eps', seed: 1 });
}
async function ours(name) {
  // step() (synchronous, on the JS thread) and stepAsync() (the same work on a worker thread), each on
  // its own sampler; every step returns a new tensor and the previous one is disposed.
  let s = makeSampler(name);
  let x = await randn(shape, { seed: 1 });
  const sync = timeBlocksSync(() => { const y = s.step(x, m); x.dispose(); x = y; }, stepsPerRun);
  const finite = (t) => (t.dataSync()).every(Number.isFinite);
  if (!finite(x)) throw new Error(`${name}: non-finite state after step()`);
  x.dispose();
  s = makeSampler(name);
  x = await randn(shape, { seed: 1 });
  const async = await timeBlocks(async () => { const y = await s.stepAsync(x, m); x.dispose(); x = y; }, stepsPerRun);
  x.dispose();
  return { sync, async };
}

// ---- PyTorch ------------------------------------------------------------------------------------------
function findTorchPython() {
  const tried = [];
  for (const py of [...new Set([process.env.PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean))]) {
    const r = spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
    tried.push(py);
    if (r.status === 0) return { py, tried };
  }
  return { py: undefined, tried };
}
// PyTorch's CPU tensors come from glibc malloc: 2 MiB temporaries cross its (dynamic) mmap threshold
// and trimming of the heap top, so some of them are fresh pages each time. The second run pins both
// (the largest mmap threshold glibc accepts, and no trimming), so that every temporary reuses memory.
const TUNED_MALLOC = { MALLOC_MMAP_THRESHOLD_: String(32 * MiB), MALLOC_TRIM_THRESHOLD_: String(1024 * MiB) };
function torchRun(py, env = {}) {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'solver_step_torch.py');
  const args = [script, '--threads', String(threads), '--runs', String(runs), '--steps-per-run', String(stepsPerRun),
    '--warmup', String(warmup), '--shape', shape.join(','), '--samplers', SAMPLERS.map((s) => s.name).join(',')];
  const r = spawnSync(py, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000, env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${py} ${args.join(' ')} failed (${r.error?.message ?? r.signal ?? r.status})`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

// Busy CPU time of the whole machine and of this process plus its waited-for children (the PyTorch
// runs), in seconds, to tell how much of the run other processes took (the machines are shared).
function cpuTimes() {
  const hz = 100; // USER_HZ: the unit of /proc/stat and /proc/self/stat on Linux
  try {
    const all = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal guest guest_nice: busy = user .. softirq less idle, iowait
    const busy = all.slice(0, 7).reduce((a, b) => a + b, 0) - all[3] - all[4];
    const steal = all[7] ?? 0;
    const self = readFileSync('/proc/self/stat', 'utf8');
    const f = self.slice(self.lastIndexOf(')') + 2).split(' ').map(Number); // fields from 3 (state) on
    const ours = f[11] + f[12] + f[13] + f[14]; // utime, stime, cutime, cstime (fields 14-17)
    return { busy: busy / hz, steal: steal / hz, ours: ours / hz, wall: Number(process.hrtime.bigint()) / 1e9 };
  } catch {
    return { busy: NaN, steal: NaN, ours: NaN, wall: Number(process.hrtime.bigint()) / 1e9 };
  }
}

// ---- run -----------------------------------------------------------------------------------------------
const cpuStart = cpuTimes();
const copy2 = copyOneThread(n, 16);
const copy64 = copyOneThread((64 * MiB) / F32, 1);
const copy2T = await copyThreads(n, 16);
const copy64T = await copyThreads((64 * MiB) / F32, 1);
const xc = await randn(shape, { seed: 3 });
const clone = await timeBlocks(async () => (await xc.clone()).dispose(), 16, 8);
const noise = await timeBlocks(async () => (await randn(shape, { seed: 4 })).dispose(), 4, 2);
xc.dispose();

const results = {};
for (const s of SAMPLERS) results[s.name] = await ours(s.name);

const { py, tried } = findTorchPython();
let torch;
let torchTuned;
let torchNote;
if (py) {
  torch = torchRun(py);
  torchTuned = torchRun(py, TUNED_MALLOC);
  torchNote = `PyTorch ${torch.torch} (${py}), torch.set_num_threads(${torch.threads}), eager, f32, out-of-place ops as diffusers writes them (bench/solver_step_torch.py).`;
} else {
  torchNote = `PyTorch column skipped: no python3 with torch found (tried ${tried.join(', ')}; set PYTHON=...).`;
}

// ---- report ------------------------------------------------------------------------------------------
const bytes = n * F32;
const gbs = (b, s) => (b / s / 1e9).toFixed(2);
const ms = (s) => (s * 1e3).toFixed(3);
const copyRate = (s) => (2 * bytes) / s; // bytes/s of a copy of one latent
const info = backendInfo();
const cpuEnd = cpuTimes();
const otherCpu = (cpuEnd.busy - cpuStart.busy) - (cpuEnd.ours - cpuStart.ours);
const wall = cpuEnd.wall - cpuStart.wall;
// Cache sizes from sysfs (L2 per core, L3 shared), for reading the copy rows.
function caches() {
  try {
    const dir = '/sys/devices/system/cpu/cpu0/cache';
    return readdirSync(dir).filter((d) => d.startsWith('index')).map((d) => {
      const f = (k) => readFileSync(join(dir, d, k), 'utf8').trim();
      return `L${f('level')}${f('type') === 'Data' ? 'd' : f('type') === 'Instruction' ? 'i' : ''} ${f('size')}`;
    }).join(', ');
  } catch {
    return 'cache sizes unknown';
  }
}
const lines = [
  `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${info.cpu.logicalCpus} logical CPUs, ${threads} native threads, ISA path ${info.cpu.isa}; caches per core (cpu0): ${caches()}; Node ${process.version}.`,
  `Other processes on this machine used ${Math.max(0, otherCpu).toFixed(1)} CPU-seconds during the ${wall.toFixed(1)} s of this benchmark (/proc/stat busy time minus this process and its children); hypervisor steal ${(cpuEnd.steal - cpuStart.steal).toFixed(1)} s.`,
  `Latent [${shape.join(', ')}] f32: n = ${n} floats, ${(bytes / MiB).toFixed(0)} MiB per tensor. Samplers: vpDiscrete scaled-linear, 1000 time-uniform steps, eps prediction, seed 1.`,
  `Median of ${runs} blocks of ${stepsPerRun} steps (copies: blocks of 16 copies; 64 MiB: single copies) after warm-up. A copy moves 2 x size bytes (read + write).`,
  torchNote,
  '',
  '| copy / reference | size | ms | GB/s |',
  '| --- | --- | --- | --- |',
  `| Float32Array.prototype.set, 1 thread (memmove) | 2 MiB | ${ms(copy2)} | ${gbs(2 * bytes, copy2)} |`,
  `| Float32Array.prototype.set, 1 thread (memmove) | 64 MiB | ${ms(copy64)} | ${gbs(2 * 64 * MiB, copy64)} |`,
  `| Float32Array.prototype.set on ${threads} threads (main + ${threads - 1} worker${threads > 2 ? 's' : ''}, 1/${threads} of the bytes each) | 2 MiB | ${ms(copy2T)} | ${gbs(2 * bytes, copy2T)} |`,
  `| Float32Array.prototype.set on ${threads} threads (main + ${threads - 1} worker${threads > 2 ? 's' : ''}, 1/${threads} of the bytes each) | 64 MiB | ${ms(copy64T)} | ${gbs(2 * 64 * MiB, copy64T)} |`,
  `| await tensor.clone() (native allocation + memcpy, worker thread) | 2 MiB | ${ms(clone)} | ${gbs(2 * bytes, clone)} |`,
  ...(torch ? [`| torch: dst.copy_(src) (${torch.threads} threads) | 2 MiB | ${torch.copyLatentMs.toFixed(3)} | ${gbs(2 * bytes, torch.copyLatentMs / 1e3)} |`] : []),
  `| await randn([${shape.join(', ')}]) (the noise of one SDE step; GB/s written) | 2 MiB | ${ms(noise)} | ${gbs(bytes, noise)} |`,
  '',
  `"÷ copy": our GB/s (floats moved x 4 B / step() time) over the GB/s of a copy above: 2 MiB on 1 thread, 2 MiB on ${threads} threads, 64 MiB on ${threads} threads.`,
  '"torch ÷ ours": PyTorch ms/step over our step() ms/step (> 1: we are faster); "tuned malloc": the same script with',
  `${Object.entries(TUNED_MALLOC).map(([k, v]) => `${k}=${v}`).join(' ')} (glibc keeps and reuses the freed temporaries).`,
  '',
  `| sampler | floats moved / step | step() ms | GB/s | ÷ copy 2 MiB 1 thread | ÷ copy 2 MiB ${threads} threads | ÷ copy 64 MiB ${threads} threads | stepAsync() ms | torch ms | torch ÷ ours | torch, tuned malloc, ms | torch, tuned malloc ÷ ours |`,
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
];
const torchCells = (res, ours) => {
  const t = res?.msPerStep?.[ours.name];
  return t === undefined ? ['skipped', '–'] : [t.toFixed(3), (t / 1e3 / ours.sync).toFixed(2)];
};
for (const s of SAMPLERS) {
  const r = { ...results[s.name], name: s.name };
  const rate = (s.floats * bytes) / r.sync;
  lines.push(`| ${[s.name, `${s.floats} n`, ms(r.sync), (rate / 1e9).toFixed(2), (rate / copyRate(copy2)).toFixed(2), (rate / copyRate(copy2T)).toFixed(2),
    (rate / ((2 * 64 * MiB) / copy64T)).toFixed(2),
    ms(r.async), ...torchCells(torch, r), ...torchCells(torchTuned, r)].join(' | ')} |`);
}
lines.push('', 'Floats moved per step (units of n; "copy" = the copy of x inside step(); "randn" = writing the noise):', '');
for (const s of SAMPLERS) {
  const passes = s.passes.map((p) => `read ${p.reads.join(', ')}; write ${p.writes.join(', ')}`).join(' / then ');
  lines.push(`- ${s.name}: ${s.floats} = copy 2${s.noise ? ' + randn 1' : ''} + ${passes}`);
}
const table = lines.join('\n');
console.log(table);
if (outArg > 0) writeFileSync(process.argv[outArg + 1], `${table}\n`);
