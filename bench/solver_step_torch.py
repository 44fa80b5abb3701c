#!/usr/bin/env python3
"""Per-step solver overhead (everything but the denoiser) in eager PyTorch, CPU, f32.

The PyTorch column of bench/solver-step.mjs: the same samplers, the same latent shape and the same
thread count, each step written the way diffusers writes it (out-of-place tensor ops, a list of past
model outputs, epsilon prediction, VP discrete scaled-linear schedule with 1000 training steps):

  ddim             DDIMScheduler.step, eta = 0
  euler            EulerDiscreteScheduler.scale_model_input + step (sample in EDM coordinates)
  euler-ancestral  EulerAncestralDiscreteScheduler.scale_model_input + step, torch.randn noise
  dpmpp-2m         DPMSolverMultistepScheduler, dpmsolver++, solver_order 2, midpoint
  dpmpp-3m         DPMSolverMultistepScheduler, dpmsolver++, solver_order 3
  dpmpp-2m-sde     DPMSolverMultistepScheduler, sde-dpmsolver++, solver_order 2, midpoint, torch.randn noise
  unipc            UniPCMultistepScheduler, bh2, solver_order 2, predict_x0, corrector on

Differences from diffusers, all in PyTorch's favour: per-step scalars (alpha_t, sigma_t, lambda_t)
are Python floats, not 0-dim tensors; SDE noise comes from one torch.Generator for the whole batch
(diffusers with one generator per sample draws per sample and concatenates, one more copy).

Timing: `--warmup` steps, then `--runs` blocks of `--steps-per-run` steps each; reports the median
block time divided by the block length, in ms per step. Prints one JSON object on stdout.
"""
import argparse
import json
import math
import statistics
import time

import torch

SAMPLERS = ["ddim", "euler", "dpmpp-2m", "dpmpp-3m", "unipc", "dpmpp-2m-sde", "euler-ancestral"]


class Schedule:
    """VP discrete, scaled-linear betas (Stable Diffusion): beta in [0.00085, 0.012], 1000 steps."""

    def __init__(self, n=1000, beta_start=0.00085, beta_end=0.012):
        betas = torch.linspace(beta_start**0.5, beta_end**0.5, n, dtype=torch.float64) ** 2
        acp = torch.cumprod(1.0 - betas, dim=0)
        self.alpha = acp.sqrt().tolist()
        self.sigma = (1.0 - acp).sqrt().tolist()
        self.lam = [math.log(a) - math.log(s) for a, s in zip(self.alpha, self.sigma)]
        self.edm = [s / a for a, s in zip(self.alpha, self.sigma)]  # Euler's sigma
        self.n = n

    def t(self, k):
        # 1000 time-uniform steps: step k goes from training timestep n-1-k to n-2-k.
        return self.n - 1 - k


class Ddim:
    def __init__(self, sch, gen):
        self.s, self.k = sch, 0

    def step(self, sample, model_output):
        s, t = self.s, self.s.t(self.k)
        tp = t - 1
        self.k += 1
        alpha_prod_t, alpha_prod_t_prev = s.alpha[t] ** 2, s.alpha[tp] ** 2
        beta_prod_t = 1 - alpha_prod_t
        pred_original_sample = (sample - beta_prod_t ** (0.5) * model_output) / alpha_prod_t ** (0.5)
        pred_epsilon = model_output
        std_dev_t = 0.0  # eta = 0
        pred_sample_direction = (1 - alpha_prod_t_prev - std_dev_t**2) ** (0.5) * pred_epsilon
        prev_sample = alpha_prod_t_prev ** (0.5) * pred_original_sample + pred_sample_direction
        return prev_sample


class Euler:
    def __init__(self, sch, gen, ancestral=False):
        self.s, self.k, self.gen, self.ancestral = sch, 0, gen, ancestral

    def step(self, sample, model_output):
        s, t = self.s, self.s.t(self.k)
        self.k += 1
        sigma, sigma_next = s.edm[t], s.edm[t - 1]
        # The pipeline scales the EDM-coordinate sample before every model call.
        _model_input = sample / ((sigma**2 + 1) ** 0.5)  # scale_model_input
        pred_original_sample = sample - sigma * model_output
        if not self.ancestral:
            derivative = (sample - pred_original_sample) / sigma
            dt = sigma_next - sigma
            return sample + derivative * dt
        sigma_from, sigma_to = sigma, sigma_next
        sigma_up = (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5
        sigma_down = (sigma_to**2 - sigma_up**2) ** 0.5
        derivative = (sample - pred_original_sample) / sigma
        dt = sigma_down - sigma
        prev_sample = sample + derivative * dt
        noise = torch.randn(model_output.shape, generator=self.gen, dtype=model_output.dtype)
        return prev_sample + noise * sigma_up


class DpmSolverMultistep:
    def __init__(self, sch, gen, order, sde=False):
        self.s, self.k, self.gen, self.order, self.sde = sch, 0, gen, order, sde
        self.model_outputs = [None] * order
        self.lower_order_nums = 0

    def step(self, sample, model_output):
        s, t = self.s, self.s.t(self.k)
        self.k += 1
        # convert_model_output: dpmsolver++ with epsilon prediction -> x0
        x0_pred = (sample - s.sigma[t] * model_output) / s.alpha[t]
        for i in range(self.order - 1):
            self.model_outputs[i] = self.model_outputs[i + 1]
        self.model_outputs[-1] = x0_pred
        noise = torch.randn(model_output.shape, generator=self.gen, dtype=torch.float32) if self.sde else None
        order = min(self.order, self.lower_order_nums + 1)
        ts = [t - 1, t, t + 1, t + 2]  # target, s0, s1, s2
        if order == 1:
            out = self.first(sample, ts, noise)
        elif order == 2:
            out = self.second(sample, ts, noise)
        else:
            out = self.third(sample, ts)
        self.lower_order_nums = min(self.lower_order_nums + 1, self.order)
        return out

    def first(self, sample, ts, noise):
        s = self.s
        t, s0 = ts[0], ts[1]
        h = s.lam[t] - s.lam[s0]
        alpha_t, sigma_t, sigma_s = s.alpha[t], s.sigma[t], s.sigma[s0]
        m0 = self.model_outputs[-1]
        if self.sde:
            return (sigma_t / sigma_s * math.exp(-h)) * sample + (alpha_t * (1 - math.exp(-2.0 * h))) * m0 \
                + sigma_t * math.sqrt(1.0 - math.exp(-2 * h)) * noise
        return (sigma_t / sigma_s) * sample - (alpha_t * (math.exp(-h) - 1.0)) * m0

    def second(self, sample, ts, noise):
        s = self.s
        t, s0, s1 = ts[0], ts[1], ts[2]
        m0, m1 = self.model_outputs[-1], self.model_outputs[-2]
        alpha_t, sigma_t, sigma_s0 = s.alpha[t], s.sigma[t], s.sigma[s0]
        h, h_0 = s.lam[t] - s.lam[s0], s.lam[s0] - s.lam[s1]
        r0 = h_0 / h
        D0, D1 = m0, (1.0 / r0) * (m0 - m1)
        if self.sde:  # sde-dpmsolver++, midpoint
            return (sigma_t / sigma_s0 * math.exp(-h)) * sample + (alpha_t * (1 - math.exp(-2.0 * h))) * D0 \
                + 0.5 * (alpha_t * (1 - math.exp(-2.0 * h))) * D1 + sigma_t * math.sqrt(1.0 - math.exp(-2.0 * h)) * noise
        return (sigma_t / sigma_s0) * sample - (alpha_t * (math.exp(-h) - 1.0)) * D0 \
            - 0.5 * (alpha_t * (math.exp(-h) - 1.0)) * D1

    def third(self, sample, ts):
        s = self.s
        t, s0, s1, s2 = ts
        m0, m1, m2 = self.model_outputs[-1], self.model_outputs[-2], self.model_outputs[-3]
        alpha_t, sigma_t, sigma_s0 = s.alpha[t], s.sigma[t], s.sigma[s0]
        h, h_0, h_1 = s.lam[t] - s.lam[s0], s.lam[s0] - s.lam[s1], s.lam[s1] - s.lam[s2]
        r0, r1 = h_0 / h, h_1 / h
        D0 = m0
        D1_0, D1_1 = (1.0 / r0) * (m0 - m1), (1.0 / r1) * (m1 - m2)
        D1 = D1_0 + (r0 / (r0 + r1)) * (D1_0 - D1_1)
        D2 = (1.0 / (r0 + r1)) * (D1_0 - D1_1)
        return (sigma_t / sigma_s0) * sample - (alpha_t * (math.exp(-h) - 1.0)) * D0 \
            + (alpha_t * ((math.exp(-h) - 1.0) / h + 1.0)) * D1 \
            - (alpha_t * ((math.exp(-h) - 1.0 + h) / h**2 - 0.5)) * D2


class UniPc:
    """UniPCMultistepScheduler.step with bh2, solver_order 2, predict_x0, the corrector on."""

    def __init__(self, sch, gen, order=2):
        self.s, self.k, self.order = sch, 0, order
        self.model_outputs = [None] * order
        self.timestep_list = [None] * order
        self.lower_order_nums = 0
        self.last_sample = None
        self.this_order = 1

    def _rks_R_b(self, ts_hist, t, s0, h, order):
        s = self.s
        m0 = self.model_outputs[-1]
        rks, D1s = [], []
        for i in range(1, order):
            si = ts_hist[-(i + 1)]
            mi = self.model_outputs[-(i + 1)]
            rk = (s.lam[si] - s.lam[s0]) / h
            rks.append(rk)
            D1s.append((mi - m0) / rk)
        rks.append(1.0)
        rks = torch.tensor(rks)
        hh = -h
        h_phi_1 = math.expm1(hh)
        h_phi_k = h_phi_1 / hh - 1
        factorial_i = 1
        B_h = math.expm1(hh)
        R, b = [], []
        for i in range(1, order + 1):
            R.append(torch.pow(rks, i - 1))
            b.append(h_phi_k * factorial_i / B_h)
            factorial_i *= i + 1
            h_phi_k = h_phi_k / hh - 1 / factorial_i
        return torch.stack(R), torch.tensor(b), D1s, h_phi_1, B_h

    def uni_p(self, x, t, order):
        s = self.s
        s0 = self.timestep_list[-1]
        m0 = self.model_outputs[-1]
        alpha_t, sigma_t, sigma_s0 = s.alpha[t], s.sigma[t], s.sigma[s0]
        h = s.lam[t] - s.lam[s0]
        R, b, D1s, h_phi_1, B_h = self._rks_R_b(self.timestep_list, t, s0, h, order)
        if len(D1s) > 0:
            D1s = torch.stack(D1s, dim=1)
            rhos_p = torch.tensor([0.5], dtype=x.dtype) if order == 2 else torch.linalg.solve(R[:-1, :-1], b[:-1]).to(x.dtype)
        else:
            D1s = None
        x_t_ = sigma_t / sigma_s0 * x - alpha_t * h_phi_1 * m0
        pred_res = torch.einsum("k,bkc...->bc...", rhos_p, D1s) if D1s is not None else 0
        return x_t_ - alpha_t * B_h * pred_res

    def uni_c(self, model_t, last_sample, this_sample, t, order):
        s = self.s
        s0 = self.timestep_list[-1]
        m0 = self.model_outputs[-1]
        x = last_sample
        alpha_t, sigma_t, sigma_s0 = s.alpha[t], s.sigma[t], s.sigma[s0]
        h = s.lam[t] - s.lam[s0]
        R, b, D1s, h_phi_1, B_h = self._rks_R_b(self.timestep_list, t, s0, h, order)
        D1s = torch.stack(D1s, dim=1) if len(D1s) > 0 else None
        rhos_c = torch.tensor([0.5], dtype=x.dtype) if order == 1 else torch.linalg.solve(R, b).to(x.dtype)
        x_t_ = sigma_t / sigma_s0 * x - alpha_t * h_phi_1 * m0
        corr_res = torch.einsum("k,bkc...->bc...", rhos_c[:-1], D1s) if D1s is not None else 0
        D1_t = model_t - m0
        return x_t_ - alpha_t * B_h * (corr_res + rhos_c[-1] * D1_t)

    def step(self, sample, model_output):
        s, t = self.s, self.s.t(self.k)
        self.k += 1
        model_output_convert = (sample - s.sigma[t] * model_output) / s.alpha[t]
        if self.k > 1 and self.last_sample is not None:
            sample = self.uni_c(model_output_convert, self.last_sample, sample, t, self.this_order)
        for i in range(self.order - 1):
            self.model_outputs[i] = self.model_outputs[i + 1]
            self.timestep_list[i] = self.timestep_list[i + 1]
        self.model_outputs[-1] = model_output_convert
        self.timestep_list[-1] = t
        self.this_order = min(self.order, self.lower_order_nums + 1)
        self.last_sample = sample
        prev_sample = self.uni_p(sample, t - 1, self.this_order)
        if self.lower_order_nums < self.order:
            self.lower_order_nums += 1
        return prev_sample


def make(name, sch, gen):
    return {
        "ddim": lambda: Ddim(sch, gen),
        "euler": lambda: Euler(sch, gen),
        "euler-ancestral": lambda: Euler(sch, gen, ancestral=True),
        "dpmpp-2m": lambda: DpmSolverMultistep(sch, gen, 2),
        "dpmpp-3m": lambda: DpmSolverMultistep(sch, gen, 3),
        "dpmpp-2m-sde": lambda: DpmSolverMultistep(sch, gen, 2, sde=True),
        "unipc": lambda: UniPc(sch, gen),
    }[name]()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave the default)")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--steps-per-run", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--shape", default="8,4,128,128")
    ap.add_argument("--samplers", default=",".join(SAMPLERS))
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    shape = [int(v) for v in args.shape.split(",")]
    sch = Schedule()
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(shape, generator=gen, dtype=torch.float32)
    m = torch.randn(shape, generator=gen, dtype=torch.float32)

    def timed(fn, per_run):
        ts = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            for _ in range(per_run):
                fn()
            ts.append((time.perf_counter() - t0) / per_run)
        return statistics.median(ts)

    # Context: PyTorch's own copy of a latent into a preallocated tensor.
    dst = torch.empty_like(x0)
    for _ in range(3):
        dst.copy_(x0)
    copy_s = timed(lambda: dst.copy_(x0), 16)

    results = {}
    for name in args.samplers.split(","):
        sampler = make(name, sch, gen)
        state = {"x": x0.clone()}

        def one():
            state["x"] = sampler.step(state["x"], m)

        for _ in range(args.warmup):
            one()
        results[name] = timed(one, args.steps_per_run) * 1e3
        if not torch.isfinite(state["x"]).all():
            raise SystemExit(f"{name}: non-finite state")

    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "shape": shape,
        "runs": args.runs,
        "stepsPerRun": args.steps_per_run,
        "warmup": args.warmup,
        "copyLatentMs": copy_s * 1e3,
        "msPerStep": results,
    }))


if __name__ == "__main__":
    main()
