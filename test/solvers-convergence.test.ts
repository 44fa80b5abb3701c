// Measured convergence orders of every deterministic sampler against a high-accuracy reference
// solution of the PF-ODE (test/helpers/convergence.mjs); the same measurement writes the table in
// docs/samplers.md (node scripts/sampler-orders.mjs).
import { describe, expect, it } from 'vitest';
import { ORDER_CASES, measureOrder, mixtureProblem } from './helpers/convergence.mjs';

describe('convergence order on a 3-component Gaussian mixture in 8 dimensions (f64)', () => {
  const problem = mixtureProblem();
  for (const c of ORDER_CASES) {
    it(`${c.label ?? c.name}: order ${c.order} within 0.3`, async () => {
      const r = await measureOrder(problem, c);
      const detail = r.steps.map((n: number, i: number) => `${n}: ${r.errors[i].toExponential(2)}`).join(', ');
      expect(Math.abs(r.measured - c.order), `measured ${r.measured.toFixed(2)} (${detail})`).toBeLessThanOrEqual(0.3);
      // The errors must also fall monotonically (no plateau from a wrong reference or round-off).
      for (let i = 1; i < r.errors.length; i++) expect(r.errors[i]).toBeLessThan(r.errors[i - 1]);
    }, 60_000);
  }
});
