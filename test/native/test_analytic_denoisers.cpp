// Exact analytic denoisers and the closed-form Gaussian PF-ODE, checked against references built
// here from first principles: Bayes' rule by quadrature, Tweedie's formula with a linear solve, and
// RK4 integration of the probability-flow ODE.
#include <cmath>
#include <random>
#include <vector>

#include "check.h"
#include "core/thread_pool.h"
#include "models/analytic_denoisers.h"

using namespace nd::models;
using Vec = std::vector<double>;

namespace {

std::mt19937_64& rng() {
  static std::mt19937_64 g(12345);
  return g;
}
double randn() { return std::normal_distribution<double>(0.0, 1.0)(rng()); }
Vec randnVec(size_t n, double scale = 1.0) {
  Vec v(n);
  for (auto& x : v) x = scale * randn();
  return v;
}

// B B^T + floor I: symmetric positive definite with a controlled smallest eigenvalue.
Vec randomSpd(int n, double floor) {
  Vec b = randnVec(size_t(n * n), 0.6), a(size_t(n * n));
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      double s = i == j ? floor : 0.0;
      for (int k = 0; k < n; ++k) s += b[size_t(i * n + k)] * b[size_t(j * n + k)];
      a[size_t(i * n + j)] = s;
    }
  return a;
}

// dim x r with orthonormal columns (Gram-Schmidt, twice for accuracy).
Vec randomOrthonormal(int n, int r) {
  Vec u = randnVec(size_t(n * r));
  for (int pass = 0; pass < 2; ++pass)
    for (int c = 0; c < r; ++c) {
      for (int p = 0; p < c; ++p) {
        double dot = 0;
        for (int i = 0; i < n; ++i) dot += u[size_t(i * r + c)] * u[size_t(i * r + p)];
        for (int i = 0; i < n; ++i) u[size_t(i * r + c)] -= dot * u[size_t(i * r + p)];
      }
      double norm = 0;
      for (int i = 0; i < n; ++i) norm += u[size_t(i * r + c)] * u[size_t(i * r + c)];
      for (int i = 0; i < n; ++i) u[size_t(i * r + c)] /= std::sqrt(norm);
    }
  return u;
}

// Solves A y = b by Gaussian elimination with partial pivoting.
Vec solve(Vec a, Vec b) {
  int n = int(b.size());
  for (int c = 0; c < n; ++c) {
    int piv = c;
    for (int r = c + 1; r < n; ++r)
      if (std::fabs(a[size_t(r * n + c)]) > std::fabs(a[size_t(piv * n + c)])) piv = r;
    for (int k = 0; k < n; ++k) std::swap(a[size_t(c * n + k)], a[size_t(piv * n + k)]);
    std::swap(b[size_t(c)], b[size_t(piv)]);
    for (int r = c + 1; r < n; ++r) {
      double f = a[size_t(r * n + c)] / a[size_t(c * n + c)];
      for (int k = c; k < n; ++k) a[size_t(r * n + k)] -= f * a[size_t(c * n + k)];
      b[size_t(r)] -= f * b[size_t(c)];
    }
  }
  Vec y(static_cast<size_t>(n));
  for (int r = n - 1; r >= 0; --r) {
    double s = b[size_t(r)];
    for (int k = r + 1; k < n; ++k) s -= a[size_t(r * n + k)] * y[size_t(k)];
    y[size_t(r)] = s / a[size_t(r * n + r)];
  }
  return y;
}

// max_i |a_i - b_i| / max(1, max_i |b_i|)
double relErr(const Vec& a, const Vec& b) {
  double err = 0, scale = 1;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return err / scale;
}

template <class D>
Vec denoise1(const D& d, const Vec& x, double alpha, double sigma) {
  Vec out(x.size());
  Vec a{alpha}, s{sigma};
  d.denoise(std::span<const double>(x), a, s, std::span<double>(out));
  return out;
}

double logNormal(double x, double m, double var) {
  return -0.5 * (std::log(2 * M_PI * var) + (x - m) * (x - m) / var);
}

// E[x0 | x_t = x] in 1-D for a prior given by its log density, by the trapezoid rule, which is
// spectrally accurate for smooth integrands that vanish at both ends of the grid.
template <class LogPrior>
double posteriorMean1d(LogPrior logPrior, double x, double alpha, double sigma, double lo, double hi,
                       int points) {
  double h = (hi - lo) / (points - 1), maxLog = -INFINITY;
  Vec logs(static_cast<size_t>(points));
  for (int i = 0; i < points; ++i) {
    double x0 = lo + i * h;
    logs[size_t(i)] = logPrior(x0) + logNormal(x, alpha * x0, sigma * sigma);
    maxLog = std::max(maxLog, logs[size_t(i)]);
  }
  double num = 0, den = 0;
  for (int i = 0; i < points; ++i) {
    double w = std::exp(logs[size_t(i)] - maxLog);
    num += w * (lo + i * h);
    den += w;
  }
  return num / den;
}

// Same in 2-D with an isotropic likelihood N(x; alpha x0, sigma^2 I).
template <class LogPrior>
Vec posteriorMean2d(LogPrior logPrior, const Vec& x, double alpha, double sigma, double lo,
                    double hi, int points) {
  double h = (hi - lo) / (points - 1), maxLog = -INFINITY;
  Vec logs(size_t(points * points));
  for (int i = 0; i < points; ++i)
    for (int j = 0; j < points; ++j) {
      double u = lo + i * h, v = lo + j * h;
      double l = logPrior(u, v) + logNormal(x[0], alpha * u, sigma * sigma) +
                 logNormal(x[1], alpha * v, sigma * sigma);
      logs[size_t(i * points + j)] = l;
      maxLog = std::max(maxLog, l);
    }
  double n0 = 0, n1 = 0, den = 0;
  for (int i = 0; i < points; ++i)
    for (int j = 0; j < points; ++j) {
      double w = std::exp(logs[size_t(i * points + j)] - maxLog);
      n0 += w * (lo + i * h);
      n1 += w * (lo + j * h);
      den += w;
    }
  return {n0 / den, n1 / den};
}

// log N(u; m, C) for 2x2 C.
double logNormal2(double u, double v, const double* m, const double* c) {
  double det = c[0] * c[3] - c[1] * c[2];
  double du = u - m[0], dv = v - m[1];
  double q = (c[3] * du * du - (c[1] + c[2]) * du * dv + c[0] * dv * dv) / det;
  return -0.5 * (std::log(4 * M_PI * M_PI * det) + q);
}

struct NoiseLevel { double alpha, sigma; };

}  // namespace

// (a) Gaussian vs Bayes by quadrature ---------------------------------------------------------------

ND_TEST(gaussian_1d_matches_quadrature) {
  const double mu = 0.3, var = 0.7;
  auto g = GaussianDenoiser::diagonal(Vec{mu}, Vec{var});
  auto prior = [&](double x0) { return logNormal(x0, mu, var); };
  for (NoiseLevel nl : {NoiseLevel{1, 0.05}, {1, 1}, {0.8, 0.6}, {0.2, 0.98}, {1, 5}, {0.05, 0.3}})
    for (double x : {-1.5, 0.1, 2.2}) {
      double want = posteriorMean1d(prior, x, nl.alpha, nl.sigma, mu - 12, mu + 12, 24001);
      CHECK_NEAR(denoise1(g, Vec{x}, nl.alpha, nl.sigma)[0], want, 1e-10);
    }
  // The two ends of every schedule: pure noise gives the mean, no noise gives x / alpha.
  CHECK_NEAR(denoise1(g, Vec{1.7}, 0.0, 1.0)[0], mu, 1e-15);
  CHECK_NEAR(denoise1(g, Vec{1.7}, 0.5, 0.0)[0], 3.4, 1e-14);
}

ND_TEST(gaussian_2d_full_covariance_matches_quadrature) {
  const double mu[2] = {0.5, -0.2}, cov[4] = {1.0, 0.6, 0.6, 0.8};
  auto g = GaussianDenoiser::full(Vec{mu[0], mu[1]}, Vec(cov, cov + 4));
  auto prior = [&](double u, double v) { return logNormal2(u, v, mu, cov); };
  for (NoiseLevel nl : {NoiseLevel{1, 0.3}, {0.7, 0.7}, {0.3, 1.5}}) {
    Vec x{0.9, -1.1};
    Vec want = posteriorMean2d(prior, x, nl.alpha, nl.sigma, -9, 9, 401);
    CHECK(relErr(denoise1(g, x, nl.alpha, nl.sigma), want) < 1e-10);
  }
}

// (b) full and diagonal paths agree on a diagonal covariance ---------------------------------------

ND_TEST(gaussian_full_equals_diagonal_when_covariance_is_diagonal) {
  const int n = 5;
  Vec mu = randnVec(n), var{0.3, 1.2, 0.05, 2.5, 0.9}, cov(n * n, 0.0);
  for (int i = 0; i < n; ++i) cov[size_t(i * n + i)] = var[size_t(i)];
  auto diag = GaussianDenoiser::diagonal(mu, var);
  auto full = GaussianDenoiser::full(mu, cov);
  Vec x = randnVec(4 * n), alpha{1, 0.9, 0.3, 0.0}, sigma{0.01, 0.5, 2.0, 1.0}, a(4 * n), b(4 * n);
  diag.denoise(std::span<const double>(x), alpha, sigma, std::span<double>(a));
  full.denoise(std::span<const double>(x), alpha, sigma, std::span<double>(b));
  CHECK(relErr(a, b) < 1e-13);
}

// (c) mixtures --------------------------------------------------------------------------------------

ND_TEST(mixture_with_one_component_equals_gaussian) {
  const int n = 4;
  Vec mu = randnVec(n), std{0.4, 1.1, 0.7, 2.0}, var(n);
  for (int i = 0; i < n; ++i) var[size_t(i)] = std[size_t(i)] * std[size_t(i)];
  Vec cov = randomSpd(n, 0.1);
  auto g = GaussianDenoiser::diagonal(mu, var);
  auto m = GaussianMixtureDenoiser::fromStds(n, Vec{2.5}, mu, std);
  auto gFull = GaussianDenoiser::full(mu, cov);
  auto mFull = GaussianMixtureDenoiser::fromCovariances(n, Vec{1.0}, mu, cov);
  for (NoiseLevel nl : {NoiseLevel{1, 0.02}, {0.6, 0.8}, {0.1, 1}}) {
    Vec x = randnVec(n);
    CHECK(relErr(denoise1(m, x, nl.alpha, nl.sigma), denoise1(g, x, nl.alpha, nl.sigma)) < 1e-14);
    CHECK(relErr(denoise1(mFull, x, nl.alpha, nl.sigma), denoise1(gFull, x, nl.alpha, nl.sigma)) <
          1e-13);
  }
}

ND_TEST(mixture_1d_matches_quadrature) {
  Vec w{0.2, 0.5, 0.3}, mu{-2, 0.5, 3}, sd{0.3, 0.8, 0.5};
  // Unnormalised weights are accepted and normalised.
  auto m = GaussianMixtureDenoiser::fromStds(1, Vec{2, 5, 3}, mu, sd);
  auto prior = [&](double x0) {
    double s = 0;
    for (int k = 0; k < 3; ++k) s += w[size_t(k)] * std::exp(logNormal(x0, mu[size_t(k)], sd[size_t(k)] * sd[size_t(k)]));
    return std::log(s);
  };
  for (NoiseLevel nl : {NoiseLevel{1, 0.05}, {0.9, 0.4}, {0.5, 0.9}, {0.1, 1.0}})
    for (double x : {-2.5, -0.4, 1.3, 2.9}) {
      double want = posteriorMean1d(prior, x, nl.alpha, nl.sigma, -7, 8, 15001);
      CHECK_NEAR(denoise1(m, Vec{x}, nl.alpha, nl.sigma)[0], want, 1e-9);
    }
}

ND_TEST(mixture_2d_matches_quadrature) {
  Vec w{0.35, 0.65}, mu{-1, 0.5, 1.5, -0.5}, sd{0.5, 0.9, 0.7, 0.4};  // diagonal stds
  Vec cov{0.5, 0.2, 0.2, 0.4, 0.9, -0.3, -0.3, 0.6};                   // full covariances
  auto diag = GaussianMixtureDenoiser::fromStds(2, w, mu, sd);
  auto full = GaussianMixtureDenoiser::fromCovariances(2, w, mu, cov);
  auto priorDiag = [&](double u, double v) {
    double s = 0;
    for (int k = 0; k < 2; ++k)
      s += w[size_t(k)] * std::exp(logNormal(u, mu[size_t(2 * k)], sd[size_t(2 * k)] * sd[size_t(2 * k)]) +
                                   logNormal(v, mu[size_t(2 * k + 1)], sd[size_t(2 * k + 1)] * sd[size_t(2 * k + 1)]));
    return std::log(s);
  };
  auto priorFull = [&](double u, double v) {
    double s = 0;
    for (int k = 0; k < 2; ++k) s += w[size_t(k)] * std::exp(logNormal2(u, v, &mu[size_t(2 * k)], &cov[size_t(4 * k)]));
    return std::log(s);
  };
  for (NoiseLevel nl : {NoiseLevel{1, 0.3}, {0.8, 0.6}, {0.3, 1.2}})
    for (Vec x : {Vec{0.2, 0.1}, Vec{-1.3, 0.9}, Vec{1.4, -0.9}}) {
      CHECK(relErr(denoise1(diag, x, nl.alpha, nl.sigma),
                   posteriorMean2d(priorDiag, x, nl.alpha, nl.sigma, -10, 10, 561)) < 1e-10);
      CHECK(relErr(denoise1(full, x, nl.alpha, nl.sigma),
                   posteriorMean2d(priorFull, x, nl.alpha, nl.sigma, -10, 10, 561)) < 1e-10);
    }
}

ND_TEST(mixture_responsibilities_limits) {
  Vec w{0.2, 0.3, 0.5}, mu{0, 0, 2, 1, -1, 3};
  auto m = GaussianMixtureDenoiser::fromStds(2, w, mu, Vec{0.05, 0.05, 0.05});
  // Small noise: the component nearest x / alpha takes all the posterior mass.
  const double alpha = 0.8;
  Vec x{alpha * 2 + 0.01, alpha * 1 - 0.02}, r(3);
  m.responsibilities(x, Vec{alpha}, Vec{1e-6}, r);
  CHECK(r[1] > 1 - 1e-12 && r[0] < 1e-12 && r[2] < 1e-12);
  Vec d = denoise1(m, x, alpha, 1e-6);
  CHECK_NEAR(d[0], x[0] / alpha, 1e-9);
  CHECK_NEAR(d[1], x[1] / alpha, 1e-9);
  // Huge noise: the observation says nothing, responsibilities return to the prior weights.
  m.responsibilities(x, Vec{1.0}, Vec{1e7}, r);
  for (int k = 0; k < 3; ++k) CHECK_NEAR(r[size_t(k)], w[size_t(k)], 1e-9);
  // Far outside every component: still finite, still a distribution.
  m.responsibilities(Vec{1e3, -1e3}, Vec{1.0}, Vec{1e-3}, r);
  CHECK(std::isfinite(r[0] + r[1] + r[2]));
  CHECK_NEAR(r[0] + r[1] + r[2], 1.0, 1e-15);
}

// (d) low-rank mixture vs the full-covariance mixture ---------------------------------------------

namespace {
struct LowRankProblem {
  int n = 6;
  Vec w{0.5, 0.3, 0.2};
  std::vector<LowRankComponent> comps;
  Vec means, covs;
  LowRankProblem(double delta) {
    for (int k = 0; k < 3; ++k) {
      LowRankComponent c;
      c.rank = k + 1;
      c.mean = randnVec(size_t(n), 2.0);
      c.basis = randomOrthonormal(n, c.rank);
      means.insert(means.end(), c.mean.begin(), c.mean.end());
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
          double s = i == j ? delta * delta : 0.0;
          for (int p = 0; p < c.rank; ++p) s += c.basis[size_t(i * c.rank + p)] * c.basis[size_t(j * c.rank + p)];
          covs.push_back(s);
        }
      comps.push_back(std::move(c));
    }
  }
};
}  // namespace

ND_TEST(low_rank_mixture_equals_full_covariance_mixture) {
  for (double delta : {0.1, 0.35}) {
    LowRankProblem p(delta);
    LowRankMixtureDenoiser lr(p.n, p.w, p.comps, delta);
    auto full = GaussianMixtureDenoiser::fromCovariances(p.n, p.w, p.means, p.covs);
    for (NoiseLevel nl : {NoiseLevel{1, 0.05}, {0.9, 0.5}, {0.4, 1.0}, {1, 0.0}, {0.0, 1.0}}) {
      Vec x = randnVec(size_t(p.n), 2.0);
      CHECK(relErr(denoise1(lr, x, nl.alpha, nl.sigma), denoise1(full, x, nl.alpha, nl.sigma)) < 1e-10);
    }
  }
}

ND_TEST(low_rank_mixture_without_noise_floor) {
  LowRankProblem p(0.0), q(0.0);
  LowRankMixtureDenoiser lr(p.n, p.w, p.comps, 0.0);
  // Reference: the full path with a vanishing floor; the gap is O(delta^2 alpha^2 / sigma^2).
  Vec covs = p.covs;
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < p.n; ++i) covs[size_t(k * p.n * p.n + i * p.n + i)] += 1e-12;
  auto full = GaussianMixtureDenoiser::fromCovariances(p.n, p.w, p.means, covs);
  for (NoiseLevel nl : {NoiseLevel{1, 0.2}, {0.7, 0.7}, {0.2, 1.0}}) {
    Vec x = randnVec(size_t(p.n), 2.0);
    CHECK(relErr(denoise1(lr, x, nl.alpha, nl.sigma), denoise1(full, x, nl.alpha, nl.sigma)) < 1e-9);
  }
  // Subspace clustering: at small noise, a point near component 1's subspace is denoised onto it.
  const LowRankComponent& c = p.comps[1];
  Vec x0 = c.mean;
  for (int i = 0; i < p.n; ++i) x0[size_t(i)] += 0.7 * c.basis[size_t(i * 2)] - 0.4 * c.basis[size_t(i * 2 + 1)];
  Vec x(static_cast<size_t>(p.n));
  for (int i = 0; i < p.n; ++i) x[size_t(i)] = 0.9 * x0[size_t(i)] + 1e-3 * randn();
  Vec d = denoise1(lr, x, 0.9, 1e-3);
  Vec off = d;  // d - mean projected off span U must vanish
  for (int i = 0; i < p.n; ++i) off[size_t(i)] -= c.mean[size_t(i)];
  for (int j = 0; j < 2; ++j) {
    double a = 0;
    for (int i = 0; i < p.n; ++i) a += c.basis[size_t(i * 2 + j)] * (d[size_t(i)] - c.mean[size_t(i)]);
    for (int i = 0; i < p.n; ++i) off[size_t(i)] -= a * c.basis[size_t(i * 2 + j)];
  }
  for (double v : off) CHECK_NEAR(v, 0.0, 1e-12);
  CHECK(relErr(d, x0) < 1e-2);
}

// (e) empirical denoiser ------------------------------------------------------------------------------

ND_TEST(empirical_equals_narrow_mixture_and_limits) {
  const int n = 3, N = 7;
  Vec data = randnVec(size_t(N * n));
  EmpiricalDenoiser e(n, data);
  auto narrow = GaussianMixtureDenoiser::fromStds(n, Vec(N, 1.0), data, Vec(N, 1e-7));
  for (NoiseLevel nl : {NoiseLevel{1, 0.05}, {0.8, 0.5}, {0.3, 3}}) {
    Vec x = randnVec(n);
    CHECK(relErr(denoise1(e, x, nl.alpha, nl.sigma), denoise1(narrow, x, nl.alpha, nl.sigma)) < 1e-9);
  }
  Vec mean(n, 0.0);
  for (int p = 0; p < N; ++p)
    for (int j = 0; j < n; ++j) mean[size_t(j)] += data[size_t(p * n + j)] / N;
  CHECK(relErr(denoise1(e, randnVec(n), 1.0, 1e5), mean) < 1e-9);
  CHECK(relErr(denoise1(e, randnVec(n), 0.0, 1.0), mean) < 1e-15);
  // sigma -> 0: the nearest point to x / alpha, without NaN, even far from every point.
  Vec y3(data.begin() + 3 * n, data.begin() + 4 * n), x(n);
  for (int j = 0; j < n; ++j) x[size_t(j)] = 0.6 * y3[size_t(j)] + 1e-4;
  for (double s : {1e-12, 1e-200, 0.0}) CHECK(relErr(denoise1(e, x, 0.6, s), y3) == 0);
  Vec far = denoise1(e, Vec{1e3, -1e3, 1e3}, 1.0, 1e-12);
  for (double v : far) CHECK(std::isfinite(v));
  // Exact tie at sigma = 0: the tied points are averaged.
  EmpiricalDenoiser two(1, Vec{-1, 1});
  CHECK_NEAR(denoise1(two, Vec{0}, 1.0, 0.0)[0], 0.0, 0);
}

// (f) Tweedie ------------------------------------------------------------------------------------------

ND_TEST(gaussian_satisfies_tweedie_with_exact_score) {
  const int n = 4;
  Vec mu = randnVec(n), cov = randomSpd(n, 0.05);
  auto g = GaussianDenoiser::full(mu, cov);
  for (NoiseLevel nl : {NoiseLevel{1, 0.01}, {0.95, 0.3}, {0.5, 0.87}, {0.05, 1}}) {
    Vec x = randnVec(n), m = cov, r(n);
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) m[size_t(i * n + j)] *= nl.alpha * nl.alpha;
      m[size_t(i * n + i)] += nl.sigma * nl.sigma;
      r[size_t(i)] = x[size_t(i)] - nl.alpha * mu[size_t(i)];
    }
    Vec negScore = solve(m, r), tweedie(n);
    for (int i = 0; i < n; ++i)
      tweedie[size_t(i)] = (x[size_t(i)] - nl.sigma * nl.sigma * negScore[size_t(i)]) / nl.alpha;
    CHECK(relErr(denoise1(g, x, nl.alpha, nl.sigma), tweedie) < 1e-11 / nl.alpha);
  }
}

ND_TEST(full_covariance_at_larger_dim_matches_linear_solve) {
  // Exercises the Jacobi eigensolver at a realistic size against a direct solve of
  // (alpha^2 Sigma + sigma^2 I) y = x - alpha mu, D = mu + alpha Sigma y.
  const int n = 150;
  Vec mu = randnVec(n), cov = randomSpd(n, 0.01);
  auto g = GaussianDenoiser::full(mu, cov);
  const double alpha = 0.7, sigma = 0.3;
  Vec x = randnVec(n), m = cov, r(n);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) m[size_t(i * n + j)] *= alpha * alpha;
    m[size_t(i * n + i)] += sigma * sigma;
    r[size_t(i)] = x[size_t(i)] - alpha * mu[size_t(i)];
  }
  Vec y = solve(m, r), want = mu;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) want[size_t(i)] += alpha * cov[size_t(i * n + j)] * y[size_t(j)];
  CHECK(relErr(denoise1(g, x, alpha, sigma), want) < 1e-10);
}

// (g) closed-form PF-ODE vs RK4 ---------------------------------------------------------------------

namespace {
// VP-linear schedule (beta0 = 0.1, beta1 = 20), written out here on purpose.
const double kB0 = 0.1, kB1 = 20;
double vpLogAlpha(double t) { return -(kB0 * t / 2 + (kB1 - kB0) * t * t / 4); }
double vpAlpha(double t) { return std::exp(vpLogAlpha(t)); }
double vpSigma(double t) { return std::sqrt(-std::expm1(2 * vpLogAlpha(t))); }
double vpBeta(double t) { return kB0 + (kB1 - kB0) * t; }

// PF-ODE dx/dt = f x - g^2/2 score with f = -beta/2, g^2 = beta, and the exact Gaussian score
// -(alpha^2 Sigma + sigma^2 I)^{-1} (x - alpha mu), integrated by classical RK4.
Vec rk4VpPfOde(const Vec& mu, const Vec& cov, Vec x, double t0, double t1, int steps) {
  const int n = int(mu.size());
  auto rhs = [&](double t, const Vec& y) {
    double a = vpAlpha(t), s = vpSigma(t);
    Vec m = cov, r(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) m[size_t(i * n + j)] *= a * a;
      m[size_t(i * n + i)] += s * s;
      r[size_t(i)] = y[size_t(i)] - a * mu[size_t(i)];
    }
    Vec negScore = solve(m, r), dy(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) dy[size_t(i)] = -0.5 * vpBeta(t) * (y[size_t(i)] - negScore[size_t(i)]);
    return dy;
  };
  double h = (t1 - t0) / steps;
  auto axpy = [&](const Vec& y, const Vec& k, double c) {
    Vec o = y;
    for (int i = 0; i < n; ++i) o[size_t(i)] += c * k[size_t(i)];
    return o;
  };
  for (int s = 0; s < steps; ++s) {
    double t = t0 + s * h;
    Vec k1 = rhs(t, x), k2 = rhs(t + h / 2, axpy(x, k1, h / 2));
    Vec k3 = rhs(t + h / 2, axpy(x, k2, h / 2)), k4 = rhs(t + h, axpy(x, k3, h));
    for (int i = 0; i < n; ++i)
      x[size_t(i)] += h / 6 * (k1[size_t(i)] + 2 * k2[size_t(i)] + 2 * k3[size_t(i)] + k4[size_t(i)]);
  }
  return x;
}
}  // namespace

ND_TEST(pf_ode_closed_form_matches_rk4_vp_linear) {
  const int n = 4;
  Vec mu = randnVec(n), cov = randomSpd(n, 0.05);
  auto g = GaussianDenoiser::full(mu, cov);
  struct Span { double s, t; };
  std::vector<Span> spans{{1.0, 1e-3}, {0.5, 0.05}, {1e-3, 0.8}};  // the last runs forward in time
  Vec xs = randnVec(spans.size() * n), xt(xs.size()), aS, sS, aT, sT;
  for (auto sp : spans) {
    aS.push_back(vpAlpha(sp.s)); sS.push_back(vpSigma(sp.s));
    aT.push_back(vpAlpha(sp.t)); sT.push_back(vpSigma(sp.t));
  }
  gaussianPfOdeSolution(g, std::span<const double>(xs), aS, sS, aT, sT, std::span<double>(xt));
  for (size_t b = 0; b < spans.size(); ++b) {
    Vec start(xs.begin() + long(b * n), xs.begin() + long((b + 1) * n));
    Vec got(xt.begin() + long(b * n), xt.begin() + long((b + 1) * n));
    Vec want = rk4VpPfOde(mu, cov, start, spans[b].s, spans[b].t, 20000);
    CHECK(relErr(got, want) < 1e-9);
  }
}

ND_TEST(pf_ode_closed_form_matches_rk4_ve_diagonal) {
  // VE / EDM: alpha = 1 and dx/dlog(sigma) = x - D(x, sigma); axis-aligned covariance path.
  const int n = 3;
  Vec mu{0.3, -1.0, 2.0}, var{0.01, 0.5, 4.0};
  auto g = GaussianDenoiser::diagonal(mu, var);
  Vec x = randnVec(n, 80.0), start = x, out(n);
  const double u0 = std::log(80.0), u1 = std::log(0.002);
  const int steps = 20000;
  const double h = (u1 - u0) / steps;
  auto rhs = [&](double u, const Vec& y) {
    Vec d = denoise1(g, y, 1.0, std::exp(u)), dy(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) dy[size_t(i)] = y[size_t(i)] - d[size_t(i)];
    return dy;
  };
  for (int s = 0; s < steps; ++s) {
    double u = u0 + s * h;
    Vec k1 = rhs(u, x), y = x;
    for (int i = 0; i < n; ++i) y[size_t(i)] = x[size_t(i)] + h / 2 * k1[size_t(i)];
    Vec k2 = rhs(u + h / 2, y);
    for (int i = 0; i < n; ++i) y[size_t(i)] = x[size_t(i)] + h / 2 * k2[size_t(i)];
    Vec k3 = rhs(u + h / 2, y);
    for (int i = 0; i < n; ++i) y[size_t(i)] = x[size_t(i)] + h * k3[size_t(i)];
    Vec k4 = rhs(u + h, y);
    for (int i = 0; i < n; ++i)
      x[size_t(i)] += h / 6 * (k1[size_t(i)] + 2 * k2[size_t(i)] + 2 * k3[size_t(i)] + k4[size_t(i)]);
  }
  gaussianPfOdeSolution(g, std::span<const double>(start), Vec{1}, Vec{80}, Vec{1}, Vec{0.002},
                        std::span<double>(out));
  CHECK(relErr(out, x) < 1e-9);
  // The map is a flow: going s -> m -> t equals s -> t, and t -> s inverts it.
  Vec mid(n), end(n), back(n);
  gaussianPfOdeSolution(g, std::span<const double>(start), Vec{1}, Vec{80}, Vec{1}, Vec{3},
                        std::span<double>(mid));
  gaussianPfOdeSolution(g, std::span<const double>(mid), Vec{1}, Vec{3}, Vec{1}, Vec{0.002},
                        std::span<double>(end));
  CHECK(relErr(end, out) < 1e-13);
  gaussianPfOdeSolution(g, std::span<const double>(out), Vec{1}, Vec{0.002}, Vec{1}, Vec{80},
                        std::span<double>(back));
  CHECK(relErr(back, start) < 1e-12);
}

// (h) float vs double, and the thread pool -------------------------------------------------------

ND_TEST(float_matches_double_and_pool_matches_serial) {
  const int n = 5, batch = 64;
  Vec mu = randnVec(n), cov = randomSpd(n, 0.1), data = randnVec(size_t(20 * n));
  LowRankProblem lrp(0.2);
  auto gauss = GaussianDenoiser::full(mu, cov);
  auto mix = GaussianMixtureDenoiser::fromStds(n, Vec{1, 2, 3}, randnVec(3 * n, 2.0), Vec{0.3, 0.6, 1.0});
  EmpiricalDenoiser emp(n, data);
  LowRankMixtureDenoiser lr(lrp.n, lrp.w, lrp.comps, 0.2);
  nd::ThreadPool pool(2);
  Vec alpha(batch), sigma(batch);
  for (int b = 0; b < batch; ++b) {
    double t = (b + 0.5) / batch;
    alpha[size_t(b)] = vpAlpha(t);
    sigma[size_t(b)] = vpSigma(t);
  }
  for (const AnalyticDenoiser* d : std::vector<const AnalyticDenoiser*>{&gauss, &mix, &emp, &lr}) {
    const size_t size = size_t(batch * d->dim());
    Vec xd = randnVec(size), outD(size), outPool(size);
    std::vector<float> xf(size), outF(size);
    for (size_t i = 0; i < size; ++i) xd[i] = double(xf[i] = float(xd[i]));
    d->denoise(std::span<const double>(xd), alpha, sigma, std::span<double>(outD));
    d->denoise(std::span<const double>(xd), alpha, sigma, std::span<double>(outPool), &pool);
    d->denoise(std::span<const float>(xf), alpha, sigma, std::span<float>(outF), &pool);
    CHECK(outD == outPool);
    Vec outFd(outF.begin(), outF.end());
    CHECK(relErr(outFd, outD) < 1e-5);
  }
  Vec xd = randnVec(size_t(batch * n)), outD(xd.size()), aT(alpha.rbegin(), alpha.rend()),
      sT(sigma.rbegin(), sigma.rend());
  std::vector<float> xf(xd.size()), outF(xd.size());
  for (size_t i = 0; i < xd.size(); ++i) xd[i] = double(xf[i] = float(xd[i]));
  gaussianPfOdeSolution(gauss, std::span<const double>(xd), alpha, sigma, aT, sT, std::span<double>(outD));
  gaussianPfOdeSolution(gauss, std::span<const float>(xf), alpha, sigma, aT, sT, std::span<float>(outF), &pool);
  CHECK(relErr(Vec(outF.begin(), outF.end()), outD) < 1e-5);
}

// (i) errors ------------------------------------------------------------------------------------------

ND_TEST(constructor_and_argument_errors) {
  using nd::Error;
  Vec mu{0, 0};
  CHECK_THROWS_CODE(GaussianDenoiser::diagonal(mu, Vec{1}), Shape);
  CHECK_THROWS_CODE(GaussianDenoiser::diagonal(mu, Vec{1, 0}), Arg);
  CHECK_THROWS_CODE(GaussianDenoiser::diagonal(Vec{0, NAN}, Vec{1, 1}), Arg);
  CHECK_THROWS_CODE(GaussianDenoiser::diagonal(Vec{}, Vec{}), Shape);
  CHECK_THROWS_CODE(GaussianDenoiser::full(mu, Vec{1, 0, 0}), Shape);
  CHECK_THROWS_CODE(GaussianDenoiser::full(mu, Vec{1, 0.5, 0.4, 1}), Arg);   // not symmetric
  CHECK_THROWS_CODE(GaussianDenoiser::full(mu, Vec{1, 2, 2, 1}), Arg);       // indefinite
  CHECK_THROWS_CODE(GaussianDenoiser::full(mu, Vec{1, 1, 1, 1}), Arg);       // singular
  CHECK_THROWS_CODE(GaussianDenoiser::full(mu, Vec{1, 0, 0, INFINITY}), Arg);
  CHECK_THROWS_CODE(GaussianMixtureDenoiser::fromStds(2, Vec{1, -1}, Vec(4, 0.0), Vec{1, 1}), Arg);
  CHECK_THROWS_CODE(GaussianMixtureDenoiser::fromStds(2, Vec{}, Vec{}, Vec{}), Shape);
  CHECK_THROWS_CODE(GaussianMixtureDenoiser::fromStds(2, Vec{1, 1}, Vec(3, 0.0), Vec{1, 1}), Shape);
  CHECK_THROWS_CODE(GaussianMixtureDenoiser::fromStds(2, Vec{1, 1}, Vec(4, 0.0), Vec{1, 1, 1}), Shape);
  CHECK_THROWS_CODE(GaussianMixtureDenoiser::fromStds(2, Vec{1, 1}, Vec(4, 0.0), Vec{1, -1}), Arg);
  CHECK_THROWS_CODE(GaussianMixtureDenoiser::fromCovariances(2, Vec{1}, mu, Vec{1, 0, 0}), Shape);
  CHECK_THROWS_CODE(GaussianMixtureDenoiser::fromCovariances(2, Vec{1}, mu, Vec{-1, 0, 0, 1}), Arg);
  CHECK_THROWS_CODE(EmpiricalDenoiser(2, Vec{1, 2, 3}), Shape);
  CHECK_THROWS_CODE(EmpiricalDenoiser(2, Vec{}), Shape);
  CHECK_THROWS_CODE(EmpiricalDenoiser(2, Vec{1, NAN}), Arg);

  LowRankComponent c{{0, 0, 0}, {1, 0, 0, 1, 0, 0}, 2};
  CHECK_THROWS_CODE(LowRankMixtureDenoiser(3, Vec{1}, {c}, -0.1), Arg);
  CHECK_THROWS_CODE(LowRankMixtureDenoiser(3, Vec{1, 1}, {c}), Shape);
  LowRankComponent notOrtho{{0, 0, 0}, {1, 1, 0, 1, 0, 0}, 2};
  CHECK_THROWS_CODE(LowRankMixtureDenoiser(3, Vec{1}, {notOrtho}), Arg);
  LowRankComponent badShape{{0, 0, 0}, {1, 0, 0}, 2};
  CHECK_THROWS_CODE(LowRankMixtureDenoiser(3, Vec{1}, {badShape}), Shape);
  LowRankMixtureDenoiser lr(3, Vec{1}, {c}, 0.0);
  Vec x3{1, 2, 3}, out3(3);
  CHECK_THROWS_CODE(lr.denoise(std::span<const double>(x3), Vec{1}, Vec{0}, std::span<double>(out3)), Arg);

  auto g = GaussianDenoiser::diagonal(mu, Vec{1, 1});
  Vec x{1, 2}, out(2), out4(4);
  auto call = [&](Vec xv, Vec a, Vec s, Vec& o) {
    g.denoise(std::span<const double>(xv), a, s, std::span<double>(o));
  };
  CHECK_THROWS_CODE(call(x, Vec{-0.1}, Vec{1}, out), Arg);
  CHECK_THROWS_CODE(call(x, Vec{1}, Vec{NAN}, out), Arg);
  CHECK_THROWS_CODE(call(x, Vec{0}, Vec{0}, out), Arg);
  CHECK_THROWS_CODE(call(x, Vec{1, 1}, Vec{1}, out), Shape);
  CHECK_THROWS_CODE(call(x, Vec{1, 1}, Vec{1, 1}, out4), Shape);
  CHECK_THROWS_CODE(call(x, Vec{1}, Vec{1}, out4), Shape);
  CHECK_THROWS_CODE(call(Vec{1, INFINITY}, Vec{1}, Vec{1}, out), Arg);
  CHECK_THROWS_CODE(gaussianPfOdeSolution(g, std::span<const double>(x), Vec{1}, Vec{1}, Vec{1, 1},
                                          Vec{1, 1}, std::span<double>(out)),
                    Shape);
  CHECK_THROWS_CODE(gaussianPfOdeSolution(g, std::span<const double>(x), Vec{1}, Vec{1}, Vec{0},
                                          Vec{0}, std::span<double>(out)),
                    Arg);
  // Messages name the argument.
  try {
    GaussianDenoiser::diagonal(mu, Vec{1, -2});
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("for variances but received -2") != std::string::npos);
  }
}

ND_TEST_MAIN()
