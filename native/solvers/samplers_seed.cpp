// Samplers from the seed papers that are not members of the DPM-Solver engine:
//   plms-hb, ghvb   momentum on Adams-Bashforth in EDM coordinates (Wizadwongsa & Suwajanakorn 2023)
//   lcm             multistep consistency sampling (Luo et al. 2023, diffusers LCMScheduler)
//   consistency-sde stochastic consistency sampling with noise control gamma (TCD / SCott style)
//   resshift        ResShift's posterior over eta (Yue et al. 2023)
//   interpolant-sde Euler-Maruyama for the stochastic-interpolant SDE family (Albergo et al. 2023)
//   flow-euler, flow-heun  rectified-flow Euler / Heun on dx/dt = alpha' x0 + sigma' eps
// (mrs and dpmpp-hb use the DPM-Solver engine; pfgmpp and brownian-bridge reuse Heun and DDIM.)
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "solvers/sampler_registry.h"

namespace nd::solvers {

void addMultistepSeedSamplers(std::vector<SamplerEntry>& r);  // samplers_dpm.cpp

namespace {

template <class T>
using Base = Sampler<T>;

// d alpha/dt and d sigma/dt: exact for flow (-1, 1) and VE (0, 1); otherwise a Richardson-extrapolated
// central difference (one-sided at the ends of [tClean, tMax]), accurate to ~1e-10 for smooth schedules.
inline void timeDerivatives(const Schedule& s, double t, double& da, double& ds) {
  if (dynamic_cast<const FlowSchedule*>(&s)) { da = -1; ds = 1; return; }
  if (dynamic_cast<const VeSchedule*>(&s)) { da = 0; ds = 1; return; }
  double lo = s.tClean(), hi = s.tMax(), h = 1e-4 * (hi - lo);
  auto diff = [&](auto f, double step) {
    if (t - step >= lo && t + step <= hi) return (f(t + step) - f(t - step)) / (2 * step);
    if (t + 2 * step <= hi) return (-3 * f(t) + 4 * f(t + step) - f(t + 2 * step)) / (2 * step);
    return (3 * f(t) - 4 * f(t - step) + f(t - 2 * step)) / (2 * step);
  };
  auto rich = [&](auto f) { return (4 * diff(f, h / 2) - diff(f, h)) / 3; };
  da = rich([&](double u) { return s.alpha(u); });
  ds = rich([&](double u) { return s.sigma(u); });
}

// ---- momentum Adams-Bashforth (plms-hb, ghvb) -----------------------------------------------------------
// The damped Adams-Bashforth mixer of the momentum paper, newest first, already divided by b.
inline std::vector<double> dampedAdamsBashforth(int order, double b) {
  std::vector<double> c;
  switch (order) {
    case 1: c = {1.0}; break;
    case 2: c = {(2 + b) / 2, -(2 - b) / 2}; break;
    case 3: c = {(18 + 5 * b) / 12, -(24 - 8 * b) / 12, (6 - b) / 12}; break;
    default: c = {(46 + 9 * b) / 24, -(78 - 19 * b) / 24, (42 - 5 * b) / 24, -(10 - b) / 24}; break;
  }
  for (double& v : c) v /= b;
  return c;
}

template <class T>
class MomentumAdams : public Base<T> {
 public:
  MomentumAdams(const SamplerSpec& sp, SamplerSetup su) : Base<T>(sp, std::move(su)) {
    if (this->spec().name == "ghvb") {
      double o = this->option("order");
      order_ = int(std::ceil(o));
      beta_ = o == std::floor(o) ? 1.0 : o - std::floor(o);
    } else {
      order_ = int(this->option("order"));
      beta_ = this->option("beta");
    }
  }

 protected:
  double edm(double t) const { return this->sigma(t) == 0 ? 0.0 : this->schedule().edmSigma(t); }
  void update(const T* x, const T* m, T* out) override {
    int i = i_++;
    double t = this->t(i), tn = this->t(i + 1);
    double a = this->alpha(t), an = this->alpha(tn), dsh = edm(tn) - edm(t);
    auto e = this->epsOf(t);
    this->pushHistory();
    int order = std::min(order_, this->historyCount());
    bool ghvb = this->spec().name == "ghvb";
    if (beta_ == 1.0) {
      // Momentum 1 is the identity: the plain Adams-Bashforth (iPNDM) step, in one pass.
      std::vector<double> c = dampedAdamsBashforth(order, 1.0);
      StepPass<T> p;
      p.x = x; p.m = m; p.cx = e.cx; p.cm = e.cm; p.dStore = this->history(0);
      // Same association as ipndm (alpha' (c_j dsigma)) so that the result is bit-identical.
      p.a = an / a; p.b = an * (c[0] * dsh);
      for (int j = 1; j < order; ++j) p.term(an * (c[size_t(j)] * dsh), this->history(j));
      p.out = out;
      this->run(p);
      return;
    }
    T* v = this->buffer(6);
    bool first = this->historyCount() == 1;
    StepPass<T> pv;
    pv.x = x; pv.m = m; pv.cx = e.cx; pv.cm = e.cm;
    if (!ghvb) {
      // Heavy ball: v <- (1 - beta) v + beta AB(eps history); the history holds eps.
      std::vector<double> c = dampedAdamsBashforth(order, 1.0);
      double w = first ? 1.0 : beta_;
      pv.dStore = this->history(0);
      pv.a = 0; pv.b = w * c[0];
      for (int j = 1; j < order; ++j) pv.term(w * c[size_t(j)], this->history(j));
      if (!first) pv.term(1.0 - beta_, v);
      pv.out = v;
      this->run(pv);
      StepPass<T> px;
      px.x = x; px.a = an / a; px.term(an * dsh, v); px.out = out;
      this->run(px);
      return;
    }
    // GHVB: v <- (1 - beta) v + beta eps, and the step is the damped Adams-Bashforth mix of the last
    // `order` velocities. The damped coefficients invert the EMA's lag only for a velocity history that
    // is an EMA of a smooth eps, so v starts at the first eps (a constant past) and the first order-1
    // steps, which lack a full v history, are plain Adams-Bashforth steps on eps.
    T* vNew = vRing(-1);
    pv.dStore = this->history(0);
    pv.a = 0; pv.b = first ? 1.0 : beta_;
    if (!first) pv.term(1.0 - beta_, vRing(0));
    pv.out = vNew;
    this->run(pv);
    ++vHead_;
    StepPass<T> px;
    px.x = x; px.a = an / a;
    if (this->historyCount() < order_) {
      std::vector<double> c = dampedAdamsBashforth(order, 1.0);
      for (int j = 0; j < order; ++j) px.term(an * dsh * c[size_t(j)], this->history(j));
    } else {
      std::vector<double> c = dampedAdamsBashforth(order, beta_);
      for (int j = 0; j < order; ++j) px.term(an * dsh * c[size_t(j)], vRing(j));
    }
    px.out = out;
    this->run(px);
  }
  // Ring of velocities in buffers 0..4: vRing(0) is the newest, vRing(-1) the slot the next one takes.
  T* vRing(int k) { return this->buffer(((vHead_ - 1 - k) % 5 + 5) % 5); }
  int vHead_ = 0;
  int order_ = 4, i_ = 0;
  double beta_ = 1;
};

// ---- consistency sampling: lcm, consistency-sde ------------------------------------------------------------
template <class T>
class Consistency : public Base<T> {
 public:
  Consistency(const SamplerSpec& sp, SamplerSetup su) : Base<T>(sp, std::move(su)) {}

 protected:
  void update(const T* x, const T* m, T* out) override {
    int i = i_++;
    double t = this->t(i), tn = this->t(i + 1);
    bool last = i + 1 == this->steps();
    auto c = this->x0Of(t);
    // LCM boundary condition: denoised = c_out x0 + c_skip x (diffusers LCMScheduler, sigma_data 0.5,
    // timestep_scaling 10), on for discrete-time schedules under 'auto'.
    double cSkip = 0, cOut = 1;
    if (this->spec().name == "lcm") {
      const std::string& mode = this->choice("boundary");
      bool on = mode == "on" || (mode == "auto" && this->schedule().numTrainTimesteps() > 0);
      if (on) {
        double tau = 10.0 * this->schedule().modelTimestep(t), sd2 = 0.25;
        cSkip = sd2 / (tau * tau + sd2);
        cOut = tau / std::sqrt(tau * tau + sd2);
      }
    }
    StepPass<T> p;
    p.x = x; p.m = m; p.cx = c.cx; p.cm = c.cm; p.dStore = this->buffer(0); p.out = out;
    if (last) {
      p.a = cSkip; p.b = cOut;
      this->run(p);
      return;
    }
    double an = this->alpha(tn), sn = this->sigma(tn);
    if (this->spec().name == "lcm") {
      p.a = an * cSkip; p.b = an * cOut;
      p.z = this->noise(t, tn); p.cz = sn;
      this->run(p);
      return;
    }
    // consistency-sde: DDIM from t to s = tClean + (1 - gamma)(t' - tClean), then the forward process s -> t'.
    double gamma = this->option("gamma");
    const Schedule& S = this->schedule();
    double s = S.tClean() + (1.0 - gamma) * (tn - S.tClean());
    double a = this->alpha(t), sg = this->sigma(t), as = this->alpha(s), ss = this->sigma(s);
    double A = S.alphaTS(tn, s), var = std::max(0.0, S.sigmaTS2(tn, s));
    p.a = A * ss / sg;
    p.b = A * (as - ss * a / sg);
    if (var > 0) { p.z = this->noise(t, tn); p.cz = std::sqrt(var); }
    this->run(p);
  }
  int i_ = 0;
};

// ---- ResShift ---------------------------------------------------------------------------------------------
template <class T>
class ResShift : public Base<T> {
 public:
  ResShift(const SamplerSpec& sp, SamplerSetup su) : Base<T>(sp, std::move(su)) {}

 protected:
  void update(const T* x, const T* m, T* out) override {
    int i = i_++;
    double t = this->t(i), tn = this->t(i + 1);
    // eta = 1 - alpha, kappa^2 = sigma^2 / eta on any schedule of the ResShift form.
    double eta = 1.0 - this->alpha(t), etaN = 1.0 - this->alpha(tn);
    double kappa2 = std::pow(this->sigma(t), 2) / eta;
    double r = etaN / eta;
    auto c = this->x0Of(t);
    StepPass<T> p;
    p.x = x; p.m = m; p.cx = c.cx; p.cm = c.cm; p.dStore = this->buffer(0);
    p.a = r; p.b = 1.0 - r;
    double var = kappa2 * r * (eta - etaN);
    if (var > 0) { p.z = this->noise(t, tn); p.cz = std::sqrt(var); }
    p.out = out;
    this->run(p);
  }
  int i_ = 0;
};

// ---- raw-coordinate integrators: flow-euler, flow-heun, interpolant-sde -------------------------------------
template <class T>
class FlowIntegrator : public Base<T> {
 public:
  FlowIntegrator(const SamplerSpec& sp, SamplerSetup su) : Base<T>(sp, std::move(su)) {}

 protected:
  bool heun() const { return this->spec().name == "flow-heun"; }
  std::vector<double> buildPlan() override {
    std::vector<double> plan;
    for (int i = 0; i < this->steps(); ++i) {
      plan.push_back(this->t(i));
      if (heun() && this->sigma(this->t(i + 1)) > 0) plan.push_back(this->t(i + 1));
    }
    return plan;
  }
  // The PF-ODE velocity dx/dt = alpha' x0 + sigma' eps as a linear function of (x, m).
  typename Base<T>::Lin velocityOf(double t) const {
    double da, ds;
    timeDerivatives(this->schedule(), t, da, ds);
    double a = this->alpha(t), s = this->sigma(t);
    auto c = this->x0Of(t);
    double k = da - ds * a / s;  // v = (ds/s) x + k x0
    return {ds / s + k * c.cx, k * c.cm};
  }
  double epsilon(double t) const {
    double e = this->option("eps");
    const std::string& shape = this->choice("epsShape");
    if (shape == "sigma") e *= this->sigma(t);
    else if (shape == "sigma2") e *= this->sigma(t) * this->sigma(t);
    return e;
  }
  void update(const T* x, const T* m, T* out) override {
    double t = this->t(i_), tn = this->t(i_ + 1), dt = tn - t;
    if (this->spec().name == "interpolant-sde") {
      ++i_;
      bool last = i_ == this->steps();
      double eps = last ? 0.0 : epsilon(t);
      // dx = [v + eps(t) eps_hat / sigma] dt + sqrt(2 eps(t)) dW, integrated backwards (dt < 0).
      auto v = velocityOf(t);
      auto e = this->epsOf(t);
      double s = this->sigma(t);
      StepPass<T> p;
      p.x = x; p.m = m; p.dStore = this->buffer(0);
      p.cx = v.cx + (eps / s) * e.cx; p.cm = v.cm + (eps / s) * e.cm;  // the drift
      p.a = 1.0; p.b = dt;
      if (eps > 0) { p.z = this->noise(t, tn); p.cz = std::sqrt(2.0 * eps * std::fabs(dt)); }
      p.out = out;
      this->run(p);
      return;
    }
    bool toClean = this->sigma(tn) == 0;
    if (!heun() || stage_ == 0) {
      auto v = velocityOf(t);
      StepPass<T> p;
      p.x = x; p.m = m; p.cx = v.cx; p.cm = v.cm; p.dStore = this->buffer(1);
      p.a = 1.0; p.b = dt; p.out = out;
      if (heun() && !toClean) {
        this->copy(this->buffer(0), x);
        stage_ = 1;
      } else {
        ++i_;
      }
      this->run(p);
      return;
    }
    auto v = velocityOf(tn);
    StepPass<T> p;
    p.x = x; p.m = m; p.cx = v.cx; p.cm = v.cm; p.dStore = this->buffer(2);
    p.a = 0; p.b = 0.5 * dt;
    p.term(1.0, this->buffer(0)).term(0.5 * dt, this->buffer(1));
    p.out = out;
    this->run(p);
    stage_ = 0;
    ++i_;
  }
  int i_ = 0, stage_ = 0;
};

}  // namespace

void addSeedPaperSamplers(std::vector<SamplerEntry>& r) {
  const std::string momentumPaper = "Wizadwongsa & Suwajanakorn 2023 (Diffusion Sampling with Momentum)";
  r.push_back(makeEntry<MomentumAdams>(makeSpec("plms-hb", "seed-paper", false, "1 for beta < 1; order at beta 1 (on grids uniform in sigma/alpha)", "1", momentumPaper,
                                            "PLMS with heavy-ball momentum on the Adams-Bashforth direction",
                                            {integerOption("order", 4, 1, 4, "Adams-Bashforth order"),
                                             numberOption("beta", 0.8, 0.01, 1, "momentum: 1 is plain PLMS (iPNDM)")})));
  r.push_back(makeEntry<MomentumAdams>(makeSpec("ghvb", "seed-paper", false, "ceil(order) (on grids uniform in sigma/alpha)", "1", momentumPaper,
                                            "generalised heavy ball: a fractional order o runs order ceil(o) with beta = frac(o)",
                                            {numberOption("order", 3.5, 1, 4, "fractional order, e.g. 1.5, 2.5, 3.8")})));
  addMultistepSeedSamplers(r);
  r.push_back(makeEntry<Consistency>(makeSpec("lcm", "seed-paper", true, "-", "1", "Luo et al. 2023 (Latent Consistency Models); diffusers LCMScheduler",
                                          "x0 from the consistency model, then fresh noise to the next time; the last step returns x0",
                                          {enumOption("boundary", "auto", {"auto", "on", "off"},
                                                      "c_skip/c_out boundary scalings (auto: on for discrete-time schedules)")})));
  r.push_back(makeEntry<Consistency>(makeSpec("consistency-sde", "seed-paper", true, "-", "1",
                                          "stochastic consistency sampling: TCD (Zheng et al. 2024) / SCott (Liu et al. 2024) noise control",
                                          "DDIM to s = (1-gamma) t', then the forward process to t'; gamma 1 is LCM, 0 is DDIM",
                                          {numberOption("gamma", 0.3, 0, 1, "share of the next noise level that is fresh noise")})));
  SamplerSpec rs = makeSpec("resshift", "seed-paper", true, "-", "1", "Yue et al. 2023 (ResShift)",
                        "posterior mean (eta'/eta) x + (1 - eta'/eta) x0, variance kappa^2 (eta'/eta)(eta - eta'); needs schedules.resshift and a condition");
  rs.needsCondition = true;
  r.push_back(makeEntry<ResShift>(rs));
  r.push_back(makeEntry<FlowIntegrator>(makeSpec("interpolant-sde", "seed-paper", true, "1 (weak)", "1",
                                             "Albergo, Boffi & Vanden-Eijnden 2023 (Stochastic Interpolants)",
                                             "Euler-Maruyama for dx = [b + eps(t) eps_hat/sigma] dt + sqrt(2 eps(t)) dW; every eps(t) has the same marginals; the last step is deterministic",
                                             {numberOption("eps", 1.0, 0, 1e6, "diffusion scale"),
                                              enumOption("epsShape", "sigma", {"constant", "sigma", "sigma2"}, "eps(t) = eps * {1, sigma(t), sigma(t)^2}")})));
  r.push_back(makeEntry<FlowIntegrator>(makeSpec("flow-euler", "flow", false, "1", "1", "Liu et al. 2023 (Rectified Flow); SD3/Flux Euler",
                                             "Euler in the model's own coordinates on dx/dt = alpha' x0 + sigma' eps")));
  r.push_back(makeEntry<FlowIntegrator>(makeSpec("flow-heun", "flow", false, "2", "2 (1 on a last step to sigma 0)", "Rectified-flow Heun (diffusers FlowMatchHeunDiscreteScheduler)",
                                             "Heun in the model's own coordinates")));
}

}  // namespace nd::solvers
