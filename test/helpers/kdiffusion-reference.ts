/**
 * An independent double-precision reference of k-diffusion's samplers (crowsonkb/k-diffusion,
 * k_diffusion/sampling.py: sample_euler, sample_euler_ancestral, sample_heun, sample_dpm_2,
 * sample_dpm_2_ancestral, sample_lms, sample_dpmpp_2s_ancestral, sample_dpmpp_sde, sample_dpmpp_2m,
 * sample_dpmpp_2m_sde, sample_dpmpp_3m_sde), transcribed line by line from the Python in
 * k-diffusion's own coordinates: x = x0 + sigma eps, the model returns denoised = E[x0 | x], and
 * `sigmas` is the whole grid (k-diffusion's `sigmas` tensor, appended zero included or not).
 * The version transcribed is k-diffusion's current one: get_ancestral_step takes eta and caps sigma_up
 * at sigma_to, dpm_2 takes its midpoint in log sigma (early releases used a rho = 3 Karras midpoint)
 * and has an Euler branch for sigma_next == 0, and the ancestral samplers call their noise sampler
 * only when sigma_next > 0.
 *
 * Plain numbers and Float64Array only: nothing here calls the engine, so agreement with the native
 * samplers is evidence, not a tautology.
 *
 * Noise: k-diffusion draws one standard normal tensor per call of noise_sampler / randn_like. The
 * reference numbers those calls 1, 2, 3, ... in the order k-diffusion makes them and asks `noise(k)`
 * for the k-th, so the caller can feed it exactly the draws another implementation made (and the
 * numbering itself is part of what a comparison checks). Calls that k-diffusion guards (`if
 * sigmas[i + 1] > 0`, `if eta`, the sigma_down == 0 branch of dpm_2_ancestral) are not made, so they
 * consume no number.
 */

import { type DiagonalGmm, gmmPosteriorMean } from './dpm-solver-reference.js';

export type Vec = Float64Array;

/** denoised = E[x0 | x] at noise level sigma, for a batch of rows. */
export type Denoiser = (x: Vec, sigma: number) => Vec;

/** The k-th standard normal draw of the run (k = 1, 2, 3, ...), the same length as x. */
export type NoiseSource = (k: number) => Vec;

/** A Gaussian mixture with diagonal covariances: component k is N(means[k], diag(stds[k]^2)). */
export type { DiagonalGmm };

/**
 * The exact posterior mean of a diagonal Gaussian mixture under x = x0 + sigma eps (VE / EDM): the
 * shared reference posterior (test/helpers/dpm-solver-reference.ts) at alpha = 1, sigma = t.
 */
export function gmmDenoiserVe(gmm: DiagonalGmm): Denoiser {
  const posterior = gmmPosteriorMean(gmm, { alpha: () => 1, sigma: (t: number) => t });
  return (x: Vec, sigma: number): Vec => posterior(x, sigma);
}

// ---- small vector helpers (elementwise, new arrays: the samplers keep old values around) ----------

/** a x + b y */
function lin(a: number, x: Vec, b: number, y: Vec): Vec {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = a * x[i] + b * y[i];
  return out;
}

/** x + c y */
function axpy(x: Vec, c: number, y: Vec): Vec {
  return lin(1, x, c, y);
}

/** to_d: (x - denoised) / sigma, the Karras ODE derivative dx/dsigma. */
function toD(x: Vec, sigma: number, denoised: Vec): Vec {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = (x[i] - denoised[i]) / sigma;
  return out;
}

/**
 * get_ancestral_step(sigma_from, sigma_to, eta): the level to step down to deterministically and the
 * amount of fresh noise that brings the marginal back to sigma_to. `if not eta: return sigma_to, 0`.
 */
export function getAncestralStep(sigmaFrom: number, sigmaTo: number, eta = 1): [down: number, up: number] {
  if (!eta) return [sigmaTo, 0];
  const up = Math.min(sigmaTo, eta * Math.sqrt((sigmaTo * sigmaTo * (sigmaFrom * sigmaFrom - sigmaTo * sigmaTo)) / (sigmaFrom * sigmaFrom)));
  const down = Math.sqrt(sigmaTo * sigmaTo - up * up);
  return [down, up];
}

// 4-point Gauss-Legendre on [-1, 1]: exact for polynomials up to degree 7, so for the Lagrange basis
// of any LMS order up to 8 (k-diffusion integrates the same polynomial with scipy quad, which is exact
// to rounding for it too; the engine allows order <= 6).
const GL_X = [
  -Math.sqrt(3 / 7 + (2 / 7) * Math.sqrt(6 / 5)), -Math.sqrt(3 / 7 - (2 / 7) * Math.sqrt(6 / 5)),
  Math.sqrt(3 / 7 - (2 / 7) * Math.sqrt(6 / 5)), Math.sqrt(3 / 7 + (2 / 7) * Math.sqrt(6 / 5)),
];
const GL_W = [(18 - Math.sqrt(30)) / 36, (18 + Math.sqrt(30)) / 36, (18 + Math.sqrt(30)) / 36, (18 - Math.sqrt(30)) / 36];

/**
 * linear_multistep_coeff(order, t, i, j): the integral over [t[i], t[i+1]] of the Lagrange basis
 * polynomial of node t[i-j] through the nodes t[i], t[i-1], ..., t[i-order+1].
 */
export function lmsCoefficient(order: number, t: readonly number[], i: number, j: number): number {
  if (order - 1 > i) throw new Error(`Order ${order} too high for step ${i}`);
  const fn = (tau: number): number => {
    let prod = 1;
    for (let k = 0; k < order; k++) {
      if (j === k) continue;
      prod *= (tau - t[i - k]) / (t[i - j] - t[i - k]);
    }
    return prod;
  };
  const a = t[i], b = t[i + 1];
  const half = (b - a) / 2, mid = (a + b) / 2;
  let s = 0;
  for (let q = 0; q < 4; q++) s += GL_W[q] * fn(mid + half * GL_X[q]);
  return s * half;
}

export type KSamplerName =
  | 'euler' | 'euler-ancestral' | 'heun' | 'dpm2' | 'dpm2-ancestral' | 'lms'
  | 'dpmpp-2s-ancestral' | 'dpmpp-sde' | 'dpmpp-2m' | 'dpmpp-2m-sde' | 'dpmpp-3m-sde';

export interface KOptions {
  /** Ancestral / SDE noise scale (k-diffusion's default 1 for every sampler that has it). */
  eta?: number;
  /** s_noise (default 1). */
  sNoise?: number;
  /** lms order (default 4). */
  order?: number;
  /** dpmpp-sde: relative position of the intermediate stage in log sigma (default 1/2). */
  r?: number;
  /**
   * Diagnostics only, NOT k-diffusion: the second-order (one-history) step of dpmpp-3m-sde in the
   * midpoint form of dpmpp-2m-sde, 0.5 (-expm1(-h_eta)) (denoised - d1) / r, instead of k-diffusion's
   * phi_2 (denoised - d1) / r with phi_2 = expm1(-h_eta) / h_eta + 1. Lets a test say which one an
   * implementation uses.
   */
  threeMWarmup?: 'k-diffusion' | 'midpoint';
}

export interface KResult {
  x: Vec;
  /** The sigmas the model was evaluated at, in order. */
  evaluations: number[];
  /** How many noise draws k-diffusion made (the largest k passed to noise). */
  draws: number;
}

/**
 * Runs k-diffusion's sampler `name` from x (at sigmas[0]) over the grid `sigmas` with churn 0 (the
 * default of sample_euler / sample_heun / sample_dpm_2).
 */
export function kdiffusionSample(name: KSamplerName, model: Denoiser, xStart: Vec, sigmas: readonly number[], noise: NoiseSource, options: KOptions = {}): KResult {
  const eta = options.eta ?? 1;
  const sNoise = options.sNoise ?? 1;
  const evaluations: number[] = [];
  let draws = 0;
  const D = (x: Vec, sigma: number): Vec => {
    evaluations.push(sigma);
    return model(x, sigma);
  };
  const draw = (): Vec => noise(++draws);
  // sigma_fn / t_fn of the DPM-Solver++ samplers: t = -log sigma (the half log-SNR in VE coordinates).
  const sigmaFn = (t: number): number => Math.exp(-t);
  const tFn = (sigma: number): number => -Math.log(sigma);
  const n = sigmas.length - 1;
  let x: Vec = Float64Array.from(xStart);

  switch (name) {
    case 'euler': {
      for (let i = 0; i < n; i++) {
        const denoised = D(x, sigmas[i]);
        x = axpy(x, sigmas[i + 1] - sigmas[i], toD(x, sigmas[i], denoised));
      }
      break;
    }
    case 'euler-ancestral': {
      for (let i = 0; i < n; i++) {
        const denoised = D(x, sigmas[i]);
        const [down, up] = getAncestralStep(sigmas[i], sigmas[i + 1], eta);
        x = axpy(x, down - sigmas[i], toD(x, sigmas[i], denoised));
        if (sigmas[i + 1] > 0) x = axpy(x, sNoise * up, draw());
      }
      break;
    }
    case 'heun': {
      for (let i = 0; i < n; i++) {
        const denoised = D(x, sigmas[i]);
        const d = toD(x, sigmas[i], denoised);
        const dt = sigmas[i + 1] - sigmas[i];
        if (sigmas[i + 1] === 0) {
          x = axpy(x, dt, d);
        } else {
          const x2 = axpy(x, dt, d);
          const d2 = toD(x2, sigmas[i + 1], D(x2, sigmas[i + 1]));
          x = axpy(x, dt, lin(0.5, d, 0.5, d2));
        }
      }
      break;
    }
    case 'dpm2': {
      for (let i = 0; i < n; i++) {
        const denoised = D(x, sigmas[i]);
        const d = toD(x, sigmas[i], denoised);
        if (sigmas[i + 1] === 0) {
          x = axpy(x, sigmas[i + 1] - sigmas[i], d);
        } else {
          // sigma_hat.log().lerp(sigmas[i + 1].log(), 0.5).exp(): the geometric mean.
          const mid = Math.exp((Math.log(sigmas[i]) + Math.log(sigmas[i + 1])) / 2);
          const x2 = axpy(x, mid - sigmas[i], d);
          const d2 = toD(x2, mid, D(x2, mid));
          x = axpy(x, sigmas[i + 1] - sigmas[i], d2);
        }
      }
      break;
    }
    case 'dpm2-ancestral': {
      for (let i = 0; i < n; i++) {
        const denoised = D(x, sigmas[i]);
        const [down, up] = getAncestralStep(sigmas[i], sigmas[i + 1], eta);
        const d = toD(x, sigmas[i], denoised);
        if (down === 0) {
          x = axpy(x, down - sigmas[i], d);
        } else {
          const mid = Math.exp((Math.log(sigmas[i]) + Math.log(down)) / 2);
          const x2 = axpy(x, mid - sigmas[i], d);
          const d2 = toD(x2, mid, D(x2, mid));
          x = axpy(x, down - sigmas[i], d2);
          // In k-diffusion the noise is added inside this branch only: a step whose sigma_down is 0
          // (last step to 0, or eta large enough that sigma_up is capped at sigma_next) adds none.
          x = axpy(x, sNoise * up, draw());
        }
      }
      break;
    }
    case 'lms': {
      const order = options.order ?? 4;
      const ds: Vec[] = [];
      for (let i = 0; i < n; i++) {
        const denoised = D(x, sigmas[i]);
        ds.push(toD(x, sigmas[i], denoised));
        if (ds.length > order) ds.shift();
        const cur = Math.min(i + 1, order);
        // zip(coeffs, reversed(ds)): coefficient j goes with the derivative of step i - j.
        for (let j = 0; j < cur; j++) x = axpy(x, lmsCoefficient(cur, sigmas, i, j), ds[ds.length - 1 - j]);
      }
      break;
    }
    case 'dpmpp-2s-ancestral': {
      for (let i = 0; i < n; i++) {
        const denoised = D(x, sigmas[i]);
        const [down, up] = getAncestralStep(sigmas[i], sigmas[i + 1], eta);
        if (down === 0) {
          x = axpy(x, down - sigmas[i], toD(x, sigmas[i], denoised));
        } else {
          const t = tFn(sigmas[i]), tNext = tFn(down);
          const r = 1 / 2;
          const h = tNext - t;
          const s = t + r * h;
          const x2 = lin(sigmaFn(s) / sigmaFn(t), x, -Math.expm1(-h * r), denoised);
          const denoised2 = D(x2, sigmaFn(s));
          x = lin(sigmaFn(tNext) / sigmaFn(t), x, -Math.expm1(-h), denoised2);
        }
        if (sigmas[i + 1] > 0) x = axpy(x, sNoise * up, draw());
      }
      break;
    }
    case 'dpmpp-sde': {
      const r = options.r ?? 1 / 2;
      for (let i = 0; i < n; i++) {
        const denoised = D(x, sigmas[i]);
        if (sigmas[i + 1] === 0) {
          x = axpy(x, sigmas[i + 1] - sigmas[i], toD(x, sigmas[i], denoised));
        } else {
          const t = tFn(sigmas[i]), tNext = tFn(sigmas[i + 1]);
          const h = tNext - t;
          const s = t + h * r;
          const fac = 1 / (2 * r);
          // Step 1: ancestral DPM-Solver++(1) to sigma(s), noise draw 2i + 1 of this sampler.
          let [sd, su] = getAncestralStep(sigmaFn(t), sigmaFn(s), eta);
          const s_ = tFn(sd);
          let x2 = lin(sigmaFn(s_) / sigmaFn(t), x, -Math.expm1(t - s_), denoised);
          x2 = axpy(x2, sNoise * su, draw());
          const denoised2 = D(x2, sigmaFn(s));
          // Step 2: from x (not x2) to sigma_next with the mixed x0 estimate, noise draw 2i + 2.
          [sd, su] = getAncestralStep(sigmaFn(t), sigmaFn(tNext), eta);
          const tNext_ = tFn(sd);
          const dd = lin(1 - fac, denoised, fac, denoised2);
          x = lin(sigmaFn(tNext_) / sigmaFn(t), x, -Math.expm1(t - tNext_), dd);
          x = axpy(x, sNoise * su, draw());
        }
      }
      break;
    }
    case 'dpmpp-2m': {
      let old: Vec | undefined;
      for (let i = 0; i < n; i++) {
        const denoised = D(x, sigmas[i]);
        if (sigmas[i + 1] === 0) {
          // t_next = inf: sigma_fn(t_next) = 0 and -expm1(-h) = 1, i.e. x = denoised.
          x = Float64Array.from(denoised);
        } else {
          const t = tFn(sigmas[i]), tNext = tFn(sigmas[i + 1]);
          const h = tNext - t;
          if (old === undefined) {
            x = lin(sigmaFn(tNext) / sigmaFn(t), x, -Math.expm1(-h), denoised);
          } else {
            const hLast = t - tFn(sigmas[i - 1]);
            const r = hLast / h;
            const dd = lin(1 + 1 / (2 * r), denoised, -1 / (2 * r), old);
            x = lin(sigmaFn(tNext) / sigmaFn(t), x, -Math.expm1(-h), dd);
          }
        }
        old = denoised;
      }
      break;
    }
    case 'dpmpp-2m-sde': {
      // solver_type 'midpoint' (k-diffusion's default).
      let old: Vec | undefined;
      let hLast = NaN;
      let h = NaN;
      for (let i = 0; i < n; i++) {
        const denoised = D(x, sigmas[i]);
        if (sigmas[i + 1] === 0) {
          x = Float64Array.from(denoised);
        } else {
          const t = -Math.log(sigmas[i]), s = -Math.log(sigmas[i + 1]);
          h = s - t;
          const etaH = eta * h;
          x = lin((sigmas[i + 1] / sigmas[i]) * Math.exp(-etaH), x, -Math.expm1(-h - etaH), denoised);
          if (old !== undefined) {
            const r = hLast / h;
            x = axpy(x, 0.5 * -Math.expm1(-h - etaH) * (1 / r), lin(1, denoised, -1, old));
          }
          if (eta) x = axpy(x, sigmas[i + 1] * Math.sqrt(-Math.expm1(-2 * etaH)) * sNoise, draw());
        }
        old = denoised;
        hLast = h;
      }
      break;
    }
    case 'dpmpp-3m-sde': {
      let d1: Vec | undefined, d2: Vec | undefined;
      let h = NaN, h1 = NaN, h2 = NaN;
      for (let i = 0; i < n; i++) {
        const denoised = D(x, sigmas[i]);
        if (sigmas[i + 1] === 0) {
          x = Float64Array.from(denoised);
        } else {
          const t = -Math.log(sigmas[i]), s = -Math.log(sigmas[i + 1]);
          h = s - t;
          const hEta = h * (eta + 1);
          x = lin(Math.exp(-hEta), x, -Math.expm1(-hEta), denoised);
          if (d2 !== undefined && d1 !== undefined) {
            const r0 = h1 / h, r1 = h2 / h;
            const d10 = lin(1 / r0, denoised, -1 / r0, d1);
            const d11 = lin(1 / r1, d1, -1 / r1, d2);
            const diff = lin(1, d10, -1, d11);
            const dd1 = axpy(d10, r0 / (r0 + r1), diff);
            const dd2 = lin(1 / (r0 + r1), diff, 0, diff);
            const phi2 = Math.expm1(-hEta) / hEta + 1;
            const phi3 = phi2 / hEta - 0.5;
            x = axpy(axpy(x, phi2, dd1), -phi3, dd2);
          } else if (d1 !== undefined) {
            const r = h1 / h;
            const d = lin(1 / r, denoised, -1 / r, d1);
            const phi2 = options.threeMWarmup === 'midpoint' ? 0.5 * -Math.expm1(-hEta) : Math.expm1(-hEta) / hEta + 1;
            x = axpy(x, phi2, d);
          }
          if (eta) x = axpy(x, sigmas[i + 1] * Math.sqrt(-Math.expm1(-2 * h * eta)) * sNoise, draw());
        }
        // As in k-diffusion, the histories shift on every step (the last, to 0, never reads them).
        d2 = d1;
        d1 = denoised;
        h2 = h1;
        h1 = h;
      }
      break;
    }
    default: {
      const never: never = name;
      throw new Error(`unknown sampler ${String(never)}`);
    }
  }
  return { x, evaluations, draws };
}
