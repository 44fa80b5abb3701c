/**
 * An independent double-precision reference for DPM-Solver / DPM-Solver++ (Lu et al. 2022,
 * arXiv:2206.00927 and arXiv:2211.01095), written from the papers' update equations and the sampling
 * procedure of the authors' dpm_solver_pytorch.py (time grids, warm-up, lower_order_final, the
 * DPM-Solver-fast order list). Plain numbers and Float64Array only: nothing here calls the engine, so
 * agreement with the native sampler is evidence, not a tautology.
 *
 * Notation: x_t = alpha_t x0 + sigma_t eps, lambda_t = log(alpha_t / sigma_t), h = lambda_t - lambda_s.
 */

/** A VP noise schedule given in closed form. */
export interface VpSchedule {
  logAlpha(t: number): number;
  alpha(t: number): number;
  sigma(t: number): number;
  lambda(t: number): number;
  tFromLambda(lambda: number): number;
}

/** log(1 + e^y) without overflow for large y or loss of digits for very negative y. */
function softplus(y: number): number {
  return Math.max(y, 0) + Math.log1p(Math.exp(-Math.abs(y)));
}

/**
 * Continuous linear VP (Song et al.): beta(t) = beta0 + (beta1 - beta0) t, so
 * log alpha(t) = -(beta1 - beta0) t^2 / 4 - beta0 t / 2.
 */
export function vpLinearSchedule(beta0 = 0.1, beta1 = 20): VpSchedule {
  const db = beta1 - beta0;
  const logAlpha = (t: number): number => -0.25 * db * t * t - 0.5 * beta0 * t;
  // sigma^2 = 1 - alpha^2; expm1 keeps the digits when alpha is close to 1 (small t).
  const sigma = (t: number): number => Math.sqrt(-Math.expm1(2 * logAlpha(t)));
  const lambda = (t: number): number => {
    const la = logAlpha(t);
    return la - 0.5 * Math.log(-Math.expm1(2 * la));
  };
  const tFromLambda = (l: number): number => {
    // alpha^2 = 1 / (1 + e^{-2 lambda}), so q := -2 log alpha = softplus(-2 lambda) >= 0, and t solves
    // db t^2 + 2 beta0 t - 2 q = 0. The positive root in the form without the cancellation of
    // -beta0 + sqrt(beta0^2 + 2 db q), which would lose digits at small t (also valid when db = 0).
    const q = softplus(-2 * l);
    return (2 * q) / (beta0 + Math.sqrt(beta0 * beta0 + 2 * db * q));
  };
  return { logAlpha, alpha: (t) => Math.exp(logAlpha(t)), sigma, lambda, tFromLambda };
}

/**
 * diffusers' beta schedules over N training steps: 'linear' is linspace(1e-4, 0.02, N), 'scaled-linear'
 * is linspace(sqrt(0.00085), sqrt(0.012), N)^2 (both in double precision here; linspace as numpy
 * computes it, start + i (stop - start) / (N - 1), with the last entry exactly stop).
 */
export function diffusersBetas(kind: 'linear' | 'scaled-linear', N = 1000): number[] {
  const linspace = (a: number, b: number): number[] =>
    Array.from({ length: N }, (_, i) => (i === N - 1 ? b : a + (i * (b - a)) / (N - 1)));
  if (kind === 'linear') return linspace(1e-4, 0.02);
  return linspace(Math.sqrt(0.00085), Math.sqrt(0.012)).map((b) => b * b);
}

/**
 * The piecewise-linear interpolant through (xs[k], ys[k]) (xs increasing) at x, extended linearly
 * beyond the first and last knots by the end segments, as the official interpolate_fn does.
 */
function interpolate(xs: readonly number[], ys: readonly number[], x: number): number {
  const n = xs.length;
  // The segment [xs[k], xs[k + 1]] holding x: the largest k <= n - 2 with xs[k] <= x (k = 0 below xs[0]).
  let lo = 0, hi = n - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (xs[mid] <= x) lo = mid;
    else hi = mid - 1;
  }
  const k = lo;
  return ys[k] + ((x - xs[k]) * (ys[k + 1] - ys[k])) / (xs[k + 1] - xs[k]);
}

/**
 * The official NoiseScheduleVP('discrete', betas): log alpha_n = 0.5 sum_{i <= n} log(1 - beta_i) at
 * t_n = n / N (n = 1..N), log alpha(t) the piecewise-linear interpolant of those knots (T = 1, and the
 * sampler's default eps = t_0 = 1/N keeps every time inside [1/N, 1], where no extrapolation happens),
 * and the inverse of lambda by inverting that interpolant: log alpha = -0.5 softplus(-2 lambda), then t
 * by piecewise-linear interpolation of the knots with the roles of t and log alpha swapped.
 */
export function vpDiscreteSchedule(betas: readonly number[]): VpSchedule & { tArray: number[]; logAlphaArray: number[] } {
  const N = betas.length;
  const tArray: number[] = [];
  const logAlphaArray: number[] = [];
  let acc = 0;
  for (let n = 0; n < N; n++) {
    acc += Math.log1p(-betas[n]);
    logAlphaArray.push(0.5 * acc);
    tArray.push((n + 1) / N);
  }
  // Increasing log alpha (decreasing t) for the inverse.
  const laUp = [...logAlphaArray].reverse();
  const tDown = [...tArray].reverse();
  const logAlpha = (t: number): number => interpolate(tArray, logAlphaArray, t);
  const sigma = (t: number): number => Math.sqrt(-Math.expm1(2 * logAlpha(t)));
  const lambda = (t: number): number => {
    const la = logAlpha(t);
    return la - 0.5 * Math.log(-Math.expm1(2 * la));
  };
  const tFromLambda = (l: number): number => interpolate(laUp, tDown, -0.5 * softplus(-2 * l));
  return { logAlpha, alpha: (t) => Math.exp(logAlpha(t)), sigma, lambda, tFromLambda, tArray, logAlphaArray };
}

/** A Gaussian mixture with diagonal covariances: component k is N(means[k], diag(stds[k]^2)). */
export interface DiagonalGmm {
  means: number[][];
  stds: number[][];
  weights: number[];
}

/** x0 prediction of a batch at time t: rows of `dim` values in, rows of `dim` values out. */
export type DataModel = (x: Float64Array, t: number) => Float64Array;

/**
 * The exact posterior mean E[x0 | x_t = x] of a diagonal Gaussian mixture under x_t = a x0 + s eps:
 * the marginal of component k is N(a mu_k, a^2 S_k + s^2 I), its responsibility w_k(x) follows from
 * Bayes, and within the component x0 | x is Gaussian with mean mu_k + S_k a (a^2 S_k + s^2)^{-1} (x - a mu_k).
 */
export function gmmPosteriorMean(gmm: DiagonalGmm, schedule: Pick<VpSchedule, 'alpha' | 'sigma'>): DataModel {
  const K = gmm.weights.length;
  const dim = gmm.means[0].length;
  const wsum = gmm.weights.reduce((p, q) => p + q, 0);
  const logPi = gmm.weights.map((w) => Math.log(w / wsum));
  return (x: Float64Array, t: number): Float64Array => {
    const a = schedule.alpha(t), s = schedule.sigma(t);
    const rows = x.length / dim;
    const out = new Float64Array(x.length);
    const logw = new Float64Array(K);
    for (let b = 0; b < rows; b++) {
      const off = b * dim;
      for (let k = 0; k < K; k++) {
        let lp = logPi[k];
        for (let j = 0; j < dim; j++) {
          const v = a * a * gmm.stds[k][j] * gmm.stds[k][j] + s * s;
          const r = x[off + j] - a * gmm.means[k][j];
          lp += -0.5 * (r * r / v + Math.log(2 * Math.PI * v));
        }
        logw[k] = lp;
      }
      // Normalise in log space: far from a component its density underflows long before the ratio does.
      let mx = -Infinity;
      for (let k = 0; k < K; k++) mx = Math.max(mx, logw[k]);
      let z = 0;
      for (let k = 0; k < K; k++) z += Math.exp(logw[k] - mx);
      for (let k = 0; k < K; k++) {
        const w = Math.exp(logw[k] - mx) / z;
        for (let j = 0; j < dim; j++) {
          const sk2 = gmm.stds[k][j] * gmm.stds[k][j];
          const gain = (sk2 * a) / (a * a * sk2 + s * s);
          out[off + j] += w * (gmm.means[k][j] + gain * (x[off + j] - a * gmm.means[k][j]));
        }
      }
    }
    return out;
  };
}

export type Skip = 'logSNR' | 'time-uniform' | 'time-quadratic';

export interface DpmSolverReferenceOptions {
  schedule: VpSchedule;
  /** The model predicts x0; the noise form derives eps = (x - alpha x0) / sigma from it. */
  model: DataModel;
  xStart: Float64Array;
  steps: number;
  tStart: number;
  tEnd: number;
  skip: Skip;
  algorithm: 'dpmsolver' | 'dpmsolver++';
  method: 'multistep' | 'singlestep';
  order: 1 | 2 | 3;
  lowerOrderFinal: boolean;
  solverType: 'dpmsolver' | 'taylor';
  /**
   * Where the intermediate points of a singlestep step sit. 'skip-grid' (the current official code):
   * r1, r2 are the lambda fractions of the `order`-step grid of the skip type laid over [s, t], so they
   * are 1/2 or 1/3, 2/3 only for logSNR. 'fixed': always r1 = 1/2 (order 2), r1 = 1/3, r2 = 2/3
   * (order 3), the functions' defaults and the paper's DPM-Solver-2 / -3.
   */
  innerRatios?: 'skip-grid' | 'fixed';
  /**
   * Multistep only: an explicit grid (times[0] = tStart, `steps` + 1 entries) instead of the skip
   * type's. Not an option of the official sampler: it lets a test make the warm-up steps negligible
   * and see the full order of the multistep update.
   */
  times?: readonly number[];
}

export interface DpmSolverReferenceResult {
  x: Float64Array;
  /** The times the model was evaluated at, in order. */
  evaluations: number[];
}

/** N + 1 decreasing times from tStart to tEnd (official get_time_steps). */
export function timeGrid(schedule: VpSchedule, skip: Skip, tStart: number, tEnd: number, n: number): number[] {
  const lin = (a: number, b: number, i: number): number => (i === n ? b : a + ((b - a) * i) / n);
  const out: number[] = [];
  for (let i = 0; i <= n; i++) {
    if (skip === 'logSNR') out.push(schedule.tFromLambda(lin(schedule.lambda(tStart), schedule.lambda(tEnd), i)));
    else if (skip === 'time-uniform') out.push(lin(tStart, tEnd, i));
    else out.push(lin(Math.sqrt(tStart), Math.sqrt(tEnd), i) ** 2);
  }
  return out;
}

/** DPM-Solver-fast: the orders of the singlestep steps that use exactly `steps` model evaluations. */
export function singlestepOrders(steps: number, order: 1 | 2 | 3): number[] {
  const rep = (k: number, n: number): number[] => Array<number>(Math.max(n, 0)).fill(k);
  if (order === 3) {
    const K = Math.floor(steps / 3) + 1;
    if (steps % 3 === 0) return [...rep(3, K - 2), 2, 1];
    if (steps % 3 === 1) return [...rep(3, K - 1), 1];
    return [...rep(3, K - 1), 2];
  }
  if (order === 2) return steps % 2 === 0 ? rep(2, steps / 2) : [...rep(2, Math.floor(steps / 2)), 1];
  return rep(1, steps);
}

/** sum_i c_i v_i over equally long vectors. */
function comb(...terms: [number, Float64Array][]): Float64Array {
  const out = new Float64Array(terms[0][1].length);
  for (const [c, v] of terms) for (let i = 0; i < out.length; i++) out[i] += c * v[i];
  return out;
}

function sub(a: Float64Array, b: Float64Array): Float64Array {
  return comb([1, a], [-1, b]);
}

/**
 * DPM-Solver (noise form) or DPM-Solver++ (data form), multistep or singlestep (DPM-Solver-fast), from
 * tStart to tEnd: the official `sample()` without denoise_to_zero, thresholding or corrector hooks.
 */
export function dpmSolverReference(o: DpmSolverReferenceOptions): DpmSolverReferenceResult {
  const ns = o.schedule;
  const data = o.algorithm === 'dpmsolver++';
  const evaluations: number[] = [];
  // The solver's model: x0 for DPM-Solver++, eps for DPM-Solver.
  const f = (x: Float64Array, t: number): Float64Array => {
    evaluations.push(t);
    const x0 = o.model(x, t);
    if (data) return x0;
    const a = ns.alpha(t), s = ns.sigma(t);
    return comb([1 / s, x], [-a / s, x0]);
  };
  // The exact linear part of the ODE from s to t and the coefficient of the model term: DPM-Solver++
  // integrates in data space (x_t = sigma_t/sigma_s x - alpha_t expm1(-h) m), DPM-Solver in noise
  // space (x_t = alpha_t/alpha_s x - sigma_t expm1(h) m). `sgn` and `c` let the higher-order terms
  // share one expression: phi_1 = expm1(sgn h), phi_2 = phi_1/h - sgn, phi_3 = phi_2/h - 1/2, and in
  // the noise form every correction enters with the opposite sign of the data form.
  const linear = (s: number, t: number): { decay: number; c: number; sgn: number } =>
    data
      ? { decay: ns.sigma(t) / ns.sigma(s), c: ns.alpha(t), sgn: -1 }
      : { decay: Math.exp(ns.logAlpha(t) - ns.logAlpha(s)), c: ns.sigma(t), sgn: 1 };

  // ---- multistep ----
  const multistepUpdate = (x: Float64Array, ms: Float64Array[], ts: number[], t: number, order: number): Float64Array => {
    const n = ms.length;
    const s = ts[n - 1];
    const m0 = ms[n - 1];
    const { decay, c, sgn } = linear(s, t);
    const h = ns.lambda(t) - ns.lambda(s);
    const phi1 = Math.expm1(sgn * h);
    // Data form: x_t = decay x - c phi1 m0 + ...; noise form: decay x - c phi1 m0 - ...: the base is shared.
    if (order === 1) return comb([decay, x], [-c * phi1, m0]);
    const m1 = ms[n - 2];
    const r0 = (ns.lambda(s) - ns.lambda(ts[n - 2])) / h;
    const D1_0 = comb([1 / r0, m0], [-1 / r0, m1]);
    if (order === 2) {
      if (o.solverType === 'dpmsolver') return comb([decay, x], [-c * phi1, m0], [-0.5 * c * phi1, D1_0]);
      // taylor: data +alpha_t (phi1/h + 1) D1, noise -sigma_t (phi1/h - 1) D1.
      return comb([decay, x], [-c * phi1, m0], [-sgn * c * (phi1 / h - sgn), D1_0]);
    }
    // Third order ignores solver_type in the official multistep code.
    const m2 = ms[n - 3];
    const r1 = (ns.lambda(ts[n - 2]) - ns.lambda(ts[n - 3])) / h;
    const D1_1 = comb([1 / r1, m1], [-1 / r1, m2]);
    const diff = sub(D1_0, D1_1);
    const D1 = comb([1, D1_0], [r0 / (r0 + r1), diff]);
    const D2 = comb([1 / (r0 + r1), diff]);
    const phi2 = phi1 / h - sgn;
    const phi3 = phi2 / h - 0.5;
    // data: + alpha phi2 D1 - alpha phi3 D2; noise: - sigma phi2 D1 - sigma phi3 D2.
    return comb([decay, x], [-c * phi1, m0], [-sgn * c * phi2, D1], [-c * phi3, D2]);
  };

  const runMultistep = (): Float64Array => {
    const N = o.steps;
    if (N < o.order) throw new Error(`multistep needs steps >= order (${N} < ${o.order})`);
    const grid = o.times ? [...o.times] : timeGrid(ns, o.skip, o.tStart, o.tEnd, N);
    if (grid.length !== N + 1) throw new Error(`times needs steps + 1 = ${N + 1} entries, got ${grid.length}`);
    let x: Float64Array = Float64Array.from(o.xStart);
    const ts = [grid[0]];
    const ms = [f(x, grid[0])];
    // Warm-up: with only k model values known, the k-th step can be at most of order k.
    for (let k = 1; k < o.order; k++) {
      x = multistepUpdate(x, ms, ts, grid[k], k);
      ts.push(grid[k]);
      ms.push(f(x, grid[k]));
    }
    for (let k = o.order; k <= N; k++) {
      const stepOrder = o.lowerOrderFinal && N < 10 ? Math.min(o.order, N + 1 - k) : o.order;
      x = multistepUpdate(x, ms, ts, grid[k], stepOrder);
      ts.shift();
      ms.shift();
      ts.push(grid[k]);
      // The state at tEnd is the answer; the official loop never evaluates the model there.
      if (k < N) ms.push(f(x, grid[k]));
      else ms.push(new Float64Array(0));
    }
    return x;
  };

  // ---- singlestep ----
  const singlestepUpdate = (x: Float64Array, s: number, t: number, order: number, r1: number, r2: number): Float64Array => {
    const { decay, c, sgn } = linear(s, t);
    const ls = ns.lambda(s);
    const h = ns.lambda(t) - ls;
    const phi1 = Math.expm1(sgn * h);
    const ms = f(x, s);
    if (order === 1) return comb([decay, x], [-c * phi1, ms]);
    const s1 = ns.tFromLambda(ls + r1 * h);
    const l1 = linear(s, s1);
    const phi11 = Math.expm1(sgn * r1 * h);
    const x1 = comb([l1.decay, x], [-l1.c * phi11, ms]);
    const m1 = f(x1, s1);
    const d1 = sub(m1, ms);
    if (order === 2) {
      if (o.solverType === 'dpmsolver') return comb([decay, x], [-c * phi1, ms], [(-0.5 / r1) * c * phi1, d1]);
      // taylor: data +(1/r1) alpha (phi1/h + 1) d1; noise -(1/r1) sigma (phi1/h - 1) d1.
      return comb([decay, x], [-c * phi1, ms], [(-sgn / r1) * c * (phi1 / h - sgn), d1]);
    }
    const s2 = ns.tFromLambda(ls + r2 * h);
    const l2 = linear(s, s2);
    const phi12 = Math.expm1(sgn * r2 * h);
    const phi22 = phi12 / (r2 * h) - sgn;
    // data: + (r2/r1) alpha_s2 phi22 d1; noise: - (r2/r1) sigma_s2 phi22 d1.
    const x2 = comb([l2.decay, x], [-l2.c * phi12, ms], [-sgn * (r2 / r1) * l2.c * phi22, d1]);
    const m2 = f(x2, s2);
    const phi2 = phi1 / h - sgn;
    if (o.solverType === 'dpmsolver') return comb([decay, x], [-c * phi1, ms], [(-sgn / r2) * c * phi2, sub(m2, ms)]);
    const phi3 = phi2 / h - 0.5;
    const D1_0 = comb([1 / r1, d1]);
    const D1_1 = comb([1 / r2, sub(m2, ms)]);
    const D1 = comb([r2 / (r2 - r1), D1_0], [-r1 / (r2 - r1), D1_1]);
    const D2 = comb([2 / (r2 - r1), D1_1], [-2 / (r2 - r1), D1_0]);
    return comb([decay, x], [-c * phi1, ms], [-sgn * c * phi2, D1], [-c * phi3, D2]);
  };

  const runSinglestep = (): Float64Array => {
    const orders = singlestepOrders(o.steps, o.order);
    let outer: number[];
    if (o.skip === 'logSNR') {
      // Uniform in lambda with one interval per step. (The official code asks for K = 1 intervals when
      // order = 1, which cannot serve `steps` steps; one interval per step is what it means.)
      outer = timeGrid(ns, 'logSNR', o.tStart, o.tEnd, orders.length);
    } else {
      const fine = timeGrid(ns, o.skip, o.tStart, o.tEnd, o.steps);
      outer = [fine[0]];
      let idx = 0;
      for (const k of orders) outer.push(fine[(idx += k)]);
    }
    let x: Float64Array = Float64Array.from(o.xStart);
    orders.forEach((k, i) => {
      const s = outer[i], t = outer[i + 1];
      let r1 = k === 3 ? 1 / 3 : 0.5, r2 = 2 / 3;
      if ((o.innerRatios ?? 'skip-grid') === 'skip-grid' && k > 1) {
        const inner = timeGrid(ns, o.skip, s, t, k).map((u) => ns.lambda(u));
        const h = inner[k] - inner[0];
        r1 = (inner[1] - inner[0]) / h;
        if (k === 3) r2 = (inner[2] - inner[0]) / h;
      }
      x = singlestepUpdate(x, s, t, k, r1, r2);
    });
    return x;
  };

  const x = o.method === 'multistep' ? runMultistep() : runSinglestep();
  return { x, evaluations };
}
