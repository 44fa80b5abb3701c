// The solver API's contract: typed errors naming the argument, exactness properties that need no
// reference, inversion round trips, the Brownian tree, the PFGM++ prior and the schedules' own numbers.
import { describe, expect, it } from 'vitest';
import {
  ArgumentError, DTypeError, ShapeError, Tensor, analytic, createSampler, listSamplers, listSchedules, randn, sample, schedules,
} from '../lib/index.js';

const g = analytic.gaussian({ mean: [0.5, -1], variances: [0.4, 1.3] });
const vp = schedules.vpLinear();

describe('errors name the argument', () => {
  const base = { denoiser: g, schedule: vp, sampler: 'dpmpp-2m', steps: 5, seed: 1 };
  it('unknown sampler lists the valid names', async () => {
    await expect(sample({ ...base, sampler: 'dpmpp-9m' })).rejects.toThrow(/Expected one of ddpm, ddim, .* for sampler but received 'dpmpp-9m'/);
    await expect(sample({ ...base, sampler: 'dpmpp-9m' })).rejects.toBeInstanceOf(ArgumentError);
  });
  it('unknown and out-of-range sampler options', async () => {
    await expect(sample({ ...base, options: { ordr: 2 } })).rejects.toThrow(/Unknown option ordr for sampler dpmpp-2m \(valid: lowerOrderFinal, solverType, fullD2\)|Unknown option ordr for sampler dpmpp-2m/);
    await expect(sample({ ...base, sampler: 'dpm-solver', options: { order: 4 } })).rejects.toThrow(/options.order of sampler dpm-solver but received 4/);
    await expect(sample({ ...base, sampler: 'dpm-solver', options: { method: 'doublestep' } })).rejects.toThrow(/Expected one of multistep, singlestep for options.method/);
    await expect(sample({ ...base, sampler: 'ddim', options: { eta: 'high' } })).rejects.toThrow(/Expected a number for options.eta/);
  });
  it('steps, tStart/tEnd, skip', async () => {
    await expect(sample({ ...base, steps: 0 })).rejects.toThrow(/Expected positive integer for steps but received 0/);
    await expect(sample({ ...base, steps: 2.5 })).rejects.toThrow(/for steps/);
    await expect(sample({ ...base, tStart: 0.5, tEnd: 0.5 })).rejects.toThrow(/for tEnd/);
    await expect(sample({ ...base, tStart: 2 })).rejects.toThrow(/tStart/);
    await expect(sample({ ...base, skip: 'quadratic' as never })).rejects.toThrow(/for skip/);
  });
  it('shapes, dtypes, non-finite inputs', async () => {
    await expect(sample({ ...base, noise: Tensor.from(new Float32Array(3), { shape: [1, 3] }) })).rejects.toBeInstanceOf(ShapeError);
    await expect(sample({ ...base, noise: Tensor.from(new Float32Array([0, NaN]), { shape: [1, 2] }) })).rejects.toThrow(/Expected finite values for noise but element 1 is NaN/);
    await expect(sample({ ...base, xStart: Tensor.from(new Float32Array([Infinity, 0]), { shape: [1, 2] }) })).rejects.toThrow(/finite values for x/);
    await expect(sample({ ...base, dtype: 'f64', noise: Tensor.from(new Float32Array(2), { shape: [1, 2] }) })).rejects.toBeInstanceOf(DTypeError);
    await expect(sample({ ...base, denoiser: async (x) => x, prediction: undefined as never, shape: [1, 2] })).rejects.toThrow(/for prediction/);
  });
  it('a JS denoiser returning the wrong shape', async () => {
    await expect(sample({ ...base, denoiser: async () => Tensor.from(new Float32Array(3), { shape: [3] }), prediction: 'eps', shape: [1, 2] })).rejects.toThrow(/denoiser output/);
  });
  it('stochastic samplers need seeds; conditioned schedules need a condition', async () => {
    const noise = await randn([1, 2]);
    await expect(sample({ ...base, seed: undefined, noise, sampler: 'euler-ancestral' })).rejects.toThrow(/needs one seed per sample/);
    await expect(sample({ ...base, schedule: schedules.meanReverting(), sampler: 'mrs' })).rejects.toThrow(/for condition/);
    await expect(sample({ ...base, sampler: 'resshift' })).rejects.toThrow(/conditioned schedule/);
  });
  it('schedules validate their options', () => {
    expect(() => schedules.vpLinear({ beta0: -1 })).toThrow(/beta0/);
    expect(() => schedules.flow({ shft: 2 } as never)).toThrow(/Unknown option shft for schedules.flow/);
    expect(() => schedules.vpDiscrete({ betaSchedule: 'cosine' as never })).toThrow(/betaSchedule/);
  });
  it('the step-wise API refuses a finished sampler and a wrong time', async () => {
    const s = createSampler({ schedule: vp, sampler: 'ddim', steps: 1, shape: [1, 2], prediction: 'x0' });
    const x = Tensor.from(new Float32Array([1, 2]), { shape: [1, 2] });
    expect(() => s.step(x, x, 0.123)).toThrow(/the sampler's next time/);
    const y = s.step(x, x);
    expect(s.done).toBe(true);
    expect(() => s.step(y, y)).toThrow(/has finished/);
    s.dispose();
    expect(() => s.done).toThrow(expect.objectContaining({ code: 'ERR_ND_DISPOSED' }));
    expect(() => s.initialState(x)).toThrow(expect.objectContaining({ code: 'ERR_ND_DISPOSED' }));
  });
});

describe('listings', () => {
  it('every sampler documents its order, evaluations per step, source and options', () => {
    const all = listSamplers();
    expect(all.length).toBeGreaterThanOrEqual(33);
    for (const s of all) {
      expect(s.order.length).toBeGreaterThan(0);
      expect(s.evaluationsPerStep.length).toBeGreaterThan(0);
      expect(s.source.length).toBeGreaterThan(5);
      for (const o of s.options) expect(o.description.length).toBeGreaterThan(3);
    }
    const names = all.map((s) => s.name);
    for (const n of ['ddpm', 'ddim', 'euler', 'euler-ancestral', 'heun', 'lms', 'plms', 'ipndm', 'dpm2', 'dpm2-ancestral', 'dpm-solver', 'dpmpp-2s-ancestral',
      'dpmpp-2m', 'dpmpp-3m', 'dpmpp-sde', 'dpmpp-2m-sde', 'dpmpp-3m-sde', 'unipc', 'dpm-adaptive', 'plms-hb', 'dpmpp-hb', 'ghvb', 'lcm', 'consistency-sde',
      'mrs', 'pfgmpp', 'resshift', 'brownian-bridge', 'interpolant-sde', 'flow-euler', 'flow-heun', 'ddim-inverse', 'dpm-solver-inverse']) {
      expect(names).toContain(n);
    }
    expect(listSchedules().map((s) => s.name)).toEqual(Object.keys(schedules));
  });
});

describe('exactness without a reference', () => {
  it('data-form first-order samplers are exact in one step for a Dirac data distribution', async () => {
    // A Gaussian with tiny variance is a Dirac up to 1e-12: x0_hat = mean whatever x.
    const dirac = analytic.gaussian({ mean: [0.3, -0.7], variances: [1e-24, 1e-24] });
    for (const sampler of ['ddim', 'dpmpp-2m', 'unipc', 'dpm-solver']) {
      const out = await sample({ denoiser: dirac, schedule: vp, sampler, steps: 1, tStart: 1, tEnd: 0.3, seed: 2, dtype: 'f64', shape: [3, 2] });
      // The exact PF-ODE solution for a Dirac: x_t = alpha_t x0 + (sigma_t / sigma_s)(x_s - alpha_s x0).
      const xs = await randn([3, 2], { seed: 2, dtype: 'f64' });
      const a1 = vp.alpha(1), s1 = vp.sigma(1), a = vp.alpha(0.3), s = vp.sigma(0.3);
      const n = xs.dataSync() as Float64Array;
      const o = out.dataSync() as Float64Array;
      for (let i = 0; i < 6; i++) {
        const x0 = i % 2 ? -0.7 : 0.3;
        const x = s1 * n[i];
        expect(o[i]).toBeCloseTo(a * x0 + (s / s1) * (x - a1 * x0), 12);
      }
    }
  });
  it('the closed-form Gaussian ODE is matched by every 2nd+ order sampler as steps grow', async () => {
    const xT = await randn([4, 2], { seed: 6, dtype: 'f64' });
    const exact = await g.pfOdeSolution(xT, vp, 1, 1e-3);
    for (const sampler of ['heun', 'dpmpp-2m', 'unipc', 'dpmpp-3m', 'lms', 'dpm-adaptive']) {
      const out = await sample({ denoiser: g, schedule: vp, sampler, steps: 200, tStart: 1, tEnd: 1e-3, xStart: xT, dtype: 'f64', options: sampler === 'dpm-adaptive' ? { rtol: 1e-6, atol: 1e-8 } : undefined });
      const e = (out.dataSync() as Float64Array).reduce((m, v, i) => Math.max(m, Math.abs(v - (exact.dataSync() as Float64Array)[i])), 0);
      expect(e, sampler).toBeLessThan(1e-3);
    }
  });
});

describe('inversion', () => {
  it('ddim-inverse and dpm-solver-inverse map x0 to xT and back', async () => {
    const x0 = await randn([4, 2], { seed: 9, dtype: 'f64' });
    for (const [inv, fwd, steps, tol] of [['ddim-inverse', 'ddim', 1600, 2e-2], ['dpm-solver-inverse', 'dpm-solver', 100, 1e-4]] as const) {
      const common = { denoiser: g, schedule: vp, steps, tStart: 1, tEnd: 1e-3, dtype: 'f64' as const, options: inv === 'dpm-solver-inverse' ? { order: 3, fullD2: true } : undefined };
      const xT = await sample({ ...common, sampler: inv, xStart: x0 });
      const back = await sample({ ...common, sampler: fwd, xStart: xT });
      const e = (back.dataSync() as Float64Array).reduce((m, v, i) => Math.max(m, Math.abs(v - (x0.dataSync() as Float64Array)[i])), 0);
      expect(e, inv).toBeLessThan(tol);
      // The inverse really lands at the noisy end: it matches the exact ODE map from 1e-3 to 1.
      const exact = await g.pfOdeSolution(x0, vp, 1e-3, 1);
      const ei = (xT.dataSync() as Float64Array).reduce((m, v, i) => Math.max(m, Math.abs(v - (exact.dataSync() as Float64Array)[i])), 0);
      expect(ei, inv).toBeLessThan(tol);
    }
  });
});

describe('Brownian-tree noise', () => {
  it('dpmpp-2m-sde with N and 2N steps converges to the same sample (same Brownian path)', async () => {
    const run = (steps: number, brownianTree: boolean) =>
      sample({ denoiser: g, schedule: vp, sampler: 'dpmpp-2m-sde', steps, seed: [1, 2, 3], shape: [3, 2], tEnd: 1e-3, dtype: 'f64', brownianTree });
    const gap = async (tree: boolean) => {
      const a = await run(100, tree), b = await run(200, tree);
      return (a.dataSync() as Float64Array).reduce((m, v, i) => Math.max(m, Math.abs(v - (b.dataSync() as Float64Array)[i])), 0);
    };
    const withTree = await gap(true);
    const without = await gap(false);
    expect(withTree).toBeLessThan(0.05);
    expect(without).toBeGreaterThan(10 * withTree);
  });
  it('is reproducible and independent of batch composition', async () => {
    const one = await sample({ denoiser: g, schedule: vp, sampler: 'dpmpp-sde', steps: 12, seed: [7], shape: [1, 2], dtype: 'f64', brownianTree: true });
    const three = await sample({ denoiser: g, schedule: vp, sampler: 'dpmpp-sde', steps: 12, seed: [5, 7, 9], shape: [3, 2], dtype: 'f64', brownianTree: true });
    expect(Array.from((three.dataSync() as Float64Array).slice(2, 4))).toEqual(Array.from(one.dataSync() as Float64Array));
  });
});

describe('per-sample seeds', () => {
  it('a sample does not depend on the batch it is drawn in (ancestral noise included)', async () => {
    const one = await sample({ denoiser: g, schedule: vp, sampler: 'euler-ancestral', steps: 10, seed: [42], shape: [1, 2] });
    const batch = await sample({ denoiser: g, schedule: vp, sampler: 'euler-ancestral', steps: 10, seed: [1, 42, 3], shape: [3, 2] });
    expect(Array.from((batch.dataSync() as Float32Array).slice(2, 4))).toEqual(Array.from(one.dataSync() as Float32Array));
  });
});

describe('PFGM++ prior', () => {
  it('E|x_T|^2 = sigma_max^2 N D / (D - 2) and it tends to N(0, sigma^2 I) as D grows', async () => {
    const N = 16, B = 20_000;
    for (const D of [8, 64, 4096]) {
      const schedule = schedules.pfgmpp({ augmentedDim: D, sigmaMax: 10 });
      const s = createSampler({ schedule, sampler: 'pfgmpp', steps: 5, skip: 'karras', shape: [B, N], prediction: 'x0', dtype: 'f64', seed: 100 });
      const x = s.initialState(await randn([B, N], { seed: 100, dtype: 'f64' }));
      const d = x.dataSync() as Float64Array;
      let sq = 0, sq2 = 0;
      for (let b = 0; b < B; b++) {
        let r = 0;
        for (let j = 0; j < N; j++) r += d[b * N + j] ** 2;
        sq += r / B;
        sq2 += (r * r) / B;
      }
      const expected = 100 * N * D / (D - 2);
      const se = Math.sqrt((sq2 - sq * sq) / B);
      expect(Math.abs(sq - expected), `D ${D}`).toBeLessThan(5 * se);
    }
  });
});

describe('schedules', () => {
  it('alpha, sigma, lambda and the inverse agree; conditioned schedules say so', () => {
    for (const s of [schedules.vpLinear(), schedules.vpCosine(), schedules.vpDiscrete(), schedules.ve(), schedules.flow({ shift: 3 }),
      schedules.meanReverting(), schedules.resshift(), schedules.brownianBridge()]) {
      for (const t of [0.01, 0.3, 0.7].map((u) => s.tMin + u * (s.tMax - s.tMin))) {
        expect(s.lambda(t)).toBeCloseTo(Math.log(s.alpha(t) / s.sigma(t)), 10);
        expect(s.tFromLambda(s.lambda(t))).toBeCloseTo(t, 8);
      }
      expect(s.conditioned).toBe(['mean-reverting', 'resshift', 'brownian-bridge'].includes(s.name));
    }
  });
  it('ResShift: x_T = y + kappa sqrt(eta_T) z at t = 1 (eta_T = 0.99^2)', () => {
    const s = schedules.resshift({ kappa: 2 });
    expect(1 - s.alpha(1)).toBeCloseTo(0.99 ** 2, 12);
    expect(s.sigma(1)).toBeCloseTo(2 * 0.99, 12);
    // The first index: sqrt(eta_1) = min(0.04 / kappa, 0.04).
    expect(Math.sqrt(1 - s.alpha(1 / 15))).toBeCloseTo(0.02, 12);
  });
  it('the flow shift moves time-built grids towards the noisy end only', () => {
    const a = schedules.flow().timesteps({ steps: 4, skip: 'time-uniform', tStart: 1, tEnd: 0 });
    const b = schedules.flow({ shift: 3 }).timesteps({ steps: 4, skip: 'time-uniform', tStart: 1, tEnd: 0 });
    expect(a).toEqual([1, 0.75, 0.5, 0.25, 0]);
    expect(b[0]).toBe(1);
    expect(b[4]).toBe(0);
    expect(b[2]).toBeCloseTo(0.75, 12);  // 3 * 0.5 / (1 + 2 * 0.5)
  });
});

describe('abort', () => {
  it('an AbortSignal stops the native loop and the JS loop with AbortError', async () => {
    const big = analytic.gaussian({ mean: new Array(64).fill(0), variances: new Array(64).fill(1) });
    const ac = new AbortController();
    const p = sample({ denoiser: big, schedule: vp, sampler: 'dpmpp-2m', steps: 100_000, shape: [64, 64], seed: 1, signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    await expect(p).rejects.toMatchObject({ code: 'ERR_ND_ABORTED' });
    const ac2 = new AbortController();
    let calls = 0;
    const js = sample({ denoiser: async (x) => { if (++calls === 3) ac2.abort(); return x; }, prediction: 'x0', schedule: vp, sampler: 'ddim', steps: 50, shape: [1, 2], seed: 1, signal: ac2.signal });
    await expect(js).rejects.toMatchObject({ code: 'ERR_ND_ABORTED' });
    expect(calls).toBe(3);
    await expect(sample({ denoiser: g, schedule: vp, sampler: 'ddim', steps: 5, signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_ND_ABORTED' });
  });
});

describe('dynamic thresholding', () => {
  it('clamps the x0 estimate at the per-sample |x0| quantile s (clamped to [1, maxValue]) and divides by s', async () => {
    // A model predicting x0 = [3, -0.5, 0.25, 6] for every sample; one DDIM step to the clean end returns x0.
    const pred = [3, -0.5, 0.25, 6];
    const model = async (x: Tensor) => Tensor.from(new Float64Array(x.numel).map((_, i) => pred[i % 4]), { shape: x.shape });
    const run = (thresholding: boolean | { ratio?: number; maxValue?: number }) =>
      sample({ denoiser: model, prediction: 'x0', schedule: vp, sampler: 'ddim', steps: 1, tEnd: 0, skip: 'time-uniform', shape: [2, 4], seed: 1, dtype: 'f64', thresholding });
    expect(Array.from((await run(false)).dataSync() as Float64Array).slice(0, 4)).toEqual(pred);
    // maxValue 1 (default): s = 1, plain clamping to [-1, 1].
    expect(Array.from((await run(true)).dataSync() as Float64Array).slice(0, 4)).toEqual([1, -0.5, 0.25, 1]);
    // ratio 0.5 of |x0| = [0.25, 0.5, 3, 6]: the linear-interpolated quantile at 1.5 is 1.75, s = 1.75.
    const s = 1.75;
    const out = Array.from((await run({ ratio: 0.5, maxValue: 10 })).dataSync() as Float64Array).slice(0, 4);
    expect(out.map((v) => +v.toFixed(12))).toEqual([1, -0.5 / s, 0.25 / s, 1].map((v) => +v.toFixed(12)));
  });
});

describe('defaults', () => {
  it('an unseeded stochastic run is seeded with 0 (noise and steps) and reproducible', async () => {
    const a = await sample({ denoiser: g, schedule: vp, sampler: 'euler-ancestral', steps: 6 });
    const b = await sample({ denoiser: g, schedule: vp, sampler: 'euler-ancestral', steps: 6, seed: 0 });
    expect(Array.from(a.dataSync() as Float32Array)).toEqual(Array.from(b.dataSync() as Float32Array));
  });
});
