// partitionTimesteps (ANT interval clustering) from TS: objectives, a brute-force check on a real
// schedule's SNR, custom costs and argument errors.
import { describe, expect, it } from 'vitest';
import { partitionTimesteps, partitionTimestepsWith, schedules } from '../lib/index.js';

function bruteForce(n: number, k: number, cost: (l: number, r: number) => number): number {
  let best = Infinity;
  const rec = (start: number, left: number, acc: number) => {
    if (left === 1) { best = Math.min(best, acc + cost(start, n - 1)); return; }
    for (let end = start; end <= n - left; end++) rec(end + 1, left - 1, acc + cost(start, end));
  };
  rec(0, k, 0);
  return best;
}
const medianL1 = (v: number[]) => (l: number, r: number) => {
  const c = Math.floor((l + r) / 2);
  let s = 0;
  for (let i = l; i <= r; i++) s += Math.abs(v[i] - v[c]);
  return s;
};

describe('partitionTimesteps', () => {
  it('SNR objective on a discrete VP schedule equals brute force (n = 14, k = 1..5)', async () => {
    const sch = schedules.vpDiscrete({ numTrainTimesteps: 14, betaStart: 0.01, betaEnd: 0.3 });
    const snr = Array.from({ length: 14 }, (_, i) => { const t = (i + 1) / 14; return (sch.alpha(t) / sch.sigma(t)) ** 2; });
    for (let k = 1; k <= 5; k++) {
      const p = await partitionTimesteps({ objective: 'snr', snr }, k);
      expect(p.intervals.length).toBe(k);
      expect(p.intervals[0][0]).toBe(0);
      expect(p.intervals[k - 1][1]).toBe(13);
      expect(p.cost).toBeCloseTo(bruteForce(14, k, medianL1(snr)), 9);
    }
  });
  it('timestep objective splits 1000 steps into near-equal intervals', async () => {
    const p = await partitionTimesteps({ objective: 'timestep', n: 1000 }, 4);
    // An interval of m steps costs floor(m^2 / 4) (L1 around its median): four times 250 and
    // 249 + 249 + 251 + 251 tie at 62500, so the lengths are within one of 250.
    for (const [a, b] of p.intervals) expect(Math.abs(b - a + 1 - 250)).toBeLessThanOrEqual(1);
    expect(p.cost).toBe(62500);
  });
  it('affinity objective keeps tasks with their most similar neighbours', async () => {
    // Two blocks of mutually affine tasks (0..5 and 6..9): k = 2 finds the block boundary.
    const A = Array.from({ length: 10 }, (_, i) => Array.from({ length: 10 }, (_, j) => ((i < 6) === (j < 6) ? 1 : -1)));
    const p = await partitionTimesteps({ objective: 'affinity', affinity: A }, 2);
    expect(p.intervals).toEqual([[0, 5], [6, 9]]);
    expect(p.cost).toBe(-10);
  });
  it('a custom cost function agrees with brute force', async () => {
    const cost = (l: number, r: number) => (r - l + 1) ** 2 + Math.sin(l);
    const p = await partitionTimestepsWith(12, cost, 4);
    expect(p.cost).toBeCloseTo(bruteForce(12, 4, cost), 10);
  });
  it('bad arguments are typed errors naming the argument', async () => {
    await expect(partitionTimesteps({ objective: 'snr', snr: [1, 3, 2] }, 2)).rejects.toThrow(/monotone/);
    await expect(partitionTimesteps({ objective: 'timestep', n: 10 }, 11)).rejects.toThrow(/for k but received 11/);
    await expect(partitionTimesteps({ objective: 'nope' } as never, 2)).rejects.toThrow(/for cost/);
    await expect(partitionTimestepsWith(5, () => NaN, 2)).rejects.toThrow(/cost\(0, 0\)/);
  });
});
