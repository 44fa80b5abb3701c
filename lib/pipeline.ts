/**
 * The main job in one object: a class-conditional image model with its schedule and defaults.
 *
 *   await using pipe = await Pipeline.load();                      // builtin:shapes
 *   const { images, stats } = await pipe.generate({ classes: [3, 3, 7], steps: 20, seed: 42 });
 *   await writeFile('out.png', images.grid().toPNG());
 *
 * The loop runs step by step from JS over the native sampler and the native model forward, so it can
 * report progress, stop between steps and switch models by time. The per-step JS work is the
 * classifier-free guidance combination (a few thousand floats per image); the forward dominates.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { loadBinding } from './binding.js';
import { AbortError, ArgumentError, DisposedError, IOError, ModelError, ShapeError } from './errors.js';
import { ImageBatch } from './image.js';
import { type DiffusionModel, type RoutingLayerStats, type RoutingRecord, loadModel } from './models.js';
import { packageRoot } from './paths.js';
import { randn } from './random.js';
import { type Schedule, type StepSpacing, createSampler, listSamplers, schedules } from './solvers.js';
import { Tensor } from './tensor.js';
import { assertObject, invalidParameter, isInteger } from './validate.js';

const asyncDisposeSymbol: typeof Symbol.asyncDispose = Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose');
const disposeSymbol: typeof Symbol.dispose = Symbol.dispose ?? Symbol.for('Symbol.dispose');

/** The built-in model used when Pipeline.load() gets no source. */
export const DEFAULT_MODEL = 'builtin:shapes';

/** The JSON card beside a model file (`<name>.json`): what the weights alone cannot say. */
export interface ModelCard {
  name: string;
  description?: string;
  family?: 'dit' | 'dit-moe';
  heads?: number;
  topK?: number;
  imageSize: [number, number];
  classNames?: string[];
  prediction?: 'eps';
  schedule: { kind: 'vpDiscrete'; betaSchedule?: 'linear' | 'scaled-linear' | 'squaredcos_cap_v2'; betaStart?: number; betaEnd?: number; numTrainTimesteps?: number };
  /** The pixel range the model was trained on (default [-1, 1]). */
  valueRange?: [number, number];
  defaults?: { sampler?: string; steps?: number; guidanceScale?: number };
  /** The built-in classifier that scores this model's samples. */
  classifier?: string;
  [key: string]: unknown;
}

export interface BuiltinModelInfo {
  /** 'builtin:<name>' */
  id: string;
  name: string;
  path: string;
  description: string;
  family: string;
  parameters: number | undefined;
  bytes: number;
  classNames: string[];
  imageSize: [number, number];
  isDefault: boolean;
  card: ModelCard;
}

function builtinDir(): string {
  return join(packageRoot(), 'models');
}

/** The models shipped in the package (`builtin:<name>`), the default first. */
export function listBuiltinModels(): BuiltinModelInfo[] {
  const dir = builtinDir();
  if (!existsSync(dir)) return [];
  const out: BuiltinModelInfo[] = [];
  for (const f of readdirSync(dir).sort()) {
    if (!f.endsWith('.safetensors')) continue;
    const name = f.slice(0, -'.safetensors'.length);
    const cardPath = join(dir, `${name}.json`);
    if (!existsSync(cardPath)) continue;
    const card = JSON.parse(readFileSync(cardPath, 'utf8')) as ModelCard;
    if (card.schedule === undefined) continue; // a classifier, not a generative model
    const config = card.config as { parameters?: number } | undefined;
    out.push({
      id: `builtin:${name}`, name, path: join(dir, f), description: card.description ?? '', family: card.family ?? 'dit',
      parameters: config?.parameters, bytes: statSync(join(dir, f)).size, classNames: card.classNames ?? [],
      imageSize: card.imageSize, isDefault: `builtin:${name}` === DEFAULT_MODEL, card,
    });
  }
  return out.sort((a, b) => Number(b.isDefault) - Number(a.isDefault));
}

/** 'builtin:NAME' or a path → the .safetensors path (throws naming what is valid). */
export function resolveModelSource(source: string): string {
  if (typeof source !== 'string' || source.length === 0) throw invalidParameter('source', "'builtin:<name>' or the path of a .safetensors file", source);
  if (source.startsWith('builtin:')) {
    const name = source.slice('builtin:'.length);
    const models = listBuiltinModels();
    const hit = models.find((m) => m.name === name);
    if (!hit) {
      throw new ArgumentError(`Unknown built-in model '${source}'; valid: ${models.map((m) => m.id).join(', ') || `none (no generative model with a card in ${builtinDir()})`}`);
    }
    return hit.path;
  }
  const path = resolve(source);
  if (!existsSync(path)) throw new IOError(`Model file not found: ${path}`);
  return path;
}

function readCard(path: string): ModelCard | undefined {
  const cardPath = path.endsWith('.safetensors') ? `${path.slice(0, -'.safetensors'.length)}.json` : `${path}.json`;
  if (!existsSync(cardPath)) return undefined;
  try {
    return JSON.parse(readFileSync(cardPath, 'utf8')) as ModelCard;
  } catch (err) {
    throw new ModelError(`The model card ${cardPath} is not valid JSON: ${(err as Error).message}`);
  }
}

export interface PipelineLoadOptions {
  /**
   * 'cpu' (default), 'cuda' / 'cuda:N' (the model's forward on that GPU; the sampler's state stays on
   * the host), or 'auto': the first GPU when the CUDA backend is in use, else the CPU.
   */
  device?: 'cpu' | 'auto' | 'cuda' | string;
  /** For files without a card: the image size the model makes (default: the trained size). */
  imageSize?: [number, number];
  /** For files without a card: the noise schedule (default DiT's: vpDiscrete linear, 1000 steps). */
  schedule?: Schedule;
  /** Passed to loadModel (files without a card, or overriding it). */
  heads?: number;
  topK?: number;
  capacityFactor?: number;
}

export interface StepInfo {
  /** 1-based step (model evaluation) count, and the planned total. */
  step: number;
  total: number;
  /** Schedule time of this evaluation. */
  t: number;
  /** The current estimate of the clean images (only with `preview: true`). */
  x0Preview?: ImageBatch;
}

export interface TimestepExpertSpec {
  /** The model to use for schedule times from <= t <= to (same latent shape and classes). */
  model: DiffusionModel | Pipeline;
  from: number;
  to: number;
}

export interface GenerateOptions {
  /** One class per image (index, or a class name of the card). Default: one image per class. */
  classes?: readonly (number | string)[];
  /** Images when `classes` is not given (classes then cycle 0, 1, 2, ...). */
  count?: number;
  steps?: number;
  sampler?: string;
  /** Classifier-free guidance scale (1: none, one forward per step). Default: the card's, else 1. */
  guidanceScale?: number;
  /** Guide only at schedule times from <= t <= to (default: everywhere). */
  guidanceInterval?: readonly [number, number];
  /** Image i gets seed + i (default 0): the same seed gives the same image in any batch. */
  seed?: number;
  /** One seed per image instead. */
  seeds?: readonly number[];
  /** Step spacing, tStart, tEnd and sampler options as in sample(). */
  skip?: StepSpacing;
  tStart?: number;
  tEnd?: number;
  samplerOptions?: Record<string, string | number | boolean>;
  /** Use another model for part of the time range (timestep experts). */
  experts?: readonly TimestepExpertSpec[];
  /** DiT-MoE: collect routing statistics per evaluation ('choices': every token's experts). */
  routing?: boolean | 'choices';
  signal?: AbortSignal;
  onStep?: (info: StepInfo) => void;
  /** Compute x0Preview for onStep (costs one pass over the batch per step). */
  preview?: boolean;
}

export interface GenerateStats {
  seconds: number;
  /** Seconds inside model forwards. */
  modelSeconds: number;
  /** Model evaluations (forwards with CFG count once). */
  evaluations: number;
  imagesPerSecond: number;
  sampler: string;
  steps: number;
  guidanceScale: number;
  classes: number[];
  seeds: number[];
  /** With `routing`: one record per evaluation. */
  routing?: RoutingRecord[];
}

export interface GenerateResult {
  /** The images in [0, 1] (tensors: images.toTensor(); PNG: images.toPNG(i), images.grid().toPNG()). */
  images: ImageBatch;
  /** The final sampler state [N, C, H, W] in the model's range (caller disposes). */
  latents: Tensor;
  stats: GenerateStats;
}

/** A model, its schedule and defaults: generate() makes images. */
export class Pipeline {
  readonly name: string;
  readonly path: string;
  readonly card: Readonly<ModelCard>;
  readonly schedule: Schedule;
  readonly classNames: readonly string[];
  readonly imageSize: readonly [number, number];
  readonly device: string;
  private _model: DiffusionModel | undefined;

  private constructor(model: DiffusionModel, path: string, card: ModelCard, schedule: Schedule, device: string) {
    this._model = model;
    this.path = path;
    this.card = Object.freeze(card);
    this.name = card.name;
    this.schedule = schedule;
    const n = model.config.numClasses;
    this.classNames = Object.freeze(card.classNames && card.classNames.length === n ? [...card.classNames] : Array.from({ length: n }, (_, i) => String(i)));
    this.imageSize = Object.freeze([card.imageSize[0], card.imageSize[1]] as [number, number]);
    this.device = device;
  }

  /** Loads `builtin:<name>` (default builtin:shapes) or a .safetensors path (with its card beside it). */
  static async load(source: string = DEFAULT_MODEL, options: PipelineLoadOptions = {}): Promise<Pipeline> {
    assertObject('options', options as unknown);
    const requested = options.device ?? 'cpu';
    if (typeof requested !== 'string' || !/^(cpu|auto|cuda(:\d+)?)$/.test(requested)) {
      throw invalidParameter('device', "'cpu', 'auto', 'cuda' or 'cuda:N'", requested);
    }
    const path = resolveModelSource(source);
    const found = readCard(path);
    const loadOptions = { heads: options.heads ?? found?.heads, topK: options.topK ?? found?.topK, capacityFactor: options.capacityFactor };
    let model = await loadModel(path, loadOptions);  // on the CPU first: the card and config checks
    // 'auto': the first GPU when the CUDA backend is in use.
    const device = requested === 'auto' ? (loadBinding().backend === 'cuda' ? 'cuda:0' : 'cpu') : requested;
    if (device !== 'cpu') {
      const cpuModel = model;
      try {
        model = await cpuModel.to(device);
      } finally {
        cpuModel.dispose();
      }
    }
    try {
      const c = model.config;
      if (c.timeInput !== 'discrete') throw new ModelError('Pipeline supports DDPM-trained (discrete-time, eps) models; this one takes rectified-flow time');
      if (c.inChannels !== 1 && c.inChannels !== 3) {
        throw new ModelError(`Pipeline makes images from pixel-space models (1 or 3 channels); this model has ${c.inChannels} latent channels (decode them with a VAE: use loadModel() and sample())`);
      }
      const sizeFromModel = c.sampleSize ? [c.sampleSize, c.sampleSize] as [number, number] : undefined;
      const imageSize = options.imageSize ?? found?.imageSize ?? sizeFromModel;
      if (!imageSize || imageSize.length !== 2 || !imageSize.every((v) => isInteger(v) && v > 0 && v % c.patch === 0)) {
        throw invalidParameter('imageSize', `[height, width], multiples of the patch ${c.patch} (the file has no card saying it)`, imageSize);
      }
      const card: ModelCard = {
        name: found?.name ?? basename(path).replace(/\.safetensors$/, ''),
        schedule: found?.schedule ?? { kind: 'vpDiscrete', betaSchedule: 'linear', numTrainTimesteps: 1000 },
        ...found,
        imageSize: [imageSize[0], imageSize[1]],
      };
      if (card.schedule.kind !== 'vpDiscrete') throw new ModelError(`Unsupported schedule kind '${String(card.schedule.kind)}' in the model card (expected vpDiscrete)`);
      const { kind: _kind, ...scheduleOptions } = card.schedule;
      const schedule = options.schedule ?? schedules.vpDiscrete(scheduleOptions);
      return new Pipeline(model, path, card, schedule, model.device);
    } catch (err) {
      model.dispose();
      throw err;
    }
  }

  get model(): DiffusionModel {
    if (!this._model) throw new DisposedError('The pipeline was disposed');
    return this._model;
  }

  /**
   * Samplers that generate from noise with this pipeline: no inversion, no conditioned schedules, and
   * not dpm-adaptive, whose step-size control takes the error over the whole batch (an image would
   * depend on the others).
   */
  static samplers(): string[] {
    return listSamplers().filter((s) => !s.needsCondition && s.family !== 'inversion' && s.name !== 'dpm-adaptive').map((s) => s.name);
  }

  private classIndex(c: number | string, i: number): number {
    const n = this.model.config.numClasses;
    if (typeof c === 'string') {
      const k = this.classNames.indexOf(c);
      if (k < 0) throw invalidParameter(`classes[${i}]`, `a class index in [0, ${n - 1}] or one of ${this.classNames.join(', ')}`, c);
      return k;
    }
    if (!isInteger(c) || c < 0 || c >= n) throw invalidParameter(`classes[${i}]`, `a class index in [0, ${n - 1}] or one of ${this.classNames.join(', ')}`, c);
    return c;
  }

  /** Generates one image per class in `classes`; see GenerateOptions. */
  async generate(options: GenerateOptions = {}): Promise<GenerateResult> {
    assertObject('options', options as unknown);
    const model = this.model;
    const cfg = model.config;
    const defaults = this.card.defaults ?? {};
    // ---- validation, all before any native memory is taken
    let classes: number[];
    if (options.classes !== undefined) {
      if (!Array.isArray(options.classes) || options.classes.length === 0) throw invalidParameter('classes', 'non-empty array of class indices or names', options.classes);
      classes = options.classes.map((c, i) => this.classIndex(c, i));
      if (options.count !== undefined && options.count !== classes.length) throw invalidParameter('count', `${classes.length} (the number of classes given) or nothing`, options.count);
    } else {
      const count = options.count ?? cfg.numClasses;
      if (!isInteger(count) || count <= 0) throw invalidParameter('count', 'positive integer', count);
      classes = Array.from({ length: count }, (_, i) => i % cfg.numClasses);
    }
    const n = classes.length;
    let seeds: number[];
    if (options.seeds !== undefined) {
      if (options.seed !== undefined) throw new ArgumentError('Pass either seed or seeds, not both');
      if (!Array.isArray(options.seeds) || options.seeds.length !== n || !options.seeds.every((s) => isInteger(s) && s >= 0)) {
        throw invalidParameter('seeds', `array of ${n} non-negative integers (one per image)`, options.seeds);
      }
      seeds = [...options.seeds];
    } else {
      const seed = options.seed ?? 0;
      if (!isInteger(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER - (n - 1)) throw invalidParameter('seed', 'non-negative integer', seed);
      seeds = classes.map((_, i) => seed + i);
    }
    const sampler = options.sampler ?? defaults.sampler ?? 'dpmpp-2m';
    const valid = Pipeline.samplers();
    if (typeof sampler !== 'string' || !valid.includes(sampler)) throw invalidParameter('sampler', `one of ${valid.join(', ')}`, sampler);
    const steps = options.steps ?? defaults.steps ?? 20;
    if (!isInteger(steps) || steps <= 0 || steps > 10000) throw invalidParameter('steps', 'integer in [1, 10000]', steps);
    const scale = options.guidanceScale ?? defaults.guidanceScale ?? 1;
    if (typeof scale !== 'number' || !Number.isFinite(scale)) throw invalidParameter('guidanceScale', 'finite number', scale);
    let interval: [number, number] = [-Infinity, Infinity];
    if (options.guidanceInterval !== undefined) {
      const g = options.guidanceInterval;
      if (!Array.isArray(g) || g.length !== 2 || !g.every((v) => typeof v === 'number' && !Number.isNaN(v)) || g[0] > g[1]) {
        throw invalidParameter('guidanceInterval', '[from, to] schedule times with from <= to', g);
      }
      interval = [g[0], g[1]];
    }
    const experts = (options.experts ?? []).map((e, i) => {
      assertObject(`experts[${i}]`, e as unknown);
      const m = e.model instanceof Pipeline ? e.model.model : e.model;
      if (!m || typeof (m as DiffusionModel).forward !== 'function') throw invalidParameter(`experts[${i}].model`, 'a DiffusionModel or Pipeline', e.model);
      const mc = (m as DiffusionModel).config;
      if (mc.inChannels !== cfg.inChannels || mc.numClasses !== cfg.numClasses || mc.patch !== cfg.patch || mc.timeInput !== cfg.timeInput) {
        throw new ShapeError(`experts[${i}].model does not match the pipeline's model (channels, classes, patch or time input differ)`);
      }
      if (typeof e.from !== 'number' || typeof e.to !== 'number' || !(e.from <= e.to)) throw invalidParameter(`experts[${i}]`, '{ model, from, to } with from <= to', e);
      return { model: m as DiffusionModel, from: e.from, to: e.to };
    });
    const sorted = [...experts].sort((a, b) => a.from - b.from);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i].from <= sorted[i - 1].to) throw new ArgumentError(`experts intervals overlap: [${sorted[i - 1].from}, ${sorted[i - 1].to}] and [${sorted[i].from}, ${sorted[i].to}]`);
    }
    if (options.routing !== undefined && options.routing !== true && options.routing !== false && options.routing !== 'choices') {
      throw invalidParameter('routing', "true, false or 'choices'", options.routing);
    }
    if (options.onStep !== undefined && typeof options.onStep !== 'function') throw invalidParameter('onStep', 'function', options.onStep);
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw invalidParameter('signal', 'AbortSignal', options.signal);
    if (options.signal?.aborted) throw new AbortError('generation aborted before it started');

    const [h, w] = this.imageSize;
    const C = cfg.inChannels;
    const per = C * h * w;
    const shape = [n, C, h, w];
    const nullClass = cfg.nullClass;
    const scaleF = Math.fround(scale); // the native CFG computes in float32 from float(scale)
    const range = this.card.valueRange ?? [-1, 1];
    const routing: RoutingRecord[] | undefined = options.routing ? [] : undefined;
    const startTime = performance.now();
    let modelSeconds = 0;

    const s = createSampler({
      schedule: this.schedule, sampler, steps, skip: options.skip, tStart: options.tStart, tEnd: options.tEnd,
      shape, seed: seeds, prediction: 'eps', options: options.samplerOptions,
    });
    const owned = new Set<Tensor>();
    const track = (t: Tensor): Tensor => (owned.add(t), t);
    const release = (t: Tensor | undefined): void => {
      if (t && owned.delete(t)) t.dispose();
    };
    try {
      const noise = track(await randn(shape, { seed: seeds }));
      let x = track(s.initialState(noise));
      release(noise);
      const planned = s.plannedTimes.length;
      const yCond = Int32Array.from(classes);
      const yBoth = Int32Array.from([...classes, ...classes.map(() => nullClass)]);
      let step = 0;
      for (let t = s.nextTime; t !== null; t = s.nextTime) {
        if (options.signal?.aborted) throw new AbortError(`generation aborted after ${step} of ${planned || '?'} steps`);
        const expertIndex = experts.findIndex((e) => t! >= e.from && t! <= e.to);
        const net = expertIndex >= 0 ? experts[expertIndex].model : model;
        const guide = scale !== 1 && t >= interval[0] && t <= interval[1];
        const modelT = this.schedule.modelTimestep(t);
        const xs = x.dataSync() as Float32Array;
        let inputT = x; // unguided steps feed the state itself; guided ones a [cond | uncond] copy
        if (guide) {
          const input = new Float32Array(2 * n * per);
          input.set(xs, 0);
          input.set(xs, n * per);
          inputT = track(Tensor.from(input, { shape: [2 * n, C, h, w] }));
        }
        const t0 = performance.now();
        let layers: RoutingLayerStats[] | undefined;
        const out = track(await net.forward(inputT, modelT, Array.from(guide ? yBoth : yCond), routing ? {
          routing: options.routing, onRouting: (l) => { layers = l; },
        } : {}));
        modelSeconds += (performance.now() - t0) / 1000;
        if (inputT !== x) release(inputT);
        if (routing) routing.push({ evaluation: step, t, modelTimestep: modelT, expert: expertIndex + 1, layers: layers ?? [] });
        // The model's own output channels: eps first (learned-sigma models append variance channels).
        const o = out.dataSync() as Float32Array;
        const oc = net.config.outChannels;
        const guided = Math.min(net.config.guidedChannels, C);
        if (o.length !== (guide ? 2 : 1) * n * oc * h * w) throw new ShapeError(`The model returned ${o.length} values; expected ${(guide ? 2 : 1) * n * oc * h * w}`);
        const eps = new Float32Array(n * per);
        for (let i = 0; i < n; i++) {
          for (let ch = 0; ch < C; ch++) {
            const src = (i * oc + ch) * h * w;
            const dst = (i * C + ch) * h * w;
            if (guide && ch < guided) {
              const un = ((n + i) * oc + ch) * h * w;
              for (let p = 0; p < h * w; p++) eps[dst + p] = Math.fround(o[un + p] + Math.fround(scaleF * Math.fround(o[src + p] - o[un + p])));
            } else {
              eps.set(o.subarray(src, src + h * w), dst);
            }
          }
        }
        release(out);
        const epsT = track(Tensor.from(eps, { shape }));
        step++;
        if (options.onStep) {
          let x0Preview: ImageBatch | undefined;
          if (options.preview) {
            const a = this.schedule.alpha(t), sg = this.schedule.sigma(t);
            const x0 = new Float32Array(n * per);
            for (let k = 0; k < x0.length; k++) x0[k] = (xs[k] - sg * eps[k]) / a;
            x0Preview = ImageBatch.fromModelOutput(x0, [n, C, h, w], range);
          }
          options.onStep({ step, total: planned || step, t, x0Preview });
        }
        const next = track(await s.stepAsync(x, epsT));
        release(epsT);
        release(x);
        x = next;
      }
      if (options.signal?.aborted) throw new AbortError(`generation aborted after ${step} of ${planned || '?'} steps`);
      const latents = x;
      const images = ImageBatch.fromModelOutput(Float32Array.from(latents.dataSync() as Float32Array), [n, C, h, w], range);
      const seconds = (performance.now() - startTime) / 1000;
      owned.delete(latents);
      return {
        images, latents,
        stats: { seconds, modelSeconds, evaluations: step, imagesPerSecond: n / seconds, sampler, steps, guidanceScale: scale, classes, seeds, routing },
      };
    } finally {
      for (const t of owned) t.dispose();
      s.dispose();
    }
  }

  /** Frees the model (after any generate() in flight settles, its forward keeps the weights alive). */
  dispose(): void {
    this._model?.dispose();
    this._model = undefined;
  }
  [disposeSymbol](): void {
    this.dispose();
  }
  async [asyncDisposeSymbol](): Promise<void> {
    this.dispose();
  }
}
