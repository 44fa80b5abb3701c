/**
 * Timestep-level mixture of experts. `partitionTimesteps(cost, k)` is the optimal contiguous interval
 * clustering of "Addressing Negative Transfer in Diffusion Models" (ANT): it splits timesteps 0..n-1
 * into k intervals minimising the summed interval costs, by dynamic programming in O(k n^2) (native,
 * on the thread pool). Objectives: the SNR (or any monotone per-timestep value, e.g. the timestep
 * itself) with the L1 deviation from each interval's median, a task-affinity matrix (maximise each
 * task's affinity to its interval's median task), or your own cost(l, r).
 */
import { addon } from './binding.js';
import { callAsync } from './errors.js';
import { invalidParameter, isInteger } from './validate.js';

export type PartitionCost =
  | { objective: 'snr'; snr: readonly number[] }
  | { objective: 'timestep'; n: number }
  | { objective: 'affinity'; affinity: readonly (readonly number[])[] };

export interface TimestepPartition {
  /** Inclusive [from, to] timestep indices, ascending and contiguous, covering 0..n-1. */
  intervals: [number, number][];
  /** The minimised total cost. */
  cost: number;
}

interface MoeAddon {
  partitionTimesteps(kind: string, data: Float64Array, n: number, k: number): Promise<TimestepPartition>;
}

function finiteArray(name: string, v: unknown): Float64Array {
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw invalidParameter(name, 'non-empty array of finite numbers', v);
  }
  return Float64Array.from(v as number[]);
}

/** The optimal contiguous partition of timesteps into k intervals (ANT's interval clustering). */
export async function partitionTimesteps(cost: PartitionCost, k: number): Promise<TimestepPartition> {
  let kind: string, data: Float64Array, n: number;
  if (cost && typeof cost === 'object' && cost.objective === 'snr') {
    data = finiteArray('cost.snr', cost.snr);
    kind = 'values';
    n = data.length;
  } else if (cost && typeof cost === 'object' && cost.objective === 'timestep') {
    if (!isInteger(cost.n) || cost.n < 1) throw invalidParameter('cost.n', 'positive integer', cost.n);
    n = cost.n;
    data = Float64Array.from({ length: n }, (_, i) => i);
    kind = 'values';
  } else if (cost && typeof cost === 'object' && cost.objective === 'affinity') {
    const rows = cost.affinity;
    if (!Array.isArray(rows) || rows.length === 0) throw invalidParameter('cost.affinity', 'n x n array of numbers', rows);
    n = rows.length;
    data = new Float64Array(n * n);
    rows.forEach((r, i) => {
      const row = finiteArray(`cost.affinity[${i}]`, r);
      if (row.length !== n) throw invalidParameter(`cost.affinity[${i}]`, `${n} numbers`, r);
      data.set(row, i * n);
    });
    kind = 'affinity';
  } else {
    throw invalidParameter('cost', "{ objective: 'snr', snr } | { objective: 'timestep', n } | { objective: 'affinity', affinity }", cost);
  }
  if (!isInteger(k) || k < 1 || k > n) throw invalidParameter('k', `integer in [1, ${n}]`, k);
  return callAsync(() => (addon() as unknown as MoeAddon).partitionTimesteps(kind, data, n, k));
}

/** The same DP for your own interval cost cost(from, to) (evaluated n (n + 1) / 2 times, in JS, first). */
export async function partitionTimestepsWith(n: number, cost: (from: number, to: number) => number, k: number): Promise<TimestepPartition> {
  if (!isInteger(n) || n < 1 || n > 5000) throw invalidParameter('n', 'integer in [1, 5000]', n);
  if (typeof cost !== 'function') throw invalidParameter('cost', 'function (from, to) => number', cost);
  if (!isInteger(k) || k < 1 || k > n) throw invalidParameter('k', `integer in [1, ${n}]`, k);
  const table = new Float64Array(n * n);
  for (let l = 0; l < n; l++) {
    for (let r = l; r < n; r++) {
      const v = cost(l, r);
      if (typeof v !== 'number' || !Number.isFinite(v)) throw invalidParameter(`cost(${l}, ${r})`, 'finite number', v);
      table[l * n + r] = v;
    }
  }
  return callAsync(() => (addon() as unknown as MoeAddon).partitionTimesteps('matrix', table, n, k));
}
