// Compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -mf16c (see CMakeLists.txt);
// only entered when modelKernelsUseAvx512() says the CPU and OS support it.
#include "kernels/cpu/model_kernels_avx512.h"

#include "kernels/cpu/model_kernels_impl.h"

namespace nd::mk {

void geluRangeAvx512(const float* x, float* out, int64_t n) { geluRange(x, out, n); }

void siluRangeAvx512(const float* x, float* out, int64_t n) { siluRange(x, out, n); }

void swigluRowsAvx512(const float* in, int64_t r0, int64_t r1, int64_t hidden, int64_t ldIn, float* out,
                      int64_t ldOut) {
  swigluRows(in, r0, r1, hidden, ldIn, out, ldOut);
}

void layerNormModulateRowsAvx512(const float* x, int64_t r0, int64_t r1, int64_t tokens, int64_t dim,
                                 const float* shift, const float* scale, int64_t modStride, float eps,
                                 float* out) {
  layerNormModulateRows(x, r0, r1, tokens, dim, shift, scale, modStride, eps, out);
}

void headLayerNormRowsAvx512(float* qkv, int64_t r0, int64_t r1, int64_t heads, int64_t headDim,
                             const float* qWeight, const float* qBias, const float* kWeight,
                             const float* kBias, float eps) {
  headLayerNormRows(qkv, r0, r1, heads, headDim, qWeight, qBias, kWeight, kBias, eps);
}

void gatedResidualRowsAvx512(float* h, const float* y, int64_t r0, int64_t r1, int64_t tokens, int64_t dim,
                             const float* gate, int64_t gateStride) {
  gatedResidualRows(h, y, r0, r1, tokens, dim, gate, gateStride);
}

}  // namespace nd::mk
