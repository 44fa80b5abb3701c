// Schedules and step selection: identities, inverses, transition composition, and values checked
// against references computed here from the defining formulas (not from the code under test).
#include <algorithm>
#include <cmath>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include "check.h"
#include "solvers/schedule.h"
#include "solvers/timesteps.h"

using namespace nd::solvers;

namespace {

struct Named { std::string label; std::unique_ptr<Schedule> s; bool vp; };

std::vector<Named> allSchedules() {
  std::vector<Named> v;
  v.push_back({"discrete linear", makeDiscreteVp({BetaSchedule::Linear}), true});
  v.push_back({"discrete scaled", makeDiscreteVp({BetaSchedule::ScaledLinear}), true});
  v.push_back({"discrete cosine", makeDiscreteVp({BetaSchedule::SquaredCosCapV2}), true});
  v.push_back({"discrete user", makeDiscreteVpFromBetas({0.1, 0.2, 0.3, 0.5, 0.7}), true});
  v.push_back({"vp linear", makeVpLinear(), true});
  v.push_back({"vp cosine", makeVpCosine(), true});
  v.push_back({"ve", makeVe(), false});
  v.push_back({"pfgmpp", makePfgmpp(128), false});
  v.push_back({"flow", makeFlow(), false});
  v.push_back({"flow shift 3", makeFlow(3.0), false});
  return v;
}

// Dense grid over [tMin, tMax], ends included, plus points hugging each end.
std::vector<double> denseGrid(const Schedule& s, int n = 4001) {
  std::vector<double> g;
  double a = s.tMin(), b = s.tMax();
  for (int i = 0; i < n; ++i) g.push_back(i == n - 1 ? b : a + (b - a) * i / (n - 1));
  for (double f : {1e-12, 1e-9, 1e-6, 1e-3}) {
    g.push_back(a + (b - a) * f);
    g.push_back(b - (b - a) * f);
  }
  return g;
}

double rel(double a, double b) { return std::fabs(a - b) / std::max(std::fabs(b), 1e-300); }

}  // namespace

ND_TEST(vp_alpha_sigma_squares_sum_to_one) {
  for (auto& n : allSchedules()) {
    if (!n.vp) continue;
    for (double t : denseGrid(*n.s)) {
      double a = n.s->alpha(t), s = n.s->sigma(t);
      CHECK_NEAR(a * a + s * s, 1.0, 1e-14);
    }
    CHECK(n.s->alpha(n.s->tClean()) == 1.0);
    CHECK(n.s->sigma(n.s->tClean()) == 0.0);
  }
}

ND_TEST(lambda_strictly_decreasing) {
  for (auto& n : allSchedules()) {
    std::vector<double> g = denseGrid(*n.s);
    std::sort(g.begin(), g.end());
    bool ok = true;
    for (size_t i = 1; i < g.size(); ++i)
      if (g[i] > g[i - 1] && !(n.s->lambda(g[i]) < n.s->lambda(g[i - 1]))) ok = false;
    if (!ok) std::fprintf(stderr, "  lambda not decreasing for %s\n", n.label.c_str());
    CHECK(ok);
    CHECK(n.s->lambda(n.s->tClean()) == INFINITY);
  }
}

ND_TEST(lambda_round_trip) {
  for (auto& n : allSchedules()) {
    double worst = 0;
    for (double t : denseGrid(*n.s)) {
      double back = n.s->tFromLambda(n.s->lambda(t));
      // Where lambda is infinite (flow at t = 0 or 1) the inverse must land exactly on the end.
      worst = std::max(worst, t == 0 ? std::fabs(back) : rel(back, t));
    }
    if (worst > 1e-12) std::fprintf(stderr, "  %s: worst relative round-trip error %g\n", n.label.c_str(), worst);
    CHECK(worst <= 1e-12);
    CHECK(n.s->tFromLambda(INFINITY) == n.s->tClean());
  }
}

ND_TEST(edm_sigma_round_trip) {
  for (auto& n : allSchedules())
    for (double t : {n.s->tMin() + 0.01 * (n.s->tMax() - n.s->tMin()), 0.5 * (n.s->tMin() + n.s->tMax())})
      CHECK(rel(n.s->tFromEdmSigma(n.s->edmSigma(t)), t) < 1e-12);
}

ND_TEST(transition_moments_compose) {
  for (auto& n : allSchedules()) {
    const Schedule& s = *n.s;
    double lo = s.tMin() + 0.05 * (s.tMax() - s.tMin()), hi = s.tMax() - 0.05 * (s.tMax() - s.tMin());
    for (int k = 0; k < 20; ++k) {
      double a = lo + (hi - lo) * (k * 0.37 - std::floor(k * 0.37));
      double b = lo + (hi - lo) * (k * 0.61 - std::floor(k * 0.61));
      double c = lo + (hi - lo) * (k * 0.83 - std::floor(k * 0.83));
      // Forward s < u < t and reverse t < u < s both obey the same composition law.
      for (int dir = 0; dir < 2; ++dir) {
        double v[3] = {a, b, c};
        std::sort(v, v + 3);
        if (dir) std::swap(v[0], v[2]);
        double S = v[0], U = v[1], T = v[2];
        CHECK(rel(s.alphaTS(T, S), s.alphaTS(T, U) * s.alphaTS(U, S)) < 1e-13);
        double viaU = s.sigmaTS2(T, U) + s.alphaTS(T, U) * s.alphaTS(T, U) * s.sigmaTS2(U, S);
        CHECK_NEAR(s.sigmaTS2(T, S), viaU, 1e-12 * std::max(1.0, std::fabs(viaU)));
        // Against the definition sigma_t^2 - alphaTS^2 sigma_s^2, written out here.
        double ar = s.alpha(T) / s.alpha(S);
        double def = s.sigma(T) * s.sigma(T) - ar * ar * s.sigma(S) * s.sigma(S);
        double scale = std::max({1.0, s.sigma(T) * s.sigma(T), ar * ar * s.sigma(S) * s.sigma(S)});
        CHECK_NEAR(s.sigmaTS2(T, S), def, 1e-13 * scale);
        if (T > S) CHECK(s.sigmaTS2(T, S) > 0);
      }
    }
    CHECK(s.sigmaTS2(0.5 * (lo + hi), 0.5 * (lo + hi)) == 0.0);
  }
}

ND_TEST(vp_linear_matches_quadrature) {
  const double b0 = 0.1, b1 = 20;
  auto s = makeVpLinear(b0, b1);
  for (double t : {0.5, 1e-3, 0.25, 1.0}) {
    // log alpha = -1/2 int_0^t beta(tau) dtau by composite Simpson (exact for a linear beta).
    int m = 1000;
    double h = t / m, acc = 0;
    for (int i = 0; i <= m; ++i) {
      double w = (i == 0 || i == m) ? 1 : (i % 2 ? 4 : 2);
      acc += w * (b0 + (b1 - b0) * i * h);
    }
    double ref = std::exp(-0.5 * acc * h / 3);
    CHECK(rel(s->alpha(t), ref) < 1e-13);
  }
  // Closed-form inverse of lambda vs the generic bisection through the base class.
  struct BisectOnly : Schedule {
    const Schedule& in;
    explicit BisectOnly(const Schedule& s) : in(s) {}
    std::string name() const override { return "bisect"; }
    double tMin() const override { return in.tMin(); }
    double tMax() const override { return in.tMax(); }
    double alpha(double t) const override { return in.alpha(t); }
    double sigma(double t) const override { return in.sigma(t); }
    double lambda(double t) const override { return in.lambda(t); }
  };
  BisectOnly bis(*s);
  for (double l : {-5.0, -1.0, 0.0, 2.0, 7.5})
    CHECK(rel(bis.tFromLambda(l), s->tFromLambda(l)) < 1e-14);
  CHECK(bis.tFromLambda(100.0) >= 0.0);
  CHECK(bis.tFromLambda(-100.0) == 1.0);  // below the range clamps to tMax
}

ND_TEST(vp_cosine_matches_definition) {
  auto s = makeVpCosine();
  const double cs = 0.008;
  auto f = [&](double t) { return std::cos((t + cs) / (1 + cs) * std::numbers::pi / 2); };
  for (double t : {0.1, 0.5, 0.9, 0.9946}) CHECK(rel(s->alpha(t), f(t) / f(0)) < 1e-13);
  CHECK(s->tMax() == 0.9946);
  // Official lambda at T = 0.9946 is about -5.0 (why the official code stops there).
  CHECK(s->lambda(s->tMax()) < -4.5 && s->lambda(s->tMax()) > -5.5);
}

ND_TEST(discrete_vp_matches_cumprod) {
  for (BetaSchedule kind : {BetaSchedule::Linear, BetaSchedule::ScaledLinear, BetaSchedule::SquaredCosCapV2}) {
    DiscreteVpOptions o{kind};
    std::vector<double> betas = makeBetas(o);
    CHECK(betas.size() == 1000u);
    auto s = makeDiscreteVp(o);
    double prod = 1;
    for (int k = 0; k < 1000; ++k) {
      prod *= 1 - betas[static_cast<size_t>(k)];  // alphas_cumprod[k], at t = (k+1)/N
      double t = (k + 1) / 1000.0;
      CHECK(rel(s->alpha(t) * s->alpha(t), prod) < 1e-12);
      CHECK_NEAR(s->modelTimestep(t), k, 1e-9);
      CHECK_NEAR(s->tFromModelTimestep(k), t, 1e-15);
    }
    // Between knots log alpha is linear in t.
    double la = std::log(s->alpha(0.5005)), l0 = std::log(s->alpha(0.5)), l1 = std::log(s->alpha(0.501));
    CHECK_NEAR(la, 0.5 * (l0 + l1), 1e-14);
  }
  std::vector<double> lin = makeBetas({BetaSchedule::Linear});
  CHECK(lin.front() == 1e-4 && lin.back() == 0.02);
  CHECK_NEAR(lin[500], 1e-4 + (0.02 - 1e-4) * 500 / 999, 1e-17);
  std::vector<double> sc = makeBetas({BetaSchedule::ScaledLinear});
  double r = std::sqrt(0.00085) + (std::sqrt(0.012) - std::sqrt(0.00085)) * 300 / 999;
  CHECK_NEAR(sc[300], r * r, 1e-17);
  CHECK_NEAR(sc.front(), 0.00085, 1e-18);
  CHECK_NEAR(sc.back(), 0.012, 1e-17);
  std::vector<double> cosb = makeBetas({BetaSchedule::SquaredCosCapV2});
  auto ab = [](double u) { double c = std::cos((u + 0.008) / 1.008 * std::numbers::pi / 2); return c * c; };
  CHECK_NEAR(cosb[0], 1 - ab(0.001) / ab(0), 1e-17);
  CHECK(cosb.back() == 0.999);  // the cap
  // SD 1.x scaled-linear: terminal alphas_cumprod is commonly quoted as about 0.0047 (2 digits).
  auto sd = makeDiscreteVp({BetaSchedule::ScaledLinear});
  CHECK_NEAR(sd->alpha(1.0) * sd->alpha(1.0), 0.0047, 5e-5);
}

ND_TEST(ve_pfgmpp_flow_values) {
  auto ve = makeVe(0.002, 80);
  CHECK(ve->alpha(3.0) == 1.0 && ve->sigma(3.0) == 3.0);
  CHECK_NEAR(ve->edmSigma(3.0), 3.0, 1e-15);
  auto pf = makePfgmpp(2048);
  auto* p = dynamic_cast<PfgmppSchedule*>(pf.get());
  CHECK(p != nullptr && std::fabs(p->radius(80) - 80 * std::sqrt(2048.0)) < 1e-12);
  CHECK(pf->lambda(1.7) == ve->lambda(1.7));
  auto fl = makeFlow();
  CHECK(fl->alpha(0.3) == 0.7 && fl->sigma(0.3) == 0.3);
  CHECK_NEAR(fl->lambda(0.3), std::log(0.7 / 0.3), 1e-15);
  auto f3 = makeFlow(3.0);
  for (double u : {0.0, 0.1, 0.5, 0.9, 1.0}) {
    CHECK_NEAR(f3->shiftTime(u), 3 * u / (1 + 2 * u), 1e-16);
    CHECK_NEAR(f3->unshiftTime(f3->shiftTime(u)), u, 1e-15);
    CHECK(fl->shiftTime(u) == u);
  }
}

ND_TEST(time_grids) {
  auto s = makeVpLinear();
  auto t = selectTimesteps(*s, 10, StepSpacing::TimeUniform, 1.0, 1e-3);
  CHECK(t.size() == 11u && t.front() == 1.0 && t.back() == 1e-3);
  for (int i = 0; i <= 10; ++i) CHECK_NEAR(t[static_cast<size_t>(i)], 1.0 + (1e-3 - 1.0) * i / 10, 1e-15);
  auto q = selectTimesteps(*s, 10, StepSpacing::TimeQuadratic, 1.0, 1e-3);
  for (int i = 0; i <= 10; ++i) {
    double r = 1.0 + (std::sqrt(1e-3) - 1.0) * i / 10;
    CHECK_NEAR(q[static_cast<size_t>(i)], r * r, 1e-15);
  }
  auto l = selectTimesteps(*s, 12, StepSpacing::LogSNR, 1.0, 1e-3);
  double h = (s->lambda(1e-3) - s->lambda(1.0)) / 12;
  for (int i = 1; i <= 12; ++i) CHECK_NEAR(s->lambda(l[static_cast<size_t>(i)]) - s->lambda(l[static_cast<size_t>(i - 1)]), h, 1e-11);
  // Flow with shift: the time grid is the shifted linspace, endpoints unchanged.
  auto f = makeFlow(3.0);
  auto ft = selectTimesteps(*f, 8, StepSpacing::TimeUniform, 1.0, 0.0);
  for (int i = 0; i <= 8; ++i) {
    double u = 1.0 - i / 8.0;
    CHECK_NEAR(ft[static_cast<size_t>(i)], 3 * u / (1 + 2 * u), 1e-15);
  }
  CHECK(ft.front() == 1.0 && ft.back() == 0.0);
}

ND_TEST(karras_and_exponential) {
  const double smin = 0.002, smax = 80, rho = 7;
  auto ve = makeVe(smin, smax);
  int n = 18;  // n + 1 points: sigma_i = (smax^(1/rho) + i/n (smin^(1/rho) - smax^(1/rho)))^rho
  auto k = selectTimesteps(*ve, n, StepSpacing::Karras, smax, smin);
  for (int i = 0; i <= n; ++i) {
    double ref = std::pow(std::pow(smax, 1 / rho) + double(i) / n * (std::pow(smin, 1 / rho) - std::pow(smax, 1 / rho)), rho);
    CHECK(rel(k[static_cast<size_t>(i)], ref) < 1e-13);
  }
  auto e = selectTimesteps(*ve, n, StepSpacing::Exponential, smax, smin);
  for (int i = 0; i <= n; ++i)
    CHECK(rel(e[static_cast<size_t>(i)], std::exp(std::log(smax) + double(i) / n * (std::log(smin) - std::log(smax)))) < 1e-13);
  // VP: the grid is Karras in the EDM-equivalent sigma = sigma/alpha.
  auto vp = makeDiscreteVp({BetaSchedule::ScaledLinear});
  auto kv = selectTimesteps(*vp, 10, StepSpacing::Karras, 1.0, vp->tMin(), {.rho = 5});
  double a = std::pow(vp->edmSigma(1.0), 0.2), b = std::pow(vp->edmSigma(vp->tMin()), 0.2);
  for (int i = 0; i <= 10; ++i)
    CHECK(rel(vp->edmSigma(kv[static_cast<size_t>(i)]), std::pow(a + i / 10.0 * (b - a), 5)) < 1e-12);
  // Karras may end at sigma = 0 (tClean); exponential may not.
  auto kz = selectTimesteps(*vp, 10, StepSpacing::Karras, 1.0, 0.0);
  CHECK(kz.back() == 0.0 && kz[9] > 0);
  CHECK_THROWS_CODE(selectTimesteps(*vp, 10, StepSpacing::Exponential, 1.0, 0.0), Arg);
  CHECK_THROWS_CODE(selectTimesteps(*vp, 10, StepSpacing::LogSNR, 1.0, 0.0), Arg);
  CHECK_THROWS_CODE(selectTimesteps(*vp, 10, StepSpacing::Karras, 1.0, 0.0, {.rho = 0}), Arg);
}

ND_TEST(diffusers_spacings) {
  // The known SD list: 50 steps, leading, steps_offset 1 -> 981, 961, ..., 1.
  auto lead = diffusersTimesteps(1000, 50, StepSpacing::Leading, 1);
  CHECK(lead.size() == 50u && lead.front() == 981 && lead.back() == 1);
  for (int i = 0; i < 50; ++i) CHECK(lead[static_cast<size_t>(i)] == 981 - 20 * i);
  // 10 steps over 1000 (the spacing table of Lin et al., "Common Diffusion Noise Schedules and Sample
  // Steps are Flawed"), from the notes' definitions.
  std::vector<int> lin10 = {999, 888, 777, 666, 555, 444, 333, 222, 111, 0};
  std::vector<int> lead10 = {900, 800, 700, 600, 500, 400, 300, 200, 100, 0};
  std::vector<int> trail10 = {999, 899, 799, 699, 599, 499, 399, 299, 199, 99};
  CHECK(diffusersTimesteps(1000, 10, StepSpacing::Linspace) == lin10);
  CHECK(diffusersTimesteps(1000, 10, StepSpacing::Leading) == lead10);
  CHECK(diffusersTimesteps(1000, 10, StepSpacing::Trailing) == trail10);
  // 50-step linspace / trailing against numpy semantics written out (round half to even).
  auto ls = diffusersTimesteps(1000, 50, StepSpacing::Linspace);
  auto tr = diffusersTimesteps(1000, 50, StepSpacing::Trailing);
  for (int i = 0; i < 50; ++i) {
    double v = (49 - i) * (999.0 / 49);
    CHECK(ls[static_cast<size_t>(i)] == static_cast<int>(std::nearbyint(v)));
    CHECK(tr[static_cast<size_t>(i)] == 999 - 20 * i);
  }
  CHECK(ls.front() == 999 && ls.back() == 0);
  // Round half to even: linspace(0, 999, 3) = 0, 499.5, 999 -> 500.
  CHECK(diffusersTimesteps(1000, 3, StepSpacing::Linspace)[1] == 500);
  // Through selectTimesteps: t = (k + 1)/N, then tEnd.
  auto vp = makeDiscreteVp({BetaSchedule::ScaledLinear});
  auto t = selectTimesteps(*vp, 50, StepSpacing::Leading, 1.0, 0.0, {.stepsOffset = 1});
  CHECK(t.size() == 51u && t[0] == 982 / 1000.0 && t[49] == 2 / 1000.0 && t[50] == 0.0);
  auto t2 = selectTimesteps(*vp, 10, StepSpacing::Trailing, 1.0, vp->tMin());
  CHECK(t2[0] == 1.0 && t2[9] == 0.1 && t2[10] == 0.001);
  CHECK_THROWS_CODE(selectTimesteps(*vp, 10, StepSpacing::Linspace, 1.0, vp->tMin()), Arg);  // last is t = 1/N
  CHECK_THROWS_CODE(selectTimesteps(*makeVpLinear(), 10, StepSpacing::Leading, 1.0, 0.0), Arg);
  CHECK_THROWS_CODE(diffusersTimesteps(1000, 50, StepSpacing::Leading, 20), Arg);
  CHECK_THROWS_CODE(diffusersTimesteps(1000, 1001, StepSpacing::Trailing), Arg);
}

ND_TEST(explicit_lists) {
  auto ve = makeVe();
  std::vector<double> g = {80, 10, 1, 0.1, 0.002};
  CHECK(selectTimesteps(*ve, 4, StepSpacing::Explicit, 80, 0.002, {.times = g}) == g);
  CHECK_THROWS_CODE(selectTimesteps(*ve, 3, StepSpacing::Explicit, 80, 0.002, {.times = g}), Arg);
  CHECK_THROWS_CODE(selectTimesteps(*ve, 4, StepSpacing::Explicit, 80, 0.002, {.times = {80, 10, 10, 0.1, 0.002}}), Arg);
  CHECK_THROWS_CODE(selectTimesteps(*ve, 4, StepSpacing::Explicit, 80, 0.002, {.times = {80, 1, 10, 0.1, 0.002}}), Arg);
  CHECK_THROWS_CODE(selectTimesteps(*ve, 4, StepSpacing::Explicit, 70, 0.002, {.times = g}), Arg);
  CHECK_THROWS_CODE(selectTimesteps(*ve, 2, StepSpacing::Explicit, 80, 0.002, {.times = {80, NAN, 0.002}}), Arg);
}

ND_TEST(argument_errors) {
  auto s = makeVpLinear();
  for (StepSpacing sp : {StepSpacing::TimeUniform, StepSpacing::LogSNR, StepSpacing::TimeQuadratic,
                         StepSpacing::Karras, StepSpacing::Exponential}) {
    CHECK_THROWS_CODE(selectTimesteps(*s, 0, sp, 1.0, 1e-3), Arg);
    CHECK_THROWS_CODE(selectTimesteps(*s, -3, sp, 1.0, 1e-3), Arg);
    CHECK_THROWS_CODE(selectTimesteps(*s, 10, sp, 1e-3, 1e-3), Arg);
    CHECK_THROWS_CODE(selectTimesteps(*s, 10, sp, 1e-3, 1.0), Arg);
    CHECK_THROWS_CODE(selectTimesteps(*s, 10, sp, 1.5, 1e-3), Arg);
    CHECK_THROWS_CODE(selectTimesteps(*s, 10, sp, 1.0, -1e-3), Arg);
    CHECK_THROWS_CODE(selectTimesteps(*s, 10, sp, NAN, 1e-3), Arg);
  }
  CHECK_THROWS_CODE(selectTimesteps(*makeVe(), 10, StepSpacing::Karras, 80, 0.001), Arg);  // below sigmaMin
  auto message = [](auto&& fn) {
    try { fn(); } catch (const nd::Error& e) { return std::string(e.what()); }
    return std::string();
  };
  std::string m = message([&] { selectTimesteps(*s, 0, StepSpacing::LogSNR, 1.0, 1e-3); });
  CHECK(m.find("steps") != std::string::npos && m.find("Expected") == 0);
  m = message([&] { selectTimesteps(*s, 5, StepSpacing::LogSNR, 0.5, 0.7); });
  CHECK(m.find("tEnd") != std::string::npos);
  m = message([] { makeFlow(-1); });
  CHECK(m == "Expected a finite number > 0 for shift but received -1");
  CHECK_THROWS_CODE(makeVpLinear(-0.1, 20), Arg);
  CHECK_THROWS_CODE(makeVpLinear(0.1, 0.05), Arg);
  CHECK_THROWS_CODE(makeVe(0, 80), Arg);
  CHECK_THROWS_CODE(makeVe(1, 1), Arg);
  CHECK_THROWS_CODE(makePfgmpp(0), Arg);
  CHECK_THROWS_CODE(makeFlow(0), Arg);
  CHECK_THROWS_CODE(makeFlow(INFINITY), Arg);
  CHECK_THROWS_CODE(makeDiscreteVpFromBetas({}), Arg);
  CHECK_THROWS_CODE(makeDiscreteVpFromBetas({0.1, 1.0}), Arg);
  CHECK_THROWS_CODE(makeDiscreteVpFromBetas({0.1, NAN}), Arg);
  CHECK_THROWS_CODE(makeDiscreteVp({BetaSchedule::Linear, 1}), Arg);
  CHECK_THROWS_CODE(makeDiscreteVp({BetaSchedule::Linear, 1000, 0.0}), Arg);
  CHECK_THROWS_CODE(parseStepSpacing("uniform"), Arg);
  CHECK(parseStepSpacing("logSNR") == StepSpacing::LogSNR);
  CHECK(parseStepSpacing("time-quadratic") == StepSpacing::TimeQuadratic);
}

ND_TEST(all_spacings_all_schedules_are_valid_grids) {
  for (auto& n : allSchedules()) {
    const Schedule& s = *n.s;
    double a = s.tMax(), b = s.tMin();
    if (!std::isfinite(s.lambda(a))) a = 0.999 * s.tMax();  // flow at t = 1
    if (!std::isfinite(s.lambda(b))) b = s.tMin() + 1e-3 * (s.tMax() - s.tMin());
    for (StepSpacing sp : {StepSpacing::TimeUniform, StepSpacing::LogSNR, StepSpacing::TimeQuadratic,
                           StepSpacing::Karras, StepSpacing::Exponential})
      for (int steps : {1, 2, 7, 50, 1000}) {
        auto g = selectTimesteps(s, steps, sp, a, b);
        bool ok = g.size() == static_cast<size_t>(steps) + 1 && g.front() == a && g.back() == b;
        for (size_t i = 1; i < g.size(); ++i) ok = ok && g[i] < g[i - 1];
        if (!ok) std::fprintf(stderr, "  %s %s %d\n", n.label.c_str(), stepSpacingName(sp), steps);
        CHECK(ok);
      }
  }
}

ND_TEST_MAIN()
