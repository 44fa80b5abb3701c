// UniPC (Zhao et al. 2023): a multistep predictor (UniP) and a corrector (UniC) that reuses the model
// value at the new point, in data-prediction form with B(h) = h (bh1) or e^h - 1 (bh2), as in
// diffusers' UniPCMultistepScheduler (orders 1-3, lower_order_final, corrector on every step but the
// last, since the last predicted point is never evaluated).
#include <cmath>

#include "core/error.h"
#include "solvers/sampler_registry.h"

namespace nd::solvers {
namespace {

// Solves the k x k system A r = b (k <= 3) by Gaussian elimination with partial pivoting.
std::vector<double> solveSmall(std::vector<std::vector<double>> A, std::vector<double> b) {
  size_t k = b.size();
  for (size_t c = 0; c < k; ++c) {
    size_t piv = c;
    for (size_t r = c + 1; r < k; ++r)
      if (std::fabs(A[r][c]) > std::fabs(A[piv][c])) piv = r;
    std::swap(A[c], A[piv]);
    std::swap(b[c], b[piv]);
    ND_REQUIRE(A[c][c] != 0, Internal, "UniPC: singular coefficient system");
    for (size_t r = c + 1; r < k; ++r) {
      double f = A[r][c] / A[c][c];
      for (size_t j = c; j < k; ++j) A[r][j] -= f * A[c][j];
      b[r] -= f * b[c];
    }
  }
  std::vector<double> x(k);
  for (size_t c = k; c-- > 0;) {
    double v = b[c];
    for (size_t j = c + 1; j < k; ++j) v -= A[c][j] * x[j];
    x[c] = v / A[c][c];
  }
  return x;
}

struct UniCoefficients {
  std::vector<double> rho;  // predictor: order-1 values; corrector: order values (last: the new point)
  double hPhi1, bh;
};

// rks: relative lambda offsets of the older points (excluding the final 1.0), hh = -h.
UniCoefficients uniCoefficients(bool bh2, int order, const std::vector<double>& rks, double hh, bool corrector) {
  UniCoefficients u;
  u.hPhi1 = std::expm1(hh);
  double hPhiK = u.hPhi1 / hh - 1.0, factorial = 1.0;
  u.bh = bh2 ? std::expm1(hh) : hh;
  std::vector<double> all = rks;
  all.push_back(1.0);
  std::vector<std::vector<double>> R(static_cast<size_t>(order), std::vector<double>(static_cast<size_t>(order)));
  std::vector<double> b(static_cast<size_t>(order));
  for (int i = 1; i <= order; ++i) {
    for (int k = 0; k < order; ++k) R[size_t(i - 1)][size_t(k)] = std::pow(all[size_t(k)], i - 1);
    b[size_t(i - 1)] = hPhiK * factorial / u.bh;
    factorial *= (i + 1);
    hPhiK = hPhiK / hh - 1.0 / factorial;
  }
  if (corrector) {
    if (order == 1) u.rho = {0.5};
    else u.rho = solveSmall(R, b);
  } else {
    if (order == 2) u.rho = {0.5};
    else if (order == 3) {
      std::vector<std::vector<double>> Rs{{R[0][0], R[0][1]}, {R[1][0], R[1][1]}};
      u.rho = solveSmall(Rs, {b[0], b[1]});
    }
  }
  return u;
}

template <class T>
class UniPc : public Sampler<T> {
 public:
  UniPc(const SamplerSpec& sp, SamplerSetup su) : Sampler<T>(sp, std::move(su)) {
    bh2_ = this->choice("variant") == "bh2";
    order_ = int(this->option("order"));
    lowerOrderFinal_ = this->flag("lowerOrderFinal");
    corrector_ = this->flag("corrector");
  }

 protected:
  void update(const T* x, const T* m, T* out) override {
    int i = i_++;
    double t = this->t(i), tn = this->t(i + 1);
    auto conv = this->x0Of(t);
    this->pushHistory();
    T* last = this->buffer(0);
    const T* cur = x;
    double at = this->alpha(t), st = this->sigma(t);
    StepPass<T> pa;
    pa.x = x; pa.m = m; pa.cx = conv.cx; pa.cm = conv.cm; pa.dStore = this->history(0);
    if (i > 0 && corrector_) {
      // UniC for the point at t, with the previous predictor's order.
      int ord = prevOrder_;
      double tp = this->t(i - 1), lamP = this->lambda(tp), h = this->lambda(t) - lamP;
      std::vector<double> rks;
      for (int k = 1; k < ord; ++k) rks.push_back((this->lambda(this->t(i - 1 - k)) - lamP) / h);
      UniCoefficients u = uniCoefficients(bh2_, ord, rks, -h, true);
      double sp = this->sigma(tp);
      double cPrev = -at * u.hPhi1 + at * u.bh * u.rho.back();
      pa.a = 0;
      pa.b = -at * u.bh * u.rho.back();
      pa.term(st / sp, last);
      for (int k = 1; k < ord; ++k) {
        double c = -at * u.bh * u.rho[size_t(k - 1)] / rks[size_t(k - 1)];
        cPrev -= c;
        pa.term(c, this->history(1 + k));
      }
      pa.term(cPrev, this->history(1));
      pa.out = last;  // corrected point, kept as the next corrector's base
      this->run(pa);
      cur = last;
    } else {
      this->run(pa);
      this->copy(last, x);
      cur = last;
    }
    // UniP from cur at t to tn.
    int ord = lowerOrderFinal_ ? std::min(order_, this->steps() - i) : order_;
    ord = std::min(ord, this->historyCount());
    double an = this->alpha(tn), sn = this->sigma(tn);
    StepPass<T> pb;
    pb.x = cur; pb.out = out;
    if (sn == 0) {
      pb.a = 0;
      pb.term(an, this->history(0));
      this->run(pb);
      prevOrder_ = 1;
      return;
    }
    double lam = this->lambda(t), h = this->lambda(tn) - lam;
    std::vector<double> rks;
    for (int k = 1; k < ord; ++k) rks.push_back((this->lambda(this->t(i - k)) - lam) / h);
    UniCoefficients u = uniCoefficients(bh2_, ord, rks, -h, false);
    double c0 = -an * u.hPhi1;
    pb.a = sn / st;
    for (int k = 1; k < ord; ++k) {
      double c = -an * u.bh * u.rho[size_t(k - 1)] / rks[size_t(k - 1)];
      c0 -= c;
      pb.term(c, this->history(k));
    }
    pb.term(c0, this->history(0));
    this->run(pb);
    prevOrder_ = ord;
  }
  bool bh2_ = true, lowerOrderFinal_ = true, corrector_ = true;
  int order_ = 2, prevOrder_ = 1, i_ = 0;
};

}  // namespace

void addUniPcSamplers(std::vector<SamplerEntry>& r) {
  SamplerSpec s;
  s.name = "unipc";
  s.family = "dpm-solver";
  s.order = "order + 1 with the corrector (order without)";
  s.nfePerStep = "1";
  s.source = "Zhao et al. 2023 (UniPC); diffusers UniPCMultistepScheduler";
  s.notes = "data prediction; the corrector reuses the model value at the new point";
  s.options = {enumOption("variant", "bh2", {"bh1", "bh2"}, "B(h) = h (bh1) or e^h - 1 (bh2)"),
               integerOption("order", 2, 1, 3, "predictor order"),
               boolOption("lowerOrderFinal", true, "lower the order towards the end (order <= steps left)"),
               boolOption("corrector", true, "apply UniC after each step")};
  r.push_back(makeEntry<UniPc>(s));
}

}  // namespace nd::solvers
