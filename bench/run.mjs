// `npm run bench`: every benchmark of bench/, each in its own Node process (so that one benchmark's
// allocations, devices and threads do not disturb the next), one after the other.
//   npm run bench                          all of them
//   npm run bench -- --only solver-step    one (or a comma-separated list) of: foundation, solver-step,
//                                          models, generate, cuda
//   npm run bench -- --out FILE            also write the tables to FILE
// Each benchmark prints a markdown table; BENCH_RUNS=N sets the number of timed repetitions.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCHES = {
  foundation: 'tensor copies, casts, RNG, safetensors (CPU)',
  'solver-step': 'per-step solver overhead of the samplers vs memcpy and eager PyTorch (CPU)',
  models: 'DiT / DiT-MoE forward vs eager PyTorch and vs the GEMM rate, MoE cost share, peak RSS (CPU)',
  generate: 'images per second of the default built-in model (20 steps dpmpp-2m, CFG) vs eager PyTorch (CPU)',
  cuda: 'DiT-XL/2 bf16 forward vs PyTorch eager / torch.compile and the bf16 matmul rate; end-to-end sampling (GPU)',
};

const argValue = (name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const only = argValue('--only');
const out = argValue('--out');
const selected = only ? only.split(',').map((s) => s.trim()).filter(Boolean) : Object.keys(BENCHES);
for (const name of selected) {
  if (!(name in BENCHES)) {
    console.error(`Unknown benchmark ${name}; expected one of ${Object.keys(BENCHES).join(', ')}`);
    process.exit(2);
  }
}

const here = dirname(fileURLToPath(import.meta.url));
const tables = [];
for (const name of selected) {
  console.log(`\n### ${name}: ${BENCHES[name]}\n`);
  const text = await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(here, `${name}.mjs`)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    child.stdout.on('data', (d) => { buf += d; process.stdout.write(d); });
    child.on('error', reject);
    child.on('exit', (code, signal) => (code === 0 ? resolve(buf) : reject(new Error(`bench ${name} exited with ${signal ?? code}`))));
  });
  tables.push(`### ${name}\n\n${text.trim()}\n`);
}
if (out) writeFileSync(out, tables.join('\n'));
