#include "solvers/brownian_tree.h"

#include <algorithm>
#include <cmath>

#include "core/dtype.h"
#include "core/error.h"
#include "kernels/cpu/randn.h"

namespace nd::solvers {

BrownianTree::BrownianTree(double t0, double t1, std::vector<uint64_t> seeds, int64_t dim, double tolerance)
    : t0_(std::min(t0, t1)), t1_(std::max(t0, t1)), tolerance_(tolerance), seeds_(std::move(seeds)), dim_(dim) {
  ND_REQUIRE(std::isfinite(t0) && std::isfinite(t1) && t0 != t1, Arg,
             "BrownianTree: the interval must be finite and non-empty");
  ND_REQUIRE(tolerance > 0 && tolerance < 1, Arg, "BrownianTree: tolerance must be in (0, 1)");
  ND_REQUIRE(!seeds_.empty() && dim > 0, Arg, "BrownianTree: needs one seed per sample");
  root_.resize(size_t(size()));
  randnCpu(root_.data(), DType::F64, int64_t(seeds_.size()), dim_, seeds_.data(), kBrownianStreamBase, nullptr);
  double s = std::sqrt(t1_ - t0_);
  for (double& v : root_) v *= s;
}

void BrownianTree::value(double t, double* out, ThreadPool* pool) const {
  int64_t n = size();
  t = std::clamp(t, t0_, t1_);
  if (t == t0_) { std::fill(out, out + n, 0.0); return; }
  if (t == t1_) { std::copy(root_.begin(), root_.end(), out); return; }
  for (int k = 0; k < 2; ++k)
    if (cachedT_[k] == t && !cachedW_[k].empty()) { std::copy(cachedW_[k].begin(), cachedW_[k].end(), out); return; }
  // Descend from the root interval keeping W at both ends.
  std::vector<double> wa(static_cast<size_t>(n), 0.0), wb(root_), z(static_cast<size_t>(n));
  double a = t0_, b = t1_;
  uint64_t node = 1;
  double leaf = tolerance_ * (t1_ - t0_);
  while (b - a > leaf) {
    double m = 0.5 * (a + b);
    randnCpu(z.data(), DType::F64, int64_t(seeds_.size()), dim_, seeds_.data(), kBrownianStreamBase + node, pool);
    double s = 0.5 * std::sqrt(b - a);  // bridge std at the midpoint: sqrt((b-a)/4)
    if (t < m) {
      for (int64_t i = 0; i < n; ++i) wb[i] = 0.5 * (wa[i] + wb[i]) + s * z[i];
      b = m;
      node = 2 * node;
    } else {
      for (int64_t i = 0; i < n; ++i) wa[i] = 0.5 * (wa[i] + wb[i]) + s * z[i];
      a = m;
      node = 2 * node + 1;
    }
    if (node >= (uint64_t(1) << 46)) break;
  }
  double w = (t - a) / (b - a);
  for (int64_t i = 0; i < n; ++i) out[i] = wa[i] + w * (wb[i] - wa[i]);
  cachedT_[cacheNext_] = t;
  cachedW_[cacheNext_].assign(out, out + n);
  cacheNext_ ^= 1;
}

template <class T>
void BrownianTree::normalizedIncrement(double a, double b, T* out, ThreadPool* pool) const {
  int64_t n = size();
  std::vector<double> wa(static_cast<size_t>(n)), wb(static_cast<size_t>(n));
  value(a, wa.data(), pool);
  value(b, wb.data(), pool);
  double len = std::fabs(std::clamp(b, t0_, t1_) - std::clamp(a, t0_, t1_));
  ND_REQUIRE(len > 0, Arg, "BrownianTree: empty increment");
  double inv = 1.0 / std::sqrt(len);
  double sign = b >= a ? 1.0 : -1.0;
  for (int64_t i = 0; i < n; ++i) out[i] = T(sign * (wb[i] - wa[i]) * inv);
}

template void BrownianTree::normalizedIncrement<float>(double, double, float*, ThreadPool*) const;
template void BrownianTree::normalizedIncrement<double>(double, double, double*, ThreadPool*) const;

}  // namespace nd::solvers
