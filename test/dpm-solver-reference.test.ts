/**
 * The native 'dpm-solver' sampler against an independent f64 TypeScript reference of the official
 * DPM-Solver / DPM-Solver++ (test/helpers/dpm-solver-reference.ts), on a Gaussian mixture whose exact
 * posterior mean the reference computes itself. Agreement is required to 1e-9 relative: both sides
 * evaluate the same closed forms in double precision, so anything above rounding noise (~1e-14 here)
 * is a different algorithm, not a different rounding.
 */
import { describe, expect, it } from 'vitest';
import { analytic, createSampler, sample, schedules, Tensor } from '../lib/index.js';
import {
  type DiagonalGmm,
  type DpmSolverReferenceOptions,
  type Skip,
  type VpSchedule,
  diffusersBetas,
  dpmSolverReference,
  gmmPosteriorMean,
  timeGrid,
  vpDiscreteSchedule,
  vpLinearSchedule,
} from './helpers/dpm-solver-reference.js';
import { rng } from './helpers/reference.js';

const TOL = 1e-9;
const BATCH = 4, DIM = 8;
const T_START = 1, T_END = 1e-3;

// A fixed, deliberately lopsided mixture: unequal weights and per-dimension stds spanning almost an
// order of magnitude, so responsibilities change along the trajectory and the model output is far
// from linear in x (a linear model would hide mistakes in the higher-order difference terms).
const next = rng(20220602);
const uniform = (lo: number, hi: number): number => lo + ((hi - lo) * next()) / 2 ** 32;
const gmm: DiagonalGmm = {
  means: Array.from({ length: 3 }, () => Array.from({ length: DIM }, () => uniform(-2, 2))),
  stds: Array.from({ length: 3 }, () => Array.from({ length: DIM }, () => uniform(0.1, 1))),
  weights: [0.55, 0.3, 0.15],
};
const gaussian = (): number => Math.sqrt(-2 * Math.log(1 - next() / 2 ** 32)) * Math.cos((2 * Math.PI * next()) / 2 ** 32);
const xStart = Float64Array.from({ length: BATCH * DIM }, gaussian);

const engineSchedule = schedules.vpLinear({ beta0: 0.1, beta1: 20 });
const refSchedule = vpLinearSchedule(0.1, 20);
const denoiser = analytic.gaussianMixture(gmm);
const refModel = gmmPosteriorMean(gmm, refSchedule);

/** A schedule on both sides, the reference's posterior mean under it, and the time interval. */
interface Problem {
  engineSchedule: ReturnType<typeof schedules.vpLinear>;
  refSchedule: VpSchedule;
  refModel: ReturnType<typeof gmmPosteriorMean>;
  tStart: number;
  tEnd: number;
}
const linearProblem: Problem = { engineSchedule, refSchedule, refModel, tStart: T_START, tEnd: T_END };

type Case = Pick<DpmSolverReferenceOptions, 'algorithm' | 'method' | 'order' | 'lowerOrderFinal' | 'solverType' | 'skip' | 'steps'>;

const describeCase = (c: Case): string =>
  `${c.algorithm} ${c.method} order ${c.order} ${c.solverType} skip=${c.skip} steps=${c.steps}` +
  (c.method === 'multistep' ? ` lowerOrderFinal=${c.lowerOrderFinal}` : '');

function maxRelError(ours: ArrayLike<number>, ref: ArrayLike<number>): number {
  let diff = 0, scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(ours[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return diff / Math.max(1e-12, scale);
}

function maxTimeDifference(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) return Infinity;
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

function reference(c: Case, innerRatios: 'skip-grid' | 'fixed' = 'skip-grid', p: Problem = linearProblem) {
  return dpmSolverReference({ schedule: p.refSchedule, model: p.refModel, xStart, tStart: p.tStart, tEnd: p.tEnd, innerRatios, ...c });
}

async function checkCase(c: Case, p: Problem = linearProblem): Promise<void> {
  const options = { algorithm: c.algorithm, method: c.method, order: c.order, lowerOrderFinal: c.lowerOrderFinal, solverType: c.solverType };
  const grid = { schedule: p.engineSchedule, sampler: 'dpm-solver', steps: c.steps, skip: c.skip, tStart: p.tStart, tEnd: p.tEnd, dtype: 'f64' as const, options };
  const out = await sample({ ...grid, denoiser, xStart: Tensor.from(xStart, { shape: [BATCH, DIM] }) });
  const ours = out.dataSync() as Float64Array;
  const ref = reference(c, 'skip-grid', p);
  const err = maxRelError(ours, ref.x);
  // The evaluation times tell a wrong grid or a misplaced intermediate point apart from a wrong update.
  const planned = createSampler({ ...grid, shape: [BATCH, DIM], prediction: 'x0' }).plannedTimes;
  const timeErr = maxTimeDifference(planned, ref.evaluations);
  let msg = `${describeCase(c)}: max|ours - ref| / max|ref| = ${err.toExponential(3)}, ` +
    `evaluation times differ by ${timeErr} (engine ${planned.length}, reference ${ref.evaluations.length} evaluations)`;
  if (c.method === 'singlestep' && (err >= TOL || timeErr > 1e-12)) {
    // The one place the official code is easy to misread: where a singlestep step puts its
    // intermediate points. Say whether the engine uses the fixed fractions of lambda instead.
    const fixed = reference(c, 'fixed', p);
    msg += `; against fixed r1 = 1/2 (order 2), r1, r2 = 1/3, 2/3 (order 3): ${maxRelError(ours, fixed.x).toExponential(3)}, ` +
      `times ${maxTimeDifference(planned, fixed.evaluations)}`;
  }
  expect(err, msg).toBeLessThan(TOL);
  expect(timeErr, msg).toBeLessThanOrEqual(1e-12);
}

const ALGORITHMS = ['dpmsolver', 'dpmsolver++'] as const;
const ORDERS = [1, 2, 3] as const;
const SOLVER_TYPES = ['dpmsolver', 'taylor'] as const;
const SKIPS: readonly Skip[] = ['logSNR', 'time-uniform', 'time-quadratic'];

function multistepCases(): Case[] {
  const out: Case[] = [];
  // 6 steps: lowerOrderFinal lowers the last orders; 12 steps: the official rule only applies below 10.
  for (const algorithm of ALGORITHMS) for (const order of ORDERS) for (const solverType of SOLVER_TYPES)
    for (const skip of SKIPS) for (const steps of [6, 12]) for (const lowerOrderFinal of [true, false])
      out.push({ algorithm, method: 'multistep', order, solverType, skip, steps, lowerOrderFinal });
  return out;
}

function singlestepCases(skips: readonly Skip[]): Case[] {
  const out: Case[] = [];
  // 6, 7, 8 steps: every remainder of the DPM-Solver-fast order list for orders 2 and 3.
  for (const algorithm of ALGORITHMS) for (const order of ORDERS) for (const solverType of SOLVER_TYPES)
    for (const skip of skips) for (const steps of [6, 7, 8])
      out.push({ algorithm, method: 'singlestep', order, solverType, skip, steps, lowerOrderFinal: true });
  return out;
}

describe('the reference itself', () => {
  it('uses the same schedule and posterior mean as the engine (so a mismatch below is the solver)', async () => {
    for (const t of [T_START, 0.7, 0.3, 0.05, 0.01, T_END]) {
      expect(Math.abs(refSchedule.lambda(t) - engineSchedule.lambda(t))).toBeLessThan(1e-13);
      expect(Math.abs(refSchedule.sigma(t) / engineSchedule.sigma(t) - 1)).toBeLessThan(1e-13);
      expect(Math.abs(refSchedule.tFromLambda(refSchedule.lambda(t)) - t)).toBeLessThan(1e-13);
      const engine = (await denoiser.denoise(Tensor.from(xStart, { shape: [BATCH, DIM] }), t, engineSchedule)).dataSync() as Float64Array;
      expect(maxRelError(engine, refModel(xStart, t))).toBeLessThan(1e-12);
    }
  });

  it('converges to the PF-ODE solution at the rate of its order', async () => {
    // An adaptive Dormand-Prince solve is an unrelated integrator: this catches a wrong coefficient in
    // the reference that the engine might share (a wrong higher-order term costs at least one order,
    // i.e. a factor 4 in the ratio below). Multistep order 3 is second order globally, both through
    // its first-order warm-up step and through the official third-order update itself (see the
    // polynomial test below). Singlestep step counts are 2 mod 3 so that order 3 ends with a
    // second-order step, not a first-order one, which would cap it at second order too.
    const exact = (await denoiser.solvePfOde(Tensor.from(xStart, { shape: [BATCH, DIM] }), engineSchedule, T_START, T_END, { rtol: 1e-12 })).dataSync() as Float64Array;
    for (const method of ['multistep', 'singlestep'] as const) for (const order of ORDERS) for (const algorithm of ALGORITHMS) for (const solverType of SOLVER_TYPES) {
      const c = { algorithm, method, order, solverType, skip: 'logSNR' as const, lowerOrderFinal: true };
      const [coarse, fine] = [98, 392].map((steps) => maxRelError(reference({ ...c, steps }).x, exact));
      const rate = method === 'multistep' ? Math.min(order, 2) : order;
      expect(fine / coarse, `${describeCase({ ...c, steps: 98 })} -> 392 steps: ${coarse} -> ${fine}`).toBeLessThan(1.5 * 4 ** -rate);
    }
  });

  it('integrates model outputs that are polynomials in lambda as its update formulas promise', () => {
    // A model that ignores x turns the ODE into a quadrature with a closed form:
    //   data:  x_t = sigma_t/sigma_s x_s + sigma_t int e^l x0(l) dl,
    //   noise: x_t = alpha_t/alpha_s x_s - alpha_t int e^-l eps(l) dl.
    // One multistep step is isolated as the difference of runs with k and k - 1 steps on the same
    // explicit (non-uniform) grid: the first k - 1 steps of both are the same warm-up, so what is left
    // is the last step's local error, free of the first-order warm-up that masks the global order.
    const nextCoef = rng(1132);
    const coef = (scale: number): Float64Array => Float64Array.from({ length: BATCH * DIM }, () => scale * (2 * nextCoef() / 2 ** 32 - 1));
    const [p0, p1, p2] = [coef(1), coef(0.5), coef(0.3)];
    const lc = -0.5;
    const poly = (l: number, degree: number, i: number): number =>
      p0[i] + (degree >= 1 ? p1[i] * (l - lc) : 0) + (degree >= 2 ? p2[i] * (l - lc) ** 2 : 0);
    // Antiderivative of e^{sgn l} p(l): e^{sgn l} (p/sgn - p'/sgn^2 + p''/sgn^3).
    const antiderivative = (l: number, degree: number, i: number, sgn: number): number => {
      const d1 = (degree >= 1 ? p1[i] : 0) + (degree >= 2 ? 2 * p2[i] * (l - lc) : 0);
      const d2 = degree >= 2 ? 2 * p2[i] : 0;
      return Math.exp(sgn * l) * (sgn * poly(l, degree, i) - d1 + sgn * d2);
    };
    const modelFor = (algorithm: Case['algorithm'], degree: number) => (x: Float64Array, t: number): Float64Array => {
      const l = refSchedule.lambda(t);
      if (algorithm === 'dpmsolver++') return x.map((_, i) => poly(l, degree, i));
      // The polynomial is the noise; hand the solver the x0 it converts back to exactly that eps.
      const al = refSchedule.alpha(t), sg = refSchedule.sigma(t);
      return x.map((xi, i) => (xi - sg * poly(l, degree, i)) / al);
    };
    const exactStep = (algorithm: Case['algorithm'], degree: number, from: Float64Array, s: number, t: number): Float64Array => {
      const ls = refSchedule.lambda(s), lt = refSchedule.lambda(t);
      return from.map((x, i) => (algorithm === 'dpmsolver++'
        ? (refSchedule.sigma(t) / refSchedule.sigma(s)) * x + refSchedule.sigma(t) * (antiderivative(lt, degree, i, 1) - antiderivative(ls, degree, i, 1))
        : (refSchedule.alpha(t) / refSchedule.alpha(s)) * x - refSchedule.alpha(t) * (antiderivative(lt, degree, i, -1) - antiderivative(ls, degree, i, -1))));
    };
    const h = 0.5;
    const lambdas = [-1, -1 + 1.1 * h, -1 + 2 * h, -1 + 3.2 * h];
    const times = lambdas.map((l) => refSchedule.tFromLambda(l));
    /** The last step's deviation from the exact step (signed, per element) for a k-step multistep run. */
    const localError = (algorithm: Case['algorithm'], order: 1 | 2 | 3, solverType: Case['solverType'], degree: number): Float64Array => {
      const run = (k: number): Float64Array => k === 0 ? xStart : dpmSolverReference({
        schedule: refSchedule, model: modelFor(algorithm, degree), xStart, tStart: times[0], tEnd: times[k], times: times.slice(0, k + 1),
        steps: k, order: k as 1 | 2 | 3, skip: 'logSNR', algorithm, method: 'multistep', lowerOrderFinal: false, solverType,
      }).x;
      const exact = exactStep(algorithm, degree, run(order - 1), times[order - 1], times[order]);
      return run(order).map((v, i) => v - exact[i]);
    };
    const maxAbs = (v: Float64Array): number => v.reduce((m, e) => Math.max(m, Math.abs(e)), 0);
    const scale = maxAbs(xStart);
    for (const algorithm of ALGORITHMS) {
      const tag = (what: string): string => `${algorithm} ${what}`;
      expect(maxAbs(localError(algorithm, 1, 'taylor', 0)) / scale, tag('order 1 step, constant')).toBeLessThan(1e-13);
      expect(maxAbs(localError(algorithm, 2, 'taylor', 1)) / scale, tag('order 2 taylor step, linear')).toBeLessThan(1e-13);
      // The 'dpmsolver' second-order form trades this exactness for stability: the check can fail.
      expect(maxAbs(localError(algorithm, 2, 'dpmsolver', 1)) / scale, tag('order 2 dpmsolver step, linear')).toBeGreaterThan(1e-4);
      expect(maxAbs(localError(algorithm, 3, 'dpmsolver', 1)) / scale, tag('order 3 step, linear')).toBeLessThan(1e-13);
      // The official third-order multistep step is not exact for quadratics: its D2 = (D1_0 - D1_1) /
      // (r0 + r1) is h^2 p''/2, while the third-order Taylor term is phi_3 h^2 p'' (the singlestep
      // solver's D2 = 2 (D1_1 - D1_0) / (r2 - r1) is). So the step misses exactly coef * phi_3 * h^2 * c
      // for p = ... + c u^2 (coef = alpha_t for data, sigma_t for noise): a local O(h^3) error that makes
      // DPM-Solver(++)-3M second order overall. The reference follows the official code here, and this
      // pins that it does.
      const hs = lambdas[3] - lambdas[2];
      const sgn = algorithm === 'dpmsolver++' ? -1 : 1;
      const phi3 = (Math.expm1(sgn * hs) / hs - sgn) / hs - 0.5;
      const c = algorithm === 'dpmsolver++' ? refSchedule.alpha(times[3]) : refSchedule.sigma(times[3]);
      const missing = p2.map((q) => c * phi3 * hs * hs * q);
      const err = localError(algorithm, 3, 'dpmsolver', 2);
      expect(maxAbs(err.map((e, i) => e - missing[i])) / maxAbs(missing), tag('order 3 step, quadratic: error = the missing half term')).toBeLessThan(1e-9);
      expect(maxAbs(missing) / scale).toBeGreaterThan(1e-4);
      // Singlestep steps are self-contained; 12 steps of order 2 are all second order.
      for (const [order, degree] of [[1, 0], [2, 1]] as const) {
        const r = dpmSolverReference({
          schedule: refSchedule, model: modelFor(algorithm, degree), xStart, tStart: T_START, tEnd: T_END,
          steps: 12, order, skip: 'logSNR', algorithm, method: 'singlestep', lowerOrderFinal: false, solverType: 'taylor',
        });
        const exact = exactStep(algorithm, degree, xStart, T_START, T_END);
        expect(maxRelError(r.x, exact), tag(`singlestep order ${order} taylor, degree ${degree}`)).toBeLessThan(1e-12);
      }
    }
  });

  it('tells the variants apart (so agreement on each is not vacuous)', () => {
    const base: Case = { algorithm: 'dpmsolver++', method: 'multistep', order: 3, solverType: 'dpmsolver', skip: 'logSNR', steps: 6, lowerOrderFinal: true };
    const x = reference(base).x;
    expect(maxRelError(reference({ ...base, lowerOrderFinal: false }).x, x)).toBeGreaterThan(1e-4);
    expect(maxRelError(reference({ ...base, algorithm: 'dpmsolver' }).x, x)).toBeGreaterThan(1e-4);
    expect(maxRelError(reference({ ...base, order: 2, solverType: 'taylor' }).x, reference({ ...base, order: 2 }).x)).toBeGreaterThan(1e-4);
    // Beyond 9 steps the official rule keeps the full order to the end.
    expect(maxRelError(reference({ ...base, steps: 12, lowerOrderFinal: false }).x, reference({ ...base, steps: 12 }).x)).toBe(0);
    const single: Case = { ...base, method: 'singlestep', skip: 'time-uniform' };
    expect(maxRelError(reference(single, 'fixed').x, reference(single).x)).toBeGreaterThan(1e-4);
    // ... and the official placement puts a time-uniform step's intermediate points on the time grid.
    const fine = timeGrid(refSchedule, 'time-uniform', T_START, T_END, 6);
    reference(single).evaluations.forEach((t, i) => expect(Math.abs(t - fine[i])).toBeLessThan(1e-15));
  });
});

describe('native dpm-solver agrees with the reference to 1e-9 (vpLinear, GMM, batch 4 x dim 8, t 1 -> 1e-3)', () => {
  describe('multistep', () => {
    for (const c of multistepCases()) it(describeCase(c), () => checkCase(c));
  });
  describe('singlestep, logSNR skip', () => {
    for (const c of singlestepCases(['logSNR'])) it(describeCase(c), () => checkCase(c));
  });
  describe('singlestep, time-uniform and time-quadratic skip', () => {
    // The official sampler places the intermediate points of a singlestep step on the `order`-step
    // grid of the skip type laid over [s, t] (r1 = (lambda(inner_1) - lambda_s) / h), which is the
    // lambda midpoint / thirds only for logSNR.
    for (const c of singlestepCases(['time-uniform', 'time-quadratic'])) it(describeCase(c), () => checkCase(c));
  });
});

// ---- discrete-time VP (official NoiseScheduleVP('discrete', betas)) ----------------------------------------

const N_TRAIN = 1000;
const BETA_SCHEDULES = ['linear', 'scaled-linear'] as const;
const discreteProblems = Object.fromEntries(BETA_SCHEDULES.map((betaSchedule) => {
  const ref = vpDiscreteSchedule(diffusersBetas(betaSchedule, N_TRAIN));
  // T = 1 and the official default eps for discrete models, t_0 = 1/N: both ends are knots.
  const p: Problem = { engineSchedule: schedules.vpDiscrete({ betaSchedule }), refSchedule: ref, refModel: gmmPosteriorMean(gmm, ref), tStart: 1, tEnd: 1 / N_TRAIN };
  return [betaSchedule, { p, ref }];
})) as Record<(typeof BETA_SCHEDULES)[number], { p: Problem; ref: ReturnType<typeof vpDiscreteSchedule> }>;

function discreteCases(): Case[] {
  const out: Case[] = [];
  // 7 steps: lowerOrderFinal lowers the last orders; 15: the official rule keeps the full order.
  for (const algorithm of ALGORITHMS) for (const order of [2, 3] as const) for (const skip of SKIPS) for (const steps of [7, 15])
    out.push({ algorithm, method: 'multistep', order, solverType: 'dpmsolver', skip, steps, lowerOrderFinal: true });
  // 8 and 10 steps: remainders 0 and 2 mod 2, 2 and 1 mod 3 of the DPM-Solver-fast order list.
  for (const algorithm of ALGORITHMS) for (const order of [2, 3] as const) for (const skip of ['logSNR', 'time-uniform'] as const) for (const steps of [8, 10])
    out.push({ algorithm, method: 'singlestep', order, solverType: 'dpmsolver', skip, steps, lowerOrderFinal: true });
  return out;
}

describe('vpDiscrete: native dpm-solver agrees with the reference to 1e-9 (GMM, batch 4 x dim 8, t 1 -> 1/N)', () => {
  for (const betaSchedule of BETA_SCHEDULES) describe(`betaSchedule ${betaSchedule}`, () => {
    const { p, ref } = discreteProblems[betaSchedule];

    it('the reference schedule is the cumulative product of (1 - beta) at the knots and inverts itself', () => {
      const betas = diffusersBetas(betaSchedule, N_TRAIN);
      let prod = 1;
      betas.forEach((b, n) => {
        prod *= 1 - b;
        expect(Math.abs(Math.exp(2 * ref.logAlpha((n + 1) / N_TRAIN)) / prod - 1)).toBeLessThan(1e-12);
      });
      for (let i = 0; i < 50; i++) {
        const t = 1 / N_TRAIN + ((1 - 1 / N_TRAIN) * i) / 49;
        expect(Math.abs(ref.tFromLambda(ref.lambda(t)) - t)).toBeLessThan(1e-12);
      }
      // Later official versions drop the knots whose lambda is below -5.1 (numerical_clip_alpha); for
      // these two schedules lambda(1) is -5.06 and -2.68, so that clipping changes nothing here.
      expect(ref.lambda(1)).toBeGreaterThan(-5.1);
    });

    it('engine alpha(t), lambda(t) and tFromLambda agree with the official discrete schedule at 50 times in [1/N, 1]', () => {
      let alphaErr = 0, lambdaErr = 0, tErr = 0;
      for (let i = 0; i < 50; i++) {
        // Both ends are knots; the 48 times between are not (999 i / 49 is an integer only for i = 0, 49).
        const t = 1 / N_TRAIN + ((1 - 1 / N_TRAIN) * i) / 49;
        const l = ref.lambda(t);
        alphaErr = Math.max(alphaErr, Math.abs(p.engineSchedule.alpha(t) / ref.alpha(t) - 1));
        lambdaErr = Math.max(lambdaErr, Math.abs(p.engineSchedule.lambda(t) - l));
        tErr = Math.max(tErr, Math.abs(p.engineSchedule.tFromLambda(l) - ref.tFromLambda(l)));
      }
      expect(alphaErr, 'alpha (relative)').toBeLessThan(1e-12);
      expect(lambdaErr, 'lambda').toBeLessThan(1e-12);
      expect(tErr, 'tFromLambda').toBeLessThan(1e-12);
    });

    for (const c of discreteCases()) it(describeCase(c), () => checkCase(c, p));
  });
});
