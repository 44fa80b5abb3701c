#include "kernels/cpu/head_layer_norm.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/model_kernels_avx512.h"
#include "kernels/cpu/model_kernels_impl.h"

namespace nd {

namespace {

void checkArgs(const float* qkv, int64_t rows, int64_t heads, int64_t headDim, const float* qWeight,
               const float* kWeight, float eps) {
  ND_REQUIRE(rows >= 0 && heads >= 0 && headDim >= 0, Arg,
             "headLayerNorm: sizes must be >= 0 (rows " + std::to_string(rows) + ", heads " +
                 std::to_string(heads) + ", headDim " + std::to_string(headDim) + ")");
  int64_t width = 0, rowLen = 0, total = 0;
  ND_REQUIRE(!__builtin_mul_overflow(heads, headDim, &width) && !__builtin_mul_overflow(width, int64_t(3), &rowLen) &&
                 !__builtin_mul_overflow(rowLen, rows, &total),
             Arg, "headLayerNorm: rows * 3 * heads * headDim overflows");
  ND_REQUIRE(eps >= 0.0f && std::isfinite(eps), Arg,
             "headLayerNorm: eps must be finite and >= 0, received " + numberText(eps));
  if (total > 0)
    ND_REQUIRE(qkv && qWeight && kWeight, Arg, "headLayerNorm: qkv, qWeight and kWeight must not be null");
}

}  // namespace

void headLayerNormCpu(float* qkv, int64_t rows, int64_t heads, int64_t headDim, const float* qWeight,
                      const float* qBias, const float* kWeight, const float* kBias, float eps,
                      ThreadPool* pool) {
  checkArgs(qkv, rows, heads, headDim, qWeight, kWeight, eps);
  if (rows == 0 || heads == 0 || headDim == 0) return;
  bool avx = mk::modelKernelsUseAvx512();
  auto body = [&](int64_t r0, int64_t r1) {
    if (avx)
      mk::headLayerNormRowsAvx512(qkv, r0, r1, heads, headDim, qWeight, qBias, kWeight, kBias, eps);
    else
      mk::headLayerNormRows(qkv, r0, r1, heads, headDim, qWeight, qBias, kWeight, kBias, eps);
  };
  int64_t grain = std::max<int64_t>(1, 8192 / (2 * heads * headDim));
  parallelForOrInline(pool, rows, grain, body);
}

void headLayerNormReference(float* qkv, int64_t rows, int64_t heads, int64_t headDim, const float* qWeight,
                            const float* qBias, const float* kWeight, const float* kBias, float eps) {
  checkArgs(qkv, rows, heads, headDim, qWeight, kWeight, eps);
  for (int64_t r = 0; r < rows; ++r)
    for (int part = 0; part < 2; ++part) {
      const float* w = part == 0 ? qWeight : kWeight;
      const float* bias = part == 0 ? qBias : kBias;
      for (int64_t h = 0; h < heads; ++h) {
        float* v = qkv + r * 3 * heads * headDim + part * heads * headDim + h * headDim;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < headDim; ++i) mean += v[i];
        mean /= double(headDim);
        for (int64_t i = 0; i < headDim; ++i) var += (v[i] - mean) * (v[i] - mean);
        var /= double(headDim);
        double sd = std::sqrt(var + double(eps));
        for (int64_t i = 0; i < headDim; ++i)
          v[i] = float((v[i] - mean) / sd * double(w[i]) + (bias ? double(bias[i]) : 0.0));
      }
    }
}

}  // namespace nd
