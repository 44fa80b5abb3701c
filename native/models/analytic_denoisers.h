// Exact analytic denoisers: the posterior mean E[x0 | x_t] for data distributions where it has a
// closed form, under the forward process x_t = alpha_t * x0 + sigma_t * eps (VP, VE/EDM and flow
// schedules all fit, each sample in a batch at its own (alpha, sigma)). They serve as ground truth
// for sampler tests and as cheap "models".
//
// Numerics: the public entry points are instantiated for float and double tensors; internally every
// sample is computed in double (parameters are stored in double, log-sum-exp weights are formed in
// double), so the float path differs from the double path only by the rounding of its inputs and
// outputs. Costs per sample:
//   GaussianDenoiser        diagonal O(dim); full O(dim^2) after an O(dim^3) eigendecomposition
//   GaussianMixtureDenoiser O(K dim) diagonal/isotropic; O(K dim^2) full (O(K dim^3) set-up)
//   LowRankMixtureDenoiser  O(sum_k dim r_k)
//   EmpiricalDenoiser       O(N dim)
//
// Parameter rules (violations throw nd::Error, ErrorCode::Arg or ErrorCode::Shape):
//   - all values finite; variances and stds > 0; a full covariance symmetric (to 1e-9 relative) and
//     positive definite;
//   - mixture weights > 0; they are normalised to sum to 1 (any positive scale is accepted);
//   - per sample: alpha >= 0, sigma >= 0, not both 0, finite. sigma = 0 is allowed where the
//     posterior stays defined (it is the identity-like limit x0 = x / alpha for positive-definite
//     data, the nearest data point for the empirical denoiser).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace nd {
class ThreadPool;
}

namespace nd::models {

// A Gaussian N(mean, V diag(eigenvalues) V^T) kept in its eigenbasis; `eigenvectors` (dim x dim,
// row-major, column j pairs with eigenvalues[j]) is empty when the covariance is diagonal, i.e. the
// eigenbasis is the coordinate axes.
struct GaussianComponent {
  std::vector<double> mean;
  std::vector<double> eigenvalues;
  std::vector<double> eigenvectors;
  int64_t dim() const { return int64_t(mean.size()); }
  bool axisAligned() const { return eigenvectors.empty(); }
};

// Common batch driver: validates shapes and per-sample (alpha, sigma), converts a row to double,
// calls denoiseOne, converts back. x and x0hat are batch x dim row-major, batch = alpha.size().
class AnalyticDenoiser {
 public:
  virtual ~AnalyticDenoiser() = default;
  int64_t dim() const { return dim_; }

  void denoise(std::span<const float> x, std::span<const double> alpha, std::span<const double> sigma,
               std::span<float> x0hat, ThreadPool* pool = nullptr) const;
  void denoise(std::span<const double> x, std::span<const double> alpha,
               std::span<const double> sigma, std::span<double> x0hat,
               ThreadPool* pool = nullptr) const;

 protected:
  explicit AnalyticDenoiser(int64_t dim) : dim_(dim) {}
  // x, out: dim doubles; scratch: scratchSize() doubles, owned by the calling thread.
  virtual void denoiseOne(const double* x, double alpha, double sigma, double* out,
                          double* scratch) const = 0;
  virtual int64_t scratchSize() const = 0;
  // Rough flops per sample, to size parallel chunks.
  virtual int64_t costPerSample() const = 0;
  // Throws when the posterior is undefined at this (alpha, sigma) for this data (already checked:
  // finite, non-negative, not both zero).
  virtual void checkNoiseLevel(double alpha, double sigma) const {}

  template <class T>
  void denoiseBatch(std::span<const T> x, std::span<const double> alpha,
                    std::span<const double> sigma, std::span<T> x0hat, ThreadPool* pool) const;

  int64_t dim_;
};

class GaussianDenoiser final : public AnalyticDenoiser {
 public:
  // mean: dim; variances: dim, all > 0.
  static GaussianDenoiser diagonal(std::span<const double> mean, std::span<const double> variances);
  // mean: dim; covariance: dim x dim row-major, symmetric positive definite. O(dim^3) set-up.
  static GaussianDenoiser full(std::span<const double> mean, std::span<const double> covariance);

  const GaussianComponent& component() const { return component_; }

 private:
  explicit GaussianDenoiser(GaussianComponent c);
  void denoiseOne(const double* x, double alpha, double sigma, double* out,
                  double* scratch) const override;
  int64_t scratchSize() const override;
  int64_t costPerSample() const override;

  GaussianComponent component_;
};

class GaussianMixtureDenoiser final : public AnalyticDenoiser {
 public:
  // weights: K; means: K x dim; stds: K (isotropic) or K x dim (diagonal), all > 0.
  static GaussianMixtureDenoiser fromStds(int64_t dim, std::span<const double> weights,
                                          std::span<const double> means,
                                          std::span<const double> stds);
  // covariances: K x dim x dim, each symmetric positive definite.
  static GaussianMixtureDenoiser fromCovariances(int64_t dim, std::span<const double> weights,
                                                 std::span<const double> means,
                                                 std::span<const double> covariances);

  int64_t components() const { return int64_t(components_.size()); }
  // Posterior component probabilities p(k | x_t) for each sample: out is batch x K.
  void responsibilities(std::span<const double> x, std::span<const double> alpha,
                        std::span<const double> sigma, std::span<double> out) const;

 private:
  GaussianMixtureDenoiser(int64_t dim, std::vector<double> logWeights,
                          std::vector<GaussianComponent> components);
  void denoiseOne(const double* x, double alpha, double sigma, double* out,
                  double* scratch) const override;
  int64_t scratchSize() const override;
  int64_t costPerSample() const override;

  std::vector<double> logWeights_;
  std::vector<GaussianComponent> components_;
};

// Mixture of low-rank Gaussians: component k generates x0 = mean_k + U_k a + delta * n with
// a ~ N(0, I_{r_k}), n ~ N(0, I_dim) and U_k (dim x r_k) with orthonormal columns. Orthonormality
// makes alpha^2 (U U^T + delta^2 I) + sigma^2 I a two-level operator (one value on span U, one on
// its complement), so the Woodbury inverse and the determinant reduce to projections onto U.
struct LowRankComponent {
  std::vector<double> mean;   // dim
  std::vector<double> basis;  // dim x rank, row-major
  int64_t rank = 0;
};

class LowRankMixtureDenoiser final : public AnalyticDenoiser {
 public:
  // weights: K (> 0, normalised); delta >= 0. Every basis must satisfy |U^T U - I| <= 1e-6
  // elementwise. With delta = 0 the data lie on affine subspaces, so sigma must be > 0.
  LowRankMixtureDenoiser(int64_t dim, std::span<const double> weights,
                         std::vector<LowRankComponent> components, double delta = 0.0);

  int64_t components() const { return int64_t(components_.size()); }
  double delta() const { return delta_; }

 private:
  void denoiseOne(const double* x, double alpha, double sigma, double* out,
                  double* scratch) const override;
  int64_t scratchSize() const override;
  int64_t costPerSample() const override;
  void checkNoiseLevel(double alpha, double sigma) const override;

  std::vector<double> logWeights_;
  std::vector<LowRankComponent> components_;
  int64_t maxRank_ = 0;
  double delta_;
};

// Optimal denoiser of the empirical distribution of `data` (N x dim): a softmax over the points of
// -|x - alpha y_i|^2 / (2 sigma^2). As sigma -> 0 it becomes the nearest point to x / alpha (ties
// averaged); sigma = 0 is handled exactly, so no 0/0 appears.
class EmpiricalDenoiser final : public AnalyticDenoiser {
 public:
  EmpiricalDenoiser(int64_t dim, std::span<const double> data);
  int64_t points() const { return points_; }

 private:
  void denoiseOne(const double* x, double alpha, double sigma, double* out,
                  double* scratch) const override;
  int64_t scratchSize() const override;
  int64_t costPerSample() const override;

  std::vector<double> data_;
  int64_t points_;
};

// Exact probability-flow ODE transport for Gaussian data N(mu, Sigma = V diag(l) V^T): maps x_s at
// (alphaS, sigmaS) to x_t at (alphaT, sigmaT) by
//   x_t = alphaT mu + V diag(sqrt((alphaT^2 l + sigmaT^2) / (alphaS^2 l + sigmaS^2))) V^T (x_s - alphaS mu)
// (per-sample noise levels; all arrays have length batch). Works in either time direction.
void gaussianPfOdeSolution(const GaussianDenoiser& gaussian, std::span<const float> xs,
                           std::span<const double> alphaS, std::span<const double> sigmaS,
                           std::span<const double> alphaT, std::span<const double> sigmaT,
                           std::span<float> xt, ThreadPool* pool = nullptr);
void gaussianPfOdeSolution(const GaussianDenoiser& gaussian, std::span<const double> xs,
                           std::span<const double> alphaS, std::span<const double> sigmaS,
                           std::span<const double> alphaT, std::span<const double> sigmaT,
                           std::span<double> xt, ThreadPool* pool = nullptr);

}  // namespace nd::models
