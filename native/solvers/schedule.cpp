#include "solvers/schedule.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <sstream>

#include "core/error.h"

namespace nd::solvers {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

[[noreturn]] void badOption(const std::string& option, const std::string& expected, double received) {
  fail(ErrorCode::Arg, "Expected " + expected + " for " + option + " but received " + numberText(received));
}

// log alpha from lambda: -0.5 log(1 + e^{-2 lambda}), written so neither branch overflows.
double logAlphaFromLambda(double lambda) {
  if (lambda >= 0) return -0.5 * std::log1p(std::exp(-2.0 * lambda));
  return lambda - 0.5 * std::log1p(std::exp(2.0 * lambda));
}

}  // namespace

// ---- Schedule ------------------------------------------------------------------------------------

template <typename F>
double Schedule::bisectDecreasing(F&& f, double target, double lo, double hi) {
  if (!(target < f(lo))) return lo;
  if (!(target > f(hi))) return hi;
  // Invariant f(lo) > target > f(hi). Plain bisection: slower than a secant method but it cannot
  // fail on the kinks of piecewise-linear schedules, and step selection is not a hot path.
  for (int it = 0; it < 2200; ++it) {
    double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    if (f(mid) > target) lo = mid; else hi = mid;
  }
  return std::fabs(f(lo) - target) <= std::fabs(f(hi) - target) ? lo : hi;
}

double Schedule::tFromLambda(double lambda) const {
  return bisectDecreasing([this](double t) { return this->lambda(t); }, lambda, tClean(), tMax());
}

double Schedule::sigmaTS2(double t, double s) const {
  double a = alphaTS(t, s), st = sigma(t), ss = sigma(s);
  return st * st - a * a * ss * ss;
}

double Schedule::edmSigma(double t) const { return std::exp(-lambda(t)); }

double Schedule::tFromEdmSigma(double edmSigma) const { return tFromLambda(-std::log(edmSigma)); }

// ---- VP ------------------------------------------------------------------------------------------

double VpSchedule::tFromLogAlpha(double logAlpha) const {
  return bisectDecreasing([this](double t) { return this->logAlpha(t); }, logAlpha, tClean(), tMax());
}

double VpSchedule::alpha(double t) const { return std::exp(logAlpha(t)); }

// sigma = sqrt(1 - alpha^2) through expm1 so that small noise levels keep their digits.
double VpSchedule::sigma(double t) const { return std::sqrt(-std::expm1(2.0 * logAlpha(t))); }

double VpSchedule::lambda(double t) const {
  double la = logAlpha(t);
  return la - 0.5 * std::log(-std::expm1(2.0 * la));
}

double VpSchedule::tFromLambda(double lambda) const { return tFromLogAlpha(logAlphaFromLambda(lambda)); }

double VpSchedule::alphaTS(double t, double s) const { return std::exp(logAlpha(t) - logAlpha(s)); }

// sigma_t^2 - (alpha_t/alpha_s)^2 sigma_s^2 = 1 - (alpha_t/alpha_s)^2 when alpha^2 + sigma^2 = 1.
double VpSchedule::sigmaTS2(double t, double s) const {
  return -std::expm1(2.0 * (logAlpha(t) - logAlpha(s)));
}

// ---- discrete VP ---------------------------------------------------------------------------------

std::vector<double> makeBetas(const DiscreteVpOptions& o) {
  int n = o.numTrainTimesteps;
  if (n < 2) badOption("numTrainTimesteps", "an integer >= 2", n);
  std::vector<double> betas(static_cast<size_t>(n));
  auto check = [](const std::optional<double>& v, double def, const char* option) {
    double x = v.value_or(def);
    if (!(x > 0 && x < 1)) badOption(option, "a number in (0, 1)", x);
    return x;
  };
  switch (o.betaSchedule) {
    case BetaSchedule::Linear:
    case BetaSchedule::ScaledLinear: {
      bool scaled = o.betaSchedule == BetaSchedule::ScaledLinear;
      double b0 = check(o.betaStart, scaled ? 0.00085 : 1e-4, "betaStart");
      double b1 = check(o.betaEnd, scaled ? 0.012 : 0.02, "betaEnd");
      double lo = scaled ? std::sqrt(b0) : b0, hi = scaled ? std::sqrt(b1) : b1;
      for (int i = 0; i < n; ++i) {
        double v = i == n - 1 ? hi : lo + (hi - lo) * (static_cast<double>(i) / (n - 1));
        betas[static_cast<size_t>(i)] = scaled ? v * v : v;
      }
      break;
    }
    case BetaSchedule::SquaredCosCapV2: {
      auto alphaBar = [](double u) {
        double c = std::cos((u + 0.008) / 1.008 * std::numbers::pi / 2);
        return c * c;
      };
      for (int i = 0; i < n; ++i) {
        double b = 1.0 - alphaBar(static_cast<double>(i + 1) / n) / alphaBar(static_cast<double>(i) / n);
        betas[static_cast<size_t>(i)] = std::min(b, 0.999);
      }
      break;
    }
    default:
      fail(ErrorCode::Arg, "Expected linear, scaled-linear or squaredcos_cap_v2 for betaSchedule");
  }
  return betas;
}

DiscreteVpSchedule::DiscreteVpSchedule(std::vector<double> betas, std::string name)
    : betas_(std::move(betas)), n_(static_cast<int>(betas_.size())), name_(std::move(name)) {
  if (betas_.size() < 2) badOption("betas", "an array of at least 2 values", static_cast<double>(betas_.size()));
  logAlphaKnots_.assign(betas_.size() + 1, 0.0);
  double acc = 0;
  for (size_t i = 0; i < betas_.size(); ++i) {
    double b = betas_[i];
    if (!(b > 0 && b < 1)) badOption("betas[" + std::to_string(i) + "]", "a number in (0, 1)", b);
    acc += 0.5 * std::log1p(-b);
    logAlphaKnots_[i + 1] = acc;
  }
}

double DiscreteVpSchedule::logAlpha(double t) const {
  // Segment [k/N, (k+1)/N]; outside [0, 1] the end segments extrapolate (the official interpolate_fn).
  double x = t * n_;
  double kf = std::floor(x);
  int k = kf < 0 ? 0 : kf >= n_ ? n_ - 1 : static_cast<int>(kf);
  double frac = x - k;
  double a = logAlphaKnots_[static_cast<size_t>(k)], b = logAlphaKnots_[static_cast<size_t>(k) + 1];
  return a + (b - a) * frac;
}

double DiscreteVpSchedule::tFromLogAlpha(double la) const {
  if (la >= 0) return 0.0;
  // Knots decrease; find the first knot below la.
  auto it = std::upper_bound(logAlphaKnots_.begin(), logAlphaKnots_.end(), la, std::greater<double>());
  size_t k1 = it == logAlphaKnots_.end() ? logAlphaKnots_.size() - 1 : static_cast<size_t>(it - logAlphaKnots_.begin());
  size_t k0 = k1 - 1;
  double a = logAlphaKnots_[k0], b = logAlphaKnots_[k1];
  return (static_cast<double>(k0) + (la - a) / (b - a)) / n_;
}

// The official model_wrapper feeds 1000 * (t - 1/N): for N = 1000 that is the integer training
// timestep k at t = (k + 1)/N.
double DiscreteVpSchedule::modelTimestep(double t) const { return (t - 1.0 / n_) * 1000.0; }
double DiscreteVpSchedule::tFromModelTimestep(double modelT) const { return modelT / 1000.0 + 1.0 / n_; }

// ---- continuous VP -------------------------------------------------------------------------------

VpLinearSchedule::VpLinearSchedule(double beta0, double beta1) : beta0_(beta0), beta1_(beta1) {
  if (!(beta0 >= 0 && std::isfinite(beta0))) badOption("beta0", "a finite number >= 0", beta0);
  if (!(beta1 >= beta0 && beta1 > 0 && std::isfinite(beta1))) badOption("beta1", "a finite number > 0 and >= beta0", beta1);
}

// log alpha = -0.5 int_0^t beta = -(beta1 - beta0) t^2 / 4 - beta0 t / 2.
double VpLinearSchedule::logAlpha(double t) const {
  return -0.25 * t * t * (beta1_ - beta0_) - 0.5 * t * beta0_;
}

// Positive root of (beta1 - beta0)/2 t^2 + beta0 t - L = 0, L = -2 log alpha, in the form without
// cancellation (the official inverse_lambda).
double VpLinearSchedule::tFromLogAlpha(double la) const {
  double L = -2.0 * la;
  if (L <= 0) return 0.0;
  return 2.0 * L / (beta0_ + std::sqrt(beta0_ * beta0_ + 2.0 * (beta1_ - beta0_) * L));
}

VpCosineSchedule::VpCosineSchedule() {
  constexpr double s = 0.008;
  theta0_ = s / (1.0 + s) * std::numbers::pi / 2;
  tanTheta0_ = std::tan(theta0_);
}

// alpha = cos(theta0 + d)/cos(theta0), d = t/(1+s) pi/2, expanded as cos d - tan(theta0) sin d so that
// small t does not subtract two nearly equal cosines.
double VpCosineSchedule::logAlpha(double t) const {
  double d = t / 1.008 * std::numbers::pi / 2;
  double sh = std::sin(0.5 * d);
  return std::log1p(-2.0 * sh * sh - tanTheta0_ * std::sin(d));
}

// m = 1 - alpha = 2 sin^2(d/2) + tan(theta0) sin d; with u = tan(d/2) this is the quadratic
// (2 - m) u^2 + 2 tan(theta0) u - m = 0, solved by its cancellation-free root.
double VpCosineSchedule::tFromLogAlpha(double la) const {
  if (la >= 0) return 0.0;
  double m = -std::expm1(la);
  double T = tanTheta0_;
  double u = m / (T + std::sqrt(T * T + m * (2.0 - m)));
  double d = 2.0 * std::atan(u);
  return d * 1.008 * 2.0 / std::numbers::pi;
}

// ---- VE / PFGM++ ---------------------------------------------------------------------------------

VeSchedule::VeSchedule(double sigmaMin, double sigmaMax) : sigmaMin_(sigmaMin), sigmaMax_(sigmaMax) {
  if (!(sigmaMin > 0 && std::isfinite(sigmaMin))) badOption("sigmaMin", "a finite number > 0", sigmaMin);
  if (!(sigmaMax > sigmaMin && std::isfinite(sigmaMax))) badOption("sigmaMax", "a finite number > sigmaMin", sigmaMax);
}

double VeSchedule::lambda(double t) const { return -std::log(t); }
double VeSchedule::tFromLambda(double lambda) const { return std::exp(-lambda); }

PfgmppSchedule::PfgmppSchedule(double augmentedDim, double sigmaMin, double sigmaMax)
    : VeSchedule(sigmaMin, sigmaMax), d_(augmentedDim) {
  if (!(augmentedDim > 0 && std::isfinite(augmentedDim))) badOption("augmentedDim", "a finite number > 0", augmentedDim);
}

double PfgmppSchedule::radius(double t) const { return t * std::sqrt(d_); }

// ---- flow ----------------------------------------------------------------------------------------

FlowSchedule::FlowSchedule(double shift) : shift_(shift) {
  if (!(shift > 0 && std::isfinite(shift))) badOption("shift", "a finite number > 0", shift);
}

double FlowSchedule::lambda(double t) const { return std::log1p(-t) - std::log(t); }

// t = sigmoid(-lambda), branch chosen so exp never overflows.
double FlowSchedule::tFromLambda(double lambda) const {
  if (lambda >= 0) {
    double e = std::exp(-lambda);
    return e / (1.0 + e);
  }
  return 1.0 / (1.0 + std::exp(lambda));
}

// t^2 - ((1-t)/(1-s))^2 s^2 factored as a difference of squares: exact sign, no cancellation.
double FlowSchedule::sigmaTS2(double t, double s) const {
  double q = 1.0 - s;
  return (t - s) * (t + s - 2.0 * t * s) / (q * q);
}

double FlowSchedule::shiftTime(double u) const { return shift_ * u / (1.0 + (shift_ - 1.0) * u); }
double FlowSchedule::unshiftTime(double t) const { return t / (shift_ - (shift_ - 1.0) * t); }

// ---- factories -----------------------------------------------------------------------------------

std::unique_ptr<Schedule> makeDiscreteVp(const DiscreteVpOptions& options) {
  const char* name = options.betaSchedule == BetaSchedule::Linear          ? "vp-discrete-linear"
                     : options.betaSchedule == BetaSchedule::ScaledLinear ? "vp-discrete-scaled-linear"
                                                                          : "vp-discrete-cosine";
  return std::make_unique<DiscreteVpSchedule>(makeBetas(options), name);
}
std::unique_ptr<Schedule> makeDiscreteVpFromBetas(const std::vector<double>& betas) {
  return std::make_unique<DiscreteVpSchedule>(betas, "vp-discrete");
}
std::unique_ptr<Schedule> makeVpLinear(double beta0, double beta1) {
  return std::make_unique<VpLinearSchedule>(beta0, beta1);
}
std::unique_ptr<Schedule> makeVpCosine() { return std::make_unique<VpCosineSchedule>(); }
std::unique_ptr<Schedule> makeVe(double sigmaMin, double sigmaMax) {
  return std::make_unique<VeSchedule>(sigmaMin, sigmaMax);
}
std::unique_ptr<Schedule> makePfgmpp(double augmentedDim, double sigmaMin, double sigmaMax) {
  return std::make_unique<PfgmppSchedule>(augmentedDim, sigmaMin, sigmaMax);
}
std::unique_ptr<Schedule> makeFlow(double shift) { return std::make_unique<FlowSchedule>(shift); }

}  // namespace nd::solvers
