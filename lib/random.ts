/**
 * Seeded normal noise from the counter-based Philox4x32-10 generator (see docs/design.md for the
 * exact counter layout and normal transform). The values depend only on (seed, stream, position
 * within the sample): the same on CPU and CUDA, and the same whatever batch a sample is part of.
 */
import { addon } from './binding.js';
import { resolveDevice } from './device.js';
import { type DType, parseDType } from './dtype.js';
import { callAsync } from './errors.js';
import { Tensor } from './tensor.js';
import { assertObject, assertShape, invalidParameter } from './validate.js';

export type Seed = number | bigint;

export interface RandnOptions {
  /**
   * One seed per sample along dim 0, or one seed s for the whole batch, meaning seeds
   * s, s+1, ..., s+N-1 (mod 2^64). Default 0.
   */
  seed?: Seed | readonly Seed[];
  dtype?: DType;
  device?: string;
  /** Independent noise streams for the same seed (0 = initial noise; samplers use others). */
  stream?: Seed;
}

const U64 = (1n << 64n) - 1n;

function toU64(name: string, v: unknown): bigint {
  if (typeof v === 'bigint' && v >= 0n && v <= U64) return v;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  throw invalidParameter(name, 'integer in [0, 2^64)', v);
}

/** Per-sample seeds, or one base seed s standing for s, s+1, ... (expanded natively). */
export function seedsFor(shape: readonly number[], seed: Seed | readonly Seed[] | undefined): { seeds: BigUint64Array; consecutive: boolean } {
  const batch = shape.length === 0 ? 1 : shape[0];
  if (Array.isArray(seed)) {
    if (seed.length !== batch) throw invalidParameter('seed', `array of ${batch} seeds (one per sample)`, seed);
    return { seeds: BigUint64Array.from(seed.map((s, i) => toU64(`seed[${i}]`, s))), consecutive: false };
  }
  return { seeds: BigUint64Array.of(toU64('seed', seed ?? 0)), consecutive: true };
}

/** A tensor of standard normal samples (dtype f32, f64, f16 or bf16). */
export async function randn(shape: readonly number[], options: RandnOptions = {}): Promise<Tensor> {
  assertShape('shape', shape);
  assertObject('options', options as unknown);
  const dtype = parseDType('dtype', options.dtype ?? 'f32');
  if (!['f32', 'f64', 'f16', 'bf16'].includes(dtype)) throw invalidParameter('dtype', "one of 'f32', 'f64', 'f16', 'bf16'", dtype);
  const device = resolveDevice('device', options.device ?? 'cpu');
  const { seeds, consecutive } = seedsFor(shape, options.seed);
  const stream = toU64('stream', options.stream ?? 0);
  return new Tensor(await callAsync(() => addon().randn([...shape], dtype, device, seeds, stream, consecutive)));
}
