#include "solvers/reference_ode.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "models/analytic_denoisers.h"

namespace nd::solvers {

ReferenceOdeStats solvePfOdeReference(const models::AnalyticDenoiser& denoiser, std::span<double> y, double from,
                                      double to, double rtol, ThreadPool* pool) {
  const int64_t dim = denoiser.dim();
  ND_REQUIRE(dim > 0 && int64_t(y.size()) % dim == 0 && !y.empty(), Shape, "solvePfOde: x must be batch x dim");
  ND_REQUIRE(std::isfinite(from) && std::isfinite(to) && from > 0 && to > 0, Arg,
             "solvePfOde: both noise levels must be finite and > 0");
  ND_REQUIRE(rtol >= 1e-14 && rtol < 1, Arg, "solvePfOde: rtol must be in [1e-14, 1)");
  const int64_t batch = int64_t(y.size()) / dim;
  const size_t n = y.size();
  ReferenceOdeStats stats;
  if (from == to) return stats;

  std::vector<double> ones(static_cast<size_t>(batch), 1.0), sig(static_cast<size_t>(batch));
  std::vector<double> d(n);
  // f(u, y) = y - D(y; e^u)
  auto f = [&](double u, const double* yy, double* out) {
    std::fill(sig.begin(), sig.end(), std::exp(u));
    denoiser.denoise(std::span<const double>(yy, n), ones, sig, std::span<double>(d.data(), n), pool);
    for (size_t i = 0; i < n; ++i) out[i] = yy[i] - d[i];
    ++stats.evaluations;
  };
  static const double c[7] = {0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1, 1};
  static const double a[7][6] = {{0},
                                 {1.0 / 5},
                                 {3.0 / 40, 9.0 / 40},
                                 {44.0 / 45, -56.0 / 15, 32.0 / 9},
                                 {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
                                 {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
                                 {35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84}};
  static const double b5[7] = {35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84, 0};
  static const double b4[7] = {5179.0 / 57600, 0, 7571.0 / 16695, 393.0 / 640, -92097.0 / 339200, 187.0 / 2100, 1.0 / 40};

  double u = std::log(from), uEnd = std::log(to), dir = uEnd > u ? 1.0 : -1.0;
  double h = dir * std::min(0.01, std::fabs(uEnd - u));
  std::vector<std::vector<double>> k(7, std::vector<double>(n));
  std::vector<double> tmp(n), y5(n);
  f(u, y.data(), k[0].data());  // FSAL: k[0] always holds f at the current point
  const double atol = rtol * 1e-2;
  while (dir * (uEnd - u) > 0) {
    if (dir * (u + h - uEnd) > 0) h = uEnd - u;
    for (int s = 1; s < 7; ++s) {
      for (size_t i = 0; i < n; ++i) {
        double acc = y[i];
        for (int j = 0; j < s; ++j) acc += h * a[s][j] * k[size_t(j)][i];
        tmp[i] = acc;
      }
      if (s == 6) y5 = tmp;  // row 7 of a is b5: the 5th-order solution
      f(u + c[s] * h, tmp.data(), k[size_t(s)].data());
    }
    double err = 0;
    for (int64_t b = 0; b < batch; ++b) {
      double acc = 0;
      for (int64_t j = 0; j < dim; ++j) {
        size_t i = size_t(b * dim + j);
        double e = 0;
        for (int s = 0; s < 7; ++s) e += h * (b5[s] - b4[s]) * k[size_t(s)][i];
        double scale = atol + rtol * std::max(std::fabs(y[i]), std::fabs(y5[i]));
        acc += (e / scale) * (e / scale);
      }
      err = std::max(err, std::sqrt(acc / double(dim)));
    }
    if (err <= 1.0) {
      u += h;
      std::copy(y5.begin(), y5.end(), y.begin());
      std::swap(k[0], k[6]);
      ++stats.accepted;
    } else {
      ++stats.rejected;
    }
    ND_REQUIRE(stats.accepted + stats.rejected < 10000000, Internal, "solvePfOde: too many steps");
    double factor = err == 0 ? 5.0 : std::clamp(0.9 * std::pow(err, -0.2), 0.2, 5.0);
    h *= factor;
  }
  return stats;
}

}  // namespace nd::solvers
