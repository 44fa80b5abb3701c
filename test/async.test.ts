// Native work must not block the event loop: timers keep firing while long native calls run.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSafetensors, randn, saveSafetensors, Tensor } from '../lib/index.js';

const dir = mkdtempSync(join(tmpdir(), 'nd-async-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function countTicksDuring<T>(work: () => Promise<T>): Promise<{ ticks: number; ms: number; maxGap: number }> {
  let ticks = 0, maxGap = 0, last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    ticks++;
  }, 1);
  const t0 = performance.now();
  await work();
  const ms = performance.now() - t0;
  clearInterval(timer);
  return { ticks, ms, maxGap };
}

describe('the event loop keeps ticking', () => {
  it('during randn, cast, device copies and safetensors I/O of 2.5e7 elements', async () => {
    const n = 25_000_000;
    let x: Tensor | undefined;
    const r1 = await countTicksDuring(async () => { x = await randn([1, n], { seed: 1 }); });
    const r2 = await countTicksDuring(async () => (await x!.cast('bf16')).dispose());
    const r3 = await countTicksDuring(async () => saveSafetensors(join(dir, 'big.safetensors'), { x: x! }));
    const r4 = await countTicksDuring(async () => { for (const t of Object.values(await loadSafetensors(join(dir, 'big.safetensors'), { dtype: 'f64' }))) t.dispose(); });
    for (const r of [r1, r2, r3, r4]) {
      // The call takes tens of milliseconds or more; the 1 ms timer must fire throughout it.
      expect(r.ticks).toBeGreaterThanOrEqual(3);
      expect(r.maxGap).toBeLessThan(Math.max(50, r.ms / 2));
    }
    x!.dispose();
  });
});
