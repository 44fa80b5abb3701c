#include "kernels/cpu/silu.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/model_kernels_avx512.h"
#include "kernels/cpu/model_kernels_impl.h"

namespace nd {

void siluCpu(const float* x, float* out, int64_t n, ThreadPool* pool) {
  ND_REQUIRE(n >= 0, Arg, "silu: n must be >= 0, received " + std::to_string(n));
  if (n == 0) return;
  ND_REQUIRE(x && out, Arg, "silu: x and out must not be null");
  bool avx = mk::modelKernelsUseAvx512();
  auto body = [&](int64_t b, int64_t e) {
    if (avx)
      mk::siluRangeAvx512(x + b, out + b, e - b);
    else
      mk::siluRange(x + b, out + b, e - b);
  };
  constexpr int64_t kGrain = 16384;
  parallelForOrInline(pool, n, kGrain, body);
}

void siluReference(const float* x, float* out, int64_t n) {
  ND_REQUIRE(n >= 0, Arg, "silu: n must be >= 0, received " + std::to_string(n));
  if (n > 0) ND_REQUIRE(x && out, Arg, "silu: x and out must not be null");
  for (int64_t i = 0; i < n; ++i) {
    double v = x[i];
    out[i] = float(v / (1.0 + std::exp(-v)));
  }
}

}  // namespace nd
