// The ANT interval clustering against brute force over every contiguous partition, for all three
// objectives and a generic cost, plus the O(1) prefix-sum costs against their direct sums.
#include <cmath>
#include <random>
#include <vector>

#include "check.h"
#include "moe/timestep_partition.h"

using namespace nd::moe;

namespace {

// Every way to cut 0..n-1 into k contiguous non-empty intervals; the best total cost.
double bruteForce(int64_t n, int64_t k, const std::function<double(int64_t, int64_t)>& cost) {
  double best = INFINITY;
  std::vector<int64_t> cuts(static_cast<size_t>(k - 1));
  std::function<void(int64_t, int64_t, double)> rec = [&](int64_t start, int64_t left, double acc) {
    if (left == 1) { best = std::min(best, acc + cost(start, n - 1)); return; }
    for (int64_t end = start; end <= n - left; ++end) rec(end + 1, left - 1, acc + cost(start, end));
  };
  rec(0, k, 0.0);
  return best;
}

double directValueCost(const std::vector<double>& v, int64_t l, int64_t r) {
  int64_t c = (l + r) / 2;
  double s = 0;
  for (int64_t i = l; i <= r; ++i) s += std::fabs(v[size_t(i)] - v[size_t(c)]);
  return s;
}

void checkPartitionShape(const Partition& p, int64_t n, int64_t k) {
  CHECK(int64_t(p.intervals.size()) == k);
  CHECK(p.intervals.front().from == 0 && p.intervals.back().to == n - 1);
  for (size_t i = 0; i < p.intervals.size(); ++i) {
    CHECK(p.intervals[i].from <= p.intervals[i].to);
    if (i > 0) CHECK(p.intervals[i].from == p.intervals[i - 1].to + 1);
  }
}

}  // namespace

ND_TEST(values_objective_matches_brute_force) {
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 40; ++trial) {
    int64_t n = 2 + int64_t(rng() % 11), k = 1 + int64_t(rng() % std::min<int64_t>(n, 5));
    std::vector<double> v(static_cast<size_t>(n));
    double acc = 0;
    for (auto& x : v) { acc += std::exp(std::normal_distribution<double>(0, 1)(rng)); x = acc; }
    if (trial % 2) std::reverse(v.begin(), v.end());  // SNR decreases with t
    Partition p = partitionByValues(v, k);
    checkPartitionShape(p, n, k);
    auto cost = [&](int64_t l, int64_t r) { return directValueCost(v, l, r); };
    double sum = 0;
    for (const auto& iv : p.intervals) sum += cost(iv.from, iv.to);
    CHECK_NEAR(sum, p.cost, 1e-9 * (1 + std::fabs(sum)));
    CHECK_NEAR(p.cost, bruteForce(n, k, cost), 1e-9 * (1 + std::fabs(p.cost)));
  }
}

ND_TEST(affinity_objective_matches_brute_force) {
  std::mt19937_64 rng(9);
  for (int trial = 0; trial < 40; ++trial) {
    int64_t n = 2 + int64_t(rng() % 10), k = 1 + int64_t(rng() % std::min<int64_t>(n, 4));
    std::vector<double> a(static_cast<size_t>(n * n));
    for (auto& x : a) x = std::uniform_real_distribution<double>(-1, 1)(rng);
    Partition p = partitionByAffinity(a, n, k);
    checkPartitionShape(p, n, k);
    auto cost = [&](int64_t l, int64_t r) {
      int64_t c = (l + r) / 2;
      double s = 0;
      for (int64_t i = l; i <= r; ++i) s -= a[size_t(c * n + i)];
      return s;
    };
    CHECK_NEAR(p.cost, bruteForce(n, k, cost), 1e-9);
  }
}

ND_TEST(generic_cost_and_known_answer) {
  // Three flat plateaus in SNR: the optimum cuts exactly at the jumps with cost 0.
  std::vector<double> v = {9, 9, 9, 9, 5, 5, 5, 1, 1, 1, 1, 1};
  Partition p = partitionByValues(v, 3);
  CHECK(p.cost == 0);
  CHECK(p.intervals[0].to == 3 && p.intervals[1].to == 6 && p.intervals[2].to == 11);
  // k = n: every point alone, cost 0; k = 1: one interval.
  CHECK(partitionByValues(v, 12).cost == 0);
  CHECK(partitionByValues(v, 1).intervals.size() == 1);
  // A generic quadratic cost agrees with brute force.
  auto quad = [](int64_t l, int64_t r) { double len = double(r - l + 1); return len * len + 0.1 * double(l); };
  CHECK_NEAR(partitionTimesteps(11, 4, quad).cost, bruteForce(11, 4, quad), 1e-12);
}

ND_TEST(rejects_bad_input) {
  std::vector<double> v = {1, 3, 2};
  CHECK_THROWS_CODE(partitionByValues(v, 2), Arg);  // not monotone
  std::vector<double> w = {1, 2, 3};
  CHECK_THROWS_CODE(partitionByValues(w, 0), Arg);
  CHECK_THROWS_CODE(partitionByValues(w, 4), Arg);
  std::vector<double> a(5);
  CHECK_THROWS_CODE(partitionByAffinity(a, 2, 1), Shape);
  CHECK_THROWS_CODE(partitionTimesteps(3, 2, [](int64_t, int64_t) { return NAN; }), Arg);
}

ND_TEST(thousand_timesteps_is_fast_enough_to_run_at_startup) {
  // n = 1000, k = 5: 5e6 O(1) evaluations (correctness only; timing lives in benchmarks).
  std::vector<double> snr(1000);
  for (int i = 0; i < 1000; ++i) snr[size_t(i)] = std::exp(-0.01 * i);
  Partition p = partitionByValues(snr, 5);
  checkPartitionShape(p, 1000, 5);
}

ND_TEST_MAIN()
