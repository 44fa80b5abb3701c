// The divergence problem of "Diffusion Sampling with Momentum" (Wizadwongsa & Suwajanakorn 2023), in
// closed form: classifier-free guidance at a high scale w on a 3-component Gaussian mixture in 4-D,
// x0_w = x0_uncond + w (x0_cond - x0_uncond) with cond = the first component. The amplified
// guidance term makes the ODE stiff, and high-order Adams-Bashforth steps at low step counts overshoot
// and blow up. Reference: Heun with 500 steps. Shared by test/solvers-momentum.test.ts and
// scripts/solver-tables.mjs.
import { Tensor, analytic, sample, schedules } from '../../dist/index.js';

const means = [[2, 0, 1, -1], [-2, 1, 0, 1], [0, -2, -1, 0]];
const stds = [[0.3, 0.5, 0.4, 0.3], [0.5, 0.3, 0.3, 0.4], [0.4, 0.4, 0.5, 0.3]];

export function guidedProblem(w) {
  const uncond = analytic.gaussianMixture({ means, stds, weights: [0.4, 0.35, 0.25] });
  const cond = analytic.gaussianMixture({ means: [means[0]], stds: [stds[0]], weights: [1] });
  const schedule = schedules.vpDiscrete({ betaSchedule: 'scaled-linear' });
  const denoiser = async (x, t) => {
    const u = await uncond.denoise(x, t, schedule), c = await cond.denoise(x, t, schedule);
    const a = u.dataSync(), b = c.dataSync();
    u.dispose(); c.dispose();
    return Tensor.from(a.map((v, i) => v + w * (b[i] - v)), { shape: x.shape });
  };
  const batch = 64;
  // A fixed, seed-free start so the numbers in the docs are reproducible from the formula.
  const noise = Tensor.from(Float64Array.from({ length: batch * 4 }, (_, i) => 2 * ((Math.sin(12.9898 * i) * 43758.5453) % 1)), { shape: [batch, 4] });
  return { schedule, denoiser, noise, w };
}

export async function runGuided(problem, sampler, steps, options) {
  return sample({ denoiser: problem.denoiser, prediction: 'x0', schedule: problem.schedule, sampler, steps, skip: 'time-uniform', noise: problem.noise, dtype: 'f64', options });
}

// { rmse vs the reference, max |x| } of one run.
export async function guidedError(problem, reference, sampler, steps, options) {
  const out = await runGuided(problem, sampler, steps, options);
  const o = out.dataSync();
  const r = reference.dataSync();
  let e = 0, mx = 0;
  for (let i = 0; i < o.length; i++) { e += (o[i] - r[i]) ** 2; mx = Math.max(mx, Math.abs(o[i])); }
  out.dispose();
  return { rmse: Math.sqrt(e / o.length), maxAbs: mx };
}

export async function guidedReference(problem) {
  return runGuided(problem, 'heun', 500);
}

export const MOMENTUM_CONFIGS = [
  ['ipndm', {}, 'PLMS (Adams-Bashforth 4, as in the paper)'],
  ['plms-hb', { beta: 0.8 }, 'PLMS + heavy ball, beta 0.8'],
  ['plms-hb', { beta: 0.5 }, 'PLMS + heavy ball, beta 0.5'],
  ['ghvb', { order: 3.5 }, 'GHVB 3.5'],
  ['ghvb', { order: 2.5 }, 'GHVB 2.5'],
  ['dpmpp-2m', {}, 'DPM-Solver++(2M)'],
  ['dpmpp-hb', { beta: 0.8 }, 'DPM-Solver++(2M) + heavy ball, beta 0.8'],
];
