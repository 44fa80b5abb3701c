/**
 * The small CNN that scores images made by the built-in "shapes" models (which class a sample
 * looks like), in plain TypeScript: ~3 M multiply-adds per 32x32 image is too little work to be
 * worth a trip through the native thread pool, and keeping it in JS makes it an independent check
 * of the engine that generated the images.
 *
 * Network (PyTorch semantics, NCHW): conv3x3 pad 1 → ReLU → maxpool 2 → conv3x3 pad 1 → ReLU →
 * maxpool 2 → conv3x3 pad 1 → ReLU → mean over H, W → linear. Channel counts come from the weights.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ArgumentError, IOError, ModelError, ShapeError } from './errors.js';
import { ImageBatch } from './image.js';
import { builtinModelPath } from './paths.js';
import { openSafetensors } from './safetensors.js';
import { Tensor } from './tensor.js';
import { assertIntegerInRange, invalidParameter } from './validate.js';

export const DEFAULT_CLASSIFIER = 'builtin:shapes-classifier';

interface ClassifierCard {
  classNames?: unknown;
  inputRange?: unknown;
  schedule?: unknown;
}

interface Conv3x3 {
  inChannels: number;
  outChannels: number;
  /** [out, in, 3, 3] */
  weight: Float64Array;
  bias: Float64Array;
}

/** Built-in classifiers: the cards in models/ without a sampling schedule (which generative models have). */
function builtinClassifierNames(): string[] {
  const dir = builtinModelPath('.');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && existsSync(builtinModelPath(`${f.slice(0, -5)}.safetensors`)))
    .filter((f) => {
      try {
        return (JSON.parse(readFileSync(builtinModelPath(f), 'utf8')) as ClassifierCard).schedule === undefined;
      } catch {
        return false;
      }
    })
    .map((f) => f.slice(0, -5))
    .sort();
}

function resolveSource(source: unknown): string {
  if (typeof source !== 'string' || source.length === 0) {
    throw invalidParameter('source', "'builtin:<name>' or the path of a .safetensors file", source);
  }
  if (source.startsWith('builtin:')) {
    const name = source.slice('builtin:'.length);
    const valid = builtinClassifierNames();
    if (!valid.includes(name)) {
      const list = valid.map((n) => `'builtin:${n}'`).join(', ') || 'none (the package has no models/ directory)';
      throw new ArgumentError(`Unknown built-in classifier '${source}'; valid: ${list}`);
    }
    return builtinModelPath(`${name}.safetensors`);
  }
  const path = resolve(source);
  if (!existsSync(path)) throw new IOError(`Classifier file not found: ${path}`);
  return path;
}

function readCard(weightsPath: string): ClassifierCard | undefined {
  const cardPath = `${weightsPath.endsWith('.safetensors') ? weightsPath.slice(0, -'.safetensors'.length) : weightsPath}.json`;
  if (!existsSync(cardPath)) return undefined;
  try {
    return JSON.parse(readFileSync(cardPath, 'utf8')) as ClassifierCard;
  } catch (err) {
    throw new ModelError(`The classifier card ${cardPath} is not valid JSON: ${(err as Error).message}`);
  }
}

/** 3x3 convolution, zero padding 1, stride 1: `input` [cin, h, w] → `output` [cout, h, w]. */
function conv3x3(conv: Conv3x3, input: Float64Array, output: Float64Array, h: number, w: number): void {
  const plane = h * w;
  for (let co = 0; co < conv.outChannels; co++) {
    const out = co * plane;
    output.fill(conv.bias[co], out, out + plane);
    for (let ci = 0; ci < conv.inChannels; ci++) {
      const inp = ci * plane;
      for (let ky = 0; ky < 3; ky++) {
        // The three taps of a kernel row are applied together: one read-modify-write of each output per kernel row.
        const k = ((co * conv.inChannels + ci) * 3 + ky) * 3;
        const left = conv.weight[k], centre = conv.weight[k + 1], right = conv.weight[k + 2];
        // Output rows whose tap row ky lands inside the input; the rest read zero padding.
        const yFrom = ky === 0 ? 1 : 0;
        const yTo = ky === 2 ? h - 1 : h;
        for (let y = yFrom; y < yTo; y++) {
          const dst = out + y * w;
          const src = inp + (y + ky - 1) * w;
          if (w === 1) {
            output[dst] += centre * input[src];
            continue;
          }
          output[dst] += centre * input[src] + right * input[src + 1];
          for (let x = 1; x < w - 1; x++) {
            output[dst + x] += left * input[src + x - 1] + centre * input[src + x] + right * input[src + x + 1];
          }
          output[dst + w - 1] += left * input[src + w - 2] + centre * input[src + w - 1];
        }
      }
    }
  }
}

/** ReLU then 2x2 max pooling with stride 2 (the same as pooling first: max and ReLU commute). */
function reluMaxPool2(input: Float64Array, output: Float64Array, channels: number, h: number, w: number): void {
  const oh = h >> 1;
  const ow = w >> 1;
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < oh; y++) {
      const top = c * h * w + 2 * y * w;
      const bottom = top + w;
      const dst = (c * oh + y) * ow;
      for (let x = 0; x < ow; x++) {
        const m = Math.max(input[top + 2 * x], input[top + 2 * x + 1], input[bottom + 2 * x], input[bottom + 2 * x + 1]);
        output[dst + x] = m > 0 ? m : 0;
      }
    }
  }
}

export class ImageClassifier {
  /** One name per output class (from the model card; '0', '1', ... without one). */
  readonly classNames: readonly string[];
  /** The value range the network expects its input in (ImageBatch values are mapped to it). */
  readonly inputRange: readonly [number, number];
  private readonly convs: readonly [Conv3x3, Conv3x3, Conv3x3];
  /** [classes, features] */
  private readonly fcWeight: Float64Array;
  private readonly fcBias: Float64Array;

  /** @internal use loadClassifier() */
  constructor(
    convs: [Conv3x3, Conv3x3, Conv3x3], fcWeight: Float64Array, fcBias: Float64Array,
    classNames: readonly string[], inputRange: readonly [number, number],
  ) {
    this.convs = convs;
    this.fcWeight = fcWeight;
    this.fcBias = fcBias;
    this.classNames = Object.freeze([...classNames]);
    this.inputRange = Object.freeze([inputRange[0], inputRange[1]] as [number, number]);
  }

  get inputChannels(): number {
    return this.convs[0].inChannels;
  }

  /** Pixels in the model range and their [n, channels, h, w], from either kind of input. */
  private input(images: ImageBatch | Tensor): { data: Float32Array; n: number; h: number; w: number } {
    let data: Float32Array;
    let n: number, c: number, h: number, w: number;
    if (images instanceof ImageBatch) {
      const [lo, hi] = this.inputRange;
      data = new Float32Array(images.data.length);
      for (let i = 0; i < data.length; i++) data[i] = lo + images.data[i] * (hi - lo);
      [n, c, h, w] = [images.count, 3, images.height, images.width];
    } else if (images instanceof Tensor) {
      if (images.dtype !== 'f32') throw invalidParameter('images.dtype', "'f32'", images.dtype);
      if (images.shape.length !== 4) throw new ShapeError(`Expected images [N, C, H, W] but the tensor's shape is [${images.shape.join(', ')}]`);
      [n, c, h, w] = images.shape;
      data = images.dataSync<'f32'>();
    } else {
      throw invalidParameter('images', 'ImageBatch or Tensor', images);
    }
    if (c !== this.inputChannels) throw new ShapeError(`The classifier takes ${this.inputChannels}-channel images; these have ${c}`);
    if (h < 4 || w < 4 || h % 4 !== 0 || w % 4 !== 0) {
      throw new ShapeError(`The classifier pools twice by 2, so height and width must be positive multiples of 4; these images are ${w}x${h}`);
    }
    return { data, n, h, w };
  }

  /**
   * Class scores before softmax, [N * classes] (image-major). Runs on the calling thread
   * (a few milliseconds per 32x32 image). Tensors are taken as already in `inputRange`.
   */
  logits(images: ImageBatch | Tensor): Float32Array {
    const { data, n, h, w } = this.input(images);
    const [c1, c2, c3] = this.convs;
    const classes = this.classNames.length;
    const features = c3.outChannels;
    const x = new Float64Array(c1.inChannels * h * w);
    const a1 = new Float64Array(c1.outChannels * h * w);
    const p1 = new Float64Array(c1.outChannels * (h >> 1) * (w >> 1));
    const a2 = new Float64Array(c2.outChannels * (h >> 1) * (w >> 1));
    const p2 = new Float64Array(c2.outChannels * (h >> 2) * (w >> 2));
    const a3 = new Float64Array(c3.outChannels * (h >> 2) * (w >> 2));
    const pooled = new Float64Array(features);
    const out = new Float32Array(n * classes);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < x.length; j++) x[j] = data[i * x.length + j];
      conv3x3(c1, x, a1, h, w);
      reluMaxPool2(a1, p1, c1.outChannels, h, w);
      conv3x3(c2, p1, a2, h >> 1, w >> 1);
      reluMaxPool2(a2, p2, c2.outChannels, h >> 1, w >> 1);
      conv3x3(c3, p2, a3, h >> 2, w >> 2);
      const plane = (h >> 2) * (w >> 2);
      for (let c = 0; c < features; c++) {
        let sum = 0;
        for (let p = 0; p < plane; p++) {
          const v = a3[c * plane + p];
          if (v > 0) sum += v;
        }
        pooled[c] = sum / plane;
      }
      for (let k = 0; k < classes; k++) {
        let s = this.fcBias[k];
        for (let c = 0; c < features; c++) s += this.fcWeight[k * features + c] * pooled[c];
        out[i * classes + k] = s;
      }
    }
    return out;
  }

  /** The most likely class of each image (the first on ties). */
  predict(images: ImageBatch | Tensor): number[] {
    const logits = this.logits(images);
    const classes = this.classNames.length;
    const out: number[] = [];
    for (let o = 0; o < logits.length; o += classes) {
      let best = 0;
      for (let k = 1; k < classes; k++) if (logits[o + k] > logits[o + best]) best = k;
      out.push(best);
    }
    return out;
  }

  /** The fraction of images whose predicted class is `labels[i]`. */
  accuracy(images: ImageBatch | Tensor, labels: readonly number[]): number {
    if (!Array.isArray(labels)) throw invalidParameter('labels', 'array of class indices', labels);
    labels.forEach((l, i) => assertIntegerInRange(`labels[${i}]`, l, 0, this.classNames.length - 1));
    const n = images instanceof ImageBatch ? images.count : images instanceof Tensor ? images.shape[0] : undefined;
    if (n !== undefined && labels.length !== n) throw new ShapeError(`Got ${labels.length} labels for ${n} images`);
    const predicted = this.predict(images);
    if (predicted.length === 0) return Number.NaN;
    return predicted.filter((p, i) => p === labels[i]).length / predicted.length;
  }
}

/**
 * Loads an image classifier: `'builtin:<name>'` (default `'builtin:shapes-classifier'`) or the
 * path of a .safetensors file with conv1..conv3 and fc weights, and a card `<name>.json` beside it
 * giving `classNames` and `inputRange` (default [-1, 1]).
 */
export async function loadClassifier(source: string = DEFAULT_CLASSIFIER): Promise<ImageClassifier> {
  const path = resolveSource(source);
  const card = readCard(path);
  const file = await openSafetensors(path);
  const weights = new Map<string, { shape: readonly number[]; data: Float64Array }>();
  try {
    for (const name of ['conv1.weight', 'conv1.bias', 'conv2.weight', 'conv2.bias', 'conv3.weight', 'conv3.bias', 'fc.weight', 'fc.bias']) {
      if (!file.tensors.has(name)) throw new ModelError(`${path} is not a classifier of this kind: it has no tensor '${name}'`);
      const t = await file.tensor(name, { dtype: 'f32' });
      try {
        weights.set(name, { shape: t.shape, data: Float64Array.from(t.dataSync<'f32'>()) });
      } finally {
        t.dispose();
      }
    }
  } finally {
    file.close();
  }

  const expectShape = (name: string, expected: readonly number[]) => {
    const got = weights.get(name)!.shape;
    if (got.length !== expected.length || got.some((d, i) => d !== expected[i])) {
      throw new ModelError(`Tensor '${name}' of ${path} has shape [${got.join(', ')}]; expected [${expected.join(', ')}]`);
    }
  };
  const conv = (prefix: string, inChannels: number): Conv3x3 => {
    const outChannels = weights.get(`${prefix}.weight`)!.shape[0] ?? 0;
    expectShape(`${prefix}.weight`, [outChannels, inChannels, 3, 3]);
    expectShape(`${prefix}.bias`, [outChannels]);
    return { inChannels, outChannels, weight: weights.get(`${prefix}.weight`)!.data, bias: weights.get(`${prefix}.bias`)!.data };
  };
  const conv1 = conv('conv1', weights.get('conv1.weight')!.shape[1] ?? 0);
  const conv2 = conv('conv2', conv1.outChannels);
  const conv3 = conv('conv3', conv2.outChannels);
  const classes = weights.get('fc.weight')!.shape[0] ?? 0;
  expectShape('fc.weight', [classes, conv3.outChannels]);
  expectShape('fc.bias', [classes]);

  let classNames = Array.from({ length: classes }, (_, k) => String(k));
  if (card?.classNames !== undefined) {
    const names = card.classNames;
    if (!Array.isArray(names) || names.length !== classes || !names.every((s) => typeof s === 'string')) {
      throw new ModelError(`The card of ${path} must list ${classes} class names (strings) in classNames`);
    }
    classNames = names as string[];
  }
  let inputRange: [number, number] = [-1, 1];
  if (card?.inputRange !== undefined) {
    const r = card.inputRange;
    if (!Array.isArray(r) || r.length !== 2 || !r.every(Number.isFinite) || !(r[0] < r[1])) {
      throw new ModelError(`The card of ${path} has inputRange ${JSON.stringify(r)}; expected [lo, hi] with lo < hi`);
    }
    inputRange = [r[0], r[1]];
  }
  return new ImageClassifier([conv1, conv2, conv3], weights.get('fc.weight')!.data, weights.get('fc.bias')!.data, classNames, inputRange);
}
