// AVX-512 builds of the loops in model_kernels_impl.h (same code, compiled with AVX-512 flags, so
// the same bits as the baseline build). Enter them only when modelKernelsUseAvx512() is true.
#pragma once
#include <cstdint>

namespace nd::mk {

// True when cpuid and the OS allow AVX-512 F/BW (+DQ/VL) and activeIsa() is not Baseline.
// Compiled without AVX flags (defined in layer_norm_modulate.cpp).
bool modelKernelsUseAvx512();

void geluRangeAvx512(const float* x, float* out, int64_t n);
void siluRangeAvx512(const float* x, float* out, int64_t n);
void swigluRowsAvx512(const float* in, int64_t r0, int64_t r1, int64_t hidden, int64_t ldIn, float* out,
                      int64_t ldOut);
void layerNormModulateRowsAvx512(const float* x, int64_t r0, int64_t r1, int64_t tokens, int64_t dim,
                                 const float* shift, const float* scale, int64_t modStride, float eps,
                                 float* out);
void headLayerNormRowsAvx512(float* qkv, int64_t r0, int64_t r1, int64_t heads, int64_t headDim,
                             const float* qWeight, const float* qBias, const float* kWeight,
                             const float* kBias, float eps);
void gatedResidualRowsAvx512(float* h, const float* y, int64_t r0, int64_t r1, int64_t tokens, int64_t dim,
                             const float* gate, int64_t gateStride);

}  // namespace nd::mk
