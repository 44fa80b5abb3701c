// Small dense symmetric linear algebra in double, for the set-up of the analytic denoisers
// (covariances of a few hundred dimensions at most). Cyclic Jacobi is used instead of a
// tridiagonal QR because it is short, needs no pivoting logic, and gives eigenvectors that are
// orthonormal to working precision, which the closed-form PF-ODE solution relies on.
// Cost: O(n^3) per sweep, usually 6-10 sweeps.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace nd::models::linalg {

struct SymmetricEigen {
  std::vector<double> values;   // n eigenvalues, ascending
  std::vector<double> vectors;  // n x n row-major; column j is the eigenvector of values[j]
};

// a: n x n row-major, assumed symmetric (only the average of a and a^T is used).
inline SymmetricEigen symmetricEigen(const std::vector<double>& a, int64_t n) {
  std::vector<double> m(size_t(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) m[size_t(i * n + j)] = 0.5 * (a[size_t(i * n + j)] + a[size_t(j * n + i)]);
  std::vector<double> v(size_t(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) v[size_t(i * n + i)] = 1.0;
  auto at = [&](int64_t i, int64_t j) -> double& { return m[size_t(i * n + j)]; };

  double total = 0;
  for (double x : m) total += x * x;
  const double tiny = 1e-300;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i + 1; j < n; ++j) off += at(i, j) * at(i, j);
    // Converged when the off-diagonal mass is negligible against the whole matrix.
    if (off <= 1e-32 * total || off < tiny) break;
    for (int64_t p = 0; p < n; ++p) {
      for (int64_t q = p + 1; q < n; ++q) {
        double apq = at(p, q);
        if (std::fabs(apq) < tiny) continue;
        double app = at(p, p), aqq = at(q, q);
        // Rotation angle chosen with the smaller root so that |t| <= 1 (numerically stable form).
        double theta = (aqq - app) / (2.0 * apq);
        double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
        double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        for (int64_t k = 0; k < n; ++k) {
          double akp = at(k, p), akq = at(k, q);
          at(k, p) = c * akp - s * akq;
          at(k, q) = s * akp + c * akq;
        }
        for (int64_t k = 0; k < n; ++k) {
          double apk = at(p, k), aqk = at(q, k);
          at(p, k) = c * apk - s * aqk;
          at(q, k) = s * apk + c * aqk;
        }
        at(p, q) = at(q, p) = 0.0;
        for (int64_t k = 0; k < n; ++k) {
          double& vkp = v[size_t(k * n + p)];
          double& vkq = v[size_t(k * n + q)];
          double a0 = vkp, b0 = vkq;
          vkp = c * a0 - s * b0;
          vkq = s * a0 + c * b0;
        }
      }
    }
  }

  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return at(x, x) < at(y, y); });
  SymmetricEigen out;
  out.values.resize(size_t(n));
  out.vectors.resize(size_t(n * n));
  for (int64_t j = 0; j < n; ++j) {
    int64_t src = order[size_t(j)];
    out.values[size_t(j)] = at(src, src);
    for (int64_t k = 0; k < n; ++k) out.vectors[size_t(k * n + j)] = v[size_t(k * n + src)];
  }
  return out;
}

}  // namespace nd::models::linalg
