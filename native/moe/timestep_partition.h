// Optimal contiguous partition of timesteps into k intervals ("Addressing Negative Transfer in
// Diffusion Models", Go et al., NeurIPS 2023): the interval clustering that defines per-interval tasks
// for training and per-interval experts for timestep-MoE serving.
//
//   minimise sum over intervals [l, r] of cost(l, r),  intervals contiguous, covering 0..n-1, k of them
//
// by dynamic programming, D[j][i] = min_L D[j-1][L] + cost(L+1, i): O(k n^2) cost evaluations. The
// built-in objectives evaluate cost(l, r) in O(1) from prefix sums:
//   - values (SNR, or the timestep itself): sum_s |v_s - v_c| with c the interval's median index
//     (v monotone, so the absolute values split at c);
//   - affinity: -sum_s A[c][s], the affinity of every task in the interval to its median task.
// ANT centres intervals at round((l + r + 1) / 2) with round-half-to-even, which for a single point at
// an odd index lies outside the interval; the median is the L1-optimal centre and keeps single points
// at cost 0.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace nd::moe {

struct Interval {
  int64_t from, to;  // inclusive timestep indices
};

struct Partition {
  std::vector<Interval> intervals;  // ascending, contiguous, covering 0..n-1
  double cost = 0;
};

// Generic: cost(l, r) for 0 <= l <= r < n. Throws ERR_ND_ARG for k < 1, k > n or a non-finite cost.
Partition partitionTimesteps(int64_t n, int64_t k, const std::function<double(int64_t, int64_t)>& cost);
// values: n monotone (non-increasing or non-decreasing) finite numbers.
Partition partitionByValues(std::span<const double> values, int64_t k);
// affinity: n x n row-major, finite.
Partition partitionByAffinity(std::span<const double> affinity, int64_t n, int64_t k);

}  // namespace nd::moe
