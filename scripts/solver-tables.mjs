#!/usr/bin/env node
// Regenerates the measured tables of docs/samplers.md (between the BEGIN/END markers):
//   node scripts/solver-tables.mjs          (after `npm run build` / `npm test` built dist/)
// The measurements are the ones the tests assert (test/helpers/convergence.mjs, momentum.mjs).
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { analytic, listSamplers, randn, sample, schedules } from '../dist/index.js';
import { ORDER_CASES, measureOrder, mixtureProblem } from '../test/helpers/convergence.mjs';
import { MOMENTUM_CONFIGS, guidedError, guidedProblem, guidedReference } from '../test/helpers/momentum.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const docPath = join(root, 'docs', 'samplers.md');

const problem = mixtureProblem();
const measured = new Map();
const orderRows = [];
for (const c of ORDER_CASES) {
  const r = await measureOrder(problem, c);
  const label = c.label ?? c.name;
  if (!measured.has(c.name)) measured.set(c.name, []);
  measured.get(c.name).push(`${r.measured.toFixed(2)}${c.label ? ` (${c.label.replace(`${c.name} `, '').replace(/^\((.*)\)$/, '$1')})` : ''}`);
  orderRows.push(`| ${label} | ${c.order} | **${r.measured.toFixed(2)}** | ${r.steps.map((n, i) => `${n}: ${r.errors[i].toExponential(1)}`).join(', ')} |`);
}
const orders = [
  '| configuration | theoretical order | measured | RMS error by step count |',
  '|---|---|---|---|',
  ...orderRows,
].join('\n');

const catalogue = [
  '| sampler | kind | order | model evaluations / step | measured order (this page) | source |',
  '|---|---|---|---|---|---|',
  ...listSamplers().map((s) => `| \`${s.name}\` | ${s.stochastic ? 'SDE' : 'ODE'}${s.needsCondition ? ', conditioned' : ''} | ${s.order} | ${s.evaluationsPerStep} | ${measured.get(s.name)?.join('; ') ?? '- (see below)'} | ${s.source} |`),
].join('\n');

const momentumRows = [];
const steps = [4, 5, 6, 8, 10];
for (const w of [15, 40]) {
  const p = guidedProblem(w);
  const ref = await guidedReference(p);
  for (const [name, options, label] of MOMENTUM_CONFIGS) {
    if (w === 40 && !name.startsWith('dpmpp')) continue;
    const cells = [];
    for (const n of steps) {
      const e = await guidedError(p, ref, name, n, options);
      cells.push(`${e.rmse.toExponential(1)} / ${e.maxAbs.toFixed(1)}`);
    }
    momentumRows.push(`| ${w} | ${label} (\`${name}\` ${JSON.stringify(options)}) | ${cells.join(' | ')} |`);
  }
}
const momentum = [
  `| CFG scale | sampler | ${steps.map((n) => `${n} steps`).join(' | ')} |`,
  `|---|---|${steps.map(() => '---').join('|')}|`,
  ...momentumRows,
].join('\n');

// Teleport on Gaussian data (the test in test/solvers-analytic-start.test.ts, with numbers).
const dim = 8;
const L = Array.from({ length: dim }, (_, i) => Array.from({ length: dim }, (_, j) => (j > i ? 0 : j === i ? 0.4 + 0.15 * i : 0.1 * Math.sin(i + 2 * j))));
const cov = L.map((r) => L.map((q) => r.reduce((acc, v, k) => acc + v * q[k], 0)));
const gaussian = analytic.gaussian({ mean: Array.from({ length: dim }, (_, i) => Math.cos(i)), covariance: cov });
const vp = schedules.vpLinear();
const xT = await randn([16, dim], { seed: 4, dtype: 'f64' });
const exact = (await gaussian.pfOdeSolution(xT, vp, 1, 1e-3)).dataSync();
const rmse = (t) => { const o = t.dataSync(); let q = 0; for (let i = 0; i < o.length; i++) q += (o[i] - exact[i]) ** 2; return Math.sqrt(q / o.length); };
const teleportRows = [];
for (const [steps, lambda] of [[20, null], [10, 0], [20, 0], [10, -2], [5, 2]]) {
  const opts = { denoiser: gaussian, schedule: vp, sampler: 'dpmpp-2m', steps, tStart: 1, tEnd: 1e-3, xStart: xT, dtype: 'f64' };
  const out = await sample(lambda === null ? opts : { ...opts, teleport: { gaussian, tSkip: vp.tFromLambda(lambda) } });
  teleportRows.push(`| ${lambda === null ? 'none (t = 1 to 1e-3)' : `to lambda = ${lambda} (t = ${vp.tFromLambda(lambda).toFixed(3)})`} | ${steps} | ${rmse(out).toExponential(2)} |`);
}
const teleport = ['| teleport | dpmpp-2m evaluations | RMS error vs the exact solution |', '|---|---|---|', ...teleportRows].join('\n');

let doc = readFileSync(docPath, 'utf8');
for (const [key, body] of [['catalogue', catalogue], ['orders', orders], ['momentum', momentum], ['teleport', teleport]]) {
  const re = new RegExp(`(<!-- BEGIN:${key} -->)[\\s\\S]*?(<!-- END:${key} -->)`);
  if (!re.test(doc)) throw new Error(`docs/samplers.md lacks the ${key} markers`);
  doc = doc.replace(re, `$1\n${body}\n$2`);
}
writeFileSync(docPath, doc);
console.log('docs/samplers.md updated');
