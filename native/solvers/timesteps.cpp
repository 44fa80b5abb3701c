#include "solvers/timesteps.h"

#include <cmath>
#include <sstream>
#include <string>

#include "core/error.h"

namespace nd::solvers {
namespace {

[[noreturn]] void badArg(const std::string& arg, const std::string& expected, const std::string& received) {
  fail(ErrorCode::Arg, "Expected " + expected + " for " + arg + " but received " + received);
}

bool inRange(const Schedule& s, double t) { return t >= s.tMin() && t <= s.tMax(); }

std::string rangeText(const Schedule& s) {
  return "a time in [" + numberText(s.tMin()) + ", " + numberText(s.tMax()) + "] of schedule " + s.name();
}

// Linear interpolation that lands exactly on both ends.
double lerpGrid(double a, double b, int i, int steps) {
  if (i == steps) return b;
  return a + (b - a) * (static_cast<double>(i) / steps);
}

void requireFiniteLambda(const Schedule& s, double t, const char* arg, StepSpacing spacing) {
  double l = s.lambda(t);
  if (!std::isfinite(l))
    badArg(arg, std::string("a time with finite log-SNR (") + stepSpacingName(spacing) + " spacing)", numberText(t));
}

}  // namespace

std::vector<int> diffusersTimesteps(int n, int steps, StepSpacing spacing, int stepsOffset) {
  if (n < 1) badArg("numTrainTimesteps", "an integer >= 1", std::to_string(n));
  if (steps <= 0 || steps > n) badArg("steps", "an integer in [1, " + std::to_string(n) + "]", std::to_string(steps));
  std::vector<int> k(static_cast<size_t>(steps));
  switch (spacing) {
    case StepSpacing::Linspace: {
      double step = steps > 1 ? static_cast<double>(n - 1) / (steps - 1) : 0.0;
      for (int i = 0; i < steps; ++i) {
        double v = i == steps - 1 && steps > 1 ? n - 1 : i * step;  // numpy pins the last value
        k[static_cast<size_t>(steps - 1 - i)] = static_cast<int>(std::nearbyint(v));
      }
      break;
    }
    case StepSpacing::Leading: {
      int ratio = n / steps;
      if (stepsOffset < 0 || (steps - 1) * ratio + stepsOffset > n - 1)
        badArg("stepsOffset", "an integer in [0, " + std::to_string(n - 1 - (steps - 1) * ratio) + "]",
               std::to_string(stepsOffset));
      for (int i = 0; i < steps; ++i) k[static_cast<size_t>(steps - 1 - i)] = i * ratio + stepsOffset;
      break;
    }
    case StepSpacing::Trailing: {
      double step = -static_cast<double>(n) / steps;
      for (int i = 0; i < steps; ++i) k[static_cast<size_t>(i)] = static_cast<int>(std::nearbyint(n + i * step)) - 1;
      break;
    }
    default:
      badArg("spacing", "linspace, leading or trailing", stepSpacingName(spacing));
  }
  return k;
}

std::vector<double> selectTimesteps(const Schedule& s, int steps, StepSpacing spacing, double tStart,
                                    double tEnd, const SpacingOptions& options) {
  if (steps <= 0) badArg("steps", "an integer > 0", std::to_string(steps));
  if (!inRange(s, tStart)) badArg("tStart", rangeText(s), numberText(tStart));
  if (!(inRange(s, tEnd) || tEnd == s.tClean()))
    badArg("tEnd", rangeText(s) + " or its clean time " + numberText(s.tClean()), numberText(tEnd));
  if (!(tEnd < tStart)) badArg("tEnd", "a time below tStart = " + numberText(tStart), numberText(tEnd));

  std::vector<double> t(static_cast<size_t>(steps) + 1);
  auto at = [&t](int i) -> double& { return t[static_cast<size_t>(i)]; };
  switch (spacing) {
    case StepSpacing::TimeUniform:
    case StepSpacing::TimeQuadratic: {
      // The official time_quadratic is linspace(t_T^(1/2), t_0^(1/2), N+1)^2.
      bool quad = spacing == StepSpacing::TimeQuadratic;
      double a = s.unshiftTime(tStart), b = s.unshiftTime(tEnd);
      if (quad) { a = std::sqrt(a); b = std::sqrt(b); }
      for (int i = 0; i <= steps; ++i) {
        double u = lerpGrid(a, b, i, steps);
        at(i) = s.shiftTime(quad ? u * u : u);
      }
      break;
    }
    case StepSpacing::LogSNR: {
      requireFiniteLambda(s, tStart, "tStart", spacing);
      requireFiniteLambda(s, tEnd, "tEnd", spacing);
      double la = s.lambda(tStart), lb = s.lambda(tEnd);
      for (int i = 0; i <= steps; ++i) at(i) = s.tFromLambda(lerpGrid(la, lb, i, steps));
      break;
    }
    case StepSpacing::Karras: {
      double rho = options.rho;
      if (!(rho > 0 && std::isfinite(rho))) badArg("rho", "a finite number > 0", numberText(rho));
      requireFiniteLambda(s, tStart, "tStart", spacing);
      double a = std::pow(s.edmSigma(tStart), 1.0 / rho), b = std::pow(s.edmSigma(tEnd), 1.0 / rho);
      for (int i = 0; i <= steps; ++i) at(i) = s.tFromEdmSigma(std::pow(lerpGrid(a, b, i, steps), rho));
      break;
    }
    case StepSpacing::Exponential: {
      requireFiniteLambda(s, tStart, "tStart", spacing);
      requireFiniteLambda(s, tEnd, "tEnd", spacing);
      double a = std::log(s.edmSigma(tStart)), b = std::log(s.edmSigma(tEnd));
      for (int i = 0; i <= steps; ++i) at(i) = s.tFromEdmSigma(std::exp(lerpGrid(a, b, i, steps)));
      break;
    }
    case StepSpacing::Linspace:
    case StepSpacing::Leading:
    case StepSpacing::Trailing: {
      int n = s.numTrainTimesteps();
      if (n <= 0)
        badArg("spacing", std::string("a discrete-time schedule for ") + stepSpacingName(spacing) + " spacing",
               "schedule " + s.name());
      std::vector<int> k = diffusersTimesteps(n, steps, spacing, options.stepsOffset);
      for (int i = 0; i < steps; ++i) at(i) = static_cast<double>(k[static_cast<size_t>(i)] + 1) / n;
      if (!(tEnd < at(steps - 1)))
        badArg("tEnd", "a time below the last " + std::string(stepSpacingName(spacing)) + " time " +
                           numberText(at(steps - 1)), numberText(tEnd));
      at(steps) = tEnd;
      return t;  // tStart is not part of these grids
    }
    case StepSpacing::Explicit: {
      const auto& x = options.times;
      if (x.size() != static_cast<size_t>(steps) + 1)
        badArg("times", "steps + 1 = " + std::to_string(steps + 1) + " values", std::to_string(x.size()) + " values");
      if (x.front() != tStart) badArg("times[0]", "tStart = " + numberText(tStart), numberText(x.front()));
      if (x.back() != tEnd) badArg("times[" + std::to_string(steps) + "]", "tEnd = " + numberText(tEnd), numberText(x.back()));
      for (size_t i = 1; i < x.size(); ++i) {
        if (!(x[i] < x[i - 1]))
          badArg("times[" + std::to_string(i) + "]", "a value below times[" + std::to_string(i - 1) + "] = " + numberText(x[i - 1]),
                 numberText(x[i]));
        if (i + 1 < x.size() && !inRange(s, x[i])) badArg("times[" + std::to_string(i) + "]", rangeText(s), numberText(x[i]));
      }
      return x;
    }
  }
  at(0) = tStart;
  at(steps) = tEnd;
  for (int i = 1; i <= steps; ++i)
    if (!(at(i) < at(i - 1)))
      badArg("steps", "a step count whose grid stays strictly decreasing in double precision", std::to_string(steps));
  return t;
}

StepSpacing parseStepSpacing(std::string_view name) {
  static constexpr StepSpacing all[] = {StepSpacing::TimeUniform, StepSpacing::LogSNR,   StepSpacing::TimeQuadratic,
                                        StepSpacing::Karras,      StepSpacing::Exponential, StepSpacing::Linspace,
                                        StepSpacing::Leading,     StepSpacing::Trailing, StepSpacing::Explicit};
  for (StepSpacing s : all)
    if (name == stepSpacingName(s)) return s;
  badArg("skip", "one of time-uniform, logSNR, time-quadratic, karras, exponential, linspace, leading, "
                 "trailing, explicit",
         std::string(1, '\'').append(name).append(1, '\''));
}

const char* stepSpacingName(StepSpacing spacing) {
  switch (spacing) {
    case StepSpacing::TimeUniform: return "time-uniform";
    case StepSpacing::LogSNR: return "logSNR";
    case StepSpacing::TimeQuadratic: return "time-quadratic";
    case StepSpacing::Karras: return "karras";
    case StepSpacing::Exponential: return "exponential";
    case StepSpacing::Linspace: return "linspace";
    case StepSpacing::Leading: return "leading";
    case StepSpacing::Trailing: return "trailing";
    case StepSpacing::Explicit: return "explicit";
  }
  return "unknown";
}

}  // namespace nd::solvers
