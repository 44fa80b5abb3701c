// Child of bench/models.mjs: peak RSS of loading a DiT and running one forward, in a fresh process so
// the high-water mark belongs to this job alone. Prints one JSON line.
//   node bench/models_rss.mjs WEIGHTS.safetensors BATCH
import { readFileSync, statSync } from 'node:fs';
import { loadModel, randn } from '../dist/index.js';

const kb = (key) => Number(readFileSync('/proc/self/status', 'utf8').match(new RegExp(`${key}:\\s+(\\d+) kB`))[1]) * 1024;
const [path, batchArg] = process.argv.slice(2);
const batch = Number(batchArg ?? 1);
const x = await randn([batch, 4, 32, 32], { seed: 1 });
const t = new Array(batch).fill(500), y = new Array(batch).fill(1);
global.gc?.();
const before = kb('VmRSS');
// Reset the high-water mark so it measures from here (Linux: writing 5 to clear_refs).
try { (await import('node:fs')).writeFileSync('/proc/self/clear_refs', '5'); } catch {}
const model = await loadModel(path);
const out = await model.forward(x, t, y);
const peak = kb('VmHWM');
const activations = model.activationBytes(batch, 32, 32) + x.numel * 4 + out.numel * 4;
console.log(JSON.stringify({ batch, weights: statSync(path).size, activations, before, peak, peakDelta: peak - before }));
