// Convergence-order measurement shared by test/solvers-convergence.test.ts and
// scripts/sampler-orders.mjs (which writes the table in docs/samplers.md).
//
// Problem: a 3-component Gaussian mixture in 8 dimensions with unequal, per-dimension stds and unequal
// weights, whose exact denoiser is native. Reference: the PF-ODE solved by our Dormand-Prince 5(4)
// integrator at rtol 1e-13 (denoiser.solvePfOde). Error: RMS over 8 samples x 8 dims of the final
// state. Order: least-squares slope of log(error) against log(steps) over the case's step counts.
import { Tensor, analytic, sample, schedules } from '../../dist/index.js';

const DIM = 8, K = 3, BATCH = 8;

export function mixtureProblem() {
  const means = [], stds = [];
  for (let k = 0; k < K; k++) {
    means.push(Array.from({ length: DIM }, (_, j) => 2 * Math.sin(3 * k + j)));
    stds.push(Array.from({ length: DIM }, (_, j) => 0.3 + 0.2 * ((k + j) % 3)));
  }
  const denoiser = analytic.gaussianMixture({ means, stds, weights: [0.5, 0.3, 0.2] });
  const xT = Float64Array.from({ length: BATCH * DIM }, (_, i) => 1.1 * Math.sin(1.7 * i));
  return { denoiser, xT, dim: DIM, batch: BATCH };
}

// Every deterministic sampler (stochastic ones at eta 0), with the grid on which its order is defined.
// `order` is the global order of the method as implemented: the official third-order multistep update
// is second order (fullD2 makes it third, see samplers_dpm.cpp); heavy-ball momentum (beta < 1) is
// first order; GHVB with fractional order o is order ceil(o); UniPC-p with its corrector is p + 1.
export const ORDER_CASES = [
  { name: 'ddim', order: 1 },
  { name: 'euler', order: 1 },
  { name: 'flow-euler', order: 1 },
  { name: 'dpm-solver', label: 'dpm-solver multistep 1', options: { order: 1 }, order: 1 },
  { name: 'dpmpp-hb', label: 'dpmpp-hb (beta 0.8)', options: { beta: 0.8 }, order: 1 },
  { name: 'heun', order: 2 },
  { name: 'dpm2', order: 2 },
  { name: 'flow-heun', order: 2 },
  { name: 'pfgmpp', grid: 'pfgmpp', order: 2 },
  { name: 'dpmpp-2m', options: { lowerOrderFinal: false }, order: 2 },
  { name: 'dpm-solver', label: 'dpm-solver multistep 2 (noise)', options: { order: 2, algorithm: 'dpmsolver', lowerOrderFinal: false }, order: 2 },
  { name: 'dpm-solver', label: 'dpm-solver multistep 2 (taylor)', options: { order: 2, solverType: 'taylor', lowerOrderFinal: false }, order: 2 },
  { name: 'dpm-solver', label: 'dpm-solver singlestep 2', options: { order: 2, method: 'singlestep' }, order: 2 },
  { name: 'dpmpp-2s-ancestral', label: 'dpmpp-2s-ancestral (eta 0)', options: { eta: 0 }, order: 2 },
  { name: 'dpmpp-sde', label: 'dpmpp-sde (eta 0)', options: { eta: 0 }, order: 2 },
  { name: 'dpmpp-2m-sde', label: 'dpmpp-2m-sde (eta 0)', options: { eta: 0, lowerOrderFinal: false }, order: 2 },
  { name: 'dpmpp-hb', label: 'dpmpp-hb (beta 1)', options: { beta: 1 }, order: 2 },
  { name: 'unipc', label: 'unipc order 1 + corrector', options: { order: 1, lowerOrderFinal: false }, order: 2 },
  { name: 'unipc', label: 'unipc order 2, no corrector', options: { order: 2, corrector: false, lowerOrderFinal: false }, order: 2 },
  { name: 'dpmpp-3m', label: 'dpmpp-3m (official update)', options: { lowerOrderFinal: false }, steps: [256, 512, 1024, 2048], order: 2 },
  { name: 'dpm-solver', label: 'dpm-solver multistep 3 (official, noise)', options: { order: 3, algorithm: 'dpmsolver', lowerOrderFinal: false }, steps: [256, 512, 1024, 2048], order: 2 },
  { name: 'dpmpp-3m', label: 'dpmpp-3m (fullD2)', options: { lowerOrderFinal: false, fullD2: true }, order: 3 },
  { name: 'dpmpp-3m-sde', label: 'dpmpp-3m-sde (eta 0, fullD2)', options: { eta: 0, lowerOrderFinal: false, fullD2: true }, order: 3 },
  { name: 'dpm-solver', label: 'dpm-solver multistep 3 (noise, fullD2)', options: { order: 3, algorithm: 'dpmsolver', lowerOrderFinal: false, fullD2: true }, order: 3 },
  { name: 'dpm-solver', label: 'dpm-solver singlestep 3', options: { order: 3, method: 'singlestep' }, steps: [263, 527, 1055, 2111], order: 3 },
  { name: 'dpm-solver', label: 'dpm-solver singlestep 3 (noise)', options: { order: 3, method: 'singlestep', algorithm: 'dpmsolver' }, steps: [263, 527, 1055, 2111], order: 3 },
  { name: 'unipc', label: 'unipc order 2 + corrector (bh2)', options: { order: 2, lowerOrderFinal: false }, order: 3 },
  { name: 'unipc', label: 'unipc order 2 + corrector (bh1)', options: { order: 2, variant: 'bh1', lowerOrderFinal: false }, order: 3 },
  { name: 'unipc', label: 'unipc order 3 + corrector', options: { order: 3, lowerOrderFinal: false }, steps: [256, 512, 1024, 2048], order: 4 },
  { name: 'lms', steps: [128, 256, 512, 1024], order: 4 },
  { name: 'ipndm', grid: 'uniform-edm', steps: [128, 256, 512, 1024], order: 4 },
  { name: 'plms', grid: 'uniform-edm', steps: [128, 256, 512, 1024], order: 4 },
  { name: 'plms-hb', label: 'plms-hb (beta 1)', options: { beta: 1 }, grid: 'uniform-edm', steps: [128, 256, 512, 1024], order: 4 },
  { name: 'plms-hb', label: 'plms-hb (beta 0.8)', options: { beta: 0.8 }, grid: 'uniform-edm', order: 1 },
  { name: 'ghvb', label: 'ghvb 1.5', options: { order: 1.5 }, grid: 'uniform-edm', steps: [128, 256, 512, 1024], order: 2 },
  { name: 'ghvb', label: 'ghvb 2.5', options: { order: 2.5 }, grid: 'uniform-edm', steps: [128, 256, 512, 1024], order: 3 },
  { name: 'ghvb', label: 'ghvb 3.5', options: { order: 3.5 }, grid: 'uniform-edm', steps: [128, 256, 512, 1024], order: 4 },
  { name: 'mrs', label: 'mrs ODE, data, order 2', options: { order: 2, lowerOrderFinal: false }, grid: 'mean-reverting', order: 2 },
  { name: 'mrs', label: 'mrs ODE, noise, order 1', options: { order: 1, algorithm: 'noise' }, grid: 'mean-reverting', order: 1 },
  { name: 'ddim-inverse', grid: 'inverse', order: 1 },
  { name: 'dpm-solver-inverse', label: 'dpm-solver-inverse (order 2)', options: { order: 2, lowerOrderFinal: false }, grid: 'inverse', steps: [128, 256, 512, 1024], order: 2 },
  { name: 'dpm-solver-inverse', label: 'dpm-solver-inverse (order 3, fullD2)', options: { order: 3, lowerOrderFinal: false, fullD2: true }, grid: 'inverse', order: 3 },
];

export const STEPS = [64, 128, 256, 512];

export async function referenceFor(problem, schedule, tStart, tEnd) {
  const x = Tensor.from(problem.xT, { shape: [problem.batch, problem.dim] });
  const ref = await problem.denoiser.solvePfOde(x, schedule, tStart, tEnd, { rtol: 1e-13 });
  return { x, ref: ref.dataSync() };
}

// Mean-reverting schedules move towards mu: x~ = x - (1 - alpha) mu follows the plain PF-ODE, so the
// reference maps x~ and shifts back.
const MU = Float64Array.from({ length: BATCH * DIM }, (_, i) => 0.5 * Math.cos(0.9 * i));
async function meanRevertingReference(problem, schedule, tStart, tEnd) {
  const shift = (x, t, sign) => { const k = 1 - schedule.alpha(t); return x.map((v, i) => v + sign * k * MU[i]); };
  const x = Tensor.from(problem.xT, { shape: [problem.batch, problem.dim] });
  const xt = Tensor.from(shift(problem.xT, tStart, -1), { shape: [problem.batch, problem.dim] });
  const ref = await problem.denoiser.solvePfOde(xt, schedule, tStart, tEnd, { rtol: 1e-13 });
  return { x, ref: shift(ref.dataSync(), tEnd, 1), condition: Tensor.from(MU.slice(), { shape: [problem.batch, problem.dim] }) };
}

// One case: errors per step count and the fitted order.
export async function measureOrder(problem, c, steps = c.steps ?? STEPS) {
  // Grids: the DPM-Solver family's logSNR on VP-linear by default; fixed-coefficient Adams-Bashforth
  // methods are defined on grids uniform in the EDM sigma (karras rho = 1) of a VE schedule.
  let schedule, tStart, tEnd, skip = 'logSNR', rho;
  if (c.grid === 'uniform-edm') { schedule = schedules.ve({ sigmaMin: 0.002, sigmaMax: 80 }); tStart = 10; tEnd = 0.5; skip = 'karras'; rho = 1; }
  else if (c.grid === 'pfgmpp') { schedule = schedules.pfgmpp({ augmentedDim: 128 }); tStart = 80; tEnd = 0.002; skip = 'karras'; }
  else if (c.grid === 'mean-reverting') { schedule = schedules.meanReverting(); tStart = 1; tEnd = 1e-3; }
  // Inversion runs the ODE towards noise, where errors grow instead of contracting; starting at a
  // moderate noise level keeps the measurement in the asymptotic regime.
  else if (c.grid === 'inverse') { schedule = schedules.vpLinear(); tStart = 1; tEnd = 0.1; }
  else { schedule = schedules.vpLinear(); tStart = 1; tEnd = 1e-3; }
  // Inversion integrates from tEnd up to tStart.
  const { x, ref, condition } = c.grid === 'mean-reverting'
    ? await meanRevertingReference(problem, schedule, tStart, tEnd)
    : c.grid === 'inverse' ? await referenceFor(problem, schedule, tEnd, tStart) : await referenceFor(problem, schedule, tStart, tEnd);
  const errors = [];
  for (const n of steps) {
    const out = await sample({ denoiser: problem.denoiser, schedule, sampler: c.name, steps: n, skip, rho, tStart, tEnd, xStart: x, dtype: 'f64', options: c.options, condition });
    const o = out.dataSync();
    let s = 0;
    for (let i = 0; i < o.length; i++) s += (o[i] - ref[i]) ** 2;
    errors.push(Math.sqrt(s / o.length));
    out.dispose();
  }
  x.dispose();
  const lx = steps.map(Math.log), ly = errors.map(Math.log);
  const mx = lx.reduce((a, b) => a + b) / lx.length, my = ly.reduce((a, b) => a + b) / ly.length;
  let num = 0, den = 0;
  for (let i = 0; i < lx.length; i++) { num += (lx[i] - mx) * (ly[i] - my); den += (lx[i] - mx) ** 2; }
  return { errors, measured: -num / den, steps };
}
