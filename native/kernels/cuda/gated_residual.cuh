// gatedResidualCuda: the CUDA twin of gatedResidualCpu, h += gate[b] * y (gate null: h += y). The
// DiT forward fuses this into the GEMM epilogue; the standalone kernel serves the MoE path, whose
// output is assembled before it is added.
#pragma once
#include "core/dtype.h"
#include "core/error.h"

namespace nd {
// h: [batch, tokens, dim] f32; y: the same shape in yType; gate: row b at gate + b * gateStride.
void gatedResidualCuda(float* h, const void* y, DType yType, int64_t batch, int64_t tokens, int64_t dim,
                       const float* gate, int64_t gateStride, void* stream);
}  // namespace nd

#ifndef ND_KERNEL_DECLARATIONS_ONLY
#include "kernels/cuda/device_common.cuh"

namespace nd::kcuda {

template <class TY>
__global__ void gatedResidualKernel(float* h, const TY* y, int64_t total, int64_t perSample, int64_t dim,
                                    const float* gate, int64_t gateStride) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const float v = toFloat(y[i]);
    if (gate) {
      const int64_t b = i / perSample, d = i % dim;
      h[i] = h[i] + gate[b * gateStride + d] * v;
    } else {
      h[i] = h[i] + v;
    }
  }
}

template <class TY>
void launchGatedResidual(float* h, const TY* y, int64_t batch, int64_t tokens, int64_t dim, const float* gate,
                         int64_t gateStride, void* stream) {
  const int64_t total = batch * tokens * dim;
  if (total == 0) return;
  auto kernel = gatedResidualKernel<TY>;
  ND_LAUNCH(kernel, dim3(blocksFor(total, 256)), dim3(256), stream, h, y, total, tokens * dim, dim, gate, gateStride);
}

}  // namespace nd::kcuda
#endif  // ND_KERNEL_DECLARATIONS_ONLY
