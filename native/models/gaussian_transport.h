// Closed-form probability-flow transport for a Gaussian given by its top eigenvectors: the
// "teleport" of "Diffusion Models Generate Images Like Painters" (Wang & Vastola) at the scale of
// real latents, where a full dim x dim covariance does not fit. The data Gaussian is
//   N(mean, U diag(eigenvalues) U^T + residualVariance (I - U U^T)),   U: dim x rank, orthonormal,
// and the PF-ODE maps x_s at (alphaS, sigmaS) to
//   x_t = alphaT mean + sum_k g(lambda_k) u_k u_k^T y + g(residual) (I - U U^T) y,   y = x_s - alphaS mean,
//   g(l) = sqrt((alphaT^2 l + sigmaT^2) / (alphaS^2 l + sigmaS^2)),
// in O(dim rank) per sample. With rank = dim it is GaussianDenoiser's full transport.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace nd {
class ThreadPool;
}

namespace nd::models {

class LowRankGaussianTransport {
 public:
  // mean: dim; basis: dim x rank row-major with orthonormal columns (|U^T U - I| <= 1e-6);
  // eigenvalues: rank values >= 0; residualVariance >= 0. Violations: ERR_ND_ARG / ERR_ND_SHAPE.
  LowRankGaussianTransport(std::span<const double> mean, std::span<const double> basis, int64_t rank,
                           std::span<const double> eigenvalues, double residualVariance);
  int64_t dim() const { return int64_t(mean_.size()); }
  int64_t rank() const { return rank_; }

  // Per-sample noise levels (batch = alphaS.size()); xs and xt: batch x dim (may alias).
  void apply(std::span<const float> xs, std::span<const double> alphaS, std::span<const double> sigmaS,
             std::span<const double> alphaT, std::span<const double> sigmaT, std::span<float> xt, ThreadPool* pool) const;
  void apply(std::span<const double> xs, std::span<const double> alphaS, std::span<const double> sigmaS,
             std::span<const double> alphaT, std::span<const double> sigmaT, std::span<double> xt, ThreadPool* pool) const;

 private:
  template <class T>
  void applyT(std::span<const T> xs, std::span<const double> alphaS, std::span<const double> sigmaS,
              std::span<const double> alphaT, std::span<const double> sigmaT, std::span<T> xt, ThreadPool* pool) const;
  std::vector<double> mean_, basis_, eigenvalues_;
  int64_t rank_;
  double residual_;
};

}  // namespace nd::models
