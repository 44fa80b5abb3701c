// Classic samplers: DDPM / DDIM (and the Brownian-bridge and DDIM-inversion variants of the DDIM
// family), and the k-diffusion samplers, which integrate the PF-ODE in EDM coordinates
// x/alpha = x0 + (sigma/alpha) eps, where the ODE reads d(x/alpha)/d(sigma/alpha) = eps.
// "sh" below is that EDM sigma (sigma/alpha); a VP state is alpha times the EDM state.
#include <algorithm>
#include <array>
#include <cmath>

#include "core/dtype.h"
#include "core/error.h"
#include "kernels/cpu/randn.h"
#include "solvers/sampler_registry.h"

namespace nd::solvers {
namespace {

template <class T>
using Base = Sampler<T>;

// ---- DDIM family ------------------------------------------------------------------------------------
// x' = alpha' x0 + sqrt(sigma'^2 - s^2) eps + s z, with s = eta * (the DDPM posterior std), where the
// posterior std uses the schedule's transition variance sigma_{t|t'}^2: s^2 = sigma'^2 sigma_{t|t'}^2 / sigma^2.
// ddpm's fixed-large variance keeps the posterior mean and draws with std sigma_{t|t'} instead.
template <class T>
class Ddim : public Base<T> {
 public:
  Ddim(const SamplerSpec& sp, SamplerSetup su) : Base<T>(sp, std::move(su)) {}

 protected:
  std::vector<double> buildPlan() override {
    if (this->spec().name == "ddim-inverse") {
      // Inversion walks the grid from the clean end to the noisy end.
      std::vector<double> g = this->grid();
      std::reverse(g.begin(), g.end());
      this->setGrid(std::move(g));
    }
    return Base<T>::buildPlan();
  }
  void update(const T* x, const T* m, T* out) override {
    const std::string& n = this->spec().name;
    double t = this->t(i_), tn = this->t(i_ + 1);
    ++i_;
    double a = this->alpha(t), s = this->sigma(t), an = this->alpha(tn), sn = this->sigma(tn);
    double eta = n == "ddpm" ? 1.0 : (n == "ddim-inverse" ? 0.0 : this->option("eta"));  // ddim, brownian-bridge
    double posteriorStd = 0, noiseStd = 0;
    if (tn < t && sn > 0 && eta > 0) {
      double var = std::max(0.0, this->schedule().sigmaTS2(t, tn));
      posteriorStd = eta * sn * std::sqrt(var) / s;
      noiseStd = posteriorStd;
      if (n == "ddpm" && this->choice("variance") == "fixed-large") noiseStd = std::sqrt(var);
    }
    double ceps = std::sqrt(std::max(0.0, sn * sn - posteriorStd * posteriorStd));
    auto c = this->x0Of(t);
    StepPass<T> p;
    p.x = x; p.m = m; p.cx = c.cx; p.cm = c.cm; p.dStore = this->buffer(0);
    p.a = ceps / s;
    p.b = an - ceps * a / s;
    if (noiseStd > 0) { p.z = this->noise(t, tn); p.cz = noiseStd; }
    p.out = out;
    this->run(p);
  }
  int i_ = 0;
};

// ---- k-diffusion: Euler, Euler ancestral ---------------------------------------------------------------
template <class T>
class Euler : public Base<T> {
 public:
  Euler(const SamplerSpec& sp, SamplerSetup su) : Base<T>(sp, std::move(su)) {}

 protected:
  void update(const T* x, const T* m, T* out) override {
    double t = this->t(i_), tn = this->t(i_ + 1);
    ++i_;
    double a = this->alpha(t), an = this->alpha(tn);
    double sh = this->schedule().edmSigma(t), shn = this->sigma(tn) == 0 ? 0.0 : this->schedule().edmSigma(tn);
    bool ancestral = this->spec().name == "euler-ancestral";
    AncestralSplit split = ancestral ? ancestralSplit(sh, shn, this->option("eta")) : AncestralSplit{shn, 0.0};
    auto e = this->epsOf(t);
    StepPass<T> p;
    p.x = x; p.m = m; p.cx = e.cx; p.cm = e.cm; p.dStore = this->buffer(0);
    p.a = an / a;
    p.b = an * (split.down - sh);
    if (split.up > 0) { p.z = this->noise(t, tn); p.cz = an * split.up * this->option("sNoise"); }
    p.out = out;
    this->run(p);
  }
  int i_ = 0;
};

// ---- Heun (EDM Algorithm 2, with churn) -------------------------------------------------------------------
template <class T>
class Heun : public Base<T> {
 public:
  Heun(const SamplerSpec& sp, SamplerSetup su) : Base<T>(sp, std::move(su)) {}

  void prepareStart(T* x) override {
    double g = gamma(0);
    if (g == 0) return;
    double t = this->t(0), sh = edm(t), th = tHat(0);
    StepPass<T> p;
    p.x = x; p.a = this->alpha(th) / this->alpha(t);
    p.z = this->noise(t, th);
    p.cz = this->alpha(th) * std::sqrt(std::max(0.0, std::pow(edm(th), 2) - sh * sh)) * this->option("sNoise");
    p.out = x;
    this->run(p);
  }

 protected:
  double edm(double t) const { return this->sigma(t) == 0 ? 0.0 : this->schedule().edmSigma(t); }
  double gamma(int i) const {
    double churn = this->option("churn");
    if (churn == 0 || i >= this->steps()) return 0;
    double sh = edm(this->t(i));
    if (sh < this->option("sTmin") || sh > this->option("sTmax")) return 0;
    return std::min(churn / this->steps(), std::sqrt(2.0) - 1.0);
  }
  double tHat(int i) const {
    double g = gamma(i);
    if (g == 0) return this->t(i);
    // Never above the schedule's range (the model is not defined there); the injected noise is
    // computed from the noise level actually reached, so a clamped churn stays consistent.
    return std::min(this->schedule().tMax(), this->schedule().tFromEdmSigma(edm(this->t(i)) * (1 + g)));
  }
  std::vector<double> buildPlan() override {
    std::vector<double> plan;
    for (int i = 0; i < this->steps(); ++i) {
      plan.push_back(tHat(i));
      if (edm(this->t(i + 1)) > 0) plan.push_back(this->t(i + 1));
    }
    return plan;
  }
  // Writes x_ve * alpha at the evaluation time of step i+1 (after its churn).
  // p writes alpha(tn) x_ve'; when step i+1 churns, rescale to the raised time and add its noise.
  void finishStep(StepPass<T>& p, double tn) {
    double g = gamma(i_ + 1);
    if (g > 0) {
      double th = tHat(i_ + 1), r = this->alpha(th) / this->alpha(tn);
      p.a *= r; p.b *= r;
      for (int k = 0; k < p.nTerms; ++k) p.terms[k].coef *= r;
      p.z = this->noise(tn, th);
      p.cz = this->alpha(th) * std::sqrt(std::max(0.0, std::pow(edm(th), 2) - std::pow(edm(tn), 2))) * this->option("sNoise");
    }
  }
  void update(const T* x, const T* m, T* out) override {
    double th = tHat(i_), tn = this->t(i_ + 1);
    double ah = this->alpha(th), an = this->alpha(tn), shh = edm(th), shn = edm(tn);
    if (stage_ == 0) {
      auto e = this->epsOf(th);
      StepPass<T> p;
      p.x = x; p.m = m; p.cx = e.cx; p.cm = e.cm; p.dStore = this->buffer(1);
      p.a = an / ah; p.b = an * (shn - shh); p.out = out;
      if (shn == 0) {  // last step to the clean end: Euler
        finishStep(p, tn);
        this->run(p);
        ++i_;
        return;
      }
      this->copy(this->buffer(0), x);
      this->run(p);
      stage_ = 1;
      return;
    }
    auto e = this->epsOf(tn);
    StepPass<T> p;
    p.x = x; p.m = m; p.cx = e.cx; p.cm = e.cm; p.dStore = this->buffer(2);
    p.a = 0; p.b = an * 0.5 * (shn - shh);
    p.term(an / ah, this->buffer(0)).term(an * 0.5 * (shn - shh), this->buffer(1));
    p.out = out;
    finishStep(p, tn);
    this->run(p);
    stage_ = 0;
    ++i_;
  }
  int i_ = 0, stage_ = 0;
};

// ---- PFGM++ (Xu et al. 2023): EDM's Heun with the heavy-tailed prior of augmented dimension D -----------------
// r = sigma_max sqrt(D); x_T = R u with R^2 = r^2 chi2_N / chi2_D (so R^2/r^2 ~ BetaPrime(N/2, D/2)) and u
// uniform on the sphere. With g the N-dim standard normal noise given, x_T = sigma_max sqrt(D) g / sqrt(chi2_D):
// chi2_N = |g|^2 supplies both the direction and the numerator; chi2_D is drawn from the sample's seed.
constexpr uint64_t kPfgmppPriorStream = (uint64_t(1) << 47) + 1;

template <class T>
class PfgmppHeun : public Heun<T> {
 public:
  PfgmppHeun(const SamplerSpec& sp, SamplerSetup su) : Heun<T>(sp, std::move(su)) {}

  void initialState(const T* noise, T* x) override {
    double d = this->option("augmentedDim");
    if (d == 0) {
      auto* p = dynamic_cast<const PfgmppSchedule*>(&this->schedule());
      ND_REQUIRE(p != nullptr, Arg,
                 "Expected options.augmentedDim (an integer >= 3) for sampler pfgmpp on a schedule other than schedules.pfgmpp");
      d = p->augmentedDim();
    }
    ND_REQUIRE(d >= 3 && d == std::floor(d) && d <= 1e7, Arg,
               "Expected an integer augmented dimension in [3, 1e7] for pfgmpp but received " + std::to_string(d));
    ND_REQUIRE(int64_t(this->setup().seeds.size()) == this->batch(), Arg,
               "Sampler pfgmpp draws its prior radius from the per-sample seeds: pass seed or seeds");
    double t0 = this->t(0), scale = this->alpha(t0) * this->schedule().edmSigma(t0) * std::sqrt(d);
    auto D = int64_t(d);
    std::vector<double> z(static_cast<size_t>(D));
    const T* noiseHost = this->readOnHost(noise, 0);
    T* xHost = this->writeOnHost(x, 1);
    for (int64_t b = 0; b < this->batch(); ++b) {
      uint64_t seed = this->setup().seeds[size_t(b)];
      randnCpu(z.data(), DType::F64, 1, D, &seed, kPfgmppPriorStream, nullptr);
      double chi2 = 0;
      for (double v : z) chi2 += v * v;
      double k = scale / std::sqrt(chi2);
      for (int64_t j = 0; j < this->dim(); ++j) xHost[b * this->dim() + j] = T(k * double(noiseHost[b * this->dim() + j]));
    }
    this->commitFromHost(x, xHost);
    this->prepareStart(x);
  }
};

// ---- DPM-2 and DPM-2 ancestral (k-diffusion): midpoint in log sigma -----------------------------------
template <class T>
class Dpm2 : public Base<T> {
 public:
  Dpm2(const SamplerSpec& sp, SamplerSetup su) : Base<T>(sp, std::move(su)) {}

 protected:
  bool ancestral() const { return this->spec().name == "dpm2-ancestral"; }
  double edm(double t) const { return this->sigma(t) == 0 ? 0.0 : this->schedule().edmSigma(t); }
  AncestralSplit split(int i) const {
    double sh = edm(this->t(i)), shn = edm(this->t(i + 1));
    return ancestral() ? ancestralSplit(sh, shn, this->option("eta")) : AncestralSplit{shn, 0.0};
  }
  double tMid(int i) const {
    double sh = edm(this->t(i)), down = split(i).down;
    return this->schedule().tFromEdmSigma(std::exp(0.5 * (std::log(sh) + std::log(down))));
  }
  std::vector<double> buildPlan() override {
    std::vector<double> plan;
    for (int i = 0; i < this->steps(); ++i) {
      plan.push_back(this->t(i));
      if (split(i).down > 0) plan.push_back(tMid(i));
    }
    return plan;
  }
  void update(const T* x, const T* m, T* out) override {
    double t = this->t(i_), tn = this->t(i_ + 1);
    double a = this->alpha(t), an = this->alpha(tn), sh = edm(t);
    AncestralSplit sp = split(i_);
    if (stage_ == 0) {
      auto e = this->epsOf(t);
      StepPass<T> p;
      p.x = x; p.m = m; p.cx = e.cx; p.cm = e.cm; p.dStore = this->buffer(1);
      if (sp.down == 0) {
        p.a = an / a; p.b = an * (sp.down - sh); p.out = out;
        this->run(p);
        ++i_;
        return;
      }
      double tm = tMid(i_), am = this->alpha(tm), shm = edm(tm);
      this->copy(this->buffer(0), x);
      p.a = am / a; p.b = am * (shm - sh); p.out = out;
      this->run(p);
      stage_ = 1;
      return;
    }
    double tm = tMid(i_);
    auto e = this->epsOf(tm);
    StepPass<T> p;
    p.x = x; p.m = m; p.cx = e.cx; p.cm = e.cm; p.dStore = this->buffer(2);
    p.a = 0; p.b = an * (sp.down - sh);
    p.term(an / a, this->buffer(0));
    if (sp.up > 0) { p.z = this->noise(t, tn); p.cz = an * sp.up * this->option("sNoise"); }
    p.out = out;
    this->run(p);
    stage_ = 0;
    ++i_;
  }
  int i_ = 0, stage_ = 0;
};

// ---- Linear multistep in EDM sigma: LMS (variable-step Lagrange), iPNDM and PLMS (fixed Adams-Bashforth
// coefficients; PLMS starts with PNDM's Runge-Kutta warm-up) ----------------------------------------------
// Adams-Bashforth coefficients for equal steps, newest first.
inline const double* adamsBashforth(int order) {
  static const double c1[] = {1};
  static const double c2[] = {1.5, -0.5};
  static const double c3[] = {23.0 / 12, -16.0 / 12, 5.0 / 12};
  static const double c4[] = {55.0 / 24, -59.0 / 24, 37.0 / 24, -9.0 / 24};
  switch (order) {
    case 1: return c1;
    case 2: return c2;
    case 3: return c3;
    default: return c4;
  }
}

// Integral over [a, b] of the Lagrange basis polynomials through nodes[0..k-1] (8-point Gauss-Legendre,
// exact for the degrees used here).
inline std::vector<double> lagrangeIntegrals(const std::vector<double>& nodes, double a, double b) {
  static const double gx[] = {-0.9602898564975363, -0.7966664774136267, -0.5255324099163290, -0.1834346424956498,
                              0.1834346424956498,  0.5255324099163290,  0.7966664774136267,  0.9602898564975363};
  static const double gw[] = {0.1012285362903763, 0.2223810344533745, 0.3137066458778873, 0.3626837833783620,
                              0.3626837833783620, 0.3137066458778873, 0.2223810344533745, 0.1012285362903763};
  size_t k = nodes.size();
  std::vector<double> out(k, 0.0);
  for (int q = 0; q < 8; ++q) {
    double s = 0.5 * (a + b) + 0.5 * (b - a) * gx[q];
    for (size_t j = 0; j < k; ++j) {
      double l = 1;
      for (size_t m = 0; m < k; ++m)
        if (m != j) l *= (s - nodes[m]) / (nodes[j] - nodes[m]);
      out[j] += 0.5 * (b - a) * gw[q] * l;
    }
  }
  return out;
}

template <class T>
class LinearMultistep : public Base<T> {
 public:
  LinearMultistep(const SamplerSpec& sp, SamplerSetup su) : Base<T>(sp, std::move(su)) {}

 protected:
  bool plms() const { return this->spec().name == "plms"; }
  double edm(double t) const { return this->sigma(t) == 0 ? 0.0 : this->schedule().edmSigma(t); }
  bool rkStep(int i) const { return plms() && i < 3 && edm(this->t(i + 1)) > 0; }
  double tRkMid(int i) const {
    return this->schedule().tFromEdmSigma(0.5 * (edm(this->t(i)) + edm(this->t(i + 1))));
  }
  std::vector<double> buildPlan() override {
    std::vector<double> plan;
    for (int i = 0; i < this->steps(); ++i) {
      plan.push_back(this->t(i));
      if (rkStep(i)) { plan.push_back(tRkMid(i)); plan.push_back(tRkMid(i)); plan.push_back(this->t(i + 1)); }
    }
    return plan;
  }
  void update(const T* x, const T* m, T* out) override {
    double t = this->t(i_), tn = this->t(i_ + 1);
    double a = this->alpha(t), an = this->alpha(tn), sh = edm(t), shn = edm(tn), dsh = shn - sh;
    if (rkStep(i_)) { rungeKutta(x, m, out); return; }
    // Adams-Bashforth on eps (= d(x/alpha)/d sigma) over the stored history.
    this->pushHistory();
    int order = std::min<int>(int(this->option("order")), std::min(this->historyCount(), i_ + 1));
    std::vector<double> coef(static_cast<size_t>(order));
    if (this->spec().name == "lms") {
      std::vector<double> nodes;
      for (int j = 0; j < order; ++j) nodes.push_back(edm(this->t(i_ - j)));
      coef = lagrangeIntegrals(nodes, sh, shn);
    } else {
      const double* ab = adamsBashforth(order);
      for (int j = 0; j < order; ++j) coef[size_t(j)] = ab[j] * dsh;
    }
    auto e = this->epsOf(t);
    StepPass<T> p;
    p.x = x; p.m = m; p.cx = e.cx; p.cm = e.cm; p.dStore = this->history(0);
    p.a = an / a; p.b = an * coef[0];
    for (int j = 1; j < order; ++j) p.term(an * coef[size_t(j)], this->history(j));
    p.out = out;
    this->run(p);
    ++i_;
  }
  // Classical RK4 on d(x_ve)/d sigma = eps (PNDM's pseudo Runge-Kutta warm-up, 4 evaluations).
  void rungeKutta(const T* x, const T* m, T* out) {
    double t = this->t(i_), tn = this->t(i_ + 1), tm = tRkMid(i_);
    double a = this->alpha(t), am = this->alpha(tm), an = this->alpha(tn);
    double sh = edm(t), shm = edm(tm), shn = edm(tn), dsh = shn - sh;
    T* base = this->buffer(0);
    double tEval = stage_ == 0 ? t : (stage_ == 3 ? tn : tm);
    auto e = this->epsOf(tEval);
    StepPass<T> p;
    p.x = x; p.m = m; p.cx = e.cx; p.cm = e.cm; p.out = out;
    if (stage_ == 0) {
      this->copy(base, x);
      this->pushHistory();  // the step-start eps joins the Adams-Bashforth history
      p.dStore = this->history(0);
      p.a = am / a; p.b = am * (shm - sh);
    } else if (stage_ == 1) {
      p.dStore = this->buffer(1);
      p.a = 0; p.b = am * (shm - sh);
      p.term(am / a, base);
    } else if (stage_ == 2) {
      p.dStore = this->buffer(2);
      p.a = 0; p.b = an * dsh;
      p.term(an / a, base);
    } else {
      p.dStore = this->buffer(3);
      p.a = 0; p.b = an * dsh / 6;
      p.term(an / a, base).term(an * dsh / 6, this->history(0)).term(an * dsh / 3, this->buffer(1)).term(an * dsh / 3, this->buffer(2));
    }
    this->run(p);
    if (++stage_ == 4) { stage_ = 0; ++i_; }
  }
  int i_ = 0, stage_ = 0;
};

}  // namespace

void addClassicSamplers(std::vector<SamplerEntry>& r) {
  const auto eta = [](double def) { return numberOption("eta", def, 0, 1e3, "scale of the fresh noise (0: deterministic)"); };
  const auto sNoise = numberOption("sNoise", 1.0, 0, 1e3, "multiplier of the fresh noise (k-diffusion s_noise)");
  r.push_back(makeEntry<Ddim>(makeSpec("ddpm", "classic", true, "1", "1", "Ho et al. 2020 (DDPM ancestral sampling)",
                                   "posterior of the schedule's own transitions; fixed-small = DDIM with eta 1",
                                   {enumOption("variance", "fixed-small", {"fixed-small", "fixed-large"},
                                               "posterior variance (fixed-small) or the forward step variance (fixed-large)")})));
  r.push_back(makeEntry<Ddim>(makeSpec("ddim", "classic", false, "1", "1", "Song et al. 2021 (DDIM)",
                                   "eta > 0 adds DDIM's stochastic term (stochastic then)", {eta(0.0)})));
  SamplerSpec bb = makeSpec("brownian-bridge", "seed-paper", true, "1", "1",
                        "BBDM (Li et al. 2023); Consecutive Brownian Bridge (Lyu et al. 2024)",
                        "the bridge posterior (eta 1) or its deterministic limit (eta 0); needs schedules.brownianBridge and the condition y",
                        {eta(1.0)});
  bb.needsCondition = true;
  r.push_back(makeEntry<Ddim>(bb));
  r.push_back(makeEntry<PfgmppHeun>(makeSpec("pfgmpp", "seed-paper", false, "2", "2 (1 on a last step to sigma 0)",
                                         "Xu et al. 2023 (PFGM++), EDM-aligned",
                                         "Heun on the EDM ODE from the PFGM++ prior of augmented dimension D; needs seeds for the prior",
                                         {numberOption("augmentedDim", 0, 0, 1e7, "D (0: take it from schedules.pfgmpp)"),
                                          numberOption("churn", 0, 0, 1e6, "S_churn"),
                                          numberOption("sTmin", 0, 0, 1e300, "churn only where sigma/alpha >= sTmin"),
                                          numberOption("sTmax", 1e300, 0, 1e300, "churn only where sigma/alpha <= sTmax"), sNoise})));
  r.push_back(makeEntry<Ddim>(makeSpec("ddim-inverse", "inversion", false, "1", "1", "DDIM inversion (Song et al. 2021; diffusers DDIMInverseScheduler)",
                                   "walks the grid from tEnd to tStart: x0 -> xT")));
  r.push_back(makeEntry<Euler>(makeSpec("euler", "classic", false, "1", "1", "Karras et al. 2022 (EDM Euler), k-diffusion sample_euler",
                                    "Euler in EDM coordinates")));
  r.push_back(makeEntry<Euler>(makeSpec("euler-ancestral", "classic", true, "1", "1", "k-diffusion sample_euler_ancestral",
                                    "Euler to sigma_down, then fresh noise sigma_up", {eta(1.0), sNoise})));
  r.push_back(makeEntry<Heun>(makeSpec("heun", "classic", false, "2", "2 (1 on a last step to sigma 0)",
                                   "Karras et al. 2022 (EDM Algorithm 2)", "churn > 0 makes it stochastic",
                                   {numberOption("churn", 0, 0, 1e6, "S_churn: total noise injection (0: deterministic)"),
                                    numberOption("sTmin", 0, 0, 1e300, "churn only where sigma/alpha >= sTmin"),
                                    numberOption("sTmax", 1e300, 0, 1e300, "churn only where sigma/alpha <= sTmax"), sNoise})));
  r.push_back(makeEntry<Dpm2>(makeSpec("dpm2", "classic", false, "2", "2 (1 on a last step to sigma 0)", "k-diffusion sample_dpm_2 (Karras et al. 2022)",
                                   "midpoint in log sigma")));
  r.push_back(makeEntry<Dpm2>(makeSpec("dpm2-ancestral", "classic", true, "1", "2", "k-diffusion sample_dpm_2_ancestral",
                                   "DPM-2 to sigma_down, then fresh noise", {eta(1.0), sNoise})));
  r.push_back(makeEntry<LinearMultistep>(makeSpec("lms", "classic", false, "order", "1", "k-diffusion sample_lms (Karras et al. 2022)",
                                              "variable-step Adams-Bashforth on the EDM sigma grid (Lagrange integrals)",
                                              {integerOption("order", 4, 1, 6, "number of history points")})));
  r.push_back(makeEntry<LinearMultistep>(makeSpec("ipndm", "classic", false, "order (on grids uniform in sigma/alpha)", "1",
                                              "Zhang & Chen 2023 (iPNDM, DEIS paper)",
                                              "fixed Adams-Bashforth coefficients, lower orders to start",
                                              {integerOption("order", 4, 1, 4, "Adams-Bashforth order")})));
  r.push_back(makeEntry<LinearMultistep>(makeSpec("plms", "classic", false, "order (on grids uniform in sigma/alpha)", "1 (4 in the 3 warm-up steps)",
                                              "Liu et al. 2022 (PNDM: PLMS with a Runge-Kutta start)",
                                              "fixed Adams-Bashforth coefficients after 3 classical RK4 steps",
                                              {integerOption("order", 4, 1, 4, "Adams-Bashforth order")})));
}

}  // namespace nd::solvers
