/**
 * Independent references written from the IEEE 754 definitions (not from the native code):
 * decoding and round-to-nearest-even encoding of binary16 and bfloat16, a seeded PRNG, and the
 * normal CDF for goodness-of-fit tests.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f32FromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0];
}

export function bitsFromF32(x: number): number {
  f32[0] = x;
  return u32[0];
}

/** Value of a binary16 bit pattern. */
export function decodeF16(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  if (e === 0) return s * m * 2 ** -24;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export function decodeBf16(b: number): number {
  return f32FromBits((b & 0xffff) << 16);
}

/**
 * Rounds |a| (finite, > 0) to a float format with `mant` stored mantissa bits and minimum normal
 * exponent `emin`, to nearest, ties to even. Returns the rounded value (may exceed the max finite).
 */
function roundToFormat(a: number, mant: number, emin: number): number {
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e -= 1;
  if (2 ** (e + 1) <= a) e += 1;
  const quantum = 2 ** (Math.max(e, emin) - mant);
  const m = a / quantum; // exact: a has <= 24 significant bits and quantum is a power of two
  let r = Math.floor(m);
  const frac = m - r;
  if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r += 1;
  return r * quantum;
}

/** binary16 bits of the f32 value x, rounded to nearest even; NaN -> a quiet NaN with x's sign. */
export function encodeF16(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  if (Number.isNaN(x)) return 0x7e00 | (bitsFromF32(x) >>> 16 & 0x8000);
  const a = Math.abs(x);
  if (a === 0) return sign;
  if (a === Infinity) return sign | 0x7c00;
  const v = roundToFormat(a, 10, -14);
  if (v > 65504) return sign | 0x7c00;
  if (v < 2 ** -14) return sign | (v / 2 ** -24);
  let e = Math.floor(Math.log2(v));
  if (2 ** e > v) e -= 1;
  const m = v / 2 ** (e - 10) - 1024;
  return sign | ((e + 15) << 10) | m;
}

/** bfloat16 bits of the f32 value x, rounded to nearest even. */
export function encodeBf16(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  if (Number.isNaN(x)) return (bitsFromF32(x) >>> 16) | 0x40;
  const a = Math.abs(x);
  if (a === 0) return sign;
  if (a === Infinity) return sign | 0x7f80;
  const v = roundToFormat(a, 7, -126);
  const maxBf16 = (2 - 2 ** -7) * 2 ** 127;
  if (v > maxBf16) return sign | 0x7f80;
  if (v < 2 ** -126) return sign | (v / 2 ** -133);
  let e = Math.floor(Math.log2(v));
  if (2 ** e > v) e -= 1;
  const m = v / 2 ** (e - 7) - 128;
  return sign | ((e + 127) << 7) | m;
}

/** xorshift128+: a small seeded generator for test inputs. */
export function rng(seed: number): () => number {
  let s0 = BigInt(seed) | 1n;
  let s1 = 0x9e3779b97f4a7c15n;
  const mask = (1n << 64n) - 1n;
  return () => {
    let x = s0;
    const y = s1;
    s0 = y;
    x ^= (x << 23n) & mask;
    s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return Number(((s1 + y) & mask) >> 32n) >>> 0;
  };
}

/** erfc with relative error < 1.2e-7 (Chebyshev fit), enough for KS tests on 1e6 samples. */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? r : 2 - r;
}

export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

/** One-sample Kolmogorov-Smirnov statistic of `xs` against the standard normal. */
export function ksStatistic(xs: ArrayLike<number>): number {
  const s = Float64Array.from(xs).sort();
  const n = s.length;
  let d = 0;
  for (let i = 0; i < n; i++) {
    const c = normalCdf(s[i]);
    d = Math.max(d, c - i / n, (i + 1) / n - c);
  }
  return d;
}
