// `npm run bench -- --only foundation` (or `node bench/foundation.mjs`): foundation benchmarks, each
// reported as a ratio against a peer measured in the same run (machines are shared and noisy;
// absolute numbers are printed for context only).
//   - tensor copy JS -> native (Tensor.from copy) and native -> JS (data(), dataSync()) vs a
//     TypedArray.set copy of the same bytes inside V8
//   - safetensors load (open + read every tensor) vs `cat FILE > /dev/null` of the same file,
//     both from a warm page cache
//   - f32 -> bf16 cast and randn vs the same native memcpy-bound copy (Tensor.to on CPU)
// Median of N runs (default 7). Writes a markdown table to stdout (and to --out FILE if given).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { backendInfo, configureDevices, loadSafetensors, randn, saveSafetensors, Tensor } from '../dist/index.js';

const runs = Number(process.env.BENCH_RUNS ?? 7);
const outArg = process.argv.indexOf('--out');
const dir = mkdtempSync(join(tmpdir(), 'nd-bench-'));
const MB = 2 ** 20;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timeIt(fn) {
  await fn(); // warm-up
  const ts = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return median(ts);
}

const rows = [];
// A second CPU device, so that tensor.to() measures a plain native copy (allocate + memcpy).
configureDevices({ virtualCpus: 1, threadsPerDevice: cpus().length });
function row(what, bytes, ours, peerName, peer) {
  const gbs = (s) => (bytes / s / 1e9).toFixed(2);
  rows.push(`| ${what} | ${(bytes / MB).toFixed(0)} MiB | ${gbs(ours)} GB/s | ${peerName} | ${gbs(peer)} GB/s | ${(peer / ours).toFixed(2)} |`);
}

for (const mib of [4, 64]) {
  const n = (mib * MB) / 4;
  const src = new Float32Array(n).map((_, i) => i);
  const dst = new Float32Array(n);
  // Copies into memory that is already mapped (our allocator caches blocks) vs TypedArray.set;
  // copies into a fresh array (what data() returns) vs TypedArray.slice, which also allocates.
  const peerSet = await timeIt(() => dst.set(src));
  const peerSlice = await timeIt(() => src.slice());
  row('Tensor.from(f32) JS→native (copy)', mib * MB, await timeIt(() => Tensor.from(src).dispose()), 'TypedArray.set', peerSet);
  const t = Tensor.from(src);
  row('tensor.dataSync() native→JS (new array)', mib * MB, await timeIt(() => t.dataSync()), 'TypedArray.slice', peerSlice);
  row('await tensor.data() native→JS (new array, worker thread)', mib * MB, await timeIt(() => t.data()), 'TypedArray.slice', peerSlice);
  const copyNative = await timeIt(async () => (await t.to('cpu:0')).dispose());
  row('await tensor.cast("bf16")', mib * MB, await timeIt(async () => (await t.cast('bf16')).dispose()), 'tensor.to(other cpu device)', copyNative);
  row(`await randn([1, ${n}]) (f32)`, mib * MB, await timeIt(async () => (await randn([1, n], { seed: 1 })).dispose()), 'tensor.to(other cpu device)', copyNative);
  t.dispose();
}

// safetensors: a 256 MiB file of 16 tensors, like a small model; every row reads all of the bytes.
const tensors = {};
for (let i = 0; i < 16; i++) tensors[`blocks.${i}.weight`] = await randn([1024, 4096], { seed: i });
const file = join(dir, 'model.safetensors');
await saveSafetensors(file, tensors);
for (const t of Object.values(tensors)) t.dispose();
const fileBytes = 16 * 1024 * 4096 * 4;
const cat = await timeIt(() => execFileSync('sh', ['-c', `cat '${file}' > /dev/null`]));
const load = await timeIt(async () => { for (const t of Object.values(await loadSafetensors(file))) t.dispose(); });
row('loadSafetensors (copy into native memory, f32)', fileBytes, load, '`cat file > /dev/null`', cat);
const loadTouch = await timeIt(async () => { for (const t of Object.values(await loadSafetensors(file, { zeroCopy: true }))) { t.dataSync(); t.dispose(); } });
row('loadSafetensors zeroCopy + read every tensor into a new JS array', fileBytes, loadTouch, '`cat file > /dev/null`', cat);
const loadBf16 = await timeIt(async () => { for (const t of Object.values(await loadSafetensors(file, { dtype: 'bf16' }))) t.dispose(); });
row('loadSafetensors converting f32→bf16', fileBytes, loadBf16, '`cat file > /dev/null`', cat);
rmSync(dir, { recursive: true, force: true });

const info = backendInfo();
const header = [
  `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${info.cpu.logicalCpus} logical CPUs, ${info.threads} native threads, ISA path ${info.cpu.isa}; Node ${process.version}.`,
  `Median of ${runs} runs after one warm-up. "ratio" = peer time / our time (1.00 = as fast as the peer; > 1 faster).`,
  '',
  '| operation | size | ours | peer (same run) | peer | ratio |',
  '| --- | --- | --- | --- | --- | --- |',
];
const table = [...header, ...rows].join('\n');
console.log(table);
if (outArg > 0) writeFileSync(process.argv[outArg + 1], `${table}\n`);
