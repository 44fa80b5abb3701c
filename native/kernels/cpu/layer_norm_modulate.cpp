#include "kernels/cpu/layer_norm_modulate.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/model_kernels_avx512.h"
#include "kernels/cpu/model_kernels_impl.h"

namespace nd {

namespace mk {
bool modelKernelsUseAvx512() {
  return avx512KernelsSupported() && activeIsa() != CpuIsa::Baseline;
}
}  // namespace mk

namespace {

void checkArgs(const float* x, int64_t batch, int64_t tokens, int64_t dim, int64_t modStride, float eps,
               const float* out) {
  ND_REQUIRE(batch >= 0 && tokens >= 0 && dim >= 0, Arg,
             "layerNormModulate: sizes must be >= 0 (batch " + std::to_string(batch) + ", tokens " +
                 std::to_string(tokens) + ", dim " + std::to_string(dim) + ")");
  int64_t rows = 0, total = 0;
  ND_REQUIRE(!__builtin_mul_overflow(batch, tokens, &rows) && !__builtin_mul_overflow(rows, dim, &total), Arg,
             "layerNormModulate: batch * tokens * dim overflows");
  ND_REQUIRE(modStride >= 0, Arg, "layerNormModulate: modStride must be >= 0, received " + std::to_string(modStride));
  ND_REQUIRE(eps >= 0.0f && std::isfinite(eps), Arg,
             "layerNormModulate: eps must be finite and >= 0, received " + numberText(eps));
  if (total > 0) ND_REQUIRE(x && out, Arg, "layerNormModulate: x and out must not be null");
}

}  // namespace

void layerNormModulateCpu(const float* x, int64_t batch, int64_t tokens, int64_t dim, const float* shift,
                          const float* scale, int64_t modStride, float eps, float* out, ThreadPool* pool) {
  checkArgs(x, batch, tokens, dim, modStride, eps, out);
  int64_t rows = batch * tokens;
  if (rows == 0 || dim == 0) return;
  bool avx = mk::modelKernelsUseAvx512();
  auto body = [&](int64_t r0, int64_t r1) {
    if (avx)
      mk::layerNormModulateRowsAvx512(x, r0, r1, tokens, dim, shift, scale, modStride, eps, out);
    else
      mk::layerNormModulateRows(x, r0, r1, tokens, dim, shift, scale, modStride, eps, out);
  };
  int64_t grain = std::max<int64_t>(1, 16384 / dim);
  parallelForOrInline(pool, rows, grain, body);
}

void layerNormModulateReference(const float* x, int64_t batch, int64_t tokens, int64_t dim,
                                const float* shift, const float* scale, int64_t modStride, float eps,
                                float* out) {
  checkArgs(x, batch, tokens, dim, modStride, eps, out);
  std::vector<double> row(size_t(dim > 0 ? dim : 0));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < tokens; ++t) {
      const float* xr = x + (b * tokens + t) * dim;
      double mean = 0;
      for (int64_t i = 0; i < dim; ++i) mean += xr[i];
      mean /= double(dim);
      double var = 0;
      for (int64_t i = 0; i < dim; ++i) var += (xr[i] - mean) * (xr[i] - mean);
      var /= double(dim);
      double sd = std::sqrt(var + double(eps));
      for (int64_t i = 0; i < dim; ++i) {
        double z = (xr[i] - mean) / sd;
        if (scale) z *= 1.0 + double(scale[b * modStride + i]);
        if (shift) z += double(shift[b * modStride + i]);
        row[size_t(i)] = z;
      }
      for (int64_t i = 0; i < dim; ++i) out[(b * tokens + t) * dim + i] = float(row[size_t(i)]);
    }
}

}  // namespace nd
