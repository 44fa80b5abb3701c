// Analytic acceleration: teleport ("Diffusion Models Generate Images Like Painters", Wang & Vastola)
// jumps the early trajectory with the closed-form PF-ODE of a Gaussian fitted to the data, and
// Analytic-Init ("Identifying and Solving Conditional Image Leakage", Zhao et al. 2024) starts at an
// earlier time M < T from the KL-optimal Gaussian instead of N(0, sigma_M^2).
import { describe, expect, it } from 'vitest';
import { Tensor, analytic, randn, sample, schedules } from '../lib/index.js';

const dim = 8;
// A correlated Gaussian: covariance = L L^T with a fixed lower-triangular L.
const L = Array.from({ length: dim }, (_, i) => Array.from({ length: dim }, (_, j) => (j > i ? 0 : j === i ? 0.4 + 0.15 * i : 0.1 * Math.sin(i + 2 * j))));
const cov = L.map((r, i) => L.map((s, j) => r.reduce((acc, v, k) => acc + v * s[k], 0)));
const mean = Array.from({ length: dim }, (_, i) => Math.cos(i));
const gaussian = analytic.gaussian({ mean, covariance: cov });
const vp = schedules.vpLinear();

const rmse = (a: Tensor, b: Tensor) => {
  const x = a.dataSync() as Float64Array, y = b.dataSync() as Float64Array;
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i] - y[i]) ** 2;
  return Math.sqrt(s / x.length);
};

describe('teleport with the closed-form Gaussian PF-ODE', () => {
  it('the closed form agrees with the numerical reference integrator (1e-9)', async () => {
    const xT = await randn([4, dim], { seed: 3, dtype: 'f64' });
    const closed = await gaussian.pfOdeSolution(xT, vp, 1, 0.2);
    const numeric = await gaussian.solvePfOde(xT, vp, 1, 0.2, { rtol: 1e-13 });
    expect(rmse(closed, numeric)).toBeLessThan(1e-9);
  });

  it('same final error at fewer model evaluations on Gaussian data', async () => {
    const xT = await randn([16, dim], { seed: 4, dtype: 'f64' });
    const tEnd = 1e-3;
    const exact = await gaussian.pfOdeSolution(xT, vp, 1, tEnd);
    const full = await sample({ denoiser: gaussian, schedule: vp, sampler: 'dpmpp-2m', steps: 20, tStart: 1, tEnd, xStart: xT, dtype: 'f64' });
    // Teleport to where the log-SNR is 0 (alpha = sigma) and finish with half the evaluations.
    const tSkip = vp.tFromLambda(0);
    const teleported = await sample({ denoiser: gaussian, schedule: vp, sampler: 'dpmpp-2m', steps: 10, tStart: 1, tEnd, xStart: xT, dtype: 'f64', teleport: { gaussian, tSkip } });
    const eFull = rmse(full, exact), eTeleport = rmse(teleported, exact);
    expect(eTeleport).toBeLessThanOrEqual(eFull);
    // And the skipped part is exact: teleporting all the way to a late time leaves only the last steps.
    const late = await sample({ denoiser: gaussian, schedule: vp, sampler: 'dpmpp-2m', steps: 3, tStart: 1, tEnd, xStart: xT, dtype: 'f64', teleport: { gaussian, tSkip: 2e-3 } });
    expect(rmse(late, exact)).toBeLessThan(1e-3 * eFull + 1e-6);
  });

  it('on mixture data the teleport error grows as the skip reaches lower noise', async () => {
    const gmm = analytic.gaussianMixture({ means: [[2, 0, 0, 0, 0, 0, 0, 0], [-2, 0, 0, 0, 0, 0, 0, 1]], stds: [0.5, 0.5] });
    // The Gaussian fitted to the mixture: mean 0 (+0.5 in the last dim), variances from the law of total variance.
    const fit = analytic.gaussian({ mean: [0, 0, 0, 0, 0, 0, 0, 0.5], variances: [4.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.5] });
    const xT = await randn([32, dim], { seed: 5, dtype: 'f64' });
    const ref = await gmm.solvePfOde(xT, vp, 1, 1e-3, { rtol: 1e-12 });
    const errs: number[] = [];
    for (const lambda of [-3, -1, 1]) {
      const out = await sample({ denoiser: gmm, schedule: vp, sampler: 'dpmpp-2m', steps: 40, tStart: 1, tEnd: 1e-3, xStart: xT, dtype: 'f64', teleport: { gaussian: fit, tSkip: vp.tFromLambda(lambda) } });
      errs.push(rmse(out, ref));
    }
    expect(errs[0]).toBeLessThan(errs[1]);
    expect(errs[1]).toBeLessThan(errs[2]);
  });
});

describe('Analytic-Init', () => {
  const B = 100_000;
  const diagVar = [0.3, 1.5, 0.6, 2.0];
  const diagMean = [1.0, -2.0, 0.5, 3.0];
  const g = analytic.gaussian({ mean: diagMean, variances: diagVar });
  const stats = (t: Tensor) => {
    const d = t.dataSync() as Float32Array;
    const m = [0, 0, 0, 0], v = [0, 0, 0, 0];
    for (let i = 0; i < B; i++) for (let j = 0; j < 4; j++) m[j] += d[i * 4 + j] / B;
    for (let i = 0; i < B; i++) for (let j = 0; j < 4; j++) v[j] += (d[i * 4 + j] - m[j]) ** 2 / B;
    return { z: m.map((x, j) => (x - diagMean[j]) / Math.sqrt(diagVar[j] / B)), zv: v.map((x, j) => (x / diagVar[j] - 1) / Math.sqrt(2 / B)) };
  };
  it('starting at M = 0.4 from the analytic Gaussian gives the right distribution; plain noise does not', async () => {
    const M = 0.4;  // alpha(M) ~ 0.75: far from pure noise
    const common = { denoiser: g, schedule: vp, sampler: 'dpmpp-2m', steps: 30, tStart: M, tEnd: 1e-3, shape: [B, 4], seed: 8 } as const;
    const init = await sample({ ...common, analyticInit: { mean: diagMean, variance: diagVar } });
    const s = stats(init);
    expect([...s.z, ...s.zv].every((z) => Math.abs(z) < 4.5), JSON.stringify(s)).toBe(true);
    const plain = await sample({ ...common });
    const p = stats(plain);
    expect([...p.z, ...p.zv].some((z) => Math.abs(z) > 50)).toBe(true);
  }, 30_000);
});

describe('low-rank Gaussian teleport', () => {
  it('equals the full-covariance transport of U diag(l) U^T + r (I - U U^T)', async () => {
    // An orthonormal basis of rank 3 in 8-D by Gram-Schmidt on fixed vectors.
    const raw = [0, 1, 2].map((k) => Array.from({ length: dim }, (_, i) => Math.sin(1.3 * i + 2.1 * k) + (i === k ? 1 : 0)));
    const basis: number[][] = [];
    for (const v of raw) {
      const w = [...v];
      for (const u of basis) { const d = u.reduce((a, x, i) => a + x * w[i], 0); for (let i = 0; i < dim; i++) w[i] -= d * u[i]; }
      const n = Math.hypot(...w);
      basis.push(w.map((x) => x / n));
    }
    const eig = [3.0, 1.2, 0.4], residual = 0.05;
    const covFull = Array.from({ length: dim }, (_, i) => Array.from({ length: dim }, (_, j) =>
      basis.reduce((a, u, k) => a + (eig[k] - residual) * u[i] * u[j], 0) + (i === j ? residual : 0)));
    const full = analytic.gaussian({ mean, covariance: covFull });
    const low = analytic.lowRankGaussian({ mean, basis: Array.from({ length: dim }, (_, i) => basis.map((u) => u[i])), eigenvalues: eig, residualVariance: residual });
    const x = await randn([5, dim], { seed: 12, dtype: 'f64' });
    const a = await full.pfOdeSolution(x, vp, 1, 0.3), b = await low.pfOdeSolution(x, vp, 1, 0.3);
    expect(rmse(a, b)).toBeLessThan(1e-12);
    // And through sample({ teleport }).
    const viaFull = await sample({ denoiser: full, schedule: vp, sampler: 'dpmpp-2m', steps: 6, xStart: x, dtype: 'f64', teleport: { gaussian: full, tSkip: 0.3 } });
    const viaLow = await sample({ denoiser: full, schedule: vp, sampler: 'dpmpp-2m', steps: 6, xStart: x, dtype: 'f64', teleport: { gaussian: low, tSkip: 0.3 } });
    expect(rmse(viaFull, viaLow)).toBeLessThan(1e-12);
  });
  it('rejects a basis that is not orthonormal', () => {
    expect(() => analytic.lowRankGaussian({ mean: [0, 0], basis: [[1], [1]], eigenvalues: [1] })).toThrow(/orthonormal/);
  });
});
