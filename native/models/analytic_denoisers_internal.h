// Helpers shared by the analytic denoiser translation units; not part of the public API.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "models/analytic_denoisers.h"

namespace nd::models::detail {

void requireFinite(std::span<const double> v, const char* name);
// Throws ErrorCode::Shape "Expected <want> values (<what>) for <name> but received <got>".
void requireSize(size_t got, size_t want, const char* name, const std::string& what);
// Positive, finite weights -> log of the normalised weights.
std::vector<double> normalisedLogWeights(std::span<const double> weights);
// Per-sample noise levels: equal lengths, finite, >= 0, not both 0.
void checkNoiseLevels(std::span<const double> alpha, std::span<const double> sigma,
                      const char* alphaName, const char* sigmaName);

GaussianComponent makeDiagonalComponent(std::span<const double> mean,
                                        std::span<const double> variances, const char* name);
GaussianComponent makeFullComponent(std::span<const double> mean, std::span<const double> cov,
                                    const char* name);

// Returns log N(x; alpha mu, alpha^2 Sigma + sigma^2 I) and, when posteriorMean is not null, writes
// E[x0 | x_t = x] for this component there. scratch: 2 * dim doubles.
double gaussianPosterior(const GaussianComponent& c, const double* x, double alpha, double sigma,
                         double* posteriorMean, double* scratch);

// Softmax-weighted mean of vectors arriving one at a time, without storing them: a running maximum
// logit keeps every exponent <= 0, so neither overflow nor 0/0 can occur. acc: dim doubles.
class StreamingSoftmaxMean {
 public:
  StreamingSoftmaxMean(int64_t dim, double* acc) : dim_(dim), acc_(acc) {}
  void add(double logit, const double* value);
  void finish(double* out) const;

 private:
  int64_t dim_;
  double* acc_;
  double maxLogit_ = 0, total_ = 0;
  int64_t count_ = 0;
};

}  // namespace nd::models::detail
