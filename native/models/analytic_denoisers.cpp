// Gaussian and Gaussian-mixture denoisers, the shared batch driver and the closed-form Gaussian
// PF-ODE transport. Low-rank mixtures and the empirical denoiser live in
// analytic_denoisers_lowrank.cpp.
#include "models/analytic_denoisers.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <string>

#include "core/error.h"
#include "core/thread_pool.h"
#include "models/analytic_denoisers_internal.h"
#include "models/linalg_small.h"

namespace nd::models {

namespace detail {

void requireFinite(std::span<const double> v, const char* name) {
  for (size_t i = 0; i < v.size(); ++i)
    ND_REQUIRE(std::isfinite(v[i]), Arg,
               std::string("Expected finite values for ") + name + " but received " + numberText(v[i]) +
                   " at index " + std::to_string(i));
}

void requireSize(size_t got, size_t want, const char* name, const std::string& what) {
  ND_REQUIRE(got == want, Shape,
             "Expected " + std::to_string(want) + " values (" + what + ") for " + name +
                 " but received " + std::to_string(got));
}

std::vector<double> normalisedLogWeights(std::span<const double> weights) {
  ND_REQUIRE(!weights.empty(), Shape, "Expected at least one component for weights but received 0");
  requireFinite(weights, "weights");
  double total = 0;
  for (size_t k = 0; k < weights.size(); ++k) {
    ND_REQUIRE(weights[k] > 0, Arg,
               "Expected positive values for weights but received " + numberText(weights[k]) + " at index " +
                   std::to_string(k));
    total += weights[k];
  }
  std::vector<double> logW(weights.size());
  for (size_t k = 0; k < weights.size(); ++k) logW[k] = std::log(weights[k] / total);
  return logW;
}

void checkNoiseLevels(std::span<const double> alpha, std::span<const double> sigma,
                      const char* alphaName, const char* sigmaName) {
  requireSize(sigma.size(), alpha.size(), sigmaName, std::string("one per sample, as ") + alphaName);
  for (size_t b = 0; b < alpha.size(); ++b) {
    double a = alpha[b], s = sigma[b];
    ND_REQUIRE(std::isfinite(a) && a >= 0, Arg,
               std::string("Expected a finite value >= 0 for ") + alphaName + " but received " +
                   numberText(a) + " at sample " + std::to_string(b));
    ND_REQUIRE(std::isfinite(s) && s >= 0, Arg,
               std::string("Expected a finite value >= 0 for ") + sigmaName + " but received " +
                   numberText(s) + " at sample " + std::to_string(b));
    ND_REQUIRE(a > 0 || s > 0, Arg,
               std::string("Expected ") + alphaName + " and " + sigmaName +
                   " not both 0 but received both 0 at sample " + std::to_string(b));
  }
}

GaussianComponent makeDiagonalComponent(std::span<const double> mean,
                                        std::span<const double> variances, const char* name) {
  requireFinite(variances, name);
  for (size_t j = 0; j < variances.size(); ++j)
    ND_REQUIRE(variances[j] > 0, Arg,
               std::string("Expected positive values for ") + name + " but received " +
                   numberText(variances[j]) + " at index " + std::to_string(j));
  GaussianComponent c;
  c.mean.assign(mean.begin(), mean.end());
  c.eigenvalues.assign(variances.begin(), variances.end());
  return c;
}

GaussianComponent makeFullComponent(std::span<const double> mean, std::span<const double> cov,
                                    const char* name) {
  const int64_t n = int64_t(mean.size());
  requireFinite(cov, name);
  double scale = 0;
  for (double v : cov) scale = std::max(scale, std::fabs(v));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) {
      double a = cov[size_t(i * n + j)], b = cov[size_t(j * n + i)];
      ND_REQUIRE(std::fabs(a - b) <= 1e-9 * scale, Arg,
                 std::string("Expected a symmetric matrix for ") + name + " but received entries (" +
                     std::to_string(i) + "," + std::to_string(j) + ") = " + numberText(a) + " and (" +
                     std::to_string(j) + "," + std::to_string(i) + ") = " + numberText(b));
    }
  auto eig = linalg::symmetricEigen(std::vector<double>(cov.begin(), cov.end()), n);
  ND_REQUIRE(n == 0 || eig.values[0] > 0, Arg,
             std::string("Expected a positive-definite matrix for ") + name +
                 " but received one with smallest eigenvalue " + numberText(n ? eig.values[0] : 0.0));
  GaussianComponent c;
  c.mean.assign(mean.begin(), mean.end());
  c.eigenvalues = std::move(eig.values);
  c.eigenvectors = std::move(eig.vectors);
  return c;
}

double gaussianPosterior(const GaussianComponent& c, const double* x, double alpha, double sigma,
                         double* posteriorMean, double* scratch) {
  const int64_t n = c.dim();
  const double* mu = c.mean.data();
  const double* l = c.eigenvalues.data();
  const double a2 = alpha * alpha, s2 = sigma * sigma;
  const double log2pi = std::log(2.0 * std::numbers::pi);
  double quad = 0, logDet = 0;
  if (c.axisAligned()) {
    for (int64_t j = 0; j < n; ++j) {
      double w = x[j] - alpha * mu[j];
      double v = a2 * l[j] + s2;
      quad += w * w / v;
      logDet += std::log(v);
      if (posteriorMean) posteriorMean[j] = mu[j] + alpha * l[j] / v * w;
    }
  } else {
    const double* V = c.eigenvectors.data();
    double* w = scratch;
    double* z = scratch + n;
    for (int64_t i = 0; i < n; ++i) w[i] = x[i] - alpha * mu[i];
    for (int64_t j = 0; j < n; ++j) z[j] = 0.0;
    for (int64_t i = 0; i < n; ++i) {  // z = V^T w, walking V by rows
      const double* row = V + i * n;
      for (int64_t j = 0; j < n; ++j) z[j] += row[j] * w[i];
    }
    for (int64_t j = 0; j < n; ++j) {
      double v = a2 * l[j] + s2;
      quad += z[j] * z[j] / v;
      logDet += std::log(v);
      z[j] *= alpha * l[j] / v;  // posterior-mean gain in the eigenbasis
    }
    if (posteriorMean)
      for (int64_t i = 0; i < n; ++i) {
        const double* row = V + i * n;
        double acc = 0;
        for (int64_t j = 0; j < n; ++j) acc += row[j] * z[j];
        posteriorMean[i] = mu[i] + acc;
      }
  }
  return -0.5 * (double(n) * log2pi + logDet + quad);
}

void StreamingSoftmaxMean::add(double logit, const double* value) {
  if (count_ == 0) {
    maxLogit_ = logit;
    total_ = 1.0;
    std::copy(value, value + dim_, acc_);
  } else if (logit <= maxLogit_) {
    double e = std::exp(logit - maxLogit_);
    total_ += e;
    if (e > 0)
      for (int64_t j = 0; j < dim_; ++j) acc_[j] += e * value[j];
  } else {
    // New maximum: rescale what was accumulated so the largest term stays exactly 1.
    double e = std::exp(maxLogit_ - logit);
    total_ = total_ * e + 1.0;
    for (int64_t j = 0; j < dim_; ++j) acc_[j] = acc_[j] * e + value[j];
    maxLogit_ = logit;
  }
  ++count_;
}

void StreamingSoftmaxMean::finish(double* out) const {
  for (int64_t j = 0; j < dim_; ++j) out[j] = acc_[j] / total_;
}

}  // namespace detail

using namespace detail;

// ---- batch driver ----------------------------------------------------------------------------

template <class T>
void AnalyticDenoiser::denoiseBatch(std::span<const T> x, std::span<const double> alpha,
                                    std::span<const double> sigma, std::span<T> x0hat,
                                    ThreadPool* pool) const {
  const int64_t batch = int64_t(alpha.size());
  checkNoiseLevels(alpha, sigma, "alpha", "sigma");
  requireSize(x.size(), size_t(batch * dim_), "x", "batch x dim");
  requireSize(x0hat.size(), size_t(batch * dim_), "x0hat", "batch x dim");
  for (int64_t b = 0; b < batch; ++b) checkNoiseLevel(alpha[size_t(b)], sigma[size_t(b)]);

  auto run = [&](int64_t begin, int64_t end) {
    std::vector<double> buf(size_t(2 * dim_ + scratchSize()));
    double* xd = buf.data();
    double* outd = xd + dim_;
    double* scratch = outd + dim_;
    for (int64_t b = begin; b < end; ++b) {
      const T* row = x.data() + b * dim_;
      for (int64_t j = 0; j < dim_; ++j) {
        xd[j] = double(row[j]);
        ND_REQUIRE(std::isfinite(xd[j]), Arg,
                   "Expected finite values for x but received " + numberText(xd[j]) + " at sample " +
                       std::to_string(b) + ", index " + std::to_string(j));
      }
      denoiseOne(xd, alpha[size_t(b)], sigma[size_t(b)], outd, scratch);
      T* outRow = x0hat.data() + b * dim_;
      for (int64_t j = 0; j < dim_; ++j) outRow[j] = T(outd[j]);
    }
  };
  int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, costPerSample()));
  if (pool && batch > grain)
    pool->parallelFor(batch, grain, run);
  else
    run(0, batch);
}

void AnalyticDenoiser::denoise(std::span<const float> x, std::span<const double> alpha,
                               std::span<const double> sigma, std::span<float> x0hat,
                               ThreadPool* pool) const {
  denoiseBatch<float>(x, alpha, sigma, x0hat, pool);
}

void AnalyticDenoiser::denoise(std::span<const double> x, std::span<const double> alpha,
                               std::span<const double> sigma, std::span<double> x0hat,
                               ThreadPool* pool) const {
  denoiseBatch<double>(x, alpha, sigma, x0hat, pool);
}

// ---- Gaussian ----------------------------------------------------------------------------------

GaussianDenoiser::GaussianDenoiser(GaussianComponent c)
    : AnalyticDenoiser(c.dim()), component_(std::move(c)) {}

GaussianDenoiser GaussianDenoiser::diagonal(std::span<const double> mean,
                                            std::span<const double> variances) {
  ND_REQUIRE(!mean.empty(), Shape, "Expected at least one dimension for mean but received 0");
  requireFinite(mean, "mean");
  requireSize(variances.size(), mean.size(), "variances", "dim, as mean");
  return GaussianDenoiser(makeDiagonalComponent(mean, variances, "variances"));
}

GaussianDenoiser GaussianDenoiser::full(std::span<const double> mean,
                                        std::span<const double> covariance) {
  ND_REQUIRE(!mean.empty(), Shape, "Expected at least one dimension for mean but received 0");
  requireFinite(mean, "mean");
  requireSize(covariance.size(), mean.size() * mean.size(), "covariance", "dim x dim");
  return GaussianDenoiser(makeFullComponent(mean, covariance, "covariance"));
}

void GaussianDenoiser::denoiseOne(const double* x, double alpha, double sigma, double* out,
                                  double* scratch) const {
  gaussianPosterior(component_, x, alpha, sigma, out, scratch);
}

int64_t GaussianDenoiser::scratchSize() const { return 2 * dim_; }
int64_t GaussianDenoiser::costPerSample() const {
  return component_.axisAligned() ? 8 * dim_ : 4 * dim_ * dim_;
}

// ---- Gaussian mixture --------------------------------------------------------------------------

GaussianMixtureDenoiser::GaussianMixtureDenoiser(int64_t dim, std::vector<double> logWeights,
                                                 std::vector<GaussianComponent> components)
    : AnalyticDenoiser(dim), logWeights_(std::move(logWeights)), components_(std::move(components)) {}

static void checkMixtureHead(int64_t dim, std::span<const double> weights,
                             std::span<const double> means) {
  ND_REQUIRE(dim > 0, Shape, "Expected dim > 0 for dim but received " + std::to_string(dim));
  ND_REQUIRE(!weights.empty(), Shape, "Expected at least one component for weights but received 0");
  requireSize(means.size(), weights.size() * size_t(dim), "means", "K x dim");
  requireFinite(means, "means");
}

GaussianMixtureDenoiser GaussianMixtureDenoiser::fromStds(int64_t dim,
                                                          std::span<const double> weights,
                                                          std::span<const double> means,
                                                          std::span<const double> stds) {
  checkMixtureHead(dim, weights, means);
  auto logW = normalisedLogWeights(weights);
  const size_t K = weights.size(), n = size_t(dim);
  ND_REQUIRE(stds.size() == K || stds.size() == K * n, Shape,
             "Expected " + std::to_string(K) + " (isotropic) or " + std::to_string(K * n) +
                 " (K x dim, diagonal) values for stds but received " + std::to_string(stds.size()));
  requireFinite(stds, "stds");
  for (size_t i = 0; i < stds.size(); ++i)
    ND_REQUIRE(stds[i] > 0, Arg,
               "Expected positive values for stds but received " + numberText(stds[i]) + " at index " +
                   std::to_string(i));
  const bool isotropic = stds.size() == K;
  std::vector<GaussianComponent> comps;
  std::vector<double> var(n);
  for (size_t k = 0; k < K; ++k) {
    for (size_t j = 0; j < n; ++j) {
      double s = isotropic ? stds[k] : stds[k * n + j];
      var[j] = s * s;
    }
    comps.push_back(makeDiagonalComponent(means.subspan(k * n, n), var, "stds"));
  }
  return GaussianMixtureDenoiser(dim, std::move(logW), std::move(comps));
}

GaussianMixtureDenoiser GaussianMixtureDenoiser::fromCovariances(
    int64_t dim, std::span<const double> weights, std::span<const double> means,
    std::span<const double> covariances) {
  checkMixtureHead(dim, weights, means);
  auto logW = normalisedLogWeights(weights);
  const size_t K = weights.size(), n = size_t(dim);
  requireSize(covariances.size(), K * n * n, "covariances", "K x dim x dim");
  std::vector<GaussianComponent> comps;
  for (size_t k = 0; k < K; ++k)
    comps.push_back(makeFullComponent(means.subspan(k * n, n), covariances.subspan(k * n * n, n * n),
                                      "covariances"));
  return GaussianMixtureDenoiser(dim, std::move(logW), std::move(comps));
}

void GaussianMixtureDenoiser::denoiseOne(const double* x, double alpha, double sigma, double* out,
                                         double* scratch) const {
  const int64_t n = dim_;
  double* componentMean = scratch;
  StreamingSoftmaxMean softmax(n, scratch + n);
  double* kernelScratch = scratch + 2 * n;
  for (size_t k = 0; k < components_.size(); ++k) {
    double logLik = gaussianPosterior(components_[k], x, alpha, sigma, componentMean, kernelScratch);
    softmax.add(logWeights_[k] + logLik, componentMean);
  }
  softmax.finish(out);
}

int64_t GaussianMixtureDenoiser::scratchSize() const { return 4 * dim_; }
int64_t GaussianMixtureDenoiser::costPerSample() const {
  bool full = !components_.front().axisAligned();
  return int64_t(components_.size()) * (full ? 4 * dim_ * dim_ : 8 * dim_);
}

void GaussianMixtureDenoiser::responsibilities(std::span<const double> x,
                                               std::span<const double> alpha,
                                               std::span<const double> sigma,
                                               std::span<double> out) const {
  const size_t batch = alpha.size(), K = components_.size(), n = size_t(dim_);
  checkNoiseLevels(alpha, sigma, "alpha", "sigma");
  requireSize(x.size(), batch * n, "x", "batch x dim");
  requireSize(out.size(), batch * K, "out", "batch x K");
  requireFinite(x, "x");
  std::vector<double> scratch(2 * n), logits(K);
  for (size_t b = 0; b < batch; ++b) {
    double maxLogit = -INFINITY;
    for (size_t k = 0; k < K; ++k) {
      logits[k] = logWeights_[k] + gaussianPosterior(components_[k], x.data() + b * n, alpha[b],
                                                     sigma[b], nullptr, scratch.data());
      maxLogit = std::max(maxLogit, logits[k]);
    }
    double total = 0;
    for (size_t k = 0; k < K; ++k) total += (logits[k] = std::exp(logits[k] - maxLogit));
    for (size_t k = 0; k < K; ++k) out[b * K + k] = logits[k] / total;
  }
}

// ---- closed-form Gaussian PF-ODE -------------------------------------------------------------

template <class T>
static void pfOdeBatch(const GaussianDenoiser& g, std::span<const T> xs,
                       std::span<const double> alphaS, std::span<const double> sigmaS,
                       std::span<const double> alphaT, std::span<const double> sigmaT,
                       std::span<T> xt, ThreadPool* pool) {
  const GaussianComponent& c = g.component();
  const int64_t n = c.dim(), batch = int64_t(alphaS.size());
  checkNoiseLevels(alphaS, sigmaS, "alphaS", "sigmaS");
  requireSize(alphaT.size(), size_t(batch), "alphaT", "one per sample, as alphaS");
  checkNoiseLevels(alphaT, sigmaT, "alphaT", "sigmaT");
  requireSize(xs.size(), size_t(batch * n), "xs", "batch x dim");
  requireSize(xt.size(), size_t(batch * n), "xt", "batch x dim");
  const double* mu = c.mean.data();
  const double* l = c.eigenvalues.data();
  const double* V = c.eigenvectors.data();

  auto run = [&](int64_t begin, int64_t end) {
    std::vector<double> w(static_cast<size_t>(n)), z(static_cast<size_t>(n));
    for (int64_t b = begin; b < end; ++b) {
      const double aS = alphaS[size_t(b)], sS = sigmaS[size_t(b)];
      const double aT = alphaT[size_t(b)], sT = sigmaT[size_t(b)];
      const T* in = xs.data() + b * n;
      T* out = xt.data() + b * n;
      // Per eigen-direction, x - alpha mu scales with the marginal std sqrt(alpha^2 l + sigma^2).
      auto gain = [&](int64_t j) {
        return std::sqrt((aT * aT * l[j] + sT * sT) / (aS * aS * l[j] + sS * sS));
      };
      for (int64_t i = 0; i < n; ++i) {
        w[size_t(i)] = double(in[i]) - aS * mu[i];
        ND_REQUIRE(std::isfinite(w[size_t(i)]), Arg,
                   "Expected finite values for xs but received " + numberText(double(in[i])) +
                       " at sample " + std::to_string(b) + ", index " + std::to_string(i));
      }
      if (c.axisAligned()) {
        for (int64_t j = 0; j < n; ++j) out[j] = T(aT * mu[j] + gain(j) * w[size_t(j)]);
        continue;
      }
      std::fill(z.begin(), z.end(), 0.0);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) z[size_t(j)] += V[i * n + j] * w[size_t(i)];
      for (int64_t j = 0; j < n; ++j) z[size_t(j)] *= gain(j);
      for (int64_t i = 0; i < n; ++i) {
        double acc = 0;
        for (int64_t j = 0; j < n; ++j) acc += V[i * n + j] * z[size_t(j)];
        out[i] = T(aT * mu[i] + acc);
      }
    }
  };
  int64_t cost = c.axisAligned() ? 4 * n : 4 * n * n;
  int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, cost));
  if (pool && batch > grain)
    pool->parallelFor(batch, grain, run);
  else
    run(0, batch);
}

void gaussianPfOdeSolution(const GaussianDenoiser& g, std::span<const float> xs,
                           std::span<const double> alphaS, std::span<const double> sigmaS,
                           std::span<const double> alphaT, std::span<const double> sigmaT,
                           std::span<float> xt, ThreadPool* pool) {
  pfOdeBatch<float>(g, xs, alphaS, sigmaS, alphaT, sigmaT, xt, pool);
}

void gaussianPfOdeSolution(const GaussianDenoiser& g, std::span<const double> xs,
                           std::span<const double> alphaS, std::span<const double> sigmaS,
                           std::span<const double> alphaT, std::span<const double> sigmaT,
                           std::span<double> xt, ThreadPool* pool) {
  pfOdeBatch<double>(g, xs, alphaS, sigmaS, alphaT, sigmaT, xt, pool);
}

}  // namespace nd::models
