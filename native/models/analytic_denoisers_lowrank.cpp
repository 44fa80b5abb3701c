// Mixture of low-rank Gaussians and the empirical (finite-dataset) denoiser.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "core/error.h"
#include "models/analytic_denoisers.h"
#include "models/analytic_denoisers_internal.h"

namespace nd::models {

using namespace detail;

// ---- mixture of low-rank Gaussians -------------------------------------------------------------

LowRankMixtureDenoiser::LowRankMixtureDenoiser(int64_t dim, std::span<const double> weights,
                                               std::vector<LowRankComponent> components,
                                               double delta)
    : AnalyticDenoiser(dim), components_(std::move(components)), delta_(delta) {
  ND_REQUIRE(dim > 0, Shape, "Expected dim > 0 for dim but received " + std::to_string(dim));
  requireSize(components_.size(), weights.size(), "components", "one per weight");
  logWeights_ = normalisedLogWeights(weights);
  ND_REQUIRE(std::isfinite(delta) && delta >= 0, Arg,
             "Expected a finite value >= 0 for delta but received " + numberText(delta));
  const size_t n = size_t(dim);
  for (size_t k = 0; k < components_.size(); ++k) {
    const LowRankComponent& c = components_[k];
    const std::string where = " of component " + std::to_string(k);
    requireSize(c.mean.size(), n, "mean", "dim" + where);
    requireFinite(c.mean, "mean");
    ND_REQUIRE(c.rank >= 0 && c.rank <= dim, Arg,
               "Expected a rank in [0, dim] for rank" + where + " but received " +
                   std::to_string(c.rank));
    requireSize(c.basis.size(), n * size_t(c.rank), "basis", "dim x rank" + where);
    requireFinite(c.basis, "basis");
    const size_t r = size_t(c.rank);
    for (size_t p = 0; p < r; ++p)
      for (size_t q = p; q < r; ++q) {
        double dot = 0;
        for (size_t i = 0; i < n; ++i) dot += c.basis[i * r + p] * c.basis[i * r + q];
        double want = p == q ? 1.0 : 0.0;
        ND_REQUIRE(std::fabs(dot - want) <= 1e-6, Arg,
                   "Expected orthonormal columns for basis" + where + " but received column dot(" +
                       std::to_string(p) + "," + std::to_string(q) + ") = " + numberText(dot));
      }
    maxRank_ = std::max(maxRank_, c.rank);
  }
}

void LowRankMixtureDenoiser::checkNoiseLevel(double alpha, double sigma) const {
  // Off span U the marginal variance is alpha^2 delta^2 + sigma^2; it must not vanish.
  ND_REQUIRE(alpha * alpha * delta_ * delta_ + sigma * sigma > 0, Arg,
             "Expected sigma > 0 (the low-rank data have delta = " + numberText(delta_) +
                 ") for sigma but received " + numberText(sigma));
}

void LowRankMixtureDenoiser::denoiseOne(const double* x, double alpha, double sigma, double* out,
                                        double* scratch) const {
  const int64_t n = dim_;
  double* w = scratch;             // x - alpha mu, then its part orthogonal to span U
  double* proj = scratch + n;      // U a
  double* componentMean = scratch + 2 * n;
  StreamingSoftmaxMean softmax(n, scratch + 3 * n);
  double* a = scratch + 4 * n;     // U^T (x - alpha mu)
  const double log2pi = std::log(2.0 * std::numbers::pi);
  const double a2 = alpha * alpha, d2 = delta_ * delta_;
  // Marginal covariance alpha^2 (U U^T + delta^2 I) + sigma^2 I = c (I - P) + e P, P = U U^T.
  const double c = a2 * d2 + sigma * sigma;
  const double e = a2 + c;
  const double gainOn = alpha * (1.0 + d2) / e;  // posterior gain on span U
  const double gainOff = alpha * d2 / c;          // and off it (0 when delta = 0)
  for (size_t k = 0; k < components_.size(); ++k) {
    const LowRankComponent& comp = components_[k];
    const int64_t r = comp.rank;
    const double* U = comp.basis.data();
    const double* mu = comp.mean.data();
    for (int64_t i = 0; i < n; ++i) w[i] = x[i] - alpha * mu[i];
    for (int64_t j = 0; j < r; ++j) a[j] = 0.0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < r; ++j) a[j] += U[i * r + j] * w[i];
    double onNorm2 = 0, offNorm2 = 0;
    for (int64_t j = 0; j < r; ++j) onNorm2 += a[j] * a[j];
    for (int64_t i = 0; i < n; ++i) {
      double acc = 0;
      for (int64_t j = 0; j < r; ++j) acc += U[i * r + j] * a[j];
      proj[i] = acc;
      w[i] -= acc;  // formed explicitly: |w|^2 - |a|^2 would cancel badly at small sigma
      offNorm2 += w[i] * w[i];
    }
    double logLik = -0.5 * (double(n) * log2pi + double(n - r) * std::log(c) +
                            double(r) * std::log(e) + offNorm2 / c + onNorm2 / e);
    for (int64_t i = 0; i < n; ++i) componentMean[i] = mu[i] + gainOn * proj[i] + gainOff * w[i];
    softmax.add(logWeights_[k] + logLik, componentMean);
  }
  softmax.finish(out);
}

int64_t LowRankMixtureDenoiser::scratchSize() const { return 4 * dim_ + maxRank_; }
int64_t LowRankMixtureDenoiser::costPerSample() const {
  int64_t total = 0;
  for (const auto& c : components_) total += 4 * dim_ * (c.rank + 1);
  return total;
}

// ---- empirical distribution ---------------------------------------------------------------------

EmpiricalDenoiser::EmpiricalDenoiser(int64_t dim, std::span<const double> data)
    : AnalyticDenoiser(dim), points_(0) {
  ND_REQUIRE(dim > 0, Shape, "Expected dim > 0 for dim but received " + std::to_string(dim));
  ND_REQUIRE(!data.empty() && data.size() % size_t(dim) == 0, Shape,
             "Expected a non-empty N x " + std::to_string(dim) + " array for data but received " +
                 std::to_string(data.size()) + " values");
  requireFinite(data, "data");
  data_.assign(data.begin(), data.end());
  points_ = int64_t(data.size()) / dim;
}

void EmpiricalDenoiser::denoiseOne(const double* x, double alpha, double sigma, double* out,
                                   double* scratch) const {
  const int64_t n = dim_;
  double* dist2 = scratch;
  double minDist2 = INFINITY;
  for (int64_t p = 0; p < points_; ++p) {
    const double* y = data_.data() + p * n;
    double d = 0;
    for (int64_t j = 0; j < n; ++j) {
      double t = x[j] - alpha * y[j];
      d += t * t;
    }
    dist2[p] = d;
    minDist2 = std::min(minDist2, d);
  }
  // Logits relative to the nearest point are <= 0, so the largest weight is exactly 1 and the sum
  // never underflows. When sigma^2 is 0 (or underflows) only the nearest points keep weight: the
  // sigma -> 0 limit, reached without ever forming 0/0.
  const double twoS2 = 2.0 * sigma * sigma;
  for (int64_t j = 0; j < n; ++j) out[j] = 0.0;
  double total = 0;
  for (int64_t p = 0; p < points_; ++p) {
    double gap = dist2[p] - minDist2;
    double weight = twoS2 > 0 ? std::exp(-gap / twoS2) : (gap == 0 ? 1.0 : 0.0);
    if (weight == 0) continue;
    total += weight;
    const double* y = data_.data() + p * n;
    for (int64_t j = 0; j < n; ++j) out[j] += weight * y[j];
  }
  for (int64_t j = 0; j < n; ++j) out[j] /= total;
}

int64_t EmpiricalDenoiser::scratchSize() const { return points_; }
int64_t EmpiricalDenoiser::costPerSample() const { return 4 * points_ * dim_; }

}  // namespace nd::models
