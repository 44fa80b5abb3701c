// Batch invariance of the CPU DiT / DiT-MoE forward: a sample's output has the same bits whichever
// samples share its batch, wherever it sits in it, with or without classifier-free guidance (which
// doubles the batch). So the same seed gives a bit-identical image in any batch composition.
//
// What would break it: a kernel chosen by row count (the GEMM's streaming vs tiled kernels sum in
// different orders), and the row count of the conditioning GEMMs (one row per sample), of the token
// GEMMs (one per token) and of each MoE expert's GEMMs (the tokens routed to it) all grow with the
// batch. The 2x2 latent has one token per sample, so there even the token GEMMs have a row per sample;
// batch 20 crosses every small-m threshold. Tiny random checkpoints as in models-api.test.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tensor, loadModel, randn, sample, schedules, type DiffusionModel } from '../lib/index.js';
import { writeRandomDit } from './helpers/dit-weights.js';

const HIDDEN = 64, HEADS = 4, DEPTH = 2, PATCH = 2, CLASSES = 10, STD = 0.1, C = 4;
const NULL = CLASSES;

let dir = '';
let dit: DiffusionModel, moe: DiffusionModel;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nd-batch-invariance-'));
  const base = { depth: DEPTH, hidden: HIDDEN, patch: PATCH, classes: CLASSES, std: STD };
  const pathDit = join(dir, 'dit.safetensors'), pathMoe = join(dir, 'dit-moe.safetensors');
  await writeRandomDit(pathDit, { ...base, family: 'dit', seed: 101 });
  await writeRandomDit(pathMoe, { ...base, family: 'dit-moe', experts: 4, expertHidden: 128, sharedHidden: 64, seed: 202, gateStd: 1 });
  dit = await loadModel(pathDit, { heads: HEADS });
  moe = await loadModel(pathMoe, { heads: HEADS });
});

afterAll(() => {
  dit?.dispose();
  moe?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function f32(t: Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

/** Where two arrays first differ (bitwise), or null when every bit matches. */
function firstDifference(a: Float32Array, b: Float32Array): string | null {
  if (a.length !== b.length) return `lengths ${a.length} and ${b.length}`;
  if (Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))) return null;
  let first = -1, maxDiff = 0;
  for (let i = 0; i < a.length; i++) {
    if (Object.is(a[i], b[i])) continue;
    if (first < 0) first = i;
    maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
  }
  return `element ${first}: ${a[first]} vs ${b[first]} (max |diff| ${maxDiff})`;
}

async function forwardF32(model: DiffusionModel, x: Float32Array, shape: number[], t: number[], y: number[]): Promise<Float32Array> {
  const xt = Tensor.from(x, { shape });
  const out = await model.forward(xt, t, y);
  const v = f32(out).slice();
  xt.dispose();
  out.dispose();
  return v;
}

describe('forward() is batch invariant, bit for bit', () => {
  for (const family of ['dit', 'dit-moe'] as const) {
    for (const [h, w] of [[8, 8], [2, 2]] as const) {
      it(`${family} ${h}x${w}: one sample alone = the same sample at positions 0, 3, last of batches of 7 and 20`, async () => {
        const model = family === 'dit' ? dit : moe;
        const per = C * h * w, outPer = 2 * per;  // learned sigma: 8 output channels
        const xt = await randn([1, C, h, w], { seed: 7 });
        const x = f32(xt).slice();
        xt.dispose();
        const t = 421.5, y = 3;
        const alone = await forwardF32(model, x, [1, C, h, w], [t], [y]);
        expect(alone.some((v) => Math.abs(v) > 1e-2)).toBe(true);
        let checked = 0;
        for (const batch of [7, 20]) {
          const others = await randn([batch, C, h, w], { seed: 100 + batch });
          const xb = f32(others).slice();
          others.dispose();
          for (const pos of [0, 3, batch - 1]) {
            const xs = xb.slice();
            xs.set(x, pos * per);
            // the others at other times and labels (the null class among them)
            const ts = Array.from({ length: batch }, (_, i) => (i * 97 + 13) % 1000);
            const ys = Array.from({ length: batch }, (_, i) => i % (CLASSES + 1));
            ts[pos] = t;
            ys[pos] = y;
            const out = await forwardF32(model, xs, [batch, C, h, w], ts, ys);
            const mine = out.subarray(pos * outPer, (pos + 1) * outPer);
            expect(firstDifference(mine, alone), `batch ${batch} position ${pos}`).toBeNull();
            // a neighbour really is different (the batch is not all copies of the sample)
            const other = pos === 0 ? 1 : 0;
            expect(firstDifference(out.subarray(other * outPer, (other + 1) * outPer), alone)).not.toBeNull();
            checked++;
          }
        }
        expect(checked).toBe(6);
      });
    }

    it(`${family}: the classifier-free-guidance layout (cond rows, then null rows) keeps each row's bits`, async () => {
      const model = family === 'dit' ? dit : moe;
      const h = 4, w = 4, per = C * h * w, outPer = 2 * per, n = 6;
      const xt = await randn([n, C, h, w], { seed: 9 });
      const x = f32(xt).slice();
      xt.dispose();
      const ts = Array.from({ length: n }, (_, i) => 50 + 150 * i);
      const ys = Array.from({ length: n }, (_, i) => (2 * i) % CLASSES);
      const doubled = new Float32Array(2 * n * per);
      doubled.set(x);
      doubled.set(x, n * per);
      const out = await forwardF32(model, doubled, [2 * n, C, h, w], [...ts, ...ts], [...ys, ...ys.map(() => NULL)]);
      for (const i of [0, 2, n - 1]) {
        const xi = x.slice(i * per, (i + 1) * per);
        const cond = await forwardF32(model, xi, [1, C, h, w], [ts[i]], [ys[i]]);
        const uncond = await forwardF32(model, xi, [1, C, h, w], [ts[i]], [NULL]);
        expect(firstDifference(out.subarray(i * outPer, (i + 1) * outPer), cond), `cond row ${i}`).toBeNull();
        expect(firstDifference(out.subarray((n + i) * outPer, (n + i + 1) * outPer), uncond), `null row ${i}`).toBeNull();
      }
    });
  }
});

describe('sample() with a model denoiser and guidance is batch invariant, bit for bit', () => {
  for (const family of ['dit', 'dit-moe'] as const) {
    for (const sampler of ['euler-ancestral', 'dpmpp-2m'] as const) {
      it(`${family}, ${sampler}: an image sampled alone = the same image (class, seed) inside a batch of 5`, async () => {
        const model = family === 'dit' ? dit : moe;
        const schedule = schedules.vpDiscrete();
        const h = 8, w = 8, per = C * h * w, steps = 5;
        const classes = [4, 1, 7, NULL, 2], seeds = [11, 22, 33, 44, 55];
        const run = async (cls: number[], seed: number[]): Promise<Float32Array> => {
          const denoiser = model.denoiser({ classes: cls, guidanceScale: 3, height: h, width: w });
          const out = await sample({ denoiser, schedule, sampler, steps, seed });
          expect(out.shape).toEqual([cls.length, C, h, w]);
          const v = f32(out).slice();
          out.dispose();
          return v;
        };
        const batch = await run(classes, seeds);
        for (const i of [0, 2, 4]) {
          const alone = await run([classes[i]], [seeds[i]]);
          expect(alone.every(Number.isFinite)).toBe(true);
          expect(firstDifference(batch.subarray(i * per, (i + 1) * per), alone), `image ${i}`).toBeNull();
        }
        expect(firstDifference(batch.subarray(0, per), batch.subarray(per, 2 * per))).not.toBeNull();
      });
    }
  }
});
