// SDE samplers against the truth: with the exact denoiser of a Gaussian N(mu, Sigma), a correct
// stochastic sampler ends at N(mu, Sigma) up to its discretisation bias (O(h) for the first-order
// ancestral/Euler-Maruyama schemes). Each sampler runs 10^5 samples of a correlated 2-D Gaussian with
// enough steps for the bias to sit well below the statistical error, and every mean and covariance
// entry must lie within 4.5 standard errors. The last test shows the check has teeth.
import { describe, expect, it } from 'vitest';
import { Tensor, analytic, sample, schedules, type Schedule } from '../lib/index.js';

const mean = [1.5, -0.5];
const cov = [[0.5, 0.3], [0.3, 1.2]];
const B = 100_000;
const gaussian = analytic.gaussian({ mean, covariance: cov });

function zScores(x: Float32Array | Float64Array): { mean: number[]; cov: number[] } {
  const d = 2;
  const m = [0, 0];
  for (let i = 0; i < B; i++) for (let j = 0; j < d; j++) m[j] += x[i * d + j] / B;
  const c = [[0, 0], [0, 0]];
  for (let i = 0; i < B; i++) {
    for (let j = 0; j < d; j++) for (let k = 0; k < d; k++) c[j][k] += (x[i * d + j] - m[j]) * (x[i * d + k] - m[k]) / (B - 1);
  }
  const zm = m.map((v, j) => (v - mean[j]) / Math.sqrt(cov[j][j] / B));
  // Var of a sample covariance of Gaussian data: (S_jj S_kk + S_jk^2) / n.
  const zc = [c[0][0], c[0][1], c[1][1]].map((v, q) => {
    const [j, k] = [[0, 0], [0, 1], [1, 1]][q];
    return (v - cov[j][k]) / Math.sqrt((cov[j][j] * cov[k][k] + cov[j][k] ** 2) / B);
  });
  return { mean: zm, cov: zc };
}

async function check(name: string, opts: { schedule: Schedule; steps: number; options?: Record<string, number | boolean | string>; tEnd?: number; condition?: Tensor; denoiser?: unknown; prediction?: 'x0'; skip?: 'logSNR' | 'time-uniform' }) {
  const out = await sample({
    denoiser: (opts.denoiser ?? gaussian) as never, prediction: opts.prediction, schedule: opts.schedule, sampler: name, steps: opts.steps, skip: opts.skip ?? 'logSNR',
    shape: [B, 2], seed: 11, dtype: 'f32', options: opts.options, tEnd: opts.tEnd, condition: opts.condition,
  });
  const z = zScores(out.dataSync() as Float32Array);
  out.dispose();
  return z;
}

const vp = schedules.vpLinear();
const within = (z: { mean: number[]; cov: number[] }, limit = 4.5) => [...z.mean, ...z.cov].every((v) => Math.abs(v) < limit);

describe('SDE samplers reach the Gaussian target (10^5 samples, 4.5 standard errors)', () => {
  const cases: [string, number, Record<string, number | boolean | string>?][] = [
    ['ddpm', 1000], ['ddim', 1000, { eta: 1 }], ['euler-ancestral', 1000], ['dpm2-ancestral', 250],
    ['dpmpp-2s-ancestral', 250], ['dpmpp-sde', 600], ['dpmpp-2m-sde', 250], ['dpmpp-3m-sde', 250],
  ];
  for (const [name, steps, options] of cases) {
    it(`${name} (${steps} steps)`, async () => {
      const z = await check(name, { schedule: vp, steps, options, tEnd: 1e-3 });
      expect(within(z), `${name}: z(mean) ${z.mean.map((v) => v.toFixed(2))} z(cov) ${z.cov.map((v) => v.toFixed(2))}`).toBe(true);
    }, 60_000);
  }

  it('interpolant-sde on rectified flow (eps(t) = sigma(t))', async () => {
    // logSNR spacing cannot start at t = 1 (lambda = -inf); time-uniform is the flow models' own grid.
    const z = await check('interpolant-sde', { schedule: schedules.flow(), steps: 1000, tEnd: 1e-3, skip: 'time-uniform' });
    expect(within(z), `z(mean) ${z.mean} z(cov) ${z.cov}`).toBe(true);
  }, 60_000);

  it('mrs SDE on the mean-reverting schedule (condition mu)', async () => {
    const mu = Tensor.from(new Float32Array(B * 2).map((_, i) => (i % 2 ? 0.7 : -1.0)), { shape: [B, 2] });
    for (const algorithm of ['data', 'noise']) {
      const z = await check('mrs', { schedule: schedules.meanReverting(), steps: 300, options: { solver: 'sde', algorithm, order: algorithm === 'data' ? 2 : 1 }, condition: mu, tEnd: 1e-3 });
      expect(within(z), `${algorithm}: z(mean) ${z.mean} z(cov) ${z.cov}`).toBe(true);
    }
  }, 60_000);

  it('brownian-bridge (eta 1) and resshift towards a condition y', async () => {
    const y = Tensor.from(new Float32Array(B * 2).map((_, i) => (i % 2 ? -0.4 : 2.0)), { shape: [B, 2] });
    const bb = await check('brownian-bridge', { schedule: schedules.brownianBridge(), steps: 1600, condition: y, tEnd: 0, skip: 'time-uniform' });
    expect(within(bb), `bridge: z(mean) ${bb.mean} z(cov) ${bb.cov}`).toBe(true);
    const rs = await check('resshift', { schedule: schedules.resshift(), steps: 1600, condition: y, tEnd: 0, skip: 'time-uniform' });
    expect(within(rs), `resshift: z(mean) ${rs.mean} z(cov) ${rs.cov}`).toBe(true);
  }, 60_000);

  it('lcm and consistency-sde (gamma 1) with the exact consistency function are exact at 4 steps', async () => {
    // For Gaussian data the consistency function is the closed-form PF-ODE map to t = 0.
    const consistency = (x: Tensor, t: number) => gaussian.pfOdeSolution(x, vp, t, 0);
    for (const [name, options] of [['lcm', {}], ['consistency-sde', { gamma: 1 }]] as const) {
      const z = await check(name, { schedule: vp, steps: 4, options, denoiser: consistency, prediction: 'x0', tEnd: 1e-3 });
      expect(within(z), `${name}: z(mean) ${z.mean} z(cov) ${z.cov}`).toBe(true);
    }
  }, 60_000);

  it('the check has teeth: a 3% error in the target covariance is detected', async () => {
    // (Errors in the ancestral noise scale are largely forgotten by the later, contracting steps, so a
    // wrong target is the sharper probe of the statistical check itself.)
    const wrong = analytic.gaussian({ mean, covariance: cov.map((r) => r.map((v) => v * 1.03)) });
    const z = await check('dpmpp-2m-sde', { schedule: vp, steps: 250, tEnd: 1e-3, denoiser: wrong });
    expect(within(z)).toBe(false);
  }, 60_000);
});
