// headLayerNormCuda: the CUDA twin of headLayerNormCpu, LayerNorm with affine over each head's q and
// k vectors of the fused qkv rows, in place; v untouched. One warp per (row, q|k, head) vector.
#pragma once
#include "core/dtype.h"
#include "core/error.h"

namespace nd {
// qkv: rows x [3, heads, headDim] in qkvType on the device; weights/biases: headDim f32 (bias may be null).
void headLayerNormCuda(void* qkv, DType qkvType, int64_t rows, int64_t heads, int64_t headDim, const float* qWeight,
                       const float* qBias, const float* kWeight, const float* kBias, float eps, void* stream);
}  // namespace nd

#ifndef ND_KERNEL_DECLARATIONS_ONLY
#include "kernels/cuda/device_common.cuh"

namespace nd::kcuda {

template <class T>
__global__ void headLayerNormKernel(T* qkv, int64_t rows, int64_t heads, int64_t headDim, const float* qWeight,
                                    const float* qBias, const float* kWeight, const float* kBias, float eps) {
  const int64_t vectors = rows * 2 * heads;
  const int64_t v = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = int(threadIdx.x % 32);
  if (v >= vectors) return;
  const int64_t row = v / (2 * heads), which = (v / heads) % 2, head = v % heads;
  T* x = qkv + ((row * 3 + which) * heads + head) * headDim;
  const float* wt = which == 0 ? qWeight : kWeight;
  const float* bs = which == 0 ? qBias : kBias;
  float s = 0.0f;
  for (int64_t d = lane; d < headDim; d += 32) s += toFloat(x[d]);
  const float mean = warpSum(s) / float(headDim);
  float q = 0.0f;
  for (int64_t d = lane; d < headDim; d += 32) {
    const float c = toFloat(x[d]) - mean;
    q += c * c;
  }
  const float rstd = 1.0f / sqrtf(warpSum(q) / float(headDim) + eps);
  for (int64_t d = lane; d < headDim; d += 32) {
    float z = (toFloat(x[d]) - mean) * rstd * wt[d];
    if (bs) z = z + bs[d];
    x[d] = fromFloat<T>(z);
  }
}

template <class T>
void launchHeadLayerNorm(T* qkv, int64_t rows, int64_t heads, int64_t headDim, const float* qWeight, const float* qBias,
                         const float* kWeight, const float* kBias, float eps, void* stream) {
  const int64_t vectors = rows * 2 * heads;
  if (vectors == 0) return;
  auto kernel = headLayerNormKernel<T>;
  ND_LAUNCH(kernel, dim3(blocksFor(vectors, 8, 0x7fffffff)), dim3(256), stream, qkv, rows, heads, headDim, qWeight,
            qBias, kWeight, kBias, eps);
}

}  // namespace nd::kcuda
#endif  // ND_KERNEL_DECLARATIONS_ONLY
