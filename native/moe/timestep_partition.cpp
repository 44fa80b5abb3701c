#include "moe/timestep_partition.h"

#include <cmath>
#include <limits>
#include <string>

#include "core/error.h"

namespace nd::moe {

Partition partitionTimesteps(int64_t n, int64_t k, const std::function<double(int64_t, int64_t)>& cost) {
  ND_REQUIRE(n >= 1 && n <= 100000, Arg, "Expected between 1 and 100000 timesteps but received " + std::to_string(n));
  ND_REQUIRE(k >= 1 && k <= n, Arg, "Expected k in [1, " + std::to_string(n) + "] for k but received " + std::to_string(k));
  const double inf = std::numeric_limits<double>::infinity();
  auto c = [&](int64_t l, int64_t r) {
    double v = cost(l, r);
    ND_REQUIRE(std::isfinite(v), Arg, "The interval cost must be finite; cost(" + std::to_string(l) + ", " + std::to_string(r) + ") = " + numberText(v));
    return v;
  };
  // D[j][i]: best cost of splitting 0..i into j + 1 intervals; S[j][i]: the end of the j-th interval's predecessor.
  std::vector<std::vector<double>> D(static_cast<size_t>(k), std::vector<double>(static_cast<size_t>(n), inf));
  std::vector<std::vector<int64_t>> S(static_cast<size_t>(k), std::vector<int64_t>(static_cast<size_t>(n), -1));
  for (int64_t i = 0; i < n; ++i) D[0][size_t(i)] = c(0, i);
  for (int64_t j = 1; j < k; ++j) {
    for (int64_t i = j; i < n; ++i) {
      double best = inf;
      int64_t arg = -1;
      for (int64_t L = j - 1; L < i; ++L) {
        double v = D[size_t(j - 1)][size_t(L)] + c(L + 1, i);
        if (v < best) { best = v; arg = L; }
      }
      D[size_t(j)][size_t(i)] = best;
      S[size_t(j)][size_t(i)] = arg;
    }
  }
  Partition p;
  p.cost = D[size_t(k - 1)][size_t(n - 1)];
  int64_t end = n - 1;
  for (int64_t j = k - 1; j >= 0; --j) {
    int64_t start = j == 0 ? 0 : S[size_t(j)][size_t(end)] + 1;
    p.intervals.insert(p.intervals.begin(), Interval{start, end});
    end = start - 1;
  }
  return p;
}

Partition partitionByValues(std::span<const double> values, int64_t k) {
  const int64_t n = int64_t(values.size());
  ND_REQUIRE(n >= 1, Arg, "Expected at least one value");
  bool up = true, down = true;
  for (int64_t i = 0; i < n; ++i) {
    ND_REQUIRE(std::isfinite(values[size_t(i)]), Arg, "Expected finite values (element " + std::to_string(i) + ")");
    if (i > 0) {
      up = up && values[size_t(i)] >= values[size_t(i - 1)];
      down = down && values[size_t(i)] <= values[size_t(i - 1)];
    }
  }
  ND_REQUIRE(up || down, Arg, "Expected monotone values (SNR or timesteps in order)");
  std::vector<double> prefix(static_cast<size_t>(n + 1), 0.0);
  for (int64_t i = 0; i < n; ++i) prefix[size_t(i + 1)] = prefix[size_t(i)] + values[size_t(i)];
  auto cost = [&](int64_t l, int64_t r) {
    int64_t c = (l + r) / 2;
    double vc = values[size_t(c)];
    double below = double(c - l) * vc - (prefix[size_t(c)] - prefix[size_t(l)]);
    double above = (prefix[size_t(r + 1)] - prefix[size_t(c + 1)]) - double(r - c) * vc;
    return std::fabs(below) + std::fabs(above);
  };
  return partitionTimesteps(n, k, cost);
}

Partition partitionByAffinity(std::span<const double> affinity, int64_t n, int64_t k) {
  ND_REQUIRE(n >= 1 && int64_t(affinity.size()) == n * n, Shape,
             "Expected an n x n affinity matrix (" + std::to_string(n * n) + " values) but received " + std::to_string(affinity.size()));
  for (double v : affinity) ND_REQUIRE(std::isfinite(v), Arg, "Expected finite affinities");
  // Row prefix sums: sum_{s=l..r} A[c][s] in O(1).
  std::vector<double> prefix(static_cast<size_t>(n * (n + 1)), 0.0);
  for (int64_t c = 0; c < n; ++c)
    for (int64_t s = 0; s < n; ++s)
      prefix[size_t(c * (n + 1) + s + 1)] = prefix[size_t(c * (n + 1) + s)] + affinity[size_t(c * n + s)];
  auto cost = [&](int64_t l, int64_t r) {
    int64_t c = (l + r) / 2;
    return -(prefix[size_t(c * (n + 1) + r + 1)] - prefix[size_t(c * (n + 1) + l)]);
  };
  return partitionTimesteps(n, k, cost);
}

}  // namespace nd::moe
