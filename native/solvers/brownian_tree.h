// Brownian paths that do not depend on how they are queried. W(t) for t in [t0, t1] is fixed by the
// per-sample seeds alone: the path is refined by Brownian-bridge bisection of [t0, t1], node k's
// midpoint drawing its Philox normals from stream kBrownianStreamBase + k, down to leaves narrower
// than `tolerance` * (t1 - t0), inside which W is linear. So W(b) - W(a) = (W(b) - W(m)) + (W(m) - W(a))
// exactly, increments over disjoint intervals are independent (up to the leaf interpolation), and an
// SDE sampler run with N or 2N steps sees the same path (k-diffusion's BrownianTreeNoiseSampler idea).
#pragma once
#include <cstdint>
#include <vector>

namespace nd {
class ThreadPool;
}

namespace nd::solvers {

constexpr uint64_t kBrownianStreamBase = uint64_t(1) << 48;

class BrownianTree {
 public:
  BrownianTree(double t0, double t1, std::vector<uint64_t> seeds, int64_t dim, double tolerance);
  int64_t size() const { return int64_t(seeds_.size()) * dim_; }
  // W(t) for every sample (batch x dim), t clamped to [t0, t1].
  void value(double t, double* out, ThreadPool* pool) const;
  // (W(b) - W(a)) / sqrt|b - a|: standard normal noise for the step a -> b (either order).
  template <class T>
  void normalizedIncrement(double a, double b, T* out, ThreadPool* pool) const;

 private:
  double t0_, t1_, tolerance_;
  std::vector<uint64_t> seeds_;
  int64_t dim_;
  std::vector<double> root_;  // W(t1)
  // The last two W(t) computed: an SDE step asks for W(t_i) and W(t_i+1), and the next step for
  // W(t_i+1) again, so this halves the work of a sampling run. (A tree belongs to one sampler,
  // which is used from one thread at a time.)
  mutable double cachedT_[2] = {-1, -1};
  mutable std::vector<double> cachedW_[2];
  mutable int cacheNext_ = 0;
};

}  // namespace nd::solvers
