/**
 * The solver library: noise schedules, exact analytic denoisers and ~35 samplers, all native.
 *
 *   const schedule = schedules.vpLinear({ beta0: 0.1, beta1: 20 });
 *   const denoiser = analytic.gaussianMixture({ means, stds, weights });
 *   const x0 = await sample({ denoiser, schedule, sampler: 'dpmpp-2m', steps: 12, seed: 1 });
 *
 * `sample()` runs the whole loop natively when the denoiser is native (no JS per step) and drives the
 * same native sampler step by step when the denoiser is a JS function. `createSampler()` exposes that
 * step-wise form directly, for models that live elsewhere (ONNX, a remote server...).
 */
import { addon } from './binding.js';
import { AbortError, ArgumentError, DTypeError, ShapeError, callAsync, callSync } from './errors.js';
import { type Seed, seedsFor, randn } from './random.js';
import { Tensor } from './tensor.js';
import { resolveDevice, type DeviceId } from './device.js';
import { assertObject, assertOneOf, invalidParameter, isInteger } from './validate.js';

// ---- native handle shapes --------------------------------------------------------------------------
interface NativeSchedule {
  info(): { name: string; tMin: number; tMax: number; tClean: number; numTrainTimesteps: number; conditioned: boolean };
  evaluate(t: Float64Array): { alpha: Float64Array; sigma: Float64Array; lambda: Float64Array; edmSigma: Float64Array; modelTimestep: Float64Array };
  tFromLambda(l: Float64Array): Float64Array;
  timesteps(steps: number, skip: string, tStart: number, tEnd: number, options: object): Float64Array;
}
interface NativeDenoiser {
  dim(): number;
  denoise(x: unknown, alpha: Float64Array, sigma: Float64Array): Promise<unknown>;
  pfOdeSolution(x: unknown, aS: Float64Array, sS: Float64Array, aT: Float64Array, sT: Float64Array): Promise<unknown>;
  solvePfOde(x: unknown, from: number, to: number, rtol: number): Promise<{ x: unknown; evaluations: number }>;
  responsibilities(x: unknown, alpha: Float64Array, sigma: Float64Array): Float64Array;
}
interface NativeSampler {
  state(): { done: boolean; nextTime: number | null; evaluations: number; busy: boolean };
  grid(): Float64Array;
  planned(): Float64Array;
  initialState(noise: unknown): unknown;
  start(x: unknown): unknown;
  step(x: unknown, m: unknown): unknown;
  stepAsync(x: unknown, m: unknown): Promise<unknown>;
  run(x: unknown, denoiser: NativeDenoiser): Promise<unknown>;
  abort(): void;
  dispose(): void;
}
interface NativeTransport {
  apply(x: unknown, aS: Float64Array, sS: Float64Array, aT: Float64Array, sT: Float64Array): Promise<unknown>;
}
interface SolverAddon {
  createTransport(options: object): NativeTransport;
  createSchedule(kind: string, options: object): NativeSchedule;
  createAnalytic(kind: string, options: object): NativeDenoiser;
  createSampler(name: string, setup: object): NativeSampler;
  listSamplers(): SamplerInfo[];
}
const solverAddon = (): SolverAddon => addon() as unknown as SolverAddon;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const wrap = (h: unknown): Tensor => new Tensor(h as any);

// ---- validation helpers ---------------------------------------------------------------------------------
function finiteNumber(name: string, v: unknown, check: (x: number) => boolean = () => true, expected = 'finite number'): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) throw invalidParameter(name, expected, v);
  return v;
}
function numberArray(name: string, v: unknown): Float64Array {
  const arr = v instanceof Float64Array || v instanceof Float32Array ? Array.from(v) : v;
  if (!Array.isArray(arr) || arr.length === 0 || !arr.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw invalidParameter(name, 'non-empty array of finite numbers', v);
  }
  return Float64Array.from(arr as number[]);
}
function matrix(name: string, v: unknown): { rows: number; cols: number; data: Float64Array } {
  if (!Array.isArray(v) || v.length === 0) throw invalidParameter(name, 'non-empty array of number arrays', v);
  const rows = v.map((r, i) => numberArray(`${name}[${i}]`, r));
  const cols = rows[0].length;
  if (!rows.every((r) => r.length === cols)) throw invalidParameter(name, `rows of equal length (${cols})`, v);
  const data = new Float64Array(rows.length * cols);
  rows.forEach((r, i) => data.set(r, i * cols));
  return { rows: rows.length, cols, data };
}

// ---- schedules ---------------------------------------------------------------------------------------------
export type StepSpacing = 'time-uniform' | 'logSNR' | 'time-quadratic' | 'karras' | 'exponential' | 'linspace' | 'leading' | 'trailing' | 'explicit';
export const STEP_SPACINGS: readonly StepSpacing[] = ['time-uniform', 'logSNR', 'time-quadratic', 'karras', 'exponential', 'linspace', 'leading', 'trailing', 'explicit'];

export interface TimestepOptions {
  steps: number;
  skip?: StepSpacing;
  tStart?: number;
  tEnd?: number;
  /** karras: rho (default 7). */
  rho?: number;
  /** leading: diffusers' steps_offset. */
  stepsOffset?: number;
  /** explicit: the whole grid, tStart first. */
  times?: readonly number[];
}

/** A noise schedule x_t = alpha(t) x0 + sigma(t) eps (conditioned ones add (1 - alpha) c). */
export class Schedule {
  readonly name: string;
  readonly tMin: number;
  readonly tMax: number;
  readonly tClean: number;
  readonly numTrainTimesteps: number;
  /** Mean-reverting, ResShift and Brownian-bridge schedules move the data towards a condition c. */
  readonly conditioned: boolean;
  /** The options it was built with. */
  readonly options: Readonly<Record<string, unknown>>;
  /** @internal */
  readonly _handle: NativeSchedule;

  /** @internal */
  constructor(handle: NativeSchedule, options: Record<string, unknown>) {
    this._handle = handle;
    const info = handle.info();
    this.name = info.name;
    this.tMin = info.tMin;
    this.tMax = info.tMax;
    this.tClean = info.tClean;
    this.numTrainTimesteps = info.numTrainTimesteps;
    this.conditioned = info.conditioned;
    this.options = Object.freeze({ ...options });
  }
  private eval1(t: number): ReturnType<NativeSchedule['evaluate']> {
    finiteNumber('t', t);
    return callSync(() => this._handle.evaluate(Float64Array.of(t)));
  }
  alpha(t: number): number { return this.eval1(t).alpha[0]; }
  sigma(t: number): number { return this.eval1(t).sigma[0]; }
  /** Half log-SNR log(alpha/sigma). */
  lambda(t: number): number { return this.eval1(t).lambda[0]; }
  /** EDM noise level sigma/alpha. */
  edmSigma(t: number): number { return this.eval1(t).edmSigma[0]; }
  /** The timestep a network trained on this schedule expects (discrete VP: 0..N-1 scale). */
  modelTimestep(t: number): number { return this.eval1(t).modelTimestep[0]; }
  /** Inverse of lambda. */
  tFromLambda(lambda: number): number {
    if (typeof lambda !== 'number' || Number.isNaN(lambda)) throw invalidParameter('lambda', 'number', lambda);
    return callSync(() => this._handle.tFromLambda(Float64Array.of(lambda)))[0];
  }
  /** steps + 1 decreasing times from tStart to tEnd. */
  timesteps(options: TimestepOptions): number[] {
    const o = normaliseGrid(this, options as unknown as Record<string, unknown>);
    return Array.from(callSync(() => this._handle.timesteps(o.steps, o.skip, o.tStart, o.tEnd, { rho: o.rho, stepsOffset: o.stepsOffset, times: o.times })));
  }
  /** Default end time: tMin, or 1e-3 of the range where tMin is the clean end (continuous VP, flow). */
  get defaultTEnd(): number {
    return this.tMin > this.tClean ? this.tMin : this.tClean + 1e-3 * (this.tMax - this.tClean);
  }
}

function makeSchedule(kind: string, options: unknown, allowed: readonly string[]): Schedule {
  const o = (options ?? {}) as Record<string, unknown>;
  assertObject('options', o);
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new ArgumentError(`Unknown option ${k} for schedules.${kind} (valid: ${allowed.join(', ') || 'none'})`);
    const v = o[k];
    if (k === 'betas') o[k] = numberArray('betas', v);
    else if (k === 'betaSchedule') assertOneOf('betaSchedule', v, ['linear', 'scaled-linear', 'squaredcos_cap_v2']);
    else if (v !== undefined) finiteNumber(k, v);
  }
  return new Schedule(callSync(() => solverAddon().createSchedule(kind, o)), o);
}

export interface VpDiscreteOptions { betaSchedule?: 'linear' | 'scaled-linear' | 'squaredcos_cap_v2'; numTrainTimesteps?: number; betaStart?: number; betaEnd?: number; betas?: readonly number[] }

export const schedules = {
  /** Discrete-time VP from betas (diffusers' linear / scaled-linear / squaredcos_cap_v2, or your own), continuous-time as the official DPM-Solver interpolates it. */
  vpDiscrete: (options: VpDiscreteOptions = {}) => makeSchedule('vpDiscrete', options, ['betaSchedule', 'numTrainTimesteps', 'betaStart', 'betaEnd', 'betas']),
  /** Continuous VP with linear beta(t) (ScoreSDE / DPM-Solver). Defaults beta0 0.1, beta1 20. */
  vpLinear: (options: { beta0?: number; beta1?: number } = {}) => makeSchedule('vpLinear', options, ['beta0', 'beta1']),
  /** Continuous VP cosine (iDDPM, s = 0.008, as the official DPM-Solver defines it). */
  vpCosine: () => makeSchedule('vpCosine', {}, []),
  /** VE / EDM: alpha = 1, sigma = t on [sigmaMin, sigmaMax] (defaults 0.002, 80). */
  ve: (options: { sigmaMin?: number; sigmaMax?: number } = {}) => makeSchedule('ve', options, ['sigmaMin', 'sigmaMax']),
  /** PFGM++ with augmented dimension D, EDM-aligned (r = sigma sqrt(D)). */
  pfgmpp: (options: { augmentedDim?: number; sigmaMin?: number; sigmaMax?: number } = {}) => makeSchedule('pfgmpp', options, ['augmentedDim', 'sigmaMin', 'sigmaMax']),
  /** Flow matching / rectified flow: alpha = 1 - t, sigma = t; shift is the SD3/Flux timestep shift. */
  flow: (options: { shift?: number } = {}) => makeSchedule('flow', options, ['shift']),
  /** Mean-reverting SDE (IR-SDE / MRS): theta linear from theta0 to theta1, stationary std. */
  meanReverting: (options: { theta0?: number; theta1?: number; stationaryStd?: number } = {}) =>
    makeSchedule('meanReverting', options, ['theta0', 'theta1', 'stationaryStd']),
  /** ResShift: eta schedule (kappa, steps T, minNoiseLevel, etasEnd, power). */
  resshift: (options: { kappa?: number; steps?: number; minNoiseLevel?: number; etasEnd?: number; power?: number } = {}) =>
    makeSchedule('resshift', options, ['kappa', 'steps', 'minNoiseLevel', 'etasEnd', 'power']),
  /** Brownian bridge from the data (t = 0) to the condition (t = 1), BBDM's variance 2 s t (1 - t). */
  brownianBridge: (options: { maxVariance?: number; margin?: number } = {}) => makeSchedule('brownianBridge', options, ['maxVariance', 'margin']),
};

export interface ScheduleInfo { name: keyof typeof schedules; description: string; options: { name: string; default: number | string; description: string }[] }

/** The schedules and their options. */
export function listSchedules(): ScheduleInfo[] {
  return [
    { name: 'vpDiscrete', description: 'VP from betas, continuous-time by the official DPM-Solver interpolation of log alpha', options: [
      { name: 'betaSchedule', default: 'linear', description: 'linear (1e-4..0.02), scaled-linear (0.00085..0.012) or squaredcos_cap_v2' },
      { name: 'numTrainTimesteps', default: 1000, description: 'N' }, { name: 'betaStart', default: 'per schedule', description: 'first beta' },
      { name: 'betaEnd', default: 'per schedule', description: 'last beta' }, { name: 'betas', default: 'none', description: 'your own betas (overrides the rest)' }] },
    { name: 'vpLinear', description: 'continuous VP, beta(t) linear', options: [
      { name: 'beta0', default: 0.1, description: 'beta at t = 0' }, { name: 'beta1', default: 20, description: 'beta at t = 1' }] },
    { name: 'vpCosine', description: 'continuous VP cosine (s = 0.008, tMax 0.9946)', options: [] },
    { name: 've', description: 'VE / EDM, sigma = t', options: [
      { name: 'sigmaMin', default: 0.002, description: 'smallest sigma' }, { name: 'sigmaMax', default: 80, description: 'largest sigma' }] },
    { name: 'pfgmpp', description: 'PFGM++ (EDM-aligned) with augmented dimension D', options: [
      { name: 'augmentedDim', default: 2048, description: 'D' }, { name: 'sigmaMin', default: 0.002, description: 'smallest sigma' }, { name: 'sigmaMax', default: 80, description: 'largest sigma' }] },
    { name: 'flow', description: 'rectified flow alpha = 1 - t, sigma = t', options: [{ name: 'shift', default: 1, description: 'SD3/Flux shift of time-built grids' }] },
    { name: 'meanReverting', description: 'mean-reverting SDE towards the condition mu (MRS)', options: [
      { name: 'theta0', default: 0.1, description: 'theta at t = 0' }, { name: 'theta1', default: 20, description: 'theta at t = 1' },
      { name: 'stationaryStd', default: 1, description: 'lambda: the stationary std' }] },
    { name: 'resshift', description: 'ResShift residual shifting towards the condition y', options: [
      { name: 'kappa', default: 2, description: 'noise scale' }, { name: 'steps', default: 15, description: 'T' },
      { name: 'minNoiseLevel', default: 0.04, description: 'sqrt(eta_1) bound' }, { name: 'etasEnd', default: 0.99, description: 'sqrt(eta_T)' },
      { name: 'power', default: 0.3, description: 'p of the exponential schedule' }] },
    { name: 'brownianBridge', description: 'Brownian bridge between the data and the condition y', options: [
      { name: 'maxVariance', default: 0.5, description: 's in 2 s t (1 - t)' }, { name: 'margin', default: 0.001, description: 'models are evaluated on [margin, 1 - margin]' }] },
  ];
}

// ---- analytic denoisers ---------------------------------------------------------------------------------
export type Prediction = 'eps' | 'x0' | 'v' | 'flow' | 'score';
export const PREDICTIONS: readonly Prediction[] = ['eps', 'x0', 'v', 'flow', 'score'];

/** An exact native denoiser E[x0 | x_t]; predicts x0. Usable as `denoiser` in sample() (whole loop natively). */
export class AnalyticDenoiser {
  readonly kind: string;
  readonly dim: number;
  readonly prediction: Prediction = 'x0';
  /** @internal */
  readonly _handle: NativeDenoiser;
  /** @internal */
  constructor(kind: string, handle: NativeDenoiser) {
    this.kind = kind;
    this._handle = handle;
    this.dim = handle.dim();
  }
  private rows(name: string, x: unknown): number {
    if (!(x instanceof Tensor)) throw invalidParameter(name, 'Tensor', x);
    if (x.numel === 0 || x.numel % this.dim !== 0) throw new ShapeError(`Expected batch x ${this.dim} values for ${name} but received shape [${x.shape.join(', ')}]`);
    return x.numel / this.dim;
  }
  /** E[x0 | x_t = x] at time t of `schedule` (x: [batch, ...dim]). */
  async denoise(x: Tensor, t: number, schedule: Schedule): Promise<Tensor> {
    const batch = this.rows('x', x);
    const a = schedule.alpha(t), s = schedule.sigma(t);
    return wrap(await callAsync(() => this._handle.denoise(x.handle(), new Float64Array(batch).fill(a), new Float64Array(batch).fill(s))));
  }
  /** The denoiser at explicit per-sample noise levels. */
  async denoiseAt(x: Tensor, alpha: readonly number[], sigma: readonly number[]): Promise<Tensor> {
    this.rows('x', x);
    return wrap(await callAsync(() => this._handle.denoise(x.handle(), numberArray('alpha', alpha), numberArray('sigma', sigma))));
  }
  /**
   * High-accuracy reference solution of the PF-ODE from tFrom to tTo (adaptive Dormand-Prince 5(4) in
   * log EDM sigma at tolerance rtol, f64): the ground truth the convergence tests measure against.
   */
  async solvePfOde(x: Tensor, schedule: Schedule, tFrom: number, tTo: number, options: { rtol?: number } = {}): Promise<Tensor> {
    this.rows('x', x);
    if (x.dtype !== 'f64') throw new DTypeError(`solvePfOde works in f64; received ${x.dtype}`);
    const aF = schedule.alpha(tFrom), aT = schedule.alpha(tTo);
    const y = await x.clone();
    const v = y.view() as Float64Array;
    for (let i = 0; i < v.length; i++) v[i] /= aF;
    const r = await callAsync(() => this._handle.solvePfOde(y.handle(), schedule.edmSigma(tFrom), schedule.edmSigma(tTo), options.rtol ?? 1e-12));
    y.dispose();
    const out = wrap(r.x);
    const o = out.view() as Float64Array;
    for (let i = 0; i < o.length; i++) o[i] *= aT;
    return out;
  }
  /** Posterior component probabilities p(k | x_t) (gaussianMixture only): batch x K, row-major. */
  responsibilities(x: Tensor, t: number, schedule: Schedule): Float64Array {
    const batch = this.rows('x', x);
    return callSync(() => this._handle.responsibilities(x.handle(), new Float64Array(batch).fill(schedule.alpha(t)), new Float64Array(batch).fill(schedule.sigma(t))));
  }
}

/** analytic.gaussian: also has the exact closed-form PF-ODE transport. */
export class GaussianDenoiser extends AnalyticDenoiser {
  /** Exact PF-ODE solution from tFrom to tTo (either direction) for this Gaussian. */
  async pfOdeSolution(x: Tensor, schedule: Schedule, tFrom: number, tTo: number): Promise<Tensor> {
    if (!(x instanceof Tensor)) throw invalidParameter('x', 'Tensor', x);
    const batch = x.numel / this.dim;
    const f = (v: number) => new Float64Array(batch).fill(v);
    return wrap(await callAsync(() => this._handle.pfOdeSolution(x.handle(), f(schedule.alpha(tFrom)), f(schedule.sigma(tFrom)), f(schedule.alpha(tTo)), f(schedule.sigma(tTo)))));
  }
}

/**
 * A Gaussian given by its top eigenvectors, N(mean, U diag(eigenvalues) U^T + residualVariance (I - U U^T)):
 * the data fit that teleport needs for real latents (a full covariance of a 4x64x64 latent would take 2 GB).
 * Only the closed-form PF-ODE transport, in O(dim rank) per sample.
 */
export class LowRankGaussian {
  readonly dim: number;
  readonly rank: number;
  /** @internal */
  readonly _handle: NativeTransport;
  /** @internal */
  constructor(handle: NativeTransport, dim: number, rank: number) {
    this._handle = handle;
    this.dim = dim;
    this.rank = rank;
  }
  /** Exact PF-ODE solution from tFrom to tTo (either direction) for this Gaussian. */
  async pfOdeSolution(x: Tensor, schedule: Schedule, tFrom: number, tTo: number): Promise<Tensor> {
    if (!(x instanceof Tensor)) throw invalidParameter('x', 'Tensor', x);
    if (x.numel === 0 || x.numel % this.dim !== 0) throw new ShapeError(`Expected batch x ${this.dim} values for x but received shape [${x.shape.join(', ')}]`);
    const batch = x.numel / this.dim;
    const f = (v: number) => new Float64Array(batch).fill(v);
    return wrap(await callAsync(() => this._handle.apply(x.handle(), f(schedule.alpha(tFrom)), f(schedule.sigma(tFrom)), f(schedule.alpha(tTo)), f(schedule.sigma(tTo)))));
  }
}

export const analytic = {
  /** A Gaussian fitted to data by its top eigenvectors (basis: dim rows of rank values, orthonormal columns). */
  lowRankGaussian(options: { mean: readonly number[] | Float64Array; basis: readonly (readonly number[])[]; eigenvalues: readonly number[]; residualVariance?: number }): LowRankGaussian {
    assertObject('options', options as unknown);
    const mean = numberArray('mean', options.mean);
    const b = matrix('basis', options.basis);
    if (b.rows !== mean.length) throw new ShapeError(`Expected ${mean.length} rows (dim) in basis but received ${b.rows}`);
    const eigenvalues = numberArray('eigenvalues', options.eigenvalues);
    const residualVariance = finiteNumber('residualVariance', options.residualVariance ?? 0, (v) => v >= 0, 'number >= 0');
    const h = callSync(() => solverAddon().createTransport({ mean, basis: b.data, rank: b.cols, eigenvalues, residualVariance }));
    return new LowRankGaussian(h, mean.length, b.cols);
  },
  /** N(mean, diag(variances)) or N(mean, covariance) (dim x dim, nested arrays). */
  gaussian(options: { mean: readonly number[]; variances?: readonly number[]; covariance?: readonly (readonly number[])[] }): GaussianDenoiser {
    assertObject('options', options as unknown);
    const mean = numberArray('mean', options.mean);
    const o: Record<string, unknown> = { mean };
    if (options.covariance !== undefined) {
      const c = matrix('covariance', options.covariance);
      if (c.rows !== mean.length || c.cols !== mean.length) throw new ShapeError(`Expected a ${mean.length} x ${mean.length} covariance`);
      o.covariance = c.data;
    } else {
      o.variances = numberArray('variances', options.variances);
    }
    return new GaussianDenoiser('gaussian', callSync(() => solverAddon().createAnalytic('gaussian', o)));
  },
  /** Mixture of Gaussians: means K x dim; stds K (isotropic) or K x dim, or covariances K x dim x dim; weights K (default uniform). */
  gaussianMixture(options: { means: readonly (readonly number[])[]; stds?: readonly number[] | readonly (readonly number[])[]; covariances?: readonly (readonly (readonly number[])[])[]; weights?: readonly number[] }): AnalyticDenoiser {
    assertObject('options', options as unknown);
    const m = matrix('means', options.means);
    const weights = options.weights === undefined ? new Float64Array(m.rows).fill(1 / m.rows) : numberArray('weights', options.weights);
    const o: Record<string, unknown> = { dim: m.cols, means: m.data, weights };
    if (options.covariances !== undefined) {
      if (!Array.isArray(options.covariances)) throw invalidParameter('covariances', 'array of matrices', options.covariances);
      const parts = options.covariances.map((c, i) => matrix(`covariances[${i}]`, c).data);
      const all = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) { all.set(p, at); at += p.length; }
      o.covariances = all;
    } else {
      const s = options.stds;
      o.stds = Array.isArray(s) && Array.isArray(s[0]) ? matrix('stds', s).data : numberArray('stds', s);
    }
    return new AnalyticDenoiser('gaussianMixture', callSync(() => solverAddon().createAnalytic('gaussianMixture', o)));
  },
  /** Mixture of low-rank Gaussians: x0 = mean_k + U_k a + delta n, U_k (dim x rank, orthonormal columns) given as rows. */
  lowRankMixture(options: { components: readonly { mean: readonly number[]; basis: readonly (readonly number[])[] }[]; weights?: readonly number[]; delta?: number }): AnalyticDenoiser {
    assertObject('options', options as unknown);
    if (!Array.isArray(options.components) || options.components.length === 0) throw invalidParameter('components', 'non-empty array', options.components);
    const comps = options.components.map((c, i) => {
      const mean = numberArray(`components[${i}].mean`, c.mean);
      const b = matrix(`components[${i}].basis`, c.basis);
      if (b.rows !== mean.length) throw new ShapeError(`Expected ${mean.length} rows (dim) in components[${i}].basis`);
      return { mean, basis: b.data, rank: b.cols };
    });
    const dim = comps[0].mean.length;
    const weights = options.weights === undefined ? new Float64Array(comps.length).fill(1 / comps.length) : numberArray('weights', options.weights);
    return new AnalyticDenoiser('lowRankMixture', callSync(() => solverAddon().createAnalytic('lowRankMixture', { dim, weights, components: comps, delta: options.delta ?? 0 })));
  },
  /** The optimal denoiser of a finite dataset (N x dim). */
  empirical(options: { data: readonly (readonly number[])[] }): AnalyticDenoiser {
    assertObject('options', options as unknown);
    const d = matrix('data', options.data);
    return new AnalyticDenoiser('empirical', callSync(() => solverAddon().createAnalytic('empirical', { dim: d.cols, data: d.data })));
  },
};

// ---- samplers ---------------------------------------------------------------------------------------------
export interface SamplerOptionInfo { name: string; type: 'number' | 'integer' | 'boolean' | 'enum'; default: number | boolean | string; min?: number; max?: number; choices?: string[]; description: string }
export interface SamplerInfo {
  name: string;
  family: string;
  stochastic: boolean;
  order: string;
  evaluationsPerStep: string;
  source: string;
  notes: string;
  needsCondition: boolean;
  options: SamplerOptionInfo[];
}

let samplerCache: SamplerInfo[] | undefined;
/** Every sampler with its options, order, model evaluations per step and source. */
export function listSamplers(): SamplerInfo[] {
  samplerCache ??= callSync(() => solverAddon().listSamplers());
  return samplerCache.map((s) => ({ ...s, options: s.options.map((o) => ({ ...o })) }));
}

function checkSamplerName(name: unknown): string {
  const names = listSamplers().map((s) => s.name);
  if (typeof name !== 'string' || !names.includes(name)) throw invalidParameter('sampler', `one of ${names.join(', ')}`, name);
  return name;
}

export interface GridOptions extends Omit<TimestepOptions, 'steps'> {
  schedule: Schedule;
  steps?: number;
}

interface NormalisedGrid { steps: number; skip: StepSpacing; tStart: number; tEnd: number; rho: number; stepsOffset: number; times?: Float64Array }

function normaliseGrid(schedule: Schedule, o: Record<string, unknown>): NormalisedGrid {
  const skip = (o.skip ?? (o.times !== undefined ? 'explicit' : 'logSNR')) as StepSpacing;
  assertOneOf('skip', skip, STEP_SPACINGS);
  let times: Float64Array | undefined;
  if (o.times !== undefined) times = numberArray('times', o.times);
  const steps = o.steps ?? (times ? times.length - 1 : 10);
  if (!isInteger(steps) || steps <= 0) throw invalidParameter('steps', 'positive integer', steps);
  const tStart = o.tStart ?? (times ? times[0] : schedule.tMax);
  const tEnd = o.tEnd ?? (times ? times[times.length - 1] : schedule.defaultTEnd);
  finiteNumber('tStart', tStart);
  finiteNumber('tEnd', tEnd);
  if ((tEnd as number) >= (tStart as number)) throw invalidParameter('tEnd', `number below tStart (${tStart as number})`, tEnd);
  const rho = o.rho ?? 7;
  finiteNumber('rho', rho, (v) => v > 0, 'positive number');
  const stepsOffset = o.stepsOffset ?? 0;
  if (!isInteger(stepsOffset) || stepsOffset < 0) throw invalidParameter('stepsOffset', 'non-negative integer', stepsOffset);
  return { steps: steps as number, skip, tStart: tStart as number, tEnd: tEnd as number, rho: rho as number, stepsOffset: stepsOffset as number, times };
}

export interface SamplerSetupOptions extends GridOptions {
  sampler: string;
  /** Latent shape [batch, ...]; sample i is row i. */
  shape: readonly number[];
  dtype?: 'f32' | 'f64';
  /** What the model predicts (default 'x0' for analytic denoisers, else required). */
  prediction?: Prediction;
  /** Per-sample seeds for stochastic samplers (one seed s means s, s+1, ...). */
  seed?: Seed | readonly Seed[];
  /** Brownian-tree noise: the same Brownian path whatever the step count. */
  brownianTree?: boolean;
  /** One more evaluation at tEnd that returns the x0 estimate (DPM-Solver's denoise_to_zero). */
  denoiseFinal?: boolean;
  /** Imagen dynamic thresholding of the x0 estimate. */
  thresholding?: boolean | { ratio?: number; maxValue?: number };
  /** Conditioned schedules: the condition c (degraded image, neighbouring frame), same shape as the latent. */
  condition?: Tensor;
  /** Sampler-specific options (see listSamplers()). */
  options?: Record<string, number | boolean | string>;
  /**
   * Where the sampler keeps its state (history, noise, scratch): 'cpu' (default) or 'cuda[:N]' (f32).
   * On a GPU, step(), stepAsync(), initialState() and start() take and return tensors on that device,
   * and every step is the fused device step pass: the same bits as on the CPU.
   */
  device?: string;
}

function expandSeeds(batch: number, seed: Seed | readonly Seed[] | undefined): BigUint64Array | undefined {
  if (seed === undefined) return undefined;
  const { seeds, consecutive } = seedsFor([batch], seed);
  if (!consecutive) return seeds;
  const out = new BigUint64Array(batch);
  for (let i = 0; i < batch; i++) out[i] = BigInt.asUintN(64, seeds[0] + BigInt(i));
  return out;
}

function checkFinite(name: string, t: Tensor): void {
  const d = t.dataSync() as Float32Array | Float64Array;
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i])) throw new ArgumentError(`Expected finite values for ${name} but element ${i} is ${d[i]}`);
  }
}

function checkLatent(name: string, t: unknown, dtype: string, numel: number, device: DeviceId = 'cpu'): Tensor {
  if (!(t instanceof Tensor)) throw invalidParameter(name, 'Tensor', t);
  if (t.device !== device) {
    throw new ArgumentError(`Expected a tensor on ${device} for ${name} (where the sampler keeps its state) but received one on ${t.device}`);
  }
  if (t.dtype !== dtype) throw new DTypeError(`Expected ${dtype} for ${name} but received ${t.dtype}`);
  if (t.numel !== numel) throw new ShapeError(`Expected ${numel} values for ${name} but received shape [${t.shape.join(', ')}]`);
  return t;
}

/** A native sampler driven step by step: for (const t of s.timesteps) x = s.step(x, await model(x, t), t). */
export class Sampler {
  readonly name: string;
  readonly schedule: Schedule;
  readonly shape: readonly number[];
  readonly dtype: 'f32' | 'f64';
  readonly prediction: Prediction;
  /** Where the state lives: step() takes and returns tensors on this device. */
  readonly device: DeviceId;
  /** The step boundaries tStart .. tEnd. */
  readonly grid: readonly number[];
  /** @internal */
  readonly _handle: NativeSampler;
  private readonly numel: number;

  /** @internal */
  constructor(handle: NativeSampler, o: { name: string; schedule: Schedule; shape: readonly number[]; dtype: 'f32' | 'f64'; prediction: Prediction; device?: DeviceId }) {
    this._handle = handle;
    this.device = o.device ?? 'cpu';
    this.name = o.name;
    this.schedule = o.schedule;
    this.shape = Object.freeze([...o.shape]);
    this.dtype = o.dtype;
    this.prediction = o.prediction;
    this.numel = o.shape.reduce((a, b) => a * b, 1);
    this.grid = Object.freeze(Array.from(handle.grid()));
  }
  get done(): boolean { return callSync(() => this._handle.state()).done; }
  /** Time of the next model evaluation (null when finished). */
  get nextTime(): number | null { return callSync(() => this._handle.state()).nextTime; }
  get evaluations(): number { return callSync(() => this._handle.state()).evaluations; }
  /** The model evaluation times in order when known in advance (empty for dpm-adaptive). */
  get plannedTimes(): number[] { return Array.from(callSync(() => this._handle.planned())); }
  /**
   * The times to evaluate the model at, in order. An array when known in advance; for dpm-adaptive an
   * iterable that yields the next time as long as the sampler wants one.
   */
  get timesteps(): Iterable<number> {
    const planned = this.plannedTimes;
    if (planned.length > 0 || this.done) return planned;
    const self = this;
    return { *[Symbol.iterator]() { for (let t = self.nextTime; t !== null; t = self.nextTime) yield t; } };
  }
  /** The start state from standard normal noise: c + sigma(tStart) noise (pfgmpp: its own prior). */
  initialState(noise: Tensor): Tensor {
    checkLatent('noise', noise, this.dtype, this.numel, this.device);
    if (this.device === 'cpu') checkFinite('noise', noise);
    return wrap(callSync(() => this._handle.initialState(noise.handle())));
  }
  /** A given start state, adjusted where the sampler raises the noise first (heun with churn). */
  start(x: Tensor): Tensor {
    checkLatent('x', x, this.dtype, this.numel, this.device);
    if (this.device === 'cpu') checkFinite('x', x);
    return wrap(callSync(() => this._handle.start(x.handle())));
  }
  private checkStep(x: unknown, modelOutput: unknown, t: number | undefined): void {
    checkLatent('x', x, this.dtype, this.numel, this.device);
    checkLatent('modelOutput', modelOutput, this.dtype, this.numel, this.device);
    const next = this.nextTime;
    if (next === null) throw new ArgumentError(`Sampler ${this.name} has finished: no further model evaluation`);
    if (t !== undefined && Math.abs(t - next) > 1e-12 * Math.max(1, Math.abs(next))) {
      throw invalidParameter('t', `the sampler's next time ${next}`, t);
    }
  }
  /** Consumes the model output at (x, nextTime) and returns the next point to evaluate (the sample after the last). */
  step(x: Tensor, modelOutput: Tensor, t?: number): Tensor {
    this.checkStep(x, modelOutput, t);
    return wrap(callSync(() => this._handle.step(x.handle(), modelOutput.handle())));
  }
  /** step() on the thread pool. */
  async stepAsync(x: Tensor, modelOutput: Tensor, t?: number): Promise<Tensor> {
    this.checkStep(x, modelOutput, t);
    return wrap(await callAsync(() => this._handle.stepAsync(x.handle(), modelOutput.handle())));
  }
  /** Frees the native history and scratch buffers now (later calls throw DisposedError). */
  dispose(): void {
    this._handle.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

function buildSampler(o: SamplerSetupOptions, defaultPrediction?: Prediction): Sampler {
  assertObject('options', o as unknown);
  if (!(o.schedule instanceof Schedule)) throw invalidParameter('schedule', 'a schedule from schedules.*', o.schedule);
  const name = checkSamplerName(o.sampler);
  if (!Array.isArray(o.shape) || o.shape.length === 0 || !o.shape.every((d) => isInteger(d) && d > 0)) throw invalidParameter('shape', 'non-empty array of positive integers', o.shape);
  const dtype = o.dtype ?? 'f32';
  assertOneOf('dtype', dtype, ['f32', 'f64']);
  const device = resolveDevice('device', o.device ?? 'cpu');
  if (device !== 'cpu' && !device.startsWith('cuda')) throw invalidParameter('device', "'cpu' or 'cuda[:N]' (virtual CPU devices hold no sampler state)", o.device);
  if (device !== 'cpu' && dtype !== 'f32') throw new DTypeError(`A sampler on ${device} runs in f32; pass dtype: 'f32'`);
  const prediction = o.prediction ?? defaultPrediction;
  if (prediction === undefined) throw invalidParameter('prediction', `one of ${PREDICTIONS.join(', ')} (what the model predicts)`, prediction);
  assertOneOf('prediction', prediction, PREDICTIONS);
  const g = normaliseGrid(o.schedule, o as unknown as Record<string, unknown>);
  const batch = o.shape[0];
  const numel = o.shape.reduce((a, b) => a * b, 1);
  // Stochastic samplers without seeds fail natively when they first need noise, naming the remedy
  // (heun and pfgmpp need them only with churn / for the prior).
  const seeds = expandSeeds(batch, o.seed);
  let thresholding: { ratio: number; maxValue: number } | undefined;
  if (o.thresholding) {
    const t = o.thresholding === true ? {} : o.thresholding;
    assertObject('thresholding', t as unknown);
    thresholding = { ratio: finiteNumber('thresholding.ratio', t.ratio ?? 0.995), maxValue: finiteNumber('thresholding.maxValue', t.maxValue ?? 1) };
  }
  let condition: Float64Array | undefined;
  if (o.condition !== undefined) {
    const c = checkLatent('condition', o.condition, o.condition instanceof Tensor ? o.condition.dtype : dtype, numel);
    checkFinite('condition', c);
    condition = Float64Array.from(c.dataSync() as Float32Array | Float64Array);
  } else if (o.schedule.conditioned) {
    throw invalidParameter('condition', `a Tensor of ${numel} values (schedule ${o.schedule.name} is conditioned)`, o.condition);
  }
  if (o.options !== undefined) assertObject('options.options', o.options as unknown);
  const setup = {
    schedule: o.schedule._handle, steps: g.steps, skip: g.skip, tStart: g.tStart, tEnd: g.tEnd, rho: g.rho, stepsOffset: g.stepsOffset, times: g.times,
    batch, dim: numel / batch, prediction, seeds, brownianTree: o.brownianTree ?? false, denoiseFinal: o.denoiseFinal ?? false,
    thresholding, condition, options: o.options ?? {}, dtype, ...(device === 'cpu' ? {} : { device }),
  };
  const handle = callSync(() => solverAddon().createSampler(name, setup));
  return new Sampler(handle, { name, schedule: o.schedule, shape: o.shape, dtype, prediction, device });
}

/** A sampler for the step-wise API (any denoiser, driven from JS). */
export function createSampler(options: SamplerSetupOptions): Sampler {
  return buildSampler(options);
}

export type JsDenoiser = (x: Tensor, t: number) => Promise<Tensor> | Tensor;

/**
 * @internal A native network denoiser (a DiT's `model.denoiser(...)`, timestep experts): sample() runs
 * its whole loop natively. Defined here so the solver library does not import the model code.
 */
export interface NativeModelDenoiser {
  readonly _modelDenoiser: true;
  readonly _handle: unknown;
  readonly prediction: Prediction;
  /** [batch, C, H, W] */
  readonly latentShape: readonly number[];
  _afterRun(): void;
}
function isModelDenoiser(d: unknown): d is NativeModelDenoiser {
  return typeof d === 'object' && d !== null && (d as { _modelDenoiser?: unknown })._modelDenoiser === true;
}

export interface TeleportOptions {
  /** A Gaussian fitted to the data: analytic.gaussian({ mean, variances | covariance }) or analytic.lowRankGaussian(...). */
  gaussian: GaussianDenoiser | LowRankGaussian;
  /** Jump analytically from tStart to tSkip, then sample from tSkip. */
  tSkip: number;
}
export interface AnalyticInitOptions {
  /** E[x0] per element. */
  mean: readonly number[];
  /** tr(Cov[x0]) / d, or per-element variances. */
  variance: number | readonly number[];
}

export interface SampleOptions extends Omit<SamplerSetupOptions, 'shape' | 'sampler' | 'prediction' | 'device'> {
  denoiser: AnalyticDenoiser | JsDenoiser | NativeModelDenoiser;
  sampler: string;
  prediction?: Prediction;
  /** Standard normal noise [batch, ...]; the start state is c + sigma(tStart) noise. */
  noise?: Tensor;
  /** The exact start state at tStart (inversion input, img2img, tests). */
  xStart?: Tensor;
  /** Latent shape when the noise is drawn from seed (default [1, denoiser.dim] for analytic denoisers). */
  shape?: readonly number[];
  /** "Diffusion Models Generate Images Like Painters": skip [tStart, tSkip] with the Gaussian closed form. */
  teleport?: TeleportOptions;
  /** "Conditional Image Leakage": start (at tStart = M < T) from the KL-optimal Gaussian instead of N(0, sigma^2). */
  analyticInit?: AnalyticInitOptions;
  signal?: AbortSignal;
  /** JS denoisers only: called after each model evaluation. */
  onStep?: (info: { evaluation: number; t: number }) => void;
}

/** Runs a whole sampling loop and resolves with the final latent (the sample, or xT for inversion samplers). */
export async function sample(options: SampleOptions): Promise<Tensor> {
  assertObject('options', options as unknown);
  const o = options;
  const model = isModelDenoiser(o.denoiser) ? o.denoiser : undefined;
  const native = o.denoiser instanceof AnalyticDenoiser || model !== undefined;
  if (!native && typeof o.denoiser !== 'function') throw invalidParameter('denoiser', 'an analytic denoiser, a model denoiser (model.denoiser(...)) or a function (x, t) => Promise<Tensor>', o.denoiser);
  if (!(o.schedule instanceof Schedule)) throw invalidParameter('schedule', 'a schedule from schedules.*', o.schedule);
  if (o.signal?.aborted) throw new AbortError('sampling aborted before it started');
  const dtype = o.dtype ?? (o.xStart?.dtype === 'f64' || o.noise?.dtype === 'f64' ? 'f64' : 'f32');
  assertOneOf('dtype', dtype, ['f32', 'f64']);
  const given = o.xStart ?? o.noise;
  if (o.xStart !== undefined && o.noise !== undefined) throw new ArgumentError('Pass either noise or xStart, not both');
  let shape: readonly number[];
  if (given !== undefined) {
    if (!(given instanceof Tensor)) throw invalidParameter(o.xStart ? 'xStart' : 'noise', 'Tensor', given);
    shape = given.shape.length === 1 ? [1, given.shape[0]] : given.shape;
  } else if (o.shape !== undefined) {
    shape = o.shape;
  } else if (model !== undefined) {
    shape = model.latentShape;
  } else if (native) {
    shape = [1, (o.denoiser as AnalyticDenoiser).dim];
  } else {
    throw invalidParameter('shape', 'the latent shape (or pass noise / xStart)', undefined);
  }
  if (model !== undefined && shape.reduce((a, b) => a * b, 1) !== model.latentShape.reduce((a, b) => a * b, 1)) {
    throw new ShapeError(`The model denoiser works on latents [${model.latentShape.join(', ')}]; the latent shape is [${shape.join(', ')}]`);
  }
  if (native && model === undefined && shape.slice(1).reduce((a, b) => a * b, 1) !== (o.denoiser as AnalyticDenoiser).dim) {
    throw new ShapeError(`The denoiser's dimension ${(o.denoiser as AnalyticDenoiser).dim} does not match the latent shape [${shape.join(', ')}]`);
  }
  let tStart = o.tStart;
  const schedule = o.schedule;
  if (o.teleport !== undefined) {
    if (!(o.teleport.gaussian instanceof GaussianDenoiser) && !(o.teleport.gaussian instanceof LowRankGaussian)) {
      throw invalidParameter('teleport.gaussian', 'analytic.gaussian(...) or analytic.lowRankGaussian(...)', o.teleport.gaussian);
    }
    finiteNumber('teleport.tSkip', o.teleport.tSkip);
  }
  // Without noise or a start state the run is seeded (default seed 0) and its SDE noise follows the same seeds.
  const seed = o.seed ?? (given === undefined ? 0 : undefined);
  if (model !== undefined && dtype !== 'f32') throw invalidParameter('dtype', "'f32' (model denoisers compute in f32)", dtype);
  if (model !== undefined && o.prediction !== undefined && o.prediction !== model.prediction) {
    throw invalidParameter('prediction', `'${model.prediction}' (what this model predicts) or nothing`, o.prediction);
  }
  // The state's device follows the model (a model denoiser on a GPU moves it there natively).
  const sampler = buildSampler({ ...o, device: undefined, seed, shape, dtype, tStart: o.teleport ? o.teleport.tSkip : tStart }, model ? model.prediction : native ? 'x0' : undefined);
  tStart = tStart ?? schedule.tMax;
  const numel = shape.reduce((a, b) => a * b, 1);

  // The start state.
  let x: Tensor;
  if (o.xStart !== undefined) {
    checkLatent('xStart', o.xStart, dtype, numel);
    x = o.teleport ? o.xStart : sampler.start(o.xStart);
  } else {
    const noise = o.noise !== undefined ? checkLatent('noise', o.noise, dtype, numel) : await randn([...shape], { seed, dtype });
    if (o.analyticInit !== undefined) {
      x = await analyticInitialState(schedule, tStart, noise, o.analyticInit);
    } else if (o.teleport !== undefined) {
      const s0 = schedule.sigma(tStart);
      x = await scaled(noise, s0);
    } else {
      x = sampler.initialState(noise);
    }
    if (o.noise === undefined) noise.dispose();
  }
  if (o.teleport !== undefined) {
    const jumped = await o.teleport.gaussian.pfOdeSolution(x, schedule, tStart, o.teleport.tSkip);
    if (x !== o.xStart) x.dispose();
    x = sampler.start(jumped);
    jumped.dispose();
  }

  if (native) {
    const abort = () => sampler._handle.abort();
    o.signal?.addEventListener('abort', abort, { once: true });
    try {
      const handle = model ? model._handle : (o.denoiser as AnalyticDenoiser)._handle;
      const out = wrap(await callAsync(() => sampler._handle.run(x.handle(), handle as NativeDenoiser)));
      model?._afterRun();
      return out;
    } finally {
      o.signal?.removeEventListener('abort', abort);
      if (x !== o.xStart) x.dispose();
      sampler.dispose();
    }
  }
  const jsModel = o.denoiser as JsDenoiser;
  let owned = x !== o.xStart;
  try {
    for (let t = sampler.nextTime; t !== null; t = sampler.nextTime) {
      if (o.signal?.aborted) throw new AbortError('sampling aborted');
      const m = await jsModel(x, t);
      checkLatent('denoiser output', m, dtype, numel);
      const next = await sampler.stepAsync(x, m);
      if (m !== x) m.dispose();
      if (owned) x.dispose();
      x = next;
      owned = true;
      o.onStep?.({ evaluation: sampler.evaluations, t });
    }
    owned = false;
    return x;
  } finally {
    if (owned) x.dispose();
    sampler.dispose();
  }
}

async function scaled(t: Tensor, k: number): Promise<Tensor> {
  const out = await t.clone();
  const v = out.view() as Float32Array | Float64Array;
  for (let i = 0; i < v.length; i++) v[i] *= k;
  return out;
}

/** x_M = alpha_M mu + sqrt(alpha_M^2 v + sigma_M^2) eps (Zhao et al. 2024, Analytic-Init). */
async function analyticInitialState(schedule: Schedule, t: number, noise: Tensor, init: AnalyticInitOptions): Promise<Tensor> {
  assertObject('analyticInit', init as unknown);
  const per = noise.numel / noise.shape[0];
  const mean = numberArray('analyticInit.mean', init.mean);
  if (mean.length !== per) throw new ShapeError(`Expected ${per} values for analyticInit.mean`);
  const variance = typeof init.variance === 'number' ? new Float64Array(per).fill(finiteNumber('analyticInit.variance', init.variance, (v) => v >= 0, 'number >= 0')) : numberArray('analyticInit.variance', init.variance);
  if (variance.length !== per) throw new ShapeError(`Expected ${per} values for analyticInit.variance`);
  const a = schedule.alpha(t), s = schedule.sigma(t);
  const out = await noise.clone();
  const v = out.view() as Float32Array | Float64Array;
  for (let i = 0; i < v.length; i++) {
    const j = i % per;
    v[i] = a * mean[j] + Math.sqrt(a * a * variance[j] + s * s) * v[i];
  }
  return out;
}


