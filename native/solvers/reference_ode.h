// High-accuracy reference solution of the probability-flow ODE for an analytic denoiser, the ground
// truth of the convergence tests. In EDM coordinates y = x/alpha, s = sigma/alpha the PF-ODE of every
// schedule is the same equation, dy/ds = (y - D(y; s))/s, and with u = log s it is smooth and
// non-stiff: dy/du = y - D(y; e^u). It is integrated with the Dormand-Prince 5(4) pair and a
// step-size controller at tolerance rtol (relative, per sample RMS, shared step for the batch).
#pragma once
#include <cstdint>
#include <span>

namespace nd {
class ThreadPool;
}
namespace nd::models {
class AnalyticDenoiser;
}

namespace nd::solvers {

struct ReferenceOdeStats {
  int64_t accepted = 0, rejected = 0, evaluations = 0;
};

// y: batch x dim in EDM coordinates at edm sigma `from`, overwritten with the solution at `to`
// (both > 0, either order).
ReferenceOdeStats solvePfOdeReference(const models::AnalyticDenoiser& denoiser, std::span<double> y, double from,
                                      double to, double rtol, ThreadPool* pool);

}  // namespace nd::solvers
