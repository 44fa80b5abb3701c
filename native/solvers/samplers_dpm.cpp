// The DPM-Solver family (Lu et al. 2022a, 2022b), written in the half log-SNR lambda = log(alpha/sigma)
// with h = lambda' - lambda, in data form (x0, "dpmsolver++") or noise form (eps, "dpmsolver"):
//   multistep   dpm-solver (method multistep), dpmpp-2m, dpmpp-3m, dpmpp-2m-sde, dpmpp-3m-sde,
//               dpm-solver-inverse, mrs (on a mean-reverting schedule), dpmpp-hb (heavy-ball momentum)
//   singlestep  dpm-solver (method singlestep), dpmpp-2s-ancestral, dpmpp-sde
//   adaptive    dpm-adaptive (DPM-Solver-12 / -23 embedded pairs)
// Formulas follow the official dpm_solver_pytorch.py (multistep and singlestep updates, orders and
// warm-up) and k-diffusion (the SDE variants); each update is a single StepPass.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "solvers/sampler_registry.h"

namespace nd::solvers {
namespace {

template <class T>
using Base = Sampler<T>;

// Coefficients of one multistep update x' = A x + c0 m0 + c1 m1 + c2 m2 (+ cz z).
struct MultistepCoef { double A, c0, c1, c2, cz; };

struct MultistepConfig {
  bool data = true;           // x0 history (dpmsolver++) or eps history (dpmsolver)
  bool taylor = false;        // solver_type 'taylor' (else 'dpmsolver' = midpoint)
  double eta = 0;             // data form: k-diffusion SDE eta; noise form: 0 or 1 (sde-dpmsolver)
  bool fullD2 = false;        // third order: the complete second-difference coefficient (see below)
};

// x' for a step t -> t' of order `order` with history lambdas lam[0] (current), lam[1], lam[2].
inline MultistepCoef multistepCoefficients(const MultistepConfig& c, int order, double at, double st, double a, double s,
                                           double h, double h0, double h1) {
  MultistepCoef k{0, 0, 0, 0, 0};
  double cD1 = 0, cD2 = 0;
  if (c.data) {
    double he = h * (1 + c.eta);
    double e1 = std::expm1(-he);  // phi_1 of the (possibly noise-scaled) step
    k.A = (st / s) * std::exp(-c.eta * h);
    k.c0 = -at * e1;
    if (order == 2) cD1 = c.taylor ? at * (e1 / he + 1.0) : -0.5 * at * e1;
    if (order == 3) {
      double phi2 = e1 / he + 1.0, phi3 = phi2 / he - 0.5;
      cD1 = at * phi2;
      cD2 = -at * phi3;
    }
    if (c.eta > 0) k.cz = st * std::sqrt(-std::expm1(-2.0 * c.eta * h));
  } else {
    double e1 = std::expm1(h);
    bool sde = c.eta > 0;
    k.A = at / a;
    k.c0 = -(sde ? 2.0 : 1.0) * st * e1;
    if (order == 2) cD1 = sde ? -st * e1 : (c.taylor ? -st * (e1 / h - 1.0) : -0.5 * st * e1);
    if (order == 3) {
      double phi2 = e1 / h - 1.0, phi3 = phi2 / h - 0.5;
      cD1 = -st * phi2;
      cD2 = -st * phi3;
    }
    if (sde) k.cz = st * std::sqrt(std::expm1(2.0 * h));
  }
  if (order == 2) {
    double r0 = h0 / h;
    k.c0 += cD1 / r0;
    k.c1 -= cD1 / r0;
  } else if (order == 3) {
    // The official code (and k-diffusion's and diffusers' 3M) uses D2 = (D1_0 - D1_1)/(r0 + r1) ~ h^2 m''/2
    // where the exponential-integrator expansion needs h^2 m'': the update is then locally O(h^3) and
    // the method second order overall. fullD2 doubles D2, which makes it third order.
    double r0 = h0 / h, r1 = h1 / h, q = r0 + r1;
    if (c.fullD2) cD2 *= 2.0;
    double u = cD1 * (1.0 + r0 / q) + cD2 / q;  // coefficient of D1_0 = (m0 - m1)/r0
    double w = -cD1 * r0 / q - cD2 / q;         // coefficient of D1_1 = (m1 - m2)/r1
    k.c0 += u / r0;
    k.c1 += -u / r0 + w / r1;
    k.c2 -= w / r1;
  }
  return k;
}

// ---- multistep ------------------------------------------------------------------------------------------
template <class T>
class DpmMultistep : public Base<T> {
 public:
  DpmMultistep(const SamplerSpec& sp, SamplerSetup su) : Base<T>(sp, std::move(su)) {
    const std::string& n = this->spec().name;
    bool mrs = n == "mrs";
    if (n == "dpmpp-2m" || n == "dpmpp-hb") { maxOrder_ = n == "dpmpp-hb" ? int(this->option("order")) : 2; }
    else if (n == "dpmpp-3m") { maxOrder_ = 3; }
    else if (n == "dpmpp-2m-sde" || n == "dpmpp-3m-sde") {
      maxOrder_ = n == "dpmpp-2m-sde" ? 2 : 3;
      cfg_.eta = this->option("eta");
    } else if (mrs) {
      maxOrder_ = int(this->option("order"));
      cfg_.data = this->choice("algorithm") == "data";
      if (this->choice("solver") == "sde") cfg_.eta = 1.0;
    } else {  // dpm-solver, dpm-solver-inverse
      maxOrder_ = int(this->option("order"));
      cfg_.data = this->choice("algorithm") == "dpmsolver++";
    }
    if (n != "dpmpp-3m" && n != "dpmpp-3m-sde" && n != "dpmpp-hb" && !mrs) cfg_.taylor = this->choice("solverType") == "taylor";
    // k-diffusion's 3M-SDE takes its one-history (second) step with phi_2, i.e. the Taylor form; the
    // official DPM-Solver++(3M) warm-up (dpmpp-3m) uses the midpoint form.
    if (n == "dpmpp-3m-sde") cfg_.taylor = true;
    lowerOrderFinal_ = n == "dpmpp-hb" ? true : this->flag("lowerOrderFinal");
    cfg_.fullD2 = this->hasOption("fullD2") && this->flag("fullD2");
  }

 protected:
  std::vector<double> buildPlan() override {
    if (this->spec().name == "dpm-solver-inverse") {
      std::vector<double> g = this->grid();
      std::reverse(g.begin(), g.end());
      this->setGrid(std::move(g));
    }
    return Base<T>::buildPlan();
  }
  int stepOrder(int i) const {
    int steps = this->steps(), k = i + 1;  // the official loop's 1-based target index
    int order = k < maxOrder_ ? k : ((lowerOrderFinal_ && steps < 10) ? std::min(maxOrder_, steps + 1 - k) : maxOrder_);
    if (this->sigma(this->t(i + 1)) == 0) order = 1;  // a final step to the clean end
    return order;
  }
  void update(const T* x, const T* m, T* out) override {
    int i = i_++;
    double t = this->t(i), tn = this->t(i + 1);
    double a = this->alpha(t), s = this->sigma(t), an = this->alpha(tn), sn = this->sigma(tn);
    int order = stepOrder(i);
    this->pushHistory();
    auto conv = cfg_.data ? this->x0Of(t) : this->epsOf(t);
    StepPass<T> p;
    p.x = x; p.m = m; p.cx = conv.cx; p.cm = conv.cm; p.dStore = this->history(0);
    if (sn == 0) {
      // x' = alpha' x0 whatever the form (the noise-form limit written without inf * 0).
      if (!cfg_.data) {
        auto c0 = this->x0Of(t);
        p.cx = c0.cx; p.cm = c0.cm;  // history stays consistent only for the data form; this is the last step
      }
      p.a = 0; p.b = an; p.out = out;
      this->run(p);
      return;
    }
    double lam = this->lambda(t), lamN = this->lambda(tn), h = lamN - lam;
    double h0 = order >= 2 ? lam - this->lambda(this->t(i - 1)) : 0;
    double h1 = order >= 3 ? this->lambda(this->t(i - 1)) - this->lambda(this->t(i - 2)) : 0;
    MultistepCoef k = multistepCoefficients(cfg_, order, an, sn, a, s, h, h0, h1);
    double beta = this->spec().name == "dpmpp-hb" ? this->option("beta") : 1.0;
    if (beta != 1.0) {
      // Heavy ball (Wizadwongsa & Suwajanakorn 2023): the combined data estimate
      // diff = (c0 m0 + c1 m1) / (-alpha' phi_1) is averaged into a velocity v <- (1-beta) v + beta diff.
      double scale = k.c0 + k.c1;  // = -alpha' phi_1 (the D1 terms cancel in the sum)
      T* v = this->buffer(4);
      StepPass<T> pv;
      pv.x = x; pv.m = m; pv.cx = conv.cx; pv.cm = conv.cm; pv.dStore = this->history(0);
      bool first = this->historyCount() == 1;
      pv.a = 0; pv.b = (first ? 1.0 : beta) * k.c0 / scale;
      if (order >= 2) pv.term((first ? 1.0 : beta) * k.c1 / scale, this->history(1));
      if (!first) pv.term(1.0 - beta, v);
      pv.out = v;
      this->run(pv);
      StepPass<T> px;
      px.x = x; px.a = k.A; px.term(scale, v); px.out = out;
      this->run(px);
      return;
    }
    p.a = k.A; p.b = k.c0;
    if (order >= 2) p.term(k.c1, this->history(1));
    if (order >= 3) p.term(k.c2, this->history(2));
    if (k.cz > 0) { p.z = this->noise(t, tn); p.cz = k.cz * (this->spec().name == "mrs" ? 1.0 : sNoise()); }
    p.out = out;
    this->run(p);
  }
  double sNoise() const {
    const std::string& n = this->spec().name;
    return (n == "dpmpp-2m-sde" || n == "dpmpp-3m-sde") ? this->option("sNoise") : 1.0;
  }
  MultistepConfig cfg_;
  int maxOrder_ = 2;
  bool lowerOrderFinal_ = true;
  int i_ = 0;
};

// ---- singlestep ------------------------------------------------------------------------------------------
// One outer step s -> t of order k evaluates at s, s1 = lambda^-1(lambda_s + r1 h) (and s2).
struct SinglestepCoef {
  // stage outputs as combinations of the base x and the model values m_s, m_s1, m_s2
  double x1A, x1s;                  // x_s1 = x1A x + x1s m_s
  double x2A, x2s, x2s1;            // x_s2 (order 3)
  double A, cs, cs1, cs2;           // x_t
};

inline SinglestepCoef singlestepCoefficients(bool data, bool taylor, int order, double r1, double r2, double h,
                                             double a, double s, double a1, double s1, double a2, double s2,
                                             double at, double st) {
  SinglestepCoef c{};
  if (data) {
    double p1 = std::expm1(-h);
    c.A = st / s;
    c.cs = -at * p1;
    if (order >= 2) {
      double p11 = std::expm1(-r1 * h);
      c.x1A = s1 / s; c.x1s = -a1 * p11;
    }
    if (order == 2) {
      double d = taylor ? (1.0 / r1) * at * (p1 / h + 1.0) : -(0.5 / r1) * at * p1;  // coefficient of (m_s1 - m_s)
      c.cs -= d; c.cs1 = d;
    } else if (order == 3) {
      double p12 = std::expm1(-r2 * h), p22 = p12 / (r2 * h) + 1.0, p2 = p1 / h + 1.0, p3 = p2 / h - 0.5;
      c.x2A = s2 / s; c.x2s = -a2 * p12 - (r2 / r1) * a2 * p22; c.x2s1 = (r2 / r1) * a2 * p22;
      if (!taylor) {
        double d = (1.0 / r2) * at * p2;
        c.cs -= d; c.cs2 = d;
      } else {
        // D1_0 = (m1 - m)/r1, D1_1 = (m2 - m)/r2, D1 = (r2 D1_0 - r1 D1_1)/(r2 - r1), D2 = 2 (D1_1 - D1_0)/(r2 - r1)
        double cD1 = at * p2, cD2 = -at * p3;
        double u = cD1 * r2 / (r2 - r1) - cD2 * 2.0 / (r2 - r1);   // on D1_0
        double w = -cD1 * r1 / (r2 - r1) + cD2 * 2.0 / (r2 - r1);  // on D1_1
        c.cs1 += u / r1; c.cs -= u / r1;
        c.cs2 += w / r2; c.cs -= w / r2;
      }
    }
  } else {
    double p1 = std::expm1(h);
    c.A = at / a;
    c.cs = -st * p1;
    if (order >= 2) {
      double p11 = std::expm1(r1 * h);
      c.x1A = a1 / a; c.x1s = -s1 * p11;
    }
    if (order == 2) {
      double d = taylor ? -(1.0 / r1) * st * (p1 / h - 1.0) : -(0.5 / r1) * st * p1;
      c.cs -= d; c.cs1 = d;
    } else if (order == 3) {
      double p12 = std::expm1(r2 * h), p22 = p12 / (r2 * h) - 1.0, p2 = p1 / h - 1.0, p3 = p2 / h - 0.5;
      c.x2A = a2 / a; c.x2s = -s2 * p12 + (r2 / r1) * s2 * p22; c.x2s1 = -(r2 / r1) * s2 * p22;
      if (!taylor) {
        double d = -(1.0 / r2) * st * p2;
        c.cs -= d; c.cs2 = d;
      } else {
        double cD1 = -st * p2, cD2 = -st * p3;
        double u = cD1 * r2 / (r2 - r1) - cD2 * 2.0 / (r2 - r1);
        double w = -cD1 * r1 / (r2 - r1) + cD2 * 2.0 / (r2 - r1);
        c.cs1 += u / r1; c.cs -= u / r1;
        c.cs2 += w / r2; c.cs -= w / r2;
      }
    }
  }
  return c;
}

// The official DPM-Solver-fast order list for `nfe` evaluations at maximum order k.
inline std::vector<int> singlestepOrders(int nfe, int order) {
  std::vector<int> orders;
  if (order == 3) {
    int K = nfe / 3 + 1;
    if (nfe % 3 == 0) { orders.assign(size_t(std::max(0, K - 2)), 3); orders.push_back(2); orders.push_back(1); }
    else if (nfe % 3 == 1) { orders.assign(size_t(K - 1), 3); orders.push_back(1); }
    else { orders.assign(size_t(K - 1), 3); orders.push_back(2); }
  } else if (order == 2) {
    if (nfe % 2 == 0) orders.assign(size_t(nfe / 2), 2);
    else { orders.assign(size_t(nfe / 2), 2); orders.push_back(1); }
  } else {
    orders.assign(size_t(nfe), 1);
  }
  return orders;
}

template <class T>
class DpmSinglestep : public Base<T> {
 public:
  DpmSinglestep(const SamplerSpec& sp, SamplerSetup su) : Base<T>(sp, std::move(su)) {}

 protected:
  bool official() const { return this->spec().name == "dpm-solver"; }
  std::vector<double> buildPlan() override {
    const std::string& n = this->spec().name;
    if (official()) {
      data_ = this->choice("algorithm") == "dpmsolver++";
      taylor_ = this->choice("solverType") == "taylor";
      int order = int(this->option("order"));
      orders_ = singlestepOrders(this->steps(), order);
      // Outer grid: uniform in lambda with K steps for logSNR; otherwise the NFE grid at the cumulative orders.
      std::vector<double> outer;
      if (this->setup().spacing == StepSpacing::LogSNR) {
        outer = selectTimesteps(this->schedule(), int(orders_.size()), StepSpacing::LogSNR, this->t(0), this->grid().back(),
                                this->setup().spacingOptions);
      } else {
        int at = 0;
        outer.push_back(this->t(0));
        for (int o : orders_) { at += o; outer.push_back(this->t(at)); }
      }
      this->setGrid(std::move(outer));
    } else {
      data_ = true;
      orders_.assign(size_t(this->steps()), 2);
    }
    std::vector<double> plan;
    for (int i = 0; i < int(orders_.size()); ++i) {
      int o = orders_[size_t(i)];
      if (n != "dpm-solver" && downOf(i) == 0) o = 1;  // k-diffusion: a step to sigma 0 is Euler
      if (official() && this->sigma(this->t(i + 1)) == 0) o = 1;
      orders_[size_t(i)] = o;
      plan.push_back(this->t(i));
      if (o >= 2) plan.push_back(stageTime(i, 1));
      if (o >= 3) plan.push_back(stageTime(i, 2));
    }
    return plan;
  }
  // k-diffusion variants step to sigma_down (edm) of the ancestral split; the official one to t'.
  double edm(double t) const { return this->sigma(t) == 0 ? 0.0 : this->schedule().edmSigma(t); }
  double eta() const { return official() ? 0.0 : this->option("eta"); }
  double downOf(int i) const {
    double sh = edm(this->t(i)), shn = edm(this->t(i + 1));
    const std::string& n = this->spec().name;
    if (n == "dpmpp-2s-ancestral") return ancestralSplit(sh, shn, eta()).down;
    return shn;
  }
  double r1(int i) const {
    if (!official()) return this->spec().name == "dpmpp-sde" ? this->option("r") : 0.5;
    return orders_[size_t(i)] == 3 ? 1.0 / 3.0 : 0.5;
  }
  // lambda of the step's end: the target t' or, for dpmpp-2s-ancestral, sigma_down.
  double lambdaEnd(int i) const {
    if (this->spec().name == "dpmpp-2s-ancestral") return -std::log(downOf(i)) ;
    return this->lambda(this->t(i + 1));
  }
  double stageTime(int i, int stage) const {
    // The official sample() places the intermediate points of an outer step s -> t on the step's own
    // grid of the chosen skip type (get_time_steps(skip_type, s, t, order)): uniform in lambda for
    // logSNR, uniform in t for time-uniform, uniform in sqrt(t) for time-quadratic.
    StepSpacing sp = this->setup().spacing;
    if (official() && (sp == StepSpacing::TimeUniform || sp == StepSpacing::TimeQuadratic)) {
      int order = orders_[size_t(i)];
      return selectTimesteps(this->schedule(), order, sp, this->t(i), this->t(i + 1))[size_t(stage)];
    }
    double lam = this->lambda(this->t(i)), h = lambdaEnd(i) - lam;
    double r = stage == 1 ? r1(i) : 2.0 / 3.0;
    return this->schedule().tFromLambda(lam + r * h);
  }
  // r_k = (lambda(s_k) - lambda(s)) / h of the stage times actually used.
  double ratio(int i, int stage) const {
    double lam = this->lambda(this->t(i)), h = lambdaEnd(i) - lam;
    return (this->lambda(stageTime(i, stage)) - lam) / h;
  }

  void update(const T* x, const T* m, T* out) override {
    const std::string& n = this->spec().name;
    int i = i_;
    int order = orders_[size_t(i)];
    double t = this->t(i), tn = this->t(i + 1);
    double a = this->alpha(t), s = this->sigma(t), an = this->alpha(tn), sn = this->sigma(tn);
    T* base = this->buffer(0);
    T* ms = this->buffer(1);
    T* ms1 = this->buffer(2);
    double tEval = stage_ == 0 ? t : stageTime(i, stage_);
    auto conv = data_ ? this->x0Of(tEval) : this->epsOf(tEval);
    StepPass<T> p;
    p.x = x; p.m = m; p.cx = conv.cx; p.cm = conv.cm; p.out = out;

    if (n == "dpmpp-sde" && order == 2) { sdeStage(x, m, out); return; }

    double lam = this->lambda(t);
    double aEnd = an, sEnd = sn, up = 0;
    if (n == "dpmpp-2s-ancestral") {
      AncestralSplit sp = ancestralSplit(edm(t), edm(tn), eta());
      // Work towards sigma_down in EDM coordinates at the alpha of t'.
      sEnd = an * sp.down;
      up = sp.up;
    }
    double h = order == 1 && sEnd == 0 ? std::numeric_limits<double>::infinity() : lambdaEnd(i) - lam;
    if (sEnd == 0 || order == 1) {
      // First order (DDIM / DPM-Solver-1); to the clean end: alpha' x0.
      p.dStore = ms;
      if (sEnd == 0) { auto c0 = this->x0Of(t); p.cx = c0.cx; p.cm = c0.cm; p.a = 0; p.b = aEnd; }
      else if (data_) { p.a = sEnd / s; p.b = -aEnd * std::expm1(-h); }
      else { p.a = aEnd / a; p.b = -sEnd * std::expm1(h); }
      addAncestralNoise(p, t, tn, an, up);
      this->run(p);
      ++i_;
      return;
    }
    double rr1 = ratio(i, 1), rr2 = order == 3 ? ratio(i, 2) : 2.0 / 3.0;
    double t1 = stageTime(i, 1), t2 = order == 3 ? stageTime(i, 2) : t1;
    SinglestepCoef c = singlestepCoefficients(data_, taylor_, order, rr1, rr2, h, a, s, this->alpha(t1), this->sigma(t1),
                                              this->alpha(t2), this->sigma(t2), aEnd, sEnd);
    if (stage_ == 0) {
      this->copy(base, x);
      p.dStore = ms; p.a = c.x1A; p.b = c.x1s;
      this->run(p);
      stage_ = 1;
      return;
    }
    if (stage_ == 1 && order == 3) {
      p.dStore = ms1; p.a = 0; p.b = c.x2s1;
      p.term(c.x2A, base).term(c.x2s, ms);
      this->run(p);
      stage_ = 2;
      return;
    }
    p.dStore = this->buffer(3);
    p.a = 0;
    if (order == 2) { p.b = c.cs1; p.term(c.A, base).term(c.cs, ms); }
    else { p.b = c.cs2; p.term(c.A, base).term(c.cs, ms).term(c.cs1, ms1); }
    addAncestralNoise(p, t, tn, an, up);
    this->run(p);
    stage_ = 0;
    ++i_;
  }
  void addAncestralNoise(StepPass<T>& p, double t, double tn, double an, double up) {
    if (up > 0) { p.z = this->noise(t, tn); p.cz = an * up * this->option("sNoise"); }
  }
  // k-diffusion sample_dpmpp_sde: two stages, each a DPM-Solver++(1) ancestral step, in EDM coordinates.
  void sdeStage(const T* x, const T* m, T* out) {
    int i = i_;
    double t = this->t(i), tn = this->t(i + 1);
    double a = this->alpha(t), an = this->alpha(tn);
    double sh = edm(t), shn = edm(tn), lam = -std::log(sh), h = -std::log(shn) - lam, r = r1(i), fac = 1.0 / (2.0 * r);
    double tS = this->schedule().tFromLambda(lam + r * h), aS = this->alpha(tS), shS = std::exp(-(lam + r * h));
    double e = eta(), sn = this->option("sNoise");
    T* base = this->buffer(0);
    T* ms = this->buffer(1);
    if (stage_ == 0) {
      auto c = this->x0Of(t);
      AncestralSplit sp = ancestralSplit(sh, shS, e);
      this->copy(base, x);
      StepPass<T> p;
      p.x = x; p.m = m; p.cx = c.cx; p.cm = c.cm; p.dStore = ms;
      // EDM state at sigma_down of the first stage, then noise up to sigma(s), then back to VP at alpha(s).
      double hd = -std::log(sp.down) - lam;
      p.a = aS * (sp.down / sh) / a;
      p.b = -aS * std::expm1(-hd);
      if (sp.up > 0) { p.z = this->noise(t, tS); p.cz = aS * sp.up * sn; }
      p.out = out;
      this->run(p);
      stage_ = 1;
      return;
    }
    auto c = this->x0Of(tS);
    AncestralSplit sp = ancestralSplit(sh, shn, e);
    double hd = -std::log(sp.down) - lam;
    StepPass<T> p;
    p.x = x; p.m = m; p.cx = c.cx; p.cm = c.cm; p.dStore = this->buffer(3);
    // D' = (1 - fac) D + fac D2 ; x' = (sigma_down/sigma) x - expm1(-hd) D'
    double k = -an * std::expm1(-hd);
    p.a = 0; p.b = k * fac;
    p.term(an * (sp.down / sh) / a, base).term(k * (1.0 - fac), ms);
    if (sp.up > 0) { p.z = this->noise(t, tn); p.cz = an * sp.up * sn; }
    p.out = out;
    this->run(p);
    stage_ = 0;
    ++i_;
  }
  std::vector<int> orders_;
  bool data_ = true, taylor_ = false;
  int i_ = 0, stage_ = 0;
};

// ---- adaptive -------------------------------------------------------------------------------------------
// Official dpm_solver_adaptive: a lower/higher embedded pair (orders 1/2 or 2/3) sharing model
// evaluations; the error E = max over the batch of RMS((x_hi - x_lo) / delta), delta = max(atol,
// rtol max(|x_lo|, |x_prev|)); accept when E <= 1; h <- min(theta h E^(-1/order), lambda_end - lambda_s).
// A rejected step reuses the model value at s (the official code evaluates it again: same value).
template <class T>
class DpmAdaptive : public Base<T> {
 public:
  DpmAdaptive(const SamplerSpec& sp, SamplerSetup su) : Base<T>(sp, std::move(su)) {
    order_ = int(this->option("order"));
    data_ = this->choice("algorithm") == "dpmsolver++";
  }

 protected:
  bool adaptive() const override { return true; }
  std::vector<double> buildPlan() override {
    s_ = this->grid().front();
    t0_ = this->grid().back();
    lamS_ = this->lambda(s_);
    lam0_ = this->lambda(t0_);
    h_ = this->option("hInit");
    return {};
  }
  double finalTime() const override { return t0_; }
  double r1() const { return order_ == 2 ? 0.5 : 1.0 / 3.0; }
  double target() const { return this->schedule().tFromLambda(lamS_ + h_); }
  double stageTime(int stage) const {
    double r = stage == 1 ? r1() : 2.0 / 3.0;
    return this->schedule().tFromLambda(lamS_ + r * h_);
  }
  double adaptiveNextTime() const override { return stage_ == 0 ? s_ : stageTime(stage_); }

  SinglestepCoef coef(int order) const {
    double t = target(), t1 = stageTime(1), t2 = order_ == 3 ? stageTime(2) : t1;
    return singlestepCoefficients(data_, false, order, r1(), 2.0 / 3.0, lamTarget() - lamS_, this->alpha(s_), this->sigma(s_),
                                  this->alpha(t1), this->sigma(t1), this->alpha(t2), this->sigma(t2), this->alpha(t),
                                  this->sigma(t));
  }
  double lamTarget() const { return this->lambda(target()); }

  // Writes the first intermediate point of the current trial step from the stored base and m_s.
  void emitFirstStage(T* out) {
    SinglestepCoef c = coef(order_);
    StepPass<T> p;
    p.x = this->buffer(0); p.a = c.x1A; p.term(c.x1s, this->buffer(1)); p.out = out;
    this->run(p);
    stage_ = 1;
  }

  void update(const T* x, const T* m, T* out) override {
    double tEval = adaptiveNextTime();
    auto conv = data_ ? this->x0Of(tEval) : this->epsOf(tEval);
    T* base = this->buffer(0);
    T* ms = this->buffer(1);
    T* ms1 = this->buffer(2);
    T* ms2 = this->buffer(3);
    T* prev = this->buffer(4);
    T* lo = this->buffer(5);
    T* hi = this->buffer(6);
    if (first_) {
      this->copy(prev, x);
      first_ = false;
    }
    if (stage_ == 0) {
      this->copy(base, x);
      StepPass<T> p;
      p.x = x; p.m = m; p.cx = conv.cx; p.cm = conv.cm; p.dStore = ms;
      this->run(p);
      emitFirstStage(out);
      return;
    }
    if (stage_ == 1 && order_ == 3) {
      SinglestepCoef c = coef(3);
      StepPass<T> p;
      p.x = x; p.m = m; p.cx = conv.cx; p.cm = conv.cm; p.dStore = ms1;
      p.a = 0; p.b = c.x2s1; p.term(c.x2A, base).term(c.x2s, ms); p.out = out;
      this->run(p);
      stage_ = 2;
      return;
    }
    // Last stage: the model value completes both members of the pair.
    SinglestepCoef cl = coef(order_ - 1), ch = coef(order_);
    StepPass<T> pl, ph;
    if (order_ == 2) {
      // lower: first order from (x, m_s); higher: second order with m_s1 = this evaluation
      pl.x = base; pl.a = cl.A; pl.term(cl.cs, ms); pl.out = lo;
      this->run(pl);
      ph.x = x; ph.m = m; ph.cx = conv.cx; ph.cm = conv.cm; ph.dStore = ms1;
      ph.a = 0; ph.b = ch.cs1; ph.term(ch.A, base).term(ch.cs, ms); ph.out = hi;
      this->run(ph);
    } else {
      // lower: second order with r1 = 1/3 (m_s, m_s1); higher: third order (m_s, m_s1, m_s2)
      pl.x = base; pl.a = cl.A; pl.term(cl.cs, ms).term(cl.cs1, ms1); pl.out = lo;
      this->run(pl);
      ph.x = x; ph.m = m; ph.cx = conv.cx; ph.cm = conv.cm; ph.dStore = ms2;
      ph.a = 0; ph.b = ch.cs2; ph.term(ch.A, base).term(ch.cs, ms).term(ch.cs1, ms1); ph.out = hi;
      this->run(ph);
    }
    double atol = this->option("atol"), rtol = this->option("rtol");
    double E = 0;
    const T* loH = this->readOnHost(lo, 0);
    const T* prevH = this->readOnHost(prev, 1);
    const T* hiH = this->readOnHost(hi, 2);
    for (int64_t b = 0; b < this->batch(); ++b) {
      double acc = 0;
      for (int64_t j = 0; j < this->dim(); ++j) {
        int64_t k = b * this->dim() + j;
        double delta = std::max(atol, rtol * std::max(std::fabs(double(loH[k])), std::fabs(double(prevH[k]))));
        double q = (double(hiH[k]) - double(loH[k])) / delta;
        acc += q * q;
      }
      E = std::max(E, std::sqrt(acc / double(this->dim())));
    }
    bool accept = E <= 1.0;
    if (accept) {
      s_ = target();
      lamS_ = this->lambda(s_);
      this->copy(prev, lo);
    }
    h_ = std::min(this->option("theta") * h_ * std::pow(std::max(E, 1e-300), -1.0 / order_), lam0_ - lamS_);
    stage_ = 0;
    if (accept) {
      this->copy(out, hi);
      if (std::fabs(s_ - t0_) <= this->option("tErr")) this->finish();
      return;
    }
    // Rejected: retry from the same base with the smaller h; the model value at s is reused.
    emitFirstStage(out);
  }
  int order_ = 3;
  bool data_ = true, first_ = true;
  double s_ = 0, t0_ = 0, lamS_ = 0, lam0_ = 0, h_ = 0.05;
  int stage_ = 0;
};

}  // namespace

void addDpmSolverSamplers(std::vector<SamplerEntry>& r) {
  const auto algorithm = enumOption("algorithm", "dpmsolver++", {"dpmsolver", "dpmsolver++"},
                                    "noise-prediction (dpmsolver) or data-prediction (dpmsolver++) form");
  const auto solverType = enumOption("solverType", "dpmsolver", {"dpmsolver", "taylor"},
                                     "second-order correction: the paper's (midpoint) or Taylor form");
  const auto lof = boolOption("lowerOrderFinal", true, "official rule: with < 10 steps, lower the order of the final steps");
  const auto sNoise = numberOption("sNoise", 1.0, 0, 1e3, "multiplier of the fresh noise");
  // dpm-solver: one name, multistep or singlestep.
  SamplerSpec dpm = makeSpec("dpm-solver", "dpm-solver", false, "order (multistep order 3: 2 with the official update, 3 with fullD2)", "1 (multistep); order (singlestep)",
                         "Lu et al. 2022 (DPM-Solver, DPM-Solver++), official dpm_solver_pytorch.py",
                         "singlestep: steps = model evaluations, DPM-Solver-fast order list",
                         {algorithm, enumOption("method", "multistep", {"multistep", "singlestep"}, "multistep or singlestep"),
                          integerOption("order", 2, 1, 3, "solver order"), lof, solverType, boolOption("fullD2", false, "third order: the complete second difference (true third order); false is the official update, second order")});
  SamplerEntry dpmEntry;
  dpmEntry.spec = dpm;
  dpmEntry.makeFloat = [](const SamplerSpec& sp, SamplerSetup su) -> std::unique_ptr<Sampler<float>> {
    auto it = su.options.find("method");
    if (it != su.options.end() && std::get<std::string>(it->second) == "singlestep") return std::make_unique<DpmSinglestep<float>>(sp, std::move(su));
    return std::make_unique<DpmMultistep<float>>(sp, std::move(su));
  };
  dpmEntry.makeDouble = [](const SamplerSpec& sp, SamplerSetup su) -> std::unique_ptr<Sampler<double>> {
    auto it = su.options.find("method");
    if (it != su.options.end() && std::get<std::string>(it->second) == "singlestep") return std::make_unique<DpmSinglestep<double>>(sp, std::move(su));
    return std::make_unique<DpmMultistep<double>>(sp, std::move(su));
  };
  r.push_back(dpmEntry);
  r.push_back(makeEntry<DpmMultistep>(makeSpec("dpmpp-2m", "dpm-solver", false, "2", "1", "Lu et al. 2022 (DPM-Solver++(2M)); k-diffusion sample_dpmpp_2m",
                                           "multistep, data prediction", {lof, solverType})));
  r.push_back(makeEntry<DpmMultistep>(makeSpec("dpmpp-3m", "dpm-solver", false, "2 (official update); 3 with fullD2", "1", "Lu et al. 2022 (DPM-Solver++(3M))",
                                           "multistep, data prediction", {lof, boolOption("fullD2", false, "third order: the complete second difference (true third order); false is the official update, second order")})));
  r.push_back(makeEntry<DpmMultistep>(makeSpec("dpmpp-2m-sde", "dpm-solver", true, "1 (SDE; 2 at eta 0)", "1",
                                           "k-diffusion sample_dpmpp_2m_sde; diffusers sde-dpmsolver++",
                                           "eta scales the noise (0: dpmpp-2m)",
                                           {numberOption("eta", 1.0, 0, 1e3, "noise scale"), sNoise, lof, solverType})));
  r.push_back(makeEntry<DpmMultistep>(makeSpec("dpmpp-3m-sde", "dpm-solver", true, "1 (SDE); at eta 0: 2, 3 with fullD2", "1", "k-diffusion sample_dpmpp_3m_sde",
                                           "eta scales the noise (0: dpmpp-3m)",
                                           {numberOption("eta", 1.0, 0, 1e3, "noise scale"), sNoise, lof, boolOption("fullD2", false, "third order: the complete second difference (true third order); false is the official update, second order")})));
  r.push_back(makeEntry<DpmMultistep>(makeSpec("dpm-solver-inverse", "inversion", false, "order (3: 2 unless fullD2)", "1",
                                           "DPM-Solver(++) inversion (diffusers DPMSolverMultistepInverseScheduler)",
                                           "multistep walked from tEnd to tStart: x0 -> xT",
                                           {algorithm, integerOption("order", 2, 1, 3, "solver order"), lof, solverType, boolOption("fullD2", false, "third order: the complete second difference (true third order); false is the official update, second order")})));
  r.push_back(makeEntry<DpmSinglestep>(makeSpec("dpmpp-2s-ancestral", "dpm-solver", true, "1 (2 at eta 0)", "2 (1 on a last step to sigma 0)",
                                            "k-diffusion sample_dpmpp_2s_ancestral", "DPM-Solver++(2S) to sigma_down, then fresh noise",
                                            {numberOption("eta", 1.0, 0, 1e3, "noise scale"), sNoise})));
  r.push_back(makeEntry<DpmSinglestep>(makeSpec("dpmpp-sde", "dpm-solver", true, "1 (2 at eta 0)", "2 (1 on a last step to sigma 0)",
                                            "k-diffusion sample_dpmpp_sde", "two ancestral DPM-Solver++ stages; use brownianTree for step-count-stable noise",
                                            {numberOption("eta", 1.0, 0, 1e3, "noise scale"), sNoise,
                                             numberOption("r", 0.5, 0.01, 0.99, "relative position of the intermediate stage")})));
  r.push_back(makeEntry<DpmAdaptive>(makeSpec("dpm-adaptive", "dpm-solver", false, "order (to tolerance)", "adaptive (order per trial)",
                                          "Lu et al. 2022 (DPM-Solver-12/23 with step-size control)", "steps is ignored; tolerances pick the steps",
                                          {integerOption("order", 3, 2, 3, "order of the higher member of the pair"), algorithm,
                                           numberOption("rtol", 0.05, 0, 1e3, "relative tolerance"),
                                           numberOption("atol", 0.0078, 1e-300, 1e3, "absolute tolerance"),
                                           numberOption("hInit", 0.05, 1e-12, 1e3, "first step size in lambda"),
                                           numberOption("theta", 0.9, 0.01, 1, "safety factor"),
                                           numberOption("tErr", 1e-5, 0, 1, "stop when |s - tEnd| <= tErr")})));
}

// MRS and heavy-ball DPM-Solver++ share the multistep engine; registered with the seed-paper samplers.
void addMultistepSeedSamplers(std::vector<SamplerEntry>& r) {
  SamplerSpec mrs = makeSpec("mrs", "seed-paper", false, "order (ODE)", "1",
                                           "Li et al. 2025 (MRS: fast sampler for mean-reverting diffusion)",
                                           "DPM-Solver on x - (1-alpha) mu of a mean-reverting schedule; solver sde adds noise",
                                           {enumOption("solver", "ode", {"ode", "sde"}, "ODE or SDE solver"),
                                            enumOption("algorithm", "data", {"data", "noise"}, "data or noise parameterisation"),
                                            integerOption("order", 2, 1, 2, "solver order"),
                                            boolOption("lowerOrderFinal", true, "lower the order of the last steps when steps < 10")});
  mrs.needsCondition = true;
  r.push_back(makeEntry<DpmMultistep>(mrs));
  r.push_back(makeEntry<DpmMultistep>(makeSpec("dpmpp-hb", "seed-paper", false, "1 for beta < 1; order at beta 1", "1",
                                           "Wizadwongsa & Suwajanakorn 2023 (DPM-Solver++ with heavy-ball momentum)",
                                           "beta < 1 damps the update direction against divergence at low step counts",
                                           {numberOption("beta", 0.8, 0.01, 1, "momentum: 1 is plain DPM-Solver++(2M)"),
                                            integerOption("order", 2, 1, 2, "solver order")})));
}

}  // namespace nd::solvers
