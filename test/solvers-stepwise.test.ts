// The step-wise API (JS drives the loop: for (const t of s.timesteps) x = s.step(x, model(x, t), t))
// and the whole-loop API (sample() with a native denoiser: no JS per step) run the same native state
// machine, so for every sampler they must give bit-identical results, stochastic ones included (same
// per-sample seeds, same noise streams).
import { describe, expect, it } from 'vitest';
import { ArgumentError, DTypeError, DeviceError, Tensor, analytic, backendInfo, createSampler, listSamplers, randn, sample, schedules, type Schedule } from '../lib/index.js';

const dim = 6, batch = 3;
const den = analytic.gaussianMixture({
  means: [[1, 0, -1, 0.5, 2, -0.3], [-1.5, 1, 0.2, 0, -0.5, 1]],
  stds: [[0.3, 0.5, 0.4, 0.6, 0.2, 0.5], [0.6, 0.2, 0.3, 0.4, 0.5, 0.3]],
  weights: [0.6, 0.4],
});

function setupFor(name: string): { schedule: Schedule; skip: 'logSNR' | 'time-uniform' | 'karras'; tEnd?: number; options?: Record<string, number | boolean | string>; conditioned?: boolean } {
  if (name === 'mrs') return { schedule: schedules.meanReverting(), skip: 'logSNR', conditioned: true, options: { solver: 'sde' } };
  if (name === 'resshift') return { schedule: schedules.resshift(), skip: 'time-uniform', tEnd: 0, conditioned: true };
  if (name === 'brownian-bridge') return { schedule: schedules.brownianBridge(), skip: 'time-uniform', tEnd: 0, conditioned: true };
  if (name === 'pfgmpp') return { schedule: schedules.pfgmpp({ augmentedDim: 64 }), skip: 'karras', options: { churn: 10 } };
  if (name.startsWith('flow') || name === 'interpolant-sde') return { schedule: schedules.flow({ shift: 3 }), skip: 'time-uniform', tEnd: 1e-3 };
  if (name === 'heun') return { schedule: schedules.ve(), skip: 'karras', options: { churn: 20 } };
  return { schedule: schedules.vpDiscrete({ betaSchedule: 'scaled-linear' }), skip: 'logSNR' };
}

describe('step-wise API == whole-loop API, bit for bit', () => {
  const names = listSamplers().map((s) => s.name);
  it('covers every sampler', () => expect(names.length).toBeGreaterThanOrEqual(30));
  for (const name of names) {
    it(name, async () => {
      const cfg = setupFor(name);
      const inverse = name.endsWith('-inverse');
      const condition = cfg.conditioned ? await randn([batch, dim], { seed: 99, dtype: 'f64' }) : undefined;
      const common = {
        schedule: cfg.schedule, sampler: name, steps: 7, skip: cfg.skip, tEnd: cfg.tEnd, dtype: 'f64' as const, seed: [5, 6, 7],
        options: cfg.options, condition,
      };
      const noise = await randn([batch, dim], { seed: 1, dtype: 'f64' });
      // Inversion maps data to noise: start from a clean-ish point instead.
      const whole = inverse
        ? await sample({ ...common, denoiser: den, xStart: noise })
        : await sample({ ...common, denoiser: den, noise });

      const s = createSampler({ ...common, shape: [batch, dim], prediction: 'x0' });
      let x = inverse ? s.start(noise) : s.initialState(noise);
      let evaluations = 0;
      const c = condition?.dataSync() as Float64Array | undefined;
      for (const t of s.timesteps) {
        // Analytic denoisers model the unconditioned data: give them x~ = x - (1 - alpha) c.
        let input = x;
        if (c) {
          const k = 1 - cfg.schedule.alpha(t);
          input = Tensor.from((x.dataSync() as Float64Array).map((v, i) => v - k * c[i]), { shape: [batch, dim] });
        }
        const m = await den.denoise(input, t, cfg.schedule);
        x = s.step(x, m, t);
        evaluations++;
      }
      expect(s.done).toBe(true);
      expect(s.evaluations).toBe(evaluations);
      expect(Array.from(x.dataSync() as Float64Array)).toEqual(Array.from(whole.dataSync() as Float64Array));
      expect((x.dataSync() as Float64Array).every(Number.isFinite)).toBe(true);
    });
  }
});

describe('where the sampler keeps its state (device)', () => {
  const schedule = schedules.vpDiscrete();
  it('defaults to the CPU and checks the tensors it is given against it', async () => {
    const s = createSampler({ sampler: 'dpmpp-2m', schedule, shape: [2, 4], prediction: 'eps' });
    expect(s.device).toBe('cpu');
    expect(createSampler({ sampler: 'ddim', schedule, shape: [2, 4], prediction: 'eps', device: 'cpu' }).device).toBe('cpu');
    const noise = await randn([2, 4], { seed: 3 });
    expect(() => s.initialState(noise)).not.toThrow();
  });
  it('rejects devices that hold no sampler state, and f64 on a GPU', () => {
    const base = { sampler: 'ddim', schedule, shape: [1, 4], prediction: 'eps' as const };
    expect(() => createSampler({ ...base, device: 'gpu' })).toThrow(ArgumentError);
    expect(() => createSampler({ ...base, device: 'cpu:1' })).toThrow(/device/);
    if (backendInfo().backend === 'cuda') {
      expect(() => createSampler({ ...base, device: 'cuda', dtype: 'f64' })).toThrow(DTypeError);
    }
  });
  it.skipIf(backendInfo().backend === 'cuda')('without a GPU, a CUDA sampler is a DeviceError that says why', () => {
    const base = { sampler: 'ddim', schedule, shape: [1, 4], prediction: 'eps' as const };
    let e: unknown;
    try { createSampler({ ...base, device: 'cuda:0' }); } catch (err) { e = err; }
    expect(e).toBeInstanceOf(DeviceError);
    expect((e as DeviceError).code).toBe('ERR_ND_DEVICE');
    expect((e as Error).message).toMatch(/cuda:0/);
  });
});
