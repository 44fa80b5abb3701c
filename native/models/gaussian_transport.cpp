#include "models/gaussian_transport.h"

#include <cmath>
#include <string>

#include "core/error.h"
#include "core/thread_pool.h"

namespace nd::models {

LowRankGaussianTransport::LowRankGaussianTransport(std::span<const double> mean, std::span<const double> basis,
                                                   int64_t rank, std::span<const double> eigenvalues,
                                                   double residualVariance)
    : mean_(mean.begin(), mean.end()), basis_(basis.begin(), basis.end()), eigenvalues_(eigenvalues.begin(), eigenvalues.end()),
      rank_(rank), residual_(residualVariance) {
  const int64_t dim = int64_t(mean_.size());
  ND_REQUIRE(dim > 0, Shape, "Expected a non-empty mean for the teleport Gaussian");
  ND_REQUIRE(rank >= 0 && rank <= dim, Shape, "Expected a rank in [0, dim] for the teleport basis");
  ND_REQUIRE(int64_t(basis_.size()) == dim * rank, Shape,
             "Expected " + std::to_string(dim * rank) + " values (dim x rank) for basis but received " + std::to_string(basis_.size()));
  ND_REQUIRE(int64_t(eigenvalues_.size()) == rank, Shape,
             "Expected " + std::to_string(rank) + " eigenvalues but received " + std::to_string(eigenvalues_.size()));
  for (double v : mean_) ND_REQUIRE(std::isfinite(v), Arg, "Expected finite values for mean");
  for (double v : basis_) ND_REQUIRE(std::isfinite(v), Arg, "Expected finite values for basis");
  for (double v : eigenvalues_)
    ND_REQUIRE(std::isfinite(v) && v >= 0, Arg, "Expected finite eigenvalues >= 0 but received " + numberText(v));
  ND_REQUIRE(std::isfinite(residualVariance) && residualVariance >= 0, Arg,
             "Expected a finite residualVariance >= 0 but received " + numberText(residualVariance));
  for (int64_t p = 0; p < rank; ++p)
    for (int64_t q = p; q < rank; ++q) {
      double dot = 0;
      for (int64_t i = 0; i < dim; ++i) dot += basis_[size_t(i * rank + p)] * basis_[size_t(i * rank + q)];
      ND_REQUIRE(std::fabs(dot - (p == q ? 1.0 : 0.0)) <= 1e-6, Arg,
                 "Expected orthonormal basis columns but column (" + std::to_string(p) + "," + std::to_string(q) +
                     ") dot = " + numberText(dot));
    }
}

template <class T>
void LowRankGaussianTransport::applyT(std::span<const T> xs, std::span<const double> alphaS, std::span<const double> sigmaS,
                                      std::span<const double> alphaT, std::span<const double> sigmaT, std::span<T> xt,
                                      ThreadPool* pool) const {
  const int64_t dim = this->dim(), batch = int64_t(alphaS.size());
  ND_REQUIRE(int64_t(sigmaS.size()) == batch && int64_t(alphaT.size()) == batch && int64_t(sigmaT.size()) == batch, Shape,
             "Expected one noise level per sample");
  ND_REQUIRE(int64_t(xs.size()) == batch * dim && xt.size() == xs.size(), Shape,
             "Expected batch x " + std::to_string(dim) + " values for x");
  auto gain = [](double l, double aS, double sS, double aT, double sT) {
    double den = aS * aS * l + sS * sS;
    ND_REQUIRE(den > 0, Arg, "The teleport Gaussian is degenerate at the start noise level (variance 0 and sigma 0)");
    return std::sqrt((aT * aT * l + sT * sT) / den);
  };
  auto body = [&](int64_t b0, int64_t b1) {
    std::vector<double> y(static_cast<size_t>(dim)), c(static_cast<size_t>(rank_));
    for (int64_t b = b0; b < b1; ++b) {
      const double aS = alphaS[size_t(b)], sS = sigmaS[size_t(b)], aT = alphaT[size_t(b)], sT = sigmaT[size_t(b)];
      const T* x = xs.data() + b * dim;
      T* o = xt.data() + b * dim;
      for (int64_t i = 0; i < dim; ++i) y[size_t(i)] = double(x[i]) - aS * mean_[size_t(i)];
      const double g0 = gain(residual_, aS, sS, aT, sT);
      std::fill(c.begin(), c.end(), 0.0);
      for (int64_t i = 0; i < dim; ++i)
        for (int64_t k = 0; k < rank_; ++k) c[size_t(k)] += basis_[size_t(i * rank_ + k)] * y[size_t(i)];
      for (int64_t k = 0; k < rank_; ++k) c[size_t(k)] *= gain(eigenvalues_[size_t(k)], aS, sS, aT, sT) - g0;
      for (int64_t i = 0; i < dim; ++i) {
        double v = aT * mean_[size_t(i)] + g0 * y[size_t(i)];
        for (int64_t k = 0; k < rank_; ++k) v += basis_[size_t(i * rank_ + k)] * c[size_t(k)];
        o[i] = T(v);
      }
    }
  };
  if (pool) pool->parallelFor(batch, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, dim * (rank_ + 1))), body);
  else body(0, batch);
}

void LowRankGaussianTransport::apply(std::span<const float> xs, std::span<const double> aS, std::span<const double> sS,
                                     std::span<const double> aT, std::span<const double> sT, std::span<float> xt,
                                     ThreadPool* pool) const {
  applyT<float>(xs, aS, sS, aT, sT, xt, pool);
}
void LowRankGaussianTransport::apply(std::span<const double> xs, std::span<const double> aS, std::span<const double> sS,
                                     std::span<const double> aT, std::span<const double> sT, std::span<double> xt,
                                     ThreadPool* pool) const {
  applyT<double>(xs, aS, sS, aT, sT, xt, pool);
}

}  // namespace nd::models
