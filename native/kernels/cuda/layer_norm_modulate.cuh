// layerNormModulateCuda: the CUDA twin of layerNormModulateCpu (kernels/cpu/layer_norm_modulate.h):
// LayerNorm without affine, then z * (1 + scale[b]) + shift[b]. One warp per token row; the output
// may be narrower than the f32 input (bf16/f16 for the tensor-core GEMM that reads it next).
#pragma once
#include "core/dtype.h"
#include "core/error.h"

namespace nd {
// x: [batch, tokens, dim] f32 on the device; out: the same shape in outType (f32/bf16/f16), may
// equal x only when outType is F32. shift/scale: row b at + b * modStride, or null.
void layerNormModulateCuda(const float* x, int64_t batch, int64_t tokens, int64_t dim, const float* shift,
                           const float* scale, int64_t modStride, float eps, void* out, DType outType,
                           void* stream);
}  // namespace nd

#ifndef ND_KERNEL_DECLARATIONS_ONLY
#include "kernels/cuda/device_common.cuh"

namespace nd::kcuda {

constexpr int kRowsPerBlock = 8;  // one warp per row, 256 threads

template <class TO>
__global__ void layerNormModulateKernel(const float* x, int64_t rows, int64_t tokens, int64_t dim,
                                        const float* shift, const float* scale, int64_t modStride, float eps,
                                        TO* out) {
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  const int lane = int(threadIdx.x % 32);
  if (row >= rows) return;  // the whole warp leaves together
  const float* xr = x + row * dim;
  float s = 0.0f;
  for (int64_t d = lane; d < dim; d += 32) s += xr[d];
  const float mean = warpSum(s) / float(dim);
  float q = 0.0f;
  for (int64_t d = lane; d < dim; d += 32) {
    const float v = xr[d] - mean;
    q += v * v;
  }
  const float rstd = 1.0f / sqrtf(warpSum(q) / float(dim) + eps);
  const int64_t b = row / tokens;
  const float* sh = shift ? shift + b * modStride : nullptr;
  const float* sc = scale ? scale + b * modStride : nullptr;
  TO* o = out + row * dim;
  for (int64_t d = lane; d < dim; d += 32) {
    float z = (xr[d] - mean) * rstd;
    if (sc) z = z * (1.0f + sc[d]);
    if (sh) z = z + sh[d];
    o[d] = fromFloat<TO>(z);
  }
}

template <class TO>
void launchLayerNormModulate(const float* x, int64_t batch, int64_t tokens, int64_t dim, const float* shift,
                             const float* scale, int64_t modStride, float eps, TO* out, void* stream) {
  const int64_t rows = batch * tokens;
  if (rows == 0 || dim == 0) return;
  auto kernel = layerNormModulateKernel<TO>;
  ND_LAUNCH(kernel, dim3(blocksFor(rows, kRowsPerBlock, 0x7fffffff)), dim3(32 * kRowsPerBlock), stream, x, rows,
            tokens, dim, shift, scale, modStride, eps, out);
}

}  // namespace nd::kcuda
#endif  // ND_KERNEL_DECLARATIONS_ONLY
