/**
 * Images in JavaScript memory and PNG encoding.
 *
 * An ImageBatch holds N RGB images as one Float32Array [N, 3, H, W] with values in [0, 1]: the
 * layout models produce, so turning model output into images is one pass, and nothing native is
 * held (no dispose()). 8-bit values are `Math.round(255 * clamp(v, 0, 1))`: halves round up and NaN
 * becomes 0. PNG files are written here over node:zlib's deflate (docs/design.md, "PNG encoding").
 */
import { deflateSync } from 'node:zlib';
import { ArgumentError, ShapeError } from './errors.js';
import { Tensor } from './tensor.js';
import {
  assertIntegerInRange, assertNonNegativeInteger, assertObject, assertPositiveInteger, invalidParameter, isInteger,
} from './validate.js';

export interface ImageGridOptions {
  /** Images per row (default ceil(sqrt(N)); more than N is treated as N). */
  columns?: number;
  /** Pixels of background between images and around the border (default 2; not scaled). */
  padding?: number;
  /** Background colour as 8-bit [r, g, b], each an integer in 0..255 (default white). */
  background?: readonly [number, number, number];
  /** Integer nearest-neighbour upscale of every image (default 1). */
  scale?: number;
}

/** NaN maps to 0, so a diverged sample encodes as black rather than failing. */
function clamp01(v: number): number {
  return v > 0 ? (v < 1 ? v : 1) : 0;
}

// A Float32Array can hold more, but a larger mosaic is a mistake, not a picture.
const MAX_GRID_ELEMENTS = 2 ** 31 - 1;

export class ImageBatch implements Iterable<ImageBatch> {
  /** The pixels, [count, 3, height, width] in [0, 1]. Writes are allowed; encoding clamps again. */
  readonly data: Float32Array;
  readonly count: number;
  readonly height: number;
  readonly width: number;

  private constructor(data: Float32Array, count: number, height: number, width: number) {
    this.data = data;
    this.count = count;
    this.height = height;
    this.width = width;
  }

  /**
   * Images from a model's output [N, C, H, W] (C = 1 is gray, replicated to RGB): `range` is the
   * model's value range, mapped linearly to [0, 1] and clamped. The data is copied.
   */
  static fromModelOutput(
    data: Float32Array,
    shape: readonly [number, number, number, number],
    range: readonly [number, number] = [-1, 1],
  ): ImageBatch {
    if (!(data instanceof Float32Array)) throw invalidParameter('data', 'Float32Array', data);
    if (!Array.isArray(shape) || shape.length !== 4 || !shape.every((d) => isInteger(d) && d > 0)) {
      throw invalidParameter('shape', '[N, C, H, W] of positive integers', shape);
    }
    const [n, c, h, w] = shape;
    if (c !== 1 && c !== 3) throw invalidParameter('shape[1] (channels)', '1 or 3', c);
    if (data.length !== n * c * h * w) {
      throw new ShapeError(`Data has ${data.length} elements but shape [${shape.join(', ')}] needs ${n * c * h * w}`);
    }
    if (!Array.isArray(range) || range.length !== 2 || !range.every(Number.isFinite) || !(range[0] < range[1])) {
      throw invalidParameter('range', '[lo, hi] of finite numbers with lo < hi', range);
    }
    const [lo, hi] = range;
    const span = hi - lo;
    const plane = h * w;
    const out = new Float32Array(n * 3 * plane);
    for (let i = 0; i < n; i++) {
      for (let ch = 0; ch < 3; ch++) {
        const src = (i * c + (c === 1 ? 0 : ch)) * plane;
        const dst = (i * 3 + ch) * plane;
        for (let p = 0; p < plane; p++) out[dst + p] = clamp01((data[src + p] - lo) / span);
      }
    }
    return new ImageBatch(out, n, h, w);
  }

  /** Images from an f32 tensor [N, C, H, W] (read on the calling thread), as fromModelOutput. */
  static fromTensor(tensor: Tensor, range: readonly [number, number] = [-1, 1]): ImageBatch {
    if (!(tensor instanceof Tensor)) throw invalidParameter('tensor', 'Tensor', tensor);
    if (tensor.dtype !== 'f32') throw invalidParameter('tensor.dtype', "'f32'", tensor.dtype);
    if (tensor.shape.length !== 4) throw new ShapeError(`Expected a tensor [N, C, H, W] but its shape is [${tensor.shape.join(', ')}]`);
    const [n, c, h, w] = tensor.shape;
    return ImageBatch.fromModelOutput(tensor.dataSync<'f32'>(), [n, c, h, w], range);
  }

  private checkIndex(index: unknown): asserts index is number {
    assertIntegerInRange('index', index, 0, this.count - 1);
  }

  /** Image `index` as interleaved 8-bit RGB, H * W * 3 bytes (row-major, top row first). */
  rgb8(index = 0): Uint8Array {
    this.checkIndex(index);
    const plane = this.height * this.width;
    const base = index * 3 * plane;
    const out = new Uint8Array(plane * 3);
    for (let ch = 0; ch < 3; ch++) {
      const src = base + ch * plane;
      for (let p = 0; p < plane; p++) out[p * 3 + ch] = Math.round(255 * clamp01(this.data[src + p]));
    }
    return out;
  }

  /** Image `index` as an 8-bit RGB PNG file. */
  toPNG(index = 0): Buffer {
    return encodePNG(this.rgb8(index), this.width, this.height, 3);
  }

  /** Every image as a PNG file. */
  toPNGs(): Buffer[] {
    return Array.from({ length: this.count }, (_, i) => this.toPNG(i));
  }

  /** All images tiled row by row into one image (a batch of count 1). */
  grid(options: ImageGridOptions = {}): ImageBatch {
    assertObject('options', options as unknown);
    const columns = options.columns ?? Math.ceil(Math.sqrt(this.count));
    assertPositiveInteger('columns', columns);
    const padding = options.padding ?? 2;
    assertNonNegativeInteger('padding', padding);
    const scale = options.scale ?? 1;
    assertPositiveInteger('scale', scale);
    const background = options.background ?? [255, 255, 255];
    if (!Array.isArray(background) || background.length !== 3 || !background.every((v) => isInteger(v) && v >= 0 && v <= 255)) {
      throw invalidParameter('background', '[r, g, b] of integers in 0..255', background);
    }

    const cols = Math.min(columns, this.count);
    const rows = Math.ceil(this.count / cols);
    const cellW = this.width * scale;
    const cellH = this.height * scale;
    const outW = cols * (cellW + padding) + padding;
    const outH = rows * (cellH + padding) + padding;
    if (outW * outH * 3 > MAX_GRID_ELEMENTS) {
      throw new ArgumentError(`The grid would be ${outW}x${outH} pixels, more than ${MAX_GRID_ELEMENTS} values; use a smaller scale or fewer images`);
    }
    const outPlane = outW * outH;
    const out = new Float32Array(3 * outPlane);
    for (let ch = 0; ch < 3; ch++) out.fill(background[ch] / 255, ch * outPlane, (ch + 1) * outPlane);

    const plane = this.height * this.width;
    for (let k = 0; k < this.count; k++) {
      const x0 = padding + (k % cols) * (cellW + padding);
      const y0 = padding + Math.floor(k / cols) * (cellH + padding);
      for (let ch = 0; ch < 3; ch++) {
        const src = (k * 3 + ch) * plane;
        const dst = ch * outPlane;
        for (let y = 0; y < cellH; y++) {
          const srcRow = src + Math.floor(y / scale) * this.width;
          const dstRow = dst + (y0 + y) * outW + x0;
          for (let x = 0; x < cellW; x++) out[dstRow + x] = this.data[srcRow + Math.floor(x / scale)];
        }
      }
    }
    return new ImageBatch(out, 1, outH, outW);
  }

  /** A native f32 tensor [N, 3, H, W] holding a copy of the pixels (values in [0, 1]); dispose it. */
  toTensor(): Tensor {
    return Tensor.from(this.data, { shape: [this.count, 3, this.height, this.width] });
  }

  /** Image `index` as a batch of one (a copy). */
  at(index: number): ImageBatch {
    this.checkIndex(index);
    const size = 3 * this.height * this.width;
    return new ImageBatch(this.data.slice(index * size, (index + 1) * size), 1, this.height, this.width);
  }

  *[Symbol.iterator](): Iterator<ImageBatch> {
    for (let i = 0; i < this.count; i++) yield this.at(i);
  }

  toString(): string {
    return `ImageBatch(count=${this.count}, width=${this.width}, height=${this.height})`;
  }
}

// ---------------------------------------------------------------------------------------------
// PNG (ISO/IEC 15948): signature, IHDR, IDAT (zlib stream of filtered rows), IEND.
// ---------------------------------------------------------------------------------------------

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const MAX_PNG_DIMENSION = 2 ** 31 - 1;
// The format caps a chunk at 2^31 - 1 bytes; a longer zlib stream continues in further IDATs.
const MAX_CHUNK_BYTES = 2 ** 31 - 1;

// node 20's zlib has no crc32 (added in 22.2), so the reflected 0xEDB88320 table is built here.
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

function paethPredictor(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

/**
 * Each row gets the filter (None, Sub, Up, Average, Paeth) whose output has the smallest sum of
 * absolute values as signed bytes: libpng's heuristic, which usually compresses best for
 * photographs and gradients and costs one pass per filter.
 */
function filterRows(pixels: Uint8Array | Uint8ClampedArray, width: number, height: number, bpp: number): Uint8Array {
  const stride = width * bpp;
  const out = new Uint8Array(height * (stride + 1));
  const candidates = Array.from({ length: 5 }, () => new Uint8Array(stride));
  const zeroRow = new Uint8Array(stride);
  const costs = new Float64Array(5);
  for (let y = 0; y < height; y++) {
    const row = pixels.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? pixels.subarray((y - 1) * stride, y * stride) : zeroRow;
    const [none, sub, up, avg, paeth] = candidates;
    costs.fill(0);
    for (let i = 0; i < stride; i++) {
      const x = row[i];
      const a = i >= bpp ? row[i - bpp] : 0;
      const b = prev[i];
      const c = i >= bpp ? prev[i - bpp] : 0;
      none[i] = x;
      sub[i] = (x - a) & 0xff;
      up[i] = (x - b) & 0xff;
      avg[i] = (x - ((a + b) >> 1)) & 0xff;
      paeth[i] = (x - paethPredictor(a, b, c)) & 0xff;
      costs[0] += none[i] < 128 ? none[i] : 256 - none[i];
      costs[1] += sub[i] < 128 ? sub[i] : 256 - sub[i];
      costs[2] += up[i] < 128 ? up[i] : 256 - up[i];
      costs[3] += avg[i] < 128 ? avg[i] : 256 - avg[i];
      costs[4] += paeth[i] < 128 ? paeth[i] : 256 - paeth[i];
    }
    let best = 0;
    for (let f = 1; f < 5; f++) if (costs[f] < costs[best]) best = f;
    const o = y * (stride + 1);
    out[o] = best;
    out.set(candidates[best], o + 1);
  }
  return out;
}

/**
 * An 8-bit PNG of interleaved pixels, row-major from the top: RGB (`channels` 3, colour type 2) or
 * RGBA (4, colour type 6, straight alpha). Deflated at level 9, one filter chosen per row.
 */
export function encodePNG(rgb: Uint8Array | Uint8ClampedArray, width: number, height: number, channels: 3 | 4 = 3): Buffer {
  if (!(rgb instanceof Uint8Array) && !(rgb instanceof Uint8ClampedArray)) throw invalidParameter('rgb', 'Uint8Array', rgb);
  assertIntegerInRange('width', width, 1, MAX_PNG_DIMENSION);
  assertIntegerInRange('height', height, 1, MAX_PNG_DIMENSION);
  if (channels !== 3 && channels !== 4) throw invalidParameter('channels', '3 or 4', channels);
  if (rgb.length !== width * height * channels) {
    throw new ShapeError(`Pixel data has ${rgb.length} bytes but ${width}x${height}x${channels} needs ${width * height * channels}`);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = channels === 3 ? 2 : 6; // colour type: truecolour, truecolour with alpha
  header[10] = 0; // compression: deflate
  header[11] = 0; // filter method: adaptive (the five per-row filters)
  header[12] = 0; // no interlace
  const compressed = deflateSync(filterRows(rgb, width, height, channels), { level: 9 });
  const parts = [PNG_SIGNATURE, chunk('IHDR', header)];
  for (let o = 0; o < compressed.length; o += MAX_CHUNK_BYTES) parts.push(chunk('IDAT', compressed.subarray(o, o + MAX_CHUNK_BYTES)));
  parts.push(chunk('IEND', new Uint8Array(0)));
  return Buffer.concat(parts);
}
