// Noise schedules: x_t = alpha(t) x0 + sigma(t) eps, scalar per step, in double precision.
// Every schedule exposes lambda(t) = log(alpha/sigma) and its inverse, so that any sampler written in
// lambda (DPM-Solver family, UniPC, DEIS...) and any step spacing works on every schedule alike.
#pragma once
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace nd::solvers {

class Schedule {
 public:
  virtual ~Schedule() = default;
  virtual std::string name() const = 0;

  // [tMin, tMax] is where a model is evaluated (tMax is the noisiest time). tClean is the time where
  // sigma = 0 (lambda = +inf): a final "denoise to x0" step may end there even when it is below tMin.
  virtual double tMin() const = 0;
  virtual double tMax() const = 0;
  virtual double tClean() const { return 0.0; }

  virtual double alpha(double t) const = 0;
  virtual double sigma(double t) const = 0;
  virtual double lambda(double t) const = 0;
  // Inverse of lambda on [tClean, tMax]; lambda = +inf gives tClean. The default is a bracketed
  // bisection (full double precision); schedules with a closed form override it.
  virtual double tFromLambda(double lambda) const;

  // Transition moments between times s and t: x_t | x_s = alphaTS x_s + sqrt(sigmaTS2) z for the
  // forward direction t > s. The same two numbers drive the reverse (s > t) DDIM/ancestral updates;
  // there sigmaTS2 is negative (it is the forward variance of the opposite step, scaled), and the
  // identities alphaTS(t,s) = alphaTS(t,u) alphaTS(u,s) and
  // sigmaTS2(t,s) = sigmaTS2(t,u) + alphaTS(t,u)^2 sigmaTS2(u,s) hold for any order of s, u, t.
  virtual double alphaTS(double t, double s) const { return alpha(t) / alpha(s); }
  virtual double sigmaTS2(double t, double s) const;

  // EDM / k-diffusion noise level of the same marginal: x/alpha = x0 + (sigma/alpha) eps.
  double edmSigma(double t) const;
  double tFromEdmSigma(double edmSigma) const;

  // Training length N of a discrete-time schedule (diffusers' num_train_timesteps); 0 if continuous.
  virtual int numTrainTimesteps() const { return 0; }
  // Timestep fed to the network. Identity unless the schedule says otherwise (discrete VP: the
  // official DPM-Solver's 1000 * (t - 1/N)).
  virtual double modelTimestep(double t) const { return t; }
  virtual double tFromModelTimestep(double modelT) const { return modelT; }

  // Warp applied to grids built in time (time-uniform, time-quadratic): t = shiftTime(u). Identity
  // except for flow matching with an SD3/Flux shift.
  virtual double shiftTime(double u) const { return u; }
  virtual double unshiftTime(double t) const { return t; }

  // Conditioned schedules (mean-reverting, ResShift, Brownian bridge) move the data towards a
  // condition c (the degraded image, the neighbouring frame): x_t = alpha x0 + (1 - alpha) c + sigma eps.
  // Then x~ = x - (1 - alpha) c has the plain marginal alpha x0 + sigma eps, which is what every
  // sampler integrates; samplers add and remove the shift at their boundaries.
  virtual bool conditioned() const { return false; }

 protected:
  // Bisection for a decreasing function f on [lo, hi]; runs until the bracket cannot shrink.
  template <typename F>
  static double bisectDecreasing(F&& f, double target, double lo, double hi);
};

// ---- VP family: alpha^2 + sigma^2 = 1, everything derived from log alpha -----------------------
class VpSchedule : public Schedule {
 public:
  virtual double logAlpha(double t) const = 0;
  // Inverse of logAlpha (logAlpha <= 0); default: bisection.
  virtual double tFromLogAlpha(double logAlpha) const;

  double alpha(double t) const override;
  double sigma(double t) const override;
  double lambda(double t) const override;
  double tFromLambda(double lambda) const override;
  double alphaTS(double t, double s) const override;
  double sigmaTS2(double t, double s) const override;
};

enum class BetaSchedule { Linear, ScaledLinear, SquaredCosCapV2 };

struct DiscreteVpOptions {
  BetaSchedule betaSchedule = BetaSchedule::Linear;
  int numTrainTimesteps = 1000;
  // Defaults: linear 1e-4..0.02, scaled-linear 0.00085..0.012; unused by squaredcos_cap_v2.
  std::optional<double> betaStart, betaEnd;
};

// Betas as diffusers builds them (linear, linear in sqrt(beta), or the capped cosine of iDDPM).
std::vector<double> makeBetas(const DiscreteVpOptions& options);

// Discrete-time VP from betas with the official DPM-Solver's continuous-time view: knots
// t_n = n/N (n = 1..N) carry log alpha_n = 0.5 sum_{i<n} log(1 - beta_i), joined linearly in t.
// One extra knot (t = 0, log alpha = 0) makes the clean end reachable (diffusers' set_alpha_to_one).
class DiscreteVpSchedule : public VpSchedule {
 public:
  explicit DiscreteVpSchedule(std::vector<double> betas, std::string name = "vp-discrete");
  std::string name() const override { return name_; }
  double tMin() const override { return 1.0 / static_cast<double>(n_); }
  double tMax() const override { return 1.0; }
  double logAlpha(double t) const override;
  double tFromLogAlpha(double logAlpha) const override;
  int numTrainTimesteps() const override { return n_; }
  double modelTimestep(double t) const override;
  double tFromModelTimestep(double modelT) const override;
  const std::vector<double>& betas() const { return betas_; }

 private:
  std::vector<double> betas_;
  std::vector<double> logAlphaKnots_;  // N + 1 values at t = n/N, decreasing, [0] = 0
  int n_;
  std::string name_;
};

// Continuous VP with linear beta(t) = beta0 + t (beta1 - beta0) (ScoreSDE / DPM-Solver 'linear').
class VpLinearSchedule : public VpSchedule {
 public:
  VpLinearSchedule(double beta0, double beta1);
  std::string name() const override { return "vp-linear"; }
  double tMin() const override { return 0.0; }
  double tMax() const override { return 1.0; }
  double logAlpha(double t) const override;
  double tFromLogAlpha(double logAlpha) const override;
  double beta0() const { return beta0_; }
  double beta1() const { return beta1_; }

 private:
  double beta0_, beta1_;
};

// Continuous VP cosine of iDDPM as the official DPM-Solver defines it: s = 0.008, T = 0.9946.
class VpCosineSchedule : public VpSchedule {
 public:
  VpCosineSchedule();
  std::string name() const override { return "vp-cosine"; }
  double tMin() const override { return 0.0; }
  double tMax() const override { return 0.9946; }
  double logAlpha(double t) const override;
  double tFromLogAlpha(double logAlpha) const override;

 private:
  double theta0_, tanTheta0_;
};

// VE / EDM: alpha = 1, sigma = t (t is EDM's sigma).
class VeSchedule : public Schedule {
 public:
  VeSchedule(double sigmaMin, double sigmaMax);
  std::string name() const override { return "ve"; }
  double tMin() const override { return sigmaMin_; }
  double tMax() const override { return sigmaMax_; }
  double alpha(double) const override { return 1.0; }
  double sigma(double t) const override { return t; }
  double lambda(double t) const override;
  double tFromLambda(double lambda) const override;
  double alphaTS(double, double) const override { return 1.0; }
  double sigmaTS2(double t, double s) const override { return (t - s) * (t + s); }

 private:
  double sigmaMin_, sigmaMax_;
};

// PFGM++ aligned with EDM: same marginal noise level, the radius r = sigma sqrt(D) only changes the
// prior (see the pfgmpp sampler). D -> inf is VE.
class PfgmppSchedule : public VeSchedule {
 public:
  PfgmppSchedule(double augmentedDim, double sigmaMin, double sigmaMax);
  std::string name() const override { return "pfgmpp"; }
  double augmentedDim() const { return d_; }
  double radius(double t) const;

 private:
  double d_;
};

// Flow matching / rectified flow: alpha = 1 - t, sigma = t on [0, 1]. shift != 1 is the SD3/Flux
// timestep shift t = shift u / (1 + (shift - 1) u), applied to time-built grids (see timesteps.h);
// the marginal alpha/sigma at a given t is unchanged by it.
class FlowSchedule : public Schedule {
 public:
  explicit FlowSchedule(double shift);
  std::string name() const override { return "flow"; }
  double tMin() const override { return 0.0; }
  double tMax() const override { return 1.0; }
  double alpha(double t) const override { return 1.0 - t; }
  double sigma(double t) const override { return t; }
  double lambda(double t) const override;
  double tFromLambda(double lambda) const override;
  double alphaTS(double t, double s) const override { return (1.0 - t) / (1.0 - s); }
  double sigmaTS2(double t, double s) const override;
  double shiftTime(double u) const override;
  double unshiftTime(double t) const override;
  double shift() const { return shift_; }

 private:
  double shift_;
};

// ---- conditioned schedules ------------------------------------------------------------------------

// Mean-reverting SDE dx = theta_t (mu - x) dt + g_t dw with g^2 / theta = 2 lambda^2 (IR-SDE, MRS):
// alpha = exp(-int_0^t theta), sigma = lambda sqrt(1 - alpha^2), theta linear in t from theta0 to theta1.
class MeanRevertingSchedule : public Schedule {
 public:
  MeanRevertingSchedule(double theta0, double theta1, double stationaryStd);
  std::string name() const override { return "mean-reverting"; }
  double tMin() const override { return 0.0; }
  double tMax() const override { return 1.0; }
  double alpha(double t) const override;
  double sigma(double t) const override;
  double lambda(double t) const override;
  double alphaTS(double t, double s) const override;
  bool conditioned() const override { return true; }
  double stationaryStd() const { return std_; }

 private:
  double thetaIntegral(double t) const { return theta0_ * t + 0.5 * (theta1_ - theta0_) * t * t; }
  double theta0_, theta1_, std_;
};

// ResShift: x_t = x0 + eta_t (y - x0) + kappa sqrt(eta_t) eps, so alpha = 1 - eta, sigma = kappa sqrt(eta).
// eta at the T training indices k = t T (k = 1..T) follows the paper's exponential schedule
// sqrt(eta_k) = sqrt(eta_1) b^((T-1) ((k-1)/(T-1))^power); below k = 1 eta falls linearly to 0 at t = 0.
class ResShiftSchedule : public Schedule {
 public:
  ResShiftSchedule(double kappa, int steps, double minNoiseLevel, double etasEnd, double power);
  std::string name() const override { return "resshift"; }
  double tMin() const override { return 1.0 / steps_; }
  double tMax() const override { return 1.0; }
  double alpha(double t) const override { return 1.0 - eta(t); }
  double sigma(double t) const override { return kappa_ * std::sqrt(eta(t)); }
  double lambda(double t) const override;
  bool conditioned() const override { return true; }
  int numTrainTimesteps() const override { return steps_; }
  double modelTimestep(double t) const override { return t * steps_ - 1.0; }
  double tFromModelTimestep(double k) const override { return (k + 1.0) / steps_; }
  double eta(double t) const;
  double kappa() const { return kappa_; }

 private:
  double kappa_, sqrtEta1_, logB_, power_;
  int steps_;
};

// Brownian bridge between the data x0 (t = 0) and the condition y (t = 1): m_t = t,
// x_t = (1 - t) x0 + t y + sqrt(2 s t (1 - t)) eps (BBDM, s = maxVariance; s = 1/2 is the plain bridge).
// Both ends are degenerate, so models are evaluated on [margin, 1 - margin] (BBDM's 0.001..0.999).
class BrownianBridgeSchedule : public Schedule {
 public:
  BrownianBridgeSchedule(double maxVariance, double margin);
  std::string name() const override { return "brownian-bridge"; }
  double tMin() const override { return margin_; }
  double tMax() const override { return 1.0 - margin_; }
  double alpha(double t) const override { return 1.0 - t; }
  double sigma(double t) const override { return std::sqrt(2.0 * s_ * t * (1.0 - t)); }
  double lambda(double t) const override;
  bool conditioned() const override { return true; }
  double maxVariance() const { return s_; }

 private:
  double s_, margin_;
};

// ---- factories (options validated; ErrorCode::Arg "Expected ... for <option> but received ...") ---
std::unique_ptr<Schedule> makeDiscreteVp(const DiscreteVpOptions& options = {});
std::unique_ptr<Schedule> makeDiscreteVpFromBetas(const std::vector<double>& betas);
std::unique_ptr<Schedule> makeVpLinear(double beta0 = 0.1, double beta1 = 20.0);
std::unique_ptr<Schedule> makeVpCosine();
std::unique_ptr<Schedule> makeVe(double sigmaMin = 0.002, double sigmaMax = 80.0);
std::unique_ptr<Schedule> makePfgmpp(double augmentedDim, double sigmaMin = 0.002, double sigmaMax = 80.0);
std::unique_ptr<Schedule> makeFlow(double shift = 1.0);
std::unique_ptr<Schedule> makeMeanReverting(double theta0 = 0.1, double theta1 = 20.0, double stationaryStd = 1.0);
std::unique_ptr<Schedule> makeResShift(double kappa = 2.0, int steps = 15, double minNoiseLevel = 0.04,
                                       double etasEnd = 0.99, double power = 0.3);
std::unique_ptr<Schedule> makeBrownianBridge(double maxVariance = 0.5, double margin = 1e-3);

}  // namespace nd::solvers
