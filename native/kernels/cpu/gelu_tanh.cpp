#include "kernels/cpu/gelu_tanh.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/model_kernels_avx512.h"
#include "kernels/cpu/model_kernels_impl.h"

namespace nd {

float geluTanhScalar(float x) { return mk::geluTanhValue(x); }

void geluTanhCpu(const float* x, float* out, int64_t n, ThreadPool* pool) {
  ND_REQUIRE(n >= 0, Arg, "geluTanh: n must be >= 0, received " + std::to_string(n));
  if (n == 0) return;
  ND_REQUIRE(x && out, Arg, "geluTanh: x and out must not be null");
  bool avx = mk::modelKernelsUseAvx512();
  auto body = [&](int64_t b, int64_t e) {
    if (avx)
      mk::geluRangeAvx512(x + b, out + b, e - b);
    else
      mk::geluRange(x + b, out + b, e - b);
  };
  constexpr int64_t kGrain = 16384;
  parallelForOrInline(pool, n, kGrain, body);
}

void geluTanhReference(const float* x, float* out, int64_t n) {
  ND_REQUIRE(n >= 0, Arg, "geluTanh: n must be >= 0, received " + std::to_string(n));
  if (n > 0) ND_REQUIRE(x && out, Arg, "geluTanh: x and out must not be null");
  const double c = std::sqrt(2.0 / 3.14159265358979323846);
  for (int64_t i = 0; i < n; ++i) {
    double v = x[i];
    out[i] = float(0.5 * v * (1.0 + std::tanh(c * (v + 0.044715 * v * v * v))));
  }
}

}  // namespace nd
