import { describe, expect, it } from 'vitest';
import { ArgumentError, randn } from '../lib/index.js';
import { ksStatistic } from './helpers/reference.js';

describe('randn (Philox4x32-10 + Box-Muller)', () => {
  it('10^6 f64 samples: mean, variance and Kolmogorov-Smirnov against N(0, 1)', async () => {
    const n = 1_000_000;
    const t = await randn([n], { seed: 2024, dtype: 'f64' });
    const x = await t.data<'f64'>();
    let sum = 0, sq = 0;
    for (const v of x) { sum += v; sq += v * v; }
    const mean = sum / n;
    const variance = sq / n - mean * mean;
    // 5 standard errors: mean has sd 1/sqrt(n) = 0.001; the variance estimate sd sqrt(2/n) = 0.0014.
    expect(Math.abs(mean)).toBeLessThan(0.005);
    expect(Math.abs(variance - 1)).toBeLessThan(0.007);
    // KS critical value at alpha = 0.001 is 1.949 / sqrt(n).
    expect(ksStatistic(x)).toBeLessThan(1.949 / Math.sqrt(n));
    // The test can fail: a shifted sample is rejected.
    expect(ksStatistic(x.map((v) => v + 0.01))).toBeGreaterThan(1.949 / Math.sqrt(n));
  });

  it('a sample does not depend on the batch it is drawn in (seed per sample)', async () => {
    const batch = await (await randn([3, 4, 5, 3], { seed: [11, 22, 33] })).data<'f32'>();
    for (let i = 0; i < 3; i++) {
      const alone = await (await randn([1, 4, 5, 3], { seed: [[11, 22, 33][i]] })).data<'f32'>();
      expect(Buffer.from(batch.buffer, i * 60 * 4, 60 * 4).equals(Buffer.from(alone.buffer))).toBe(true);
    }
    // A scalar seed s means seeds s, s+1, ...: sample 2 of seed 10 is sample 0 of seed 12.
    const b = await (await randn([4, 10], { seed: 10 })).data<'f32'>();
    const c = await (await randn([1, 10], { seed: 12 })).data<'f32'>();
    expect(Array.from(b.subarray(20, 30))).toEqual(Array.from(c));
    // ... and wraps around 2^64.
    const w = await (await randn([2, 3], { seed: 2n ** 64n - 1n })).data<'f32'>();
    const w0 = await (await randn([1, 3], { seed: 0 })).data<'f32'>();
    expect(Array.from(w.subarray(3))).toEqual(Array.from(w0));
  });

  it('is reproducible, stream- and seed-sensitive, and f32/f16/bf16 are roundings of f64', async () => {
    const a = await (await randn([2, 1000], { seed: 7 })).data<'f32'>();
    const b = await (await randn([2, 1000], { seed: 7 })).data<'f32'>();
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    const s1 = await (await randn([2, 1000], { seed: 7, stream: 1 })).data<'f32'>();
    expect(Buffer.from(a.buffer).equals(Buffer.from(s1.buffer))).toBe(false);
    const big = await (await randn([1, 8], { seed: 2n ** 64n - 1n })).data<'f32'>();
    expect(big.every(Number.isFinite)).toBe(true);
    const d = await (await randn([2, 1000], { seed: 7, dtype: 'f64' })).data<'f64'>();
    for (let i = 0; i < d.length; i++) expect(a[i]).toBe(Math.fround(d[i]));
  });

  it('empty tensors need no seeds, however large the batch', async () => {
    const t0 = performance.now();
    const e = await randn([2 ** 40, 0], { seed: 1 });
    expect(e.shape).toEqual([2 ** 40, 0]);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('validates its arguments', async () => {
    await expect(randn([2, 3], { seed: [1] })).rejects.toThrow('Expected array of 2 seeds (one per sample) for seed but received [1]');
    await expect(randn([2], { seed: -1 })).rejects.toBeInstanceOf(ArgumentError);
    await expect(randn([2], { dtype: 'i32' })).rejects.toThrow(/for dtype/);
  });
});
