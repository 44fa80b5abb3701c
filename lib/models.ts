/**
 * Native denoiser networks: DiT (class-conditional, adaLN-Zero) and DiT-MoE (routed SwiGLU experts
 * plus a shared expert), loaded from safetensors in the original DiT, diffusers or DiT-MoE layout.
 *
 *   const model = await loadModel('dit-s2.safetensors', { device: 'cpu', layout: 'auto' });
 *   const eps = await model.forward(x, t, y);                 // x [N, C, H, W], t [N], y [N]
 *   const x0 = await sample({ denoiser: model.denoiser({ classes: [3, 7], guidanceScale: 4, height: 32, width: 32 }),
 *                             schedule: schedules.vpDiscrete(), sampler: 'dpmpp-2m', steps: 20, seed: 1 });
 *
 * `timestepExperts([{ denoiser, from, to }, ...])` composes several models by noise interval (each
 * serves the schedule times from <= t <= to), natively for models and in JS for JS denoisers.
 */
import { addon } from './binding.js';
import { resolveDevice } from './device.js';
import { callAsync, callSync } from './errors.js';
import { ArgumentError, DisposedError, ShapeError } from './errors.js';
import type { JsDenoiser, NativeModelDenoiser, Prediction } from './solvers.js';
import { Tensor } from './tensor.js';
import { assertObject, assertOneOf, invalidParameter, isInteger } from './validate.js';

const disposeSymbol: typeof Symbol.dispose = Symbol.dispose ?? Symbol.for('Symbol.dispose');

export type ModelLayout = 'auto' | 'original' | 'diffusers' | 'dit-moe';
export const MODEL_LAYOUTS: readonly ModelLayout[] = ['auto', 'original', 'diffusers', 'dit-moe'];

export interface LoadModelOptions {
  /**
   * 'cpu' (default), 'cuda' or 'cuda:N': a CUDA model keeps its weights on that GPU (converted once
   * to the compute dtype: bf16/f16 as stored, else f32) and runs its forward there, replaying the
   * captured step as a CUDA graph. DiT-MoE routes on the device (top-k, capacity, permutation,
   * grouped expert GEMMs) with its routing statistics read back after each forward.
   */
  device?: string;
  /** Checkpoint layout; 'auto' tells them apart by their tensor names. */
  layout?: ModelLayout;
  /** Attention heads, when the shapes cannot say (default: the published DiT widths, else hidden / 64). */
  heads?: number;
  /** DiT-MoE: experts per token (default 2, the paper's). */
  topK?: number;
  /** DiT-MoE: per-sample expert capacity factor (0 or absent: dropless, like the paper). */
  capacityFactor?: number;
  /** Numerics: 'original' (frequency divisor 128, LayerNorm eps 1e-6, CFG on 3 channels) or 'diffusers' (127, 1e-5 before the MLP, 4 channels). Default: the layout's. */
  variant?: 'original' | 'diffusers';
  /** 'discrete' (t in 0..999, DDPM-trained DiT) or 'rectified-flow' (t in [0, 1], DiT-MoE XL/G); only changes what model.denoiser() predicts. */
  timeInput?: 'discrete' | 'rectified-flow';
}

export interface ModelConfig {
  family: 'dit' | 'dit-moe';
  layout: Exclude<ModelLayout, 'auto'>;
  variant: 'original' | 'diffusers';
  depth: number;
  hidden: number;
  heads: number;
  headDim: number;
  patch: number;
  inChannels: number;
  outChannels: number;
  numClasses: number;
  /** The class label of the unconditional branch (= numClasses). */
  nullClass: number;
  learnSigma: boolean;
  freqDim: number;
  freqShift: number;
  normEps: number;
  mlpNormEps: number;
  guidedChannels: number;
  timeInput: 'discrete' | 'rectified-flow';
  mlpHidden?: number;
  experts?: number;
  topK?: number;
  expertHidden?: number;
  sharedHidden?: number;
  qkNorm?: boolean;
  capacityFactor?: number;
  /** The latent size the stored position table was made for (original layouts). */
  sampleSize?: number;
  /** Models on a CUDA device: the dtype their GEMMs and attention run in. */
  computeDType?: string;
  weightDType: string;
  parameters: number;
  weightBytes: number;
}

export interface RoutingLayerStats {
  layer: number;
  /** Kept token assignments per expert (summed over the batch). */
  tokensPerExpert: number[];
  /** Assignments dropped by the capacity limit. */
  dropped: number;
  /** Mean router entropy over tokens (nats). */
  entropy: number;
  /** With routing: 'choices': [N * tokens, topK] chosen experts, descending probability. */
  choices?: Int32Array;
  /** With routing: 'choices': [N * tokens, topK], 1 kept / 0 dropped. */
  kept?: Uint8Array;
}

export interface RoutingRecord {
  /** Model evaluation index in the sampling run. */
  evaluation: number;
  t: number;
  modelTimestep: number;
  /** Which timestep expert ran (0 for a single model). */
  expert: number;
  layers: RoutingLayerStats[];
}

export interface ForwardOptions {
  /** DiT-MoE: collect routing statistics ('choices' adds every token's experts). */
  routing?: boolean | 'choices';
  /** Called with the statistics when the forward completes (implies routing). */
  onRouting?: (layers: RoutingLayerStats[]) => void;
}

export interface ModelDenoiserOptions {
  /** One class label per sample (config.nullClass = unconditional). */
  classes: readonly number[];
  /** Latent height and width (default: the trained size, config.sampleSize). */
  height?: number;
  width?: number;
  /** Classifier-free guidance scale (1: none, one forward per step). */
  guidanceScale?: number;
  /** Channels guided (default: the model's convention, 3 for the original DiT, all for diffusers). */
  guidedChannels?: number;
  /** Guide only at schedule times from <= t <= to. */
  guidanceInterval?: readonly [number, number];
  /** Keep per-evaluation routing statistics (DiT-MoE), delivered to onRouting and routing(). */
  recordRouting?: boolean;
  onRouting?: (records: RoutingRecord[]) => void;
}

interface NativeModel {
  config(): ModelConfig;
  device(): string;
  toDevice(device: string): Promise<NativeModel>;
  forward(x: unknown, t: unknown, y: unknown, routing: number): Promise<{ out: unknown; routing?: RoutingLayerStats[] }>;
  activationBytes(batch: number, height: number, width: number): number;
  dispose(): void;
}
interface NativeModelDenoiserHandle {
  dim(): number;
  routing(): RoutingRecord[];
}
interface ModelAddon {
  loadModel(path: string, layout: string, options: object): Promise<NativeModel>;
  createModelDenoiser(experts: { model: NativeModel; from: number; to: number }[], labels: number[],
    guidance: { scale: number; guidedChannels: number; intervalFrom: number; intervalTo: number },
    latent: number[], recordRouting: boolean): NativeModelDenoiserHandle;
  gemmBenchmark(m: number, n: number, k: number, dtype: string, reps: number): Promise<number[]>;
  cudaStepPassBenchmark(device: number, n: number, reps: number): Promise<{ stepSeconds: number; copySeconds: number; stepBytes: number; copyBytes: number }>;
}
const modelAddon = (): ModelAddon => addon() as unknown as ModelAddon;

function positiveInt(name: string, v: unknown): number {
  if (!isInteger(v) || v <= 0) throw invalidParameter(name, 'positive integer', v);
  return v;
}

/** A loaded DiT or DiT-MoE, on the CPU or a CUDA device. */
export class DiffusionModel {
  readonly config: Readonly<ModelConfig>;
  /** Where the forward runs: 'cpu' or 'cuda:N'. */
  readonly device: string;
  /** @internal */
  _native: NativeModel | undefined;

  /** @internal use loadModel() */
  constructor(native: NativeModel) {
    this._native = native;
    this.config = Object.freeze(callSync(() => native.config()));
    this.device = callSync(() => native.device());
  }

  /** @internal */
  live(): NativeModel {
    if (!this._native) throw new DisposedError('The model was disposed');
    return this._native;
  }

  /**
   * One forward pass: x [N, C, H, W] f32 (H, W multiples of the patch), t [N] model timesteps (a Tensor,
   * numbers, or one number for all), y [N] class labels (Tensor i32/i64 or numbers). Resolves with
   * [N, outChannels, H, W] on the model's device (x may be on the CPU or on that device).
   */
  async forward(x: Tensor, t: Tensor | readonly number[] | number, y: Tensor | readonly number[], options: ForwardOptions = {}): Promise<Tensor> {
    const native = this.live();
    assertObject('options', options as unknown);
    if (!(x instanceof Tensor)) throw invalidParameter('x', 'Tensor [N, C, H, W]', x);
    if (x.shape.length !== 4) throw new ShapeError(`Expected x of shape [N, C, H, W] but received [${x.shape.join(', ')}]`);
    const n = x.shape[0];
    const tValues = t instanceof Tensor ? undefined : typeof t === 'number' ? new Float32Array(n).fill(t) : Float32Array.from(numbers('t', t));
    const yValues = y instanceof Tensor ? undefined : Int32Array.from(labels('y', y, this.config.numClasses));
    const mode = options.routing === 'choices' ? 2 : options.routing || options.onRouting ? 1 : 0;
    const tt = tValues ? Tensor.from(tValues, { shape: [n] }) : (t as Tensor);
    let yy: Tensor | undefined;
    try {
      yy = yValues ? Tensor.from(yValues, { shape: [n] }) : (y as Tensor);
      const yh = yy.handle();
      const r = await callAsync(() => native.forward(x.handle(), tt.handle(), yh, mode));
      const out = new Tensor(r.out as never);
      if (r.routing && options.onRouting) {
        try {
          options.onRouting(r.routing);
        } catch (err) {
          out.dispose();
          throw err;
        }
      }
      return out;
    } finally {
      if (tt !== t) tt.dispose();
      if (yy !== undefined && yy !== y) yy.dispose();
    }
  }

  /**
   * This model's weights on another device ('cuda' / 'cuda:N'), uploaded off the main thread, as a
   * new DiffusionModel; this one stays usable (dispose it when it is no longer needed).
   */
  async to(device: string): Promise<DiffusionModel> {
    const native = this.live();
    const d = resolveDevice('device', device);
    if (!d.startsWith('cuda')) throw invalidParameter('device', "'cuda' or 'cuda:N'", device);
    return new DiffusionModel(await callAsync(() => native.toDevice(d)));
  }

  /** Bytes of activations one forward at this size allocates. */
  activationBytes(batch: number, height: number, width: number): number {
    return callSync(() => this.live().activationBytes(positiveInt('batch', batch), positiveInt('height', height), positiveInt('width', width)));
  }

  /** This model as a sample() denoiser for a batch of classes (with classifier-free guidance). */
  denoiser(options: ModelDenoiserOptions): ModelDenoiser {
    return makeModelDenoiser([{ model: this, from: -Infinity, to: Infinity }], options);
  }

  /** Frees the weights (an in-flight forward keeps them until it settles). */
  dispose(): void {
    this._native?.dispose();
    this._native = undefined;
  }
  [disposeSymbol](): void {
    this.dispose();
  }
}

function numbers(name: string, v: unknown): number[] {
  if (!Array.isArray(v) || !v.every((e) => typeof e === 'number' && Number.isFinite(e))) throw invalidParameter(name, 'array of finite numbers', v);
  return v as number[];
}
function labels(name: string, v: unknown, numClasses: number): number[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((e) => isInteger(e) && e >= 0 && e <= numClasses)) {
    throw invalidParameter(name, `non-empty array of class labels in [0, ${numClasses}] (${numClasses} = unconditional)`, v);
  }
  return v as number[];
}

/** Loads a DiT / DiT-MoE from a .safetensors file (off the main thread). */
export async function loadModel(path: string, options: LoadModelOptions = {}): Promise<DiffusionModel> {
  if (typeof path !== 'string' || path.length === 0) throw invalidParameter('path', 'path of a .safetensors file', path);
  assertObject('options', options as unknown);
  const device = options.device ?? 'cpu';
  if (device !== 'cpu' && !resolveDevice('device', device).startsWith('cuda')) {
    throw invalidParameter('device', "'cpu', 'cuda' or 'cuda:N'", device);
  }
  const layout = options.layout ?? 'auto';
  assertOneOf('layout', layout, MODEL_LAYOUTS);
  if (options.heads !== undefined) positiveInt('heads', options.heads);
  if (options.topK !== undefined) positiveInt('topK', options.topK);
  if (options.capacityFactor !== undefined && !(typeof options.capacityFactor === 'number' && Number.isFinite(options.capacityFactor) && options.capacityFactor >= 0)) {
    throw invalidParameter('capacityFactor', 'finite number >= 0', options.capacityFactor);
  }
  if (options.variant !== undefined) assertOneOf('variant', options.variant, ['original', 'diffusers'] as const);
  if (options.timeInput !== undefined) assertOneOf('timeInput', options.timeInput, ['discrete', 'rectified-flow'] as const);
  const o = { heads: options.heads, topK: options.topK, capacityFactor: options.capacityFactor, variant: options.variant, timeInput: options.timeInput };
  const model = new DiffusionModel(await callAsync(() => modelAddon().loadModel(path, layout, o)));
  if (device === 'cpu') return model;
  try {
    return await model.to(device);
  } finally {
    model.dispose();  // the device model keeps what it needs
  }
}

/** A model (or timestep experts) bound to classes and guidance: pass it as sample()'s denoiser. */
export class ModelDenoiser implements NativeModelDenoiser {
  readonly _modelDenoiser = true as const;
  /** @internal */
  readonly _handle: NativeModelDenoiserHandle;
  readonly prediction: Prediction;
  readonly latentShape: readonly number[];
  private readonly onRouting?: (records: RoutingRecord[]) => void;
  private readonly record: boolean;

  /** @internal */
  constructor(handle: NativeModelDenoiserHandle, prediction: Prediction, latentShape: number[], record: boolean, onRouting?: (records: RoutingRecord[]) => void) {
    this._handle = handle;
    this.prediction = prediction;
    this.latentShape = Object.freeze(latentShape);
    this.record = record;
    this.onRouting = onRouting;
  }
  /** The routing records of the last sample() run (empty unless recordRouting). */
  routing(): RoutingRecord[] {
    return callSync(() => this._handle.routing());
  }
  /** @internal */
  _afterRun(): void {
    if (this.record && this.onRouting) this.onRouting(this.routing());
  }
}

function makeModelDenoiser(experts: { model: DiffusionModel; from: number; to: number }[], options: ModelDenoiserOptions): ModelDenoiser {
  assertObject('options', options as unknown);
  const c = experts[0].model.config;
  const classes = labels('classes', options.classes, c.numClasses);
  const height = options.height ?? c.sampleSize;
  const width = options.width ?? c.sampleSize;
  if (height === undefined || width === undefined) throw invalidParameter('height', 'the latent height and width (the checkpoint does not say its trained size)', height);
  positiveInt('height', height);
  positiveInt('width', width);
  const scale = options.guidanceScale ?? 1;
  if (typeof scale !== 'number' || !Number.isFinite(scale)) throw invalidParameter('guidanceScale', 'finite number', scale);
  const guided = options.guidedChannels ?? -1;
  if (options.guidedChannels !== undefined && (!isInteger(guided) || guided < 0 || guided > c.inChannels)) {
    throw invalidParameter('guidedChannels', `integer in [0, ${c.inChannels}]`, guided);
  }
  let from = -1, to = -1;
  if (options.guidanceInterval !== undefined) {
    const iv = options.guidanceInterval;
    if (!Array.isArray(iv) || iv.length !== 2 || !iv.every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0) || iv[0] > iv[1]) {
      throw invalidParameter('guidanceInterval', '[from, to] with 0 <= from <= to', iv);
    }
    [from, to] = iv;
  }
  const record = options.recordRouting ?? options.onRouting !== undefined;
  for (const e of experts) {
    const ec = e.model.config;
    if (ec.inChannels !== c.inChannels || ec.numClasses !== c.numClasses) {
      throw new ArgumentError('Timestep experts must share the latent channels and the class set');
    }
  }
  const prediction: Prediction = c.timeInput === 'rectified-flow' ? 'flow' : 'eps';
  const latent = [c.inChannels, height, width];
  const handle = callSync(() => modelAddon().createModelDenoiser(
    experts.map((e) => ({ model: e.model.live(), from: e.from, to: e.to })), classes,
    { scale, guidedChannels: guided, intervalFrom: from, intervalTo: to }, latent, record));
  return new ModelDenoiser(handle, prediction, [classes.length, ...latent], record, options.onRouting);
}

export interface TimestepExpert<D> {
  denoiser: D;
  /** Schedule time interval this expert serves: from <= t <= to. */
  from: number;
  to: number;
}

/** Several models composed by noise interval; `.denoiser(options)` binds classes and guidance like a model's. */
export class TimestepExperts {
  readonly experts: readonly TimestepExpert<DiffusionModel>[];
  /** @internal */
  constructor(experts: TimestepExpert<DiffusionModel>[]) {
    this.experts = Object.freeze(experts);
  }
  /** Index of the expert serving schedule time t, or -1. */
  expertAt(t: number): number {
    return this.experts.findIndex((e) => t >= e.from && t <= e.to);
  }
  denoiser(options: ModelDenoiserOptions): ModelDenoiser {
    return makeModelDenoiser(this.experts.map((e) => ({ model: e.denoiser, from: e.from, to: e.to })), options);
  }
}

function checkIntervals(experts: readonly { from: number; to: number }[]): void {
  const sorted = [...experts].sort((a, b) => a.from - b.from);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].from < sorted[i - 1].to) {
      throw new ArgumentError(`Timestep expert intervals overlap: [${sorted[i - 1].from}, ${sorted[i - 1].to}] and [${sorted[i].from}, ${sorted[i].to}]`);
    }
  }
}

/**
 * Composes denoisers by noise interval (eDiff-I's expert denoisers, sampling-space MoE): each serves
 * the schedule times from <= t <= to (intervals must not overlap; a time no expert covers is an
 * error). Models give a TimestepExperts (native whole loop via `.denoiser(...)`); JS denoisers give a
 * JS denoiser function.
 */
export function timestepExperts(experts: readonly TimestepExpert<DiffusionModel>[]): TimestepExperts;
export function timestepExperts(experts: readonly TimestepExpert<JsDenoiser>[]): JsDenoiser;
export function timestepExperts(experts: readonly TimestepExpert<DiffusionModel | JsDenoiser>[]): TimestepExperts | JsDenoiser {
  if (!Array.isArray(experts) || experts.length === 0) throw invalidParameter('experts', 'non-empty array of { denoiser, from, to }', experts);
  experts.forEach((e, i) => {
    assertObject(`experts[${i}]`, e as unknown);
    if (typeof e.from !== 'number' || Number.isNaN(e.from) || typeof e.to !== 'number' || Number.isNaN(e.to) || e.from > e.to) {
      throw invalidParameter(`experts[${i}]`, '{ from, to } numbers with from <= to', { from: e.from, to: e.to });
    }
  });
  checkIntervals(experts);
  if (experts.every((e) => e.denoiser instanceof DiffusionModel)) {
    experts.forEach((e) => (e.denoiser as DiffusionModel).live());
    return new TimestepExperts(experts.map((e) => ({ ...e })) as TimestepExpert<DiffusionModel>[]);
  }
  if (experts.every((e) => typeof e.denoiser === 'function')) {
    const list = experts.map((e) => ({ ...e })) as TimestepExpert<JsDenoiser>[];
    return (x: Tensor, t: number) => {
      const e = list.find((c) => t >= c.from && t <= c.to);
      if (!e) throw new ArgumentError(`No timestep expert covers t = ${t}`);
      return e.denoiser(x, t);
    };
  }
  throw invalidParameter('experts', 'all loaded models or all JS denoiser functions', experts.map((e) => typeof e.denoiser));
}

export interface GemmRateOptions {
  /** Rows of x (tokens x batch), output features, input features. */
  m: number;
  n: number;
  k: number;
  /** Weight storage dtype (compute is f32). */
  dtype?: 'f32' | 'f16' | 'bf16';
  reps?: number;
}

/**
 * The CPU GEMM rate of this machine for the model GEMM (y = x Wᵀ, f32 compute) on the engine's thread
 * pool: median GFLOP/s over `reps` calls. Model benchmarks report their FLOP rate against it.
 */
export async function measureGemmRate(options: GemmRateOptions): Promise<{ gflops: number; seconds: number[] }> {
  assertObject('options', options as unknown);
  const m = positiveInt('m', options.m), n = positiveInt('n', options.n), k = positiveInt('k', options.k);
  const dtype = options.dtype ?? 'f32';
  assertOneOf('dtype', dtype, ['f32', 'f16', 'bf16'] as const);
  const reps = positiveInt('reps', options.reps ?? 5);
  const seconds = await callAsync(() => modelAddon().gemmBenchmark(m, n, k, dtype, reps));
  const sorted = [...seconds].sort((a, b) => a - b);
  return { gflops: (2 * m * n * k) / sorted[Math.floor(sorted.length / 2)] / 1e9, seconds };
}

export interface StepPassBandwidth {
  /** Bytes per second of a dpmpp-2m-shaped fused step (reads x, m and one history term; writes d and out). */
  stepBytesPerSecond: number;
  /** Bytes per second of a device-to-device copy of the same number of floats, timed beside it. */
  copyBytesPerSecond: number;
}

/**
 * The fused solver step on a CUDA device against a device copy, medians of `reps` side-by-side runs:
 * how close a sampler step comes to the device's copy bandwidth (bench/cuda.mjs).
 */
export async function measureCudaStepPass(options: { device?: string; elements: number; reps?: number }): Promise<StepPassBandwidth> {
  assertObject('options', options as unknown);
  const d = resolveDevice('device', options.device ?? 'cuda:0');
  if (!d.startsWith('cuda')) throw invalidParameter('device', "'cuda' or 'cuda:N'", options.device);
  const elements = positiveInt('elements', options.elements);
  const reps = positiveInt('reps', options.reps ?? 20);
  const r = await callAsync(() => modelAddon().cudaStepPassBenchmark(Number(d.split(':')[1] ?? 0), elements, reps));
  return { stepBytesPerSecond: r.stepBytes / r.stepSeconds, copyBytesPerSecond: r.copyBytes / r.copySeconds };
}
