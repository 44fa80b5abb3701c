// Momentum samplers (Wizadwongsa & Suwajanakorn 2023): on a guidance-amplified analytic problem
// plain PLMS (4th-order Adams-Bashforth) diverges at low step counts, and heavy-ball / GHVB momentum
// suppress it; with beta = 1 the momentum samplers are their base samplers bit for bit.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../lib/index.js';
import { guidedError, guidedProblem, guidedReference, runGuided, type GuidedProblem } from './helpers/momentum.mjs';

describe('momentum against divergence (CFG scale 15, 3-component mixture in 4-D)', () => {
  let p: GuidedProblem;
  let ref: Tensor;
  beforeAll(async () => {
    p = guidedProblem(15);
    ref = await guidedReference(p);
  });

  for (const steps of [4, 5, 6, 8]) {
    it(`${steps} steps: PLMS diverges, heavy ball suppresses it`, async () => {
      const plms = await guidedError(p, ref, 'ipndm', steps);
      const hb = await guidedError(p, ref, 'plms-hb', steps, { beta: 0.8 });
      // The data live within |x| < 4; PLMS lands an order of magnitude outside.
      expect(plms.maxAbs).toBeGreaterThan(40);
      expect(hb.maxAbs).toBeLessThan(6);
      expect(hb.rmse).toBeLessThan(plms.rmse / 10);
    });
  }

  it('GHVB 2.5 stays bounded from 5 steps on', async () => {
    for (const steps of [5, 6, 8]) {
      const g = await guidedError(p, ref, 'ghvb', steps, { order: 2.5 });
      const plms = await guidedError(p, ref, 'ipndm', steps);
      expect(g.maxAbs).toBeLessThan(6);
      expect(g.rmse).toBeLessThan(plms.rmse / 10);
    }
  });

  it('DPM-Solver++(2M) + heavy ball (beta 0.8) lowers the error at scale 40, 4-8 steps', async () => {
    const p40 = guidedProblem(40);
    const ref40 = await guidedReference(p40);
    for (const steps of [4, 5, 6, 8]) {
      const base = await guidedError(p40, ref40, 'dpmpp-2m', steps);
      const hb = await guidedError(p40, ref40, 'dpmpp-hb', steps, { beta: 0.8 });
      expect(hb.rmse).toBeLessThan(base.rmse);
    }
  });
});

describe('beta = 1 is the base sampler, bit for bit', () => {
  const p = guidedProblem(3);
  const same = async (a: [string, Record<string, number>], b: [string, Record<string, number>]) => {
    const x = await runGuided(p, a[0], 9, a[1]);
    const y = await runGuided(p, b[0], 9, b[1]);
    expect(Array.from(x.dataSync() as Float64Array)).toEqual(Array.from(y.dataSync() as Float64Array));
  };
  it('plms-hb (beta 1) == ipndm', () => same(['plms-hb', { beta: 1 }], ['ipndm', {}]));
  it('ghvb (integer order 4) == ipndm', () => same(['ghvb', { order: 4 }], ['ipndm', {}]));
  it('dpmpp-hb (beta 1) == dpmpp-2m', () => same(['dpmpp-hb', { beta: 1 }], ['dpmpp-2m', {}]));
  it('and beta < 1 is not', async () => {
    const x = await runGuided(p, 'plms-hb', 9, { beta: 0.8 });
    const y = await runGuided(p, 'ipndm', 9);
    expect(Array.from(x.dataSync() as Float64Array)).not.toEqual(Array.from(y.dataSync() as Float64Array));
  });
});
