// The model API's contract on tiny random DiT / DiT-MoE checkpoints (hidden 64, 4 heads, depth 2,
// patch 2, 10 classes, 8x8 / 8x12 latents), with no reference other than the published formulas:
//  - forward(): shapes, argument forms, batch independence;
//  - typed errors with stable codes;
//  - model.denoiser(...) (CFG run natively inside sample()) against a JS denoiser that does DiT's
//    forward_with_cfg itself (eps = uncond + s (cond - uncond) on the first guidedChannels channels,
//    the conditional rows elsewhere, the learned-sigma channels dropped), driven step by step by the
//    same sampler;
//  - DiT-MoE routing records; timestep experts; the GEMM rate probe.
// Weights N(0, 0.1) (not DiT's 0.02) so that the class label and the timestep move the output by
// far more than the tolerances: a guidance bug cannot hide below 1e-5.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ArgumentError, DeviceError, DisposedError, backendInfo, IOError, ShapeError, Tensor, createSampler, loadModel, measureCudaStepPass, measureGemmRate, randn, sample, schedules,
  timestepExperts, type DiffusionModel, type JsDenoiser, type RoutingLayerStats, type RoutingRecord, type Schedule,
} from '../lib/index.js';
import { writeRandomDit } from './helpers/dit-weights.js';

const HIDDEN = 64, HEADS = 4, DEPTH = 2, PATCH = 2, CLASSES = 10, STD = 0.1;
const NULL = CLASSES;

let dir = '';
let pathA = '', pathB = '', pathMoe = '';
let A: DiffusionModel, B: DiffusionModel, M: DiffusionModel;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nd-models-api-'));
  pathA = join(dir, 'dit-a.safetensors');
  pathB = join(dir, 'dit-b.safetensors');
  pathMoe = join(dir, 'dit-moe.safetensors');
  const base = { depth: DEPTH, hidden: HIDDEN, patch: PATCH, classes: CLASSES, std: STD };
  await writeRandomDit(pathA, { ...base, family: 'dit', seed: 11 });
  await writeRandomDit(pathB, { ...base, family: 'dit', seed: 22 });
  await writeRandomDit(pathMoe, { ...base, family: 'dit-moe', experts: 4, expertHidden: 128, sharedHidden: 64, seed: 33, gateStd: 1 });
  A = await loadModel(pathA, { heads: HEADS });
  B = await loadModel(pathB, { heads: HEADS });
  M = await loadModel(pathMoe, { heads: HEADS });
});

afterAll(() => {
  A?.dispose();
  B?.dispose();
  M?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ---- helpers ---------------------------------------------------------------------------------------

function f32(t: Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

/** max |a - b| / max |b|, insisting on a real signal. */
function relErr(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let err = 0, mx = 0;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    mx = Math.max(mx, Math.abs(b[i]));
  }
  expect(mx).toBeGreaterThan(1e-3);
  return err / mx;
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

function allFinite(a: Float32Array): boolean {
  return a.every((v) => Number.isFinite(v));
}

/** Samples [i0, i1) of a batch [N, ...] as a new array. */
function rowsOf(a: Float32Array, n: number, i0: number, i1: number): Float32Array {
  const per = a.length / n;
  return a.slice(i0 * per, i1 * per);
}

async function errorOf(p: Promise<unknown> | (() => unknown)): Promise<Error & { code?: string }> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected an error, got none');
}

interface CfgSpec {
  classes: readonly number[];
  scale: number;
  guided: number;
  /** Guide only at schedule times a <= t <= b. */
  interval?: readonly [number, number];
}

/**
 * DiT's forward_with_cfg written out in JS (facebookresearch/DiT models.py, §1.4 of the research
 * notes): one forward of cat[x, x] with labels [classes..., null...] at the model timestep of t;
 * eps = uncond + s (cond - uncond) on channels < guided, the conditional rows elsewhere; the learned
 * sigma channels are dropped. `pick` chooses the network by schedule time (timestep experts).
 */
function jsCfgDenoiser(pick: (t: number) => DiffusionModel, schedule: Schedule, spec: CfgSpec, log?: (t: number, m: DiffusionModel) => void): JsDenoiser {
  return async (x: Tensor, t: number) => {
    const model = pick(t);
    log?.(t, model);
    const [n, C, H, W] = x.shape;
    const hw = H * W, per = C * hw;
    const guide = spec.scale !== 1 && (spec.interval === undefined || (t >= spec.interval[0] && t <= spec.interval[1]));
    const rows = guide ? 2 * n : n;
    const xs = f32(x);
    const big = new Float32Array(rows * per);
    big.set(xs);
    if (guide) big.set(xs, n * per);
    const labels = guide ? [...spec.classes, ...spec.classes.map(() => model.config.nullClass)] : [...spec.classes];
    const xt = Tensor.from(big, { shape: [rows, C, H, W] });
    const mt = schedule.modelTimestep(t);
    const out = await model.forward(xt, new Array(rows).fill(mt), labels);
    const o = f32(out);
    xt.dispose();
    out.dispose();
    const oc = model.config.outChannels;
    expect(oc).toBe(2 * C);
    const eps = new Float32Array(n * per);
    for (let i = 0; i < n; i++) {
      for (let ch = 0; ch < C; ch++) {
        const cond = (i * oc + ch) * hw, unc = ((n + i) * oc + ch) * hw, dst = i * per + ch * hw;
        for (let j = 0; j < hw; j++) {
          eps[dst + j] = guide && ch < spec.guided ? o[unc + j] + spec.scale * (o[cond + j] - o[unc + j]) : o[cond + j];
        }
      }
    }
    return Tensor.from(eps, { shape: [n, C, H, W] });
  };
}

const CLS = [1, 2, NULL] as const;
const SHAPE = [3, 4, 8, 8] as const;
const STEPS = 6, SEED = 3;

async function nativeRun(denoiser: ReturnType<DiffusionModel['denoiser']>, sampler: string, schedule: Schedule): Promise<Float32Array> {
  const out = await sample({ denoiser, schedule, sampler, steps: STEPS, seed: SEED });
  expect(out.shape).toEqual([...SHAPE]);
  const v = f32(out);
  out.dispose();
  expect(allFinite(v)).toBe(true);
  return v;
}

async function jsRun(denoiser: JsDenoiser, sampler: string, schedule: Schedule): Promise<Float32Array> {
  const out = await sample({ denoiser, schedule, sampler, steps: STEPS, seed: SEED, shape: SHAPE, prediction: 'eps' });
  const v = f32(out);
  out.dispose();
  expect(allFinite(v)).toBe(true);
  return v;
}

function plannedTimes(sampler: string, schedule: Schedule): number[] {
  const s = createSampler({ schedule, sampler, steps: STEPS, seed: SEED, shape: SHAPE, prediction: 'eps' });
  try {
    return s.plannedTimes;
  } finally {
    s.dispose();
  }
}

// ---- 1. forward ------------------------------------------------------------------------------------

describe('forward()', () => {
  it('loads the tiny checkpoints with the expected config', () => {
    expect(A.config).toMatchObject({
      family: 'dit', layout: 'original', depth: DEPTH, hidden: HIDDEN, heads: HEADS, headDim: HIDDEN / HEADS, patch: PATCH,
      inChannels: 4, outChannels: 8, numClasses: CLASSES, nullClass: NULL, learnSigma: true, guidedChannels: 3, mlpHidden: 4 * HIDDEN,
    });
    expect(M.config).toMatchObject({ family: 'dit-moe', layout: 'dit-moe', depth: DEPTH, experts: 4, topK: 2, expertHidden: 128, sharedHidden: 64 });
  });

  it('returns [N, 8, H, W]; t and y in every accepted form give identical results', async () => {
    const x = await randn([2, 4, 8, 8], { seed: 5 });
    const forms: [string, Tensor | number | number[], Tensor | number[]][] = [
      ['number / number[]', 500, [3, 7]],
      ['number[] / number[]', [500, 500], [3, 7]],
      ['f32 Tensor / Int32Array Tensor', Tensor.from(new Float32Array([500, 500])), Tensor.from(new Int32Array([3, 7]))],
      ['f64 Tensor / number[]', Tensor.from(new Float64Array([500, 500])), [3, 7]],
    ];
    const outs: Float32Array[] = [];
    for (const [name, t, y] of forms) {
      const out = await A.forward(x, t, y);
      expect(out.shape, name).toEqual([2, 8, 8, 8]);
      expect(out.dtype).toBe('f32');
      outs.push(f32(out));
      out.dispose();
    }
    expect(maxAbs(outs[0])).toBeGreaterThan(1e-2);  // not the all-zero adaLN-Zero init
    for (let i = 1; i < outs.length; i++) expect(Buffer.from(outs[i].buffer).equals(Buffer.from(outs[0].buffer)), forms[i][0]).toBe(true);
    // t and y really are inputs: another time or label changes the output.
    const otherT = f32(await A.forward(x, 100, [3, 7]));
    const otherY = f32(await A.forward(x, 500, [4, 7]));
    expect(relErr(otherT, outs[0])).toBeGreaterThan(1e-3);
    expect(relErr(rowsOf(otherY, 2, 0, 1), rowsOf(outs[0], 2, 0, 1))).toBeGreaterThan(1e-3);
    expect(rowsOf(otherY, 2, 1, 2)).toEqual(rowsOf(outs[0], 2, 1, 2));  // sample 1 kept its label
    x.dispose();
  });

  it('works on a non-square latent', async () => {
    const x = await randn([2, 4, 8, 12], { seed: 6 });
    const out = await A.forward(x, [10, 900], [0, NULL]);
    expect(out.shape).toEqual([2, 8, 8, 12]);
    const v = f32(out);
    expect(allFinite(v)).toBe(true);
    expect(maxAbs(v)).toBeGreaterThan(1e-2);
    // a non-square latent is not a transposed square one: the 12-wide output is its own
    const xt = await randn([1, 4, 12, 8], { seed: 6 });
    const ot = await A.forward(xt, [10], [0]);
    expect(ot.shape).toEqual([1, 8, 12, 8]);
    x.dispose();
    xt.dispose();
    out.dispose();
    ot.dispose();
  });

  it('is batch independent: sample i of a batch equals the same sample alone', async () => {
    for (const model of [A, M]) {
      for (const [h, w] of [[8, 8], [8, 12]] as const) {
        const x = await randn([3, 4, h, w], { seed: 9 });
        const t = [999, 421.5, 3];
        const y = [0, 9, NULL];
        const batch = f32(await model.forward(x, t, y));
        const xs = f32(x);
        for (let i = 0; i < 3; i++) {
          const xi = Tensor.from(rowsOf(xs, 3, i, i + 1), { shape: [1, 4, h, w] });
          const alone = f32(await model.forward(xi, [t[i]], [y[i]]));
          xi.dispose();
          const e = relErr(rowsOf(batch, 3, i, i + 1), alone);
          expect(e, `${model.config.family} ${h}x${w} sample ${i}`).toBeLessThanOrEqual(1e-6);
        }
        // and the samples differ from each other (the check above is not vacuous)
        expect(relErr(rowsOf(batch, 3, 0, 1), rowsOf(batch, 3, 1, 2))).toBeGreaterThan(1e-2);
        x.dispose();
      }
    }
  });
});

// ---- 2. validation ---------------------------------------------------------------------------------

describe('typed errors', () => {
  it('forward() rejects bad inputs with ShapeError / ArgumentError', async () => {
    const bad = async (p: () => Promise<unknown>, ctor: new (...a: never[]) => Error, code: string, re?: RegExp) => {
      const e = await errorOf(p);
      expect(e).toBeInstanceOf(ctor);
      expect(e.code).toBe(code);
      if (re) expect(e.message).toMatch(re);
    };
    const x3 = Tensor.from(new Float32Array(3 * 64), { shape: [1, 3, 8, 8] });
    await bad(() => A.forward(x3, 10, [1]), ShapeError, 'ERR_ND_SHAPE', /channels/);
    const x7 = Tensor.from(new Float32Array(4 * 7 * 8), { shape: [1, 4, 7, 8] });
    await bad(() => A.forward(x7, 10, [1]), ShapeError, 'ERR_ND_SHAPE', /patch/);
    const x3d = Tensor.from(new Float32Array(4 * 64), { shape: [4, 8, 8] });
    await bad(() => A.forward(x3d, 10, [1]), ShapeError, 'ERR_ND_SHAPE');
    const x = Tensor.from(new Float32Array(4 * 64), { shape: [1, 4, 8, 8] });
    await bad(() => A.forward(x, 10, [CLASSES + 1]), ArgumentError, 'ERR_ND_ARG');
    await bad(() => A.forward(x, 10, [-1]), ArgumentError, 'ERR_ND_ARG');
    await bad(() => A.forward(x, 10, Tensor.from(new Int32Array([CLASSES + 1]))), ArgumentError, 'ERR_ND_ARG', /class label/);
    await bad(() => A.forward(x, NaN, [1]), ArgumentError, 'ERR_ND_ARG');
    await bad(() => A.forward(x, [NaN], [1]), ArgumentError, 'ERR_ND_ARG');
    await bad(() => A.forward(x, Tensor.from(new Float32Array([NaN])), [1]), ArgumentError, 'ERR_ND_ARG', /not finite/);
    await bad(() => A.forward(x, [1, 2], [1, 2]), ShapeError, 'ERR_ND_SHAPE');  // t and y of the wrong length
    for (const t of [x3, x7, x3d, x]) t.dispose();
  });

  it('loadModel() rejects bad options and missing files', async () => {
    const bad = async (p: Promise<unknown>, ctor: new (...a: never[]) => Error, code: string, re?: RegExp) => {
      const e = await errorOf(p);
      expect(e).toBeInstanceOf(ctor);
      expect(e.code).toBe(code);
      if (re) expect(e.message).toMatch(re);
    };
    await bad(loadModel(pathA, { layout: 'bogus' as never, heads: HEADS }), ArgumentError, 'ERR_ND_ARG', /layout/);
    await bad(loadModel(pathA, { device: 'gpu', heads: HEADS }), ArgumentError, 'ERR_ND_ARG', /device/);
    await bad(loadModel(pathA, { device: 'cpu:0', heads: HEADS }), ArgumentError, 'ERR_ND_ARG', /device/);
    if (backendInfo().backend !== 'cuda') {
      // No usable GPU: a device error that says why, never a silent CPU run.
      await bad(loadModel(pathA, { device: 'cuda', heads: HEADS }), DeviceError, 'ERR_ND_DEVICE', /cuda:0/);
      await bad(measureCudaStepPass({ elements: 1024 }), DeviceError, 'ERR_ND_DEVICE', /cuda:0/);
    }
    await bad(measureCudaStepPass({ device: 'cpu', elements: 1024 }), ArgumentError, 'ERR_ND_ARG', /device/);
    const missing = join(dir, 'no-such-model.safetensors');
    await bad(loadModel(missing), IOError, 'ERR_ND_IO', new RegExp(missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    // heads that do not divide the hidden size 64
    await bad(loadModel(pathA, { heads: 5 }), ArgumentError, 'ERR_ND_ARG', /heads/);
    await bad(loadModel(pathA, { heads: 48 }), ArgumentError, 'ERR_ND_ARG', /heads/);
    await bad(loadModel(pathA, { heads: 0 }), ArgumentError, 'ERR_ND_ARG', /heads/);
    await bad(loadModel(pathA, { heads: 2.5 }), ArgumentError, 'ERR_ND_ARG', /heads/);
    // other heads that do divide it load (and compute something else)
    const m8 = await loadModel(pathA, { heads: 8 });
    expect(m8.config.heads).toBe(8);
    const x = await randn([1, 4, 8, 8], { seed: 1 });
    const o8 = f32(await m8.forward(x, 300, [2]));
    const o4 = f32(await A.forward(x, 300, [2]));
    expect(relErr(o8, o4)).toBeGreaterThan(1e-4);
    m8.dispose();
    x.dispose();
  });

  it('forward() and denoiser() after dispose() throw DisposedError', async () => {
    const m = await loadModel(pathA, { heads: HEADS });
    const x = Tensor.from(new Float32Array(4 * 64), { shape: [1, 4, 8, 8] });
    m.dispose();
    m.dispose();  // twice is fine
    const e = await errorOf(m.forward(x, 10, [1]));
    expect(e).toBeInstanceOf(DisposedError);
    expect(e.code).toBe('ERR_ND_DISPOSED');
    expect(() => m.denoiser({ classes: [1], height: 8, width: 8 })).toThrow(DisposedError);
    x.dispose();
  });

  it('denoiser() of a single model builds (it serves every schedule time)', () => {
    const d = A.denoiser({ classes: [1, 2], height: 8, width: 12 });
    expect(d.prediction).toBe('eps');
    expect(d.latentShape).toEqual([2, 4, 8, 12]);
  });

  it('denoiser() validates its options', () => {
    expect(() => A.denoiser({ classes: [CLASSES + 1], height: 8, width: 8 })).toThrow(ArgumentError);
    expect(() => A.denoiser({ classes: [], height: 8, width: 8 })).toThrow(ArgumentError);
    expect(() => A.denoiser({ classes: [1], height: 8, width: 8, guidanceScale: NaN })).toThrow(ArgumentError);
    expect(() => A.denoiser({ classes: [1], height: 8, width: 8, guidedChannels: 5 })).toThrow(ArgumentError);
    expect(() => A.denoiser({ classes: [1], height: 8, width: 8, guidanceInterval: [0.7, 0.2] })).toThrow(ArgumentError);
    // no stored pos_embed: the trained size is unknown, so height/width are required
    expect(() => A.denoiser({ classes: [1] })).toThrow(ArgumentError);
    const e = (() => { try { A.denoiser({ classes: [1], height: 7, width: 8 }); } catch (err) { return err as Error & { code?: string }; } return null; })();
    expect(e).toBeInstanceOf(ShapeError);
  });
});

// ---- 3. classifier-free guidance through sample() --------------------------------------------------

describe('classifier-free guidance inside sample() equals DiT forward_with_cfg in JS', () => {
  const vp = () => schedules.vpDiscrete();

  it("schedules.vpDiscrete() is DiT's linear 1e-4..0.02 schedule over 1000 steps", () => {
    const s = vp();
    const explicit = schedules.vpDiscrete({ betaSchedule: 'linear', betaStart: 1e-4, betaEnd: 0.02, numTrainTimesteps: 1000 });
    expect(s.numTrainTimesteps).toBe(1000);
    for (const t of [0.01, 0.3, 0.77, 1]) {
      expect(s.alpha(t)).toBe(explicit.alpha(t));
      expect(s.modelTimestep(t)).toBe(explicit.modelTimestep(t));
    }
    // alpha_bar at the last training step from the betas themselves
    let logA = 0;
    for (let i = 0; i < 1000; i++) logA += Math.log(1 - (1e-4 + (0.02 - 1e-4) * i / 999));
    expect(Math.log(s.alpha(1) ** 2)).toBeCloseTo(logA, 4);
  });

  for (const sampler of ['dpmpp-2m', 'ddim']) {
    it(`${sampler}: native CFG (scale 4, 3 guided channels) equals the JS forward_with_cfg run`, async () => {
      const schedule = vp();
      const native = await nativeRun(A.denoiser({ classes: CLS, guidanceScale: 4, height: 8, width: 8 }), sampler, schedule);
      const js = await jsRun(jsCfgDenoiser(() => A, schedule, { classes: CLS, scale: 4, guided: 3 }), sampler, schedule);
      const e = relErr(native, js);
      expect(e, `${sampler}: relative error ${e}`).toBeLessThanOrEqual(1e-5);
      // guidance matters: the unguided run is far away, and so is guiding all 4 channels
      const plain = await jsRun(jsCfgDenoiser(() => A, schedule, { classes: CLS, scale: 1, guided: 3 }), sampler, schedule);
      expect(relErr(plain, js)).toBeGreaterThan(1e-3);
      const four = await jsRun(jsCfgDenoiser(() => A, schedule, { classes: CLS, scale: 4, guided: 4 }), sampler, schedule);
      expect(relErr(four, js)).toBeGreaterThan(1e-3);
      // the null-class sample is unaffected by guidance (cond = uncond)
      expect(relErr(rowsOf(js, 3, 2, 3), rowsOf(plain, 3, 2, 3))).toBeLessThanOrEqual(1e-5);
    });
  }

  it('guidedChannels: 4 changes the result and matches JS guiding 4 channels', async () => {
    const schedule = vp();
    const three = await nativeRun(A.denoiser({ classes: CLS, guidanceScale: 4, height: 8, width: 8 }), 'dpmpp-2m', schedule);
    const native = await nativeRun(A.denoiser({ classes: CLS, guidanceScale: 4, guidedChannels: 4, height: 8, width: 8 }), 'dpmpp-2m', schedule);
    const js = await jsRun(jsCfgDenoiser(() => A, schedule, { classes: CLS, scale: 4, guided: 4 }), 'dpmpp-2m', schedule);
    expect(relErr(native, js)).toBeLessThanOrEqual(1e-5);
    expect(relErr(native, three)).toBeGreaterThan(1e-3);
    // the default is DiT's 3: explicitly passing 3 gives the same bits
    const explicit3 = await nativeRun(A.denoiser({ classes: CLS, guidanceScale: 4, guidedChannels: 3, height: 8, width: 8 }), 'dpmpp-2m', schedule);
    expect(explicit3).toEqual(three);
  });

  it('guidanceScale 1 equals a plain conditional JS run', async () => {
    const schedule = vp();
    const native = await nativeRun(A.denoiser({ classes: CLS, guidanceScale: 1, height: 8, width: 8 }), 'dpmpp-2m', schedule);
    const plainJs: JsDenoiser = async (x, t) => {
      const out = await A.forward(x, schedule.modelTimestep(t), [...CLS]);
      const o = f32(out);
      out.dispose();
      const [n, C, H, W] = x.shape;
      const eps = new Float32Array(n * C * H * W);
      for (let i = 0; i < n; i++) eps.set(o.subarray(i * 8 * H * W, (i * 8 + C) * H * W), i * C * H * W);
      return Tensor.from(eps, { shape: x.shape });
    };
    const js = await jsRun(plainJs, 'dpmpp-2m', schedule);
    expect(relErr(native, js)).toBeLessThanOrEqual(1e-5);
    const byDefault = await nativeRun(A.denoiser({ classes: CLS, height: 8, width: 8 }), 'dpmpp-2m', schedule);
    expect(byDefault).toEqual(native);
  });

  it('guidanceInterval [a, b] guides only at schedule times a <= t <= b', async () => {
    const schedule = vp();
    const interval = [0.3, 0.7] as const;
    const times = plannedTimes('dpmpp-2m', schedule);
    expect(times.length).toBe(STEPS);
    const inside = times.filter((t) => t >= interval[0] && t <= interval[1]).length;
    expect(inside).toBeGreaterThan(0);  // both kinds of step occur, so the test can tell them apart
    expect(inside).toBeLessThan(times.length);
    const native = await nativeRun(A.denoiser({ classes: CLS, guidanceScale: 4, guidanceInterval: interval, height: 8, width: 8 }), 'dpmpp-2m', schedule);
    const js = await jsRun(jsCfgDenoiser(() => A, schedule, { classes: CLS, scale: 4, guided: 3, interval }), 'dpmpp-2m', schedule);
    expect(relErr(native, js)).toBeLessThanOrEqual(1e-5);
    const always = await jsRun(jsCfgDenoiser(() => A, schedule, { classes: CLS, scale: 4, guided: 3 }), 'dpmpp-2m', schedule);
    const never = await jsRun(jsCfgDenoiser(() => A, schedule, { classes: CLS, scale: 1, guided: 3 }), 'dpmpp-2m', schedule);
    expect(relErr(native, always)).toBeGreaterThan(1e-3);
    expect(relErr(native, never)).toBeGreaterThan(1e-3);
  });
});

// ---- 4. DiT-MoE routing records --------------------------------------------------------------------

describe('DiT-MoE routing statistics', () => {
  const T = (8 / PATCH) * (8 / PATCH);  // tokens of an 8x8 latent

  function checkLayers(layers: RoutingLayerStats[], rows: number, what: string): number {
    expect(layers.length, what).toBe(DEPTH);
    let dropped = 0;
    layers.forEach((l, i) => {
      expect(l.layer).toBe(i);
      expect(l.tokensPerExpert.length).toBe(4);
      expect(l.tokensPerExpert.every((c) => Number.isInteger(c) && c >= 0)).toBe(true);
      const kept = l.tokensPerExpert.reduce((a, b) => a + b, 0);
      expect(kept + l.dropped, `${what} layer ${i}`).toBe(rows * T * 2);
      expect(l.entropy).toBeGreaterThan(0);
      expect(l.entropy).toBeLessThanOrEqual(Math.log(4) + 1e-9);
      dropped += l.dropped;
    });
    return dropped;
  }

  it('one record per evaluation, every assignment counted, times and model timesteps right', async () => {
    const schedule = schedules.vpDiscrete();
    let delivered: RoutingRecord[] | undefined;
    const d = M.denoiser({ classes: CLS, guidanceScale: 4, height: 8, width: 8, recordRouting: true, onRouting: (r) => (delivered = r) });
    expect(d.routing()).toEqual([]);
    const native = await nativeRun(d, 'dpmpp-2m', schedule);
    const times = plannedTimes('dpmpp-2m', schedule);
    expect(times.length).toBe(STEPS);
    expect(delivered).toBeDefined();
    const records = delivered!;
    expect(records.length).toBe(STEPS);
    expect(d.routing()).toEqual(records);
    records.forEach((r, k) => {
      expect(r.evaluation).toBe(k);
      expect(r.expert).toBe(0);
      expect(r.t).toBeCloseTo(times[k], 12);
      if (k > 0) expect(r.t).toBeLessThan(records[k - 1].t);
      expect(Math.abs(r.modelTimestep - schedule.modelTimestep(r.t))).toBeLessThanOrEqual(1e-9 * Math.max(1, r.modelTimestep));
      expect(checkLayers(r.layers, 2 * 3, `evaluation ${k}`)).toBe(0);  // dropless by default
    });
    // the MoE model through the same CFG formula in JS gives the same samples
    const js = await jsRun(jsCfgDenoiser(() => M, schedule, { classes: CLS, scale: 4, guided: 3 }), 'dpmpp-2m', schedule);
    expect(relErr(native, js)).toBeLessThanOrEqual(1e-5);
    // without guidance a step is one forward of the batch alone
    let plain: RoutingRecord[] = [];
    await nativeRun(M.denoiser({ classes: CLS, height: 8, width: 8, onRouting: (r) => (plain = r) }), 'dpmpp-2m', schedule);
    expect(plain.length).toBe(STEPS);
    for (const r of plain) checkLayers(r.layers, 3, 'unguided');
  });

  it('a capacity factor drops assignments; kept + dropped is still every assignment', async () => {
    const capped = await loadModel(pathMoe, { heads: HEADS, capacityFactor: 0.5 });
    try {
      expect(capped.config.capacityFactor).toBe(0.5);
      const schedule = schedules.vpDiscrete();
      let records: RoutingRecord[] = [];
      await nativeRun(capped.denoiser({ classes: CLS, guidanceScale: 4, height: 8, width: 8, recordRouting: true, onRouting: (r) => (records = r) }), 'dpmpp-2m', schedule);
      expect(records.length).toBe(STEPS);
      let dropped = 0;
      for (const r of records) dropped += checkLayers(r.layers, 2 * 3, `capped evaluation ${r.evaluation}`);
      expect(dropped).toBeGreaterThan(0);
    } finally {
      capped.dispose();
    }
  });

  it("forward(..., { routing: 'choices' }) gives every token's top-2 experts", async () => {
    const x = await randn([2, 4, 8, 8], { seed: 4 });
    let layers: RoutingLayerStats[] = [];
    const out = await M.forward(x, [700, 20], [5, NULL], { routing: 'choices', onRouting: (l) => (layers = l) });
    expect(out.shape).toEqual([2, 8, 8, 8]);
    expect(layers.length).toBe(DEPTH);
    for (const l of layers) {
      expect(l.choices).toBeInstanceOf(Int32Array);
      expect(l.choices!.length).toBe(2 * T * 2);
      expect(l.choices!.every((e) => e >= 0 && e < 4)).toBe(true);
      const counts = [0, 0, 0, 0];
      for (let i = 0; i < l.choices!.length; i += 2) {
        expect(l.choices![i]).not.toBe(l.choices![i + 1]);  // two distinct experts per token
        counts[l.choices![i]]++;
        counts[l.choices![i + 1]]++;
      }
      expect(counts).toEqual(l.tokensPerExpert);  // dropless: every choice is kept
      expect(l.kept!.length).toBe(2 * T * 2);
      expect(l.kept!.every((k) => k === 1)).toBe(true);
    }
    // stats only: no per-token arrays
    let stats: RoutingLayerStats[] = [];
    await M.forward(x, [700, 20], [5, NULL], { routing: true, onRouting: (l) => (stats = l) });
    expect(stats.length).toBe(DEPTH);
    expect(stats[0].choices).toBeUndefined();
    expect(stats.map((l) => l.tokensPerExpert)).toEqual(layers.map((l) => l.tokensPerExpert));
    out.dispose();
    x.dispose();
  });
});

// ---- 5. timestep experts ---------------------------------------------------------------------------

describe('timestepExperts', () => {
  it('the native run equals a JS run that dispatches on t with the same CFG', async () => {
    const schedule = schedules.vpDiscrete();
    const te = timestepExperts([{ denoiser: A, from: 0, to: 0.5 }, { denoiser: B, from: 0.5000001, to: 1 }]);
    expect(te.expertAt(0.2)).toBe(0);
    expect(te.expertAt(0.9)).toBe(1);
    const times = plannedTimes('dpmpp-2m', schedule);
    expect(times.some((t) => t <= 0.5) && times.some((t) => t > 0.5)).toBe(true);  // both experts serve
    let records: RoutingRecord[] = [];
    const native = await nativeRun(te.denoiser({ classes: CLS, guidanceScale: 4, height: 8, width: 8, recordRouting: true, onRouting: (r) => (records = r) }), 'dpmpp-2m', schedule);
    const used: string[] = [];
    const js = await jsRun(jsCfgDenoiser((t) => (t <= 0.5 ? A : B), schedule, { classes: CLS, scale: 4, guided: 3 }, (_t, m) => used.push(m === A ? 'A' : 'B')), 'dpmpp-2m', schedule);
    expect(used).toContain('A');
    expect(used).toContain('B');
    expect(relErr(native, js)).toBeLessThanOrEqual(1e-5);
    // dispatch matters: A alone is something else
    const aOnly = await nativeRun(A.denoiser({ classes: CLS, guidanceScale: 4, height: 8, width: 8 }), 'dpmpp-2m', schedule);
    expect(relErr(aOnly, native)).toBeGreaterThan(1e-3);
    // the records say which expert ran
    expect(records.map((r) => r.expert)).toEqual(used.map((u) => (u === 'A' ? 0 : 1)));
  });

  it('overlapping intervals, mixed kinds and bad intervals are ArgumentErrors', () => {
    expect(() => timestepExperts([{ denoiser: A, from: 0, to: 0.6 }, { denoiser: B, from: 0.5, to: 1 }])).toThrow(ArgumentError);
    expect(() => timestepExperts([{ denoiser: B, from: 0.5, to: 1 }, { denoiser: A, from: 0, to: 0.6 }])).toThrow(/overlap/);
    const fn: JsDenoiser = async (x) => x;
    expect(() => timestepExperts([{ denoiser: A, from: 0, to: 0.5 }, { denoiser: fn, from: 0.6, to: 1 }] as never)).toThrow(ArgumentError);
    expect(() => timestepExperts([{ denoiser: A, from: 0.7, to: 0.2 }])).toThrow(ArgumentError);
    expect(() => timestepExperts([])).toThrow(ArgumentError);
  });

  it('a schedule time no expert covers fails the run with a clear error', async () => {
    const schedule = schedules.vpDiscrete();
    const te = timestepExperts([{ denoiser: A, from: 0, to: 0.2 }, { denoiser: B, from: 0.8, to: 1 }]);
    const gap = plannedTimes('dpmpp-2m', schedule).find((t) => t > 0.2 && t < 0.8);
    expect(gap).toBeDefined();
    expect(te.expertAt(gap!)).toBe(-1);
    const e = await errorOf(sample({ denoiser: te.denoiser({ classes: [1], height: 8, width: 8 }), schedule, sampler: 'dpmpp-2m', steps: STEPS, seed: SEED }));
    expect(e).toBeInstanceOf(ArgumentError);
    expect(e.code).toBe('ERR_ND_ARG');
    expect(e.message).toMatch(/No timestep expert covers t = 0\.\d+/);
  });

  it('of JS denoisers is a JS denoiser that dispatches on t', async () => {
    const calls: string[] = [];
    const mk = (name: string, k: number): JsDenoiser => async (x) => {
      calls.push(name);
      const v = f32(x).map((e) => e * k);
      return Tensor.from(v, { shape: x.shape });
    };
    const f = timestepExperts([{ denoiser: mk('lo', 2), from: 0, to: 0.5 }, { denoiser: mk('hi', 3), from: 0.5000001, to: 1 }]);
    expect(typeof f).toBe('function');
    const x = Tensor.from(new Float32Array([1, -2]), { shape: [1, 2] });
    expect(Array.from(f32(await f(x, 0.25)))).toEqual([2, -4]);
    expect(Array.from(f32(await f(x, 0.5)))).toEqual([2, -4]);
    expect(Array.from(f32(await f(x, 0.9)))).toEqual([3, -6]);
    expect(calls).toEqual(['lo', 'lo', 'hi']);
    const e = await errorOf(async () => f(x, 0.50000005));
    expect(e).toBeInstanceOf(ArgumentError);
    expect(e.message).toMatch(/No timestep expert covers t/);
    // it drives sample() like any JS denoiser, calling both experts
    calls.length = 0;
    const schedule = schedules.vpDiscrete();
    const eps = timestepExperts([
      { denoiser: (async (xx: Tensor) => { calls.push('lo'); return Tensor.from(new Float32Array(xx.numel), { shape: xx.shape }); }) as JsDenoiser, from: 0, to: 0.5 },
      { denoiser: (async (xx: Tensor) => { calls.push('hi'); return Tensor.from(new Float32Array(xx.numel), { shape: xx.shape }); }) as JsDenoiser, from: 0.5000001, to: 1 },
    ]);
    const out = await sample({ denoiser: eps, schedule, sampler: 'dpmpp-2m', steps: STEPS, seed: SEED, shape: [1, 4, 8, 8], prediction: 'eps' });
    const times = plannedTimes('dpmpp-2m', schedule);
    expect(calls).toEqual(times.map((t) => (t <= 0.5 ? 'lo' : 'hi')));
    out.dispose();
    x.dispose();
  });
});

// ---- 6. GEMM rate ----------------------------------------------------------------------------------

describe('measureGemmRate', () => {
  it('returns a positive finite GFLOP/s from per-rep timings', async () => {
    const r = await measureGemmRate({ m: 64, n: 64, k: 64, reps: 3 });
    expect(Number.isFinite(r.gflops)).toBe(true);
    expect(r.gflops).toBeGreaterThan(0);
    expect(r.seconds.length).toBe(3);
    expect(r.seconds.every((s) => Number.isFinite(s) && s > 0)).toBe(true);
    const median = [...r.seconds].sort((a, b) => a - b)[1];
    expect(r.gflops).toBeCloseTo((2 * 64 * 64 * 64) / median / 1e9, 6);
    await expect(measureGemmRate({ m: 0, n: 64, k: 64 })).rejects.toBeInstanceOf(ArgumentError);
  });
});
