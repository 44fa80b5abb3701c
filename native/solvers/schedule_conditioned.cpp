// Conditioned schedules: x_t = alpha x0 + (1 - alpha) c + sigma eps (see Schedule::conditioned).
#include <cmath>

#include "core/error.h"
#include "solvers/schedule.h"

namespace nd::solvers {
namespace {

void require(bool ok, const std::string& option, const std::string& expected, double received) {
  if (!ok) fail(ErrorCode::Arg, "Expected " + expected + " for " + option + " but received " + numberText(received));
}

}  // namespace

MeanRevertingSchedule::MeanRevertingSchedule(double theta0, double theta1, double stationaryStd)
    : theta0_(theta0), theta1_(theta1), std_(stationaryStd) {
  require(std::isfinite(theta0) && theta0 >= 0, "theta0", "a finite number >= 0", theta0);
  require(std::isfinite(theta1) && theta1 > 0, "theta1", "a finite number > 0", theta1);
  require(std::isfinite(stationaryStd) && stationaryStd > 0, "stationaryStd", "a finite number > 0",
          stationaryStd);
}

double MeanRevertingSchedule::alpha(double t) const { return std::exp(-thetaIntegral(t)); }
double MeanRevertingSchedule::sigma(double t) const {
  // 1 - alpha^2 = -expm1(-2 I), exact for small t.
  return std_ * std::sqrt(-std::expm1(-2.0 * thetaIntegral(t)));
}
double MeanRevertingSchedule::lambda(double t) const {
  double i = thetaIntegral(t);
  return -i - std::log(std_) - 0.5 * std::log(-std::expm1(-2.0 * i));
}
double MeanRevertingSchedule::alphaTS(double t, double s) const {
  return std::exp(thetaIntegral(s) - thetaIntegral(t));
}

ResShiftSchedule::ResShiftSchedule(double kappa, int steps, double minNoiseLevel, double etasEnd,
                                   double power)
    : kappa_(kappa), power_(power), steps_(steps) {
  require(std::isfinite(kappa) && kappa > 0, "kappa", "a finite number > 0", kappa);
  require(steps >= 2 && steps <= 100000, "steps", "an integer in [2, 100000]", steps);
  require(std::isfinite(minNoiseLevel) && minNoiseLevel > 0, "minNoiseLevel", "a finite number > 0",
          minNoiseLevel);
  require(std::isfinite(power) && power > 0, "power", "a finite number > 0", power);
  sqrtEta1_ = std::min(minNoiseLevel / kappa, minNoiseLevel);
  require(std::isfinite(etasEnd) && etasEnd > sqrtEta1_ && etasEnd < 1, "etasEnd",
          "a number in (sqrt(eta_1), 1)", etasEnd);
  logB_ = std::log(etasEnd / sqrtEta1_) / (steps - 1);
}

double ResShiftSchedule::eta(double t) const {
  double k = t * steps_;
  double eta1 = sqrtEta1_ * sqrtEta1_;
  if (k <= 1.0) return eta1 * k;
  double u = (k - 1.0) / (steps_ - 1);
  double sqrtEta = sqrtEta1_ * std::exp(logB_ * (steps_ - 1) * std::pow(u, power_));
  return sqrtEta * sqrtEta;
}

double ResShiftSchedule::lambda(double t) const {
  double e = eta(t);
  return std::log1p(-e) - std::log(kappa_) - 0.5 * std::log(e);
}

BrownianBridgeSchedule::BrownianBridgeSchedule(double maxVariance, double margin)
    : s_(maxVariance), margin_(margin) {
  require(std::isfinite(maxVariance) && maxVariance > 0, "maxVariance", "a finite number > 0", maxVariance);
  require(std::isfinite(margin) && margin > 0 && margin < 0.25, "margin", "a number in (0, 0.25)", margin);
}

double BrownianBridgeSchedule::lambda(double t) const {
  // log((1 - t) / sqrt(2 s t (1 - t))) = 0.5 log((1 - t) / (2 s t))
  return 0.5 * (std::log1p(-t) - std::log(2.0 * s_ * t));
}

std::unique_ptr<Schedule> makeMeanReverting(double theta0, double theta1, double stationaryStd) {
  return std::make_unique<MeanRevertingSchedule>(theta0, theta1, stationaryStd);
}
std::unique_ptr<Schedule> makeResShift(double kappa, int steps, double minNoiseLevel, double etasEnd,
                                       double power) {
  return std::make_unique<ResShiftSchedule>(kappa, steps, minNoiseLevel, etasEnd, power);
}
std::unique_ptr<Schedule> makeBrownianBridge(double maxVariance, double margin) {
  return std::make_unique<BrownianBridgeSchedule>(maxVariance, margin);
}

}  // namespace nd::solvers
