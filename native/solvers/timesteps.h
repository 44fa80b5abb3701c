// Step selection: the grid of times a sampler visits, steps + 1 strictly decreasing values.
#pragma once
#include <string_view>
#include <vector>

#include "solvers/schedule.h"

namespace nd::solvers {

enum class StepSpacing {
  TimeUniform,    // official DPM-Solver 'time_uniform': linspace(tStart, tEnd)
  LogSNR,         // 'logSNR': uniform in lambda
  TimeQuadratic,  // 'time_quadratic': linspace(sqrt(tStart), sqrt(tEnd))^2
  Karras,         // uniform in edmSigma^(1/rho) (EDM; edmSigma = sigma/alpha)
  Exponential,    // uniform in log edmSigma
  Linspace,       // diffusers timestep_spacing, discrete-time schedules only
  Leading,
  Trailing,
  Explicit,       // SpacingOptions::times
};

struct SpacingOptions {
  double rho = 7.0;             // Karras
  int stepsOffset = 0;          // diffusers' steps_offset (SD 1.x configs use 1), Leading only
  std::vector<double> times;    // Explicit: the whole grid, tStart first and tEnd last
};

// Returns steps + 1 strictly decreasing times, first tStart and last tEnd exactly.
//  - tStart and tEnd lie in [tMin, tMax]; tEnd may also be tClean (a final step to sigma = 0).
//  - TimeUniform / TimeQuadratic are built in the schedule's unshifted time u and mapped through
//    shiftTime (flow matching's SD3/Flux shift), so the endpoints stay put and the shift only moves
//    the interior points towards the noisy end. The other spacings are defined by noise level and
//    ignore the shift.
//  - Linspace / Leading / Trailing need a discrete schedule (numTrainTimesteps N > 0): the first
//    `steps` points are diffusers' integer timesteps k (DDIM/Euler convention) at t = (k + 1)/N,
//    followed by tEnd, which must be below the last of them (tClean = 0, i.e. alpha = 1, always is).
//    tStart is then only range-checked: diffusers derives these grids from N alone.
// Errors (ErrorCode::Arg, naming the argument): steps <= 0, tEnd >= tStart, times out of range,
// a log spacing with an endpoint at infinite lambda, rho <= 0, a malformed explicit list.
std::vector<double> selectTimesteps(const Schedule& schedule, int steps, StepSpacing spacing,
                                    double tStart, double tEnd, const SpacingOptions& options = {});

// diffusers' integer timesteps (decreasing, `steps` of them) for N training steps:
//   Linspace: round(linspace(0, N-1, steps)) reversed;  Leading: (arange(steps) * (N / steps))
//   reversed + stepsOffset;  Trailing: round(arange(N, 0, -N/steps)) - 1. Rounding is numpy's
//   (half to even). Exactly `steps` values even where numpy's float arange would add one.
std::vector<int> diffusersTimesteps(int numTrainTimesteps, int steps, StepSpacing spacing, int stepsOffset = 0);

// Names as the API spells them: time-uniform, logSNR, time-quadratic, karras, exponential,
// linspace, leading, trailing, explicit.
StepSpacing parseStepSpacing(std::string_view name);
const char* stepSpacingName(StepSpacing spacing);

}  // namespace nd::solvers
