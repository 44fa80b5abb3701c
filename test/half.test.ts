// f16 / bf16 conversions against references written from the IEEE definitions (test/helpers),
// exhaustively for every 16-bit pattern and on > 1e6 random f32 values, on both CPU ISA paths.
import { afterAll, describe, expect, it } from 'vitest';
import { Tensor } from '../lib/index.js';
import { addon, loadBinding } from '../lib/binding.js';
import { bitsFromF32, decodeBf16, decodeF16, encodeBf16, encodeF16, f32FromBits, rng } from './helpers/reference.js';

loadBinding();
const isas = ['baseline', ...(addon().nativeInfo().cpu.features.avx2 ? ['avx2'] : [])];
afterAll(() => addon().setCpuIsa(isas[isas.length - 1]));

async function castBits(src: Uint16Array | Float32Array, from: 'f16' | 'bf16' | 'f32', to: 'f16' | 'bf16' | 'f32') {
  const t = Tensor.from(src as never, { dtype: from });
  const c = await t.cast(to);
  const out = await c.data();
  t.dispose();
  c.dispose();
  return out;
}

/** Random f32 inputs: raw bit patterns, plus values dense around the f16/bf16 rounding cases. */
function randomInputs(n: number): Float32Array {
  const next = rng(12345);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = next();
    switch (i % 4) {
      case 0: out[i] = f32FromBits(r); break; // any pattern (NaN, inf, subnormal included)
      case 1: out[i] = f32FromBits((r & 0x8fffffff) | 0x30000000); break; // |x| in f16's range and below
      case 2: { // exact halfway cases and neighbours for f16 (13 dropped bits) and bf16 (16 dropped)
        const base = (r & 0xffffe000) >>> 0;
        const tail = [0x1000, 0x0fff, 0x1001, 0x8000, 0x7fff, 0x8001][i % 6];
        out[i] = f32FromBits((base | tail) >>> 0);
        break;
      }
      default: out[i] = ((r / 2 ** 32) - 0.5) * [65520, 65504, 2 ** -14, 2 ** -24, 1][i % 5] * 2.1;
    }
  }
  return out;
}

describe.each(isas)('f16/bf16 conversions (%s path)', (isa) => {
  it('all 65536 f16 patterns decode exactly and round-trip', async () => {
    addon().setCpuIsa(isa);
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const f = await castBits(all, 'f16', 'f32') as Float32Array;
    for (let h = 0; h < 65536; h++) {
      const want = decodeF16(h);
      if (Number.isNaN(want)) expect(Number.isNaN(f[h])).toBe(true);
      else if (f[h] !== want || Object.is(f[h], -0) !== Object.is(want, -0)) expect.fail(`f16 ${h.toString(16)} -> ${f[h]}, want ${want}`);
    }
    const back = await castBits(f, 'f32', 'f16') as Uint16Array;
    let bad = 0;
    for (let h = 0; h < 65536; h++) {
      const isNaN16 = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (isNaN16) {
        // NaN stays NaN, keeps its sign, comes back quiet with its top payload bits.
        if ((back[h] & 0x7c00) !== 0x7c00 || (back[h] & 0x3ff) === 0 || (back[h] & 0x8000) !== (h & 0x8000) || !(back[h] & 0x200)) bad++;
      } else if (back[h] !== h) bad++;
    }
    expect(bad).toBe(0);
  });

  it('all 65536 bf16 patterns decode exactly and round-trip', async () => {
    addon().setCpuIsa(isa);
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const f = await castBits(all, 'bf16', 'f32') as Float32Array;
    let bad = 0;
    for (let b = 0; b < 65536; b++) {
      const want = decodeBf16(b);
      if (Number.isNaN(want) ? !Number.isNaN(f[b]) : bitsFromF32(f[b]) !== (b << 16) >>> 0) bad++;
    }
    expect(bad).toBe(0);
    const back = await castBits(f, 'f32', 'bf16') as Uint16Array;
    for (let b = 0; b < 65536; b++) {
      const isNaN16 = (b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0;
      if (isNaN16) { if ((back[b] & 0x7f80) !== 0x7f80 || (back[b] & 0x7f) === 0 || !(back[b] & 0x40)) bad++; }
      else if (back[b] !== b) bad++;
    }
    expect(bad).toBe(0);
  });

  it('1.2e6 random f32 values round to nearest even exactly like the reference', async () => {
    addon().setCpuIsa(isa);
    const xs = randomInputs(1_200_000);
    const h = await castBits(xs, 'f32', 'f16') as Uint16Array;
    const b = await castBits(xs, 'f32', 'bf16') as Uint16Array;
    let badH = 0, badB = 0, nans = 0;
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i];
      if (Number.isNaN(x)) {
        nans++;
        const sign = (bitsFromF32(x) >>> 16) & 0x8000;
        if ((h[i] & 0x7e00) !== 0x7e00 || (h[i] & 0x8000) !== sign) badH++;
        if ((b[i] & 0x7fc0) !== 0x7fc0 || (b[i] & 0x8000) !== sign) badB++;
        continue;
      }
      if (h[i] !== encodeF16(x)) { if (badH++ < 5) console.error(`f16 of ${x}: ${h[i].toString(16)} want ${encodeF16(x).toString(16)}`); }
      if (b[i] !== encodeBf16(x)) { if (badB++ < 5) console.error(`bf16 of ${x}: ${b[i].toString(16)} want ${encodeBf16(x).toString(16)}`); }
    }
    expect(nans).toBeGreaterThan(100);
    expect(badH).toBe(0);
    expect(badB).toBe(0);
  });
});

describe('casts between other dtypes', () => {
  it('float -> int truncates toward zero and saturates; NaN -> 0; bool is x != 0', async () => {
    const x = Float64Array.from([1.9, -1.9, 300, -300, NaN, 0, 2 ** 40, -(2 ** 40), 0.5]);
    const t = Tensor.from(x);
    expect(Array.from(await (await t.cast('i32')).data())).toEqual([1, -1, 300, -300, 0, 0, 2147483647, -2147483648, 0]);
    expect(Array.from(await (await t.cast('u8')).data())).toEqual([1, 0, 255, 0, 0, 0, 255, 0, 0]);
    expect(Array.from(await (await t.cast('bool')).data())).toEqual([1, 1, 1, 1, 1, 0, 1, 1, 1]);
    const big = Tensor.from(BigInt64Array.from([2n ** 62n + 1n, -5n]));
    expect(Array.from(await (await big.cast('i32')).data())).toEqual([2147483647, -5]);
    expect(Array.from(await (await big.cast('f64')).data())).toEqual([2 ** 62, -5]);
  });
});
