// classifierFreeGuidanceCuda: the CUDA twin of classifierFreeGuidanceCpu (kernels/cpu/guidance.h),
// the same expression in the same order (device code has no FMA contraction), so the guided model
// output is the same bits on both backends for the same forward output.
#pragma once
#include <cstdint>

namespace nd {
// modelOut, out: device pointers (f32), shapes as in classifierFreeGuidanceCpu.
void classifierFreeGuidanceCuda(const float* modelOut, int64_t n, int64_t outChannels, int64_t channels, int64_t hw,
                                int64_t guidedChannels, float scale, bool guided, float* out, void* stream);
}  // namespace nd

#ifndef ND_KERNEL_DECLARATIONS_ONLY
#include "kernels/cuda/device_common.cuh"

namespace nd::kcuda {

__global__ void classifierFreeGuidanceKernel(const float* modelOut, int64_t n, int64_t outChannels, int64_t channels,
                                             int64_t hw, int64_t guidedChannels, float scale, bool guided,
                                             float* out) {
  const int64_t total = n * channels * hw;
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < total; k += step) {
    const int64_t j = k % hw, row = k / hw, ch = row % channels, i = row / channels;
    const float cond = modelOut[(i * outChannels + ch) * hw + j];
    if (guided && ch < guidedChannels) {
      const float unc = modelOut[((n + i) * outChannels + ch) * hw + j];
      out[k] = unc + scale * (cond - unc);
    } else {
      out[k] = cond;
    }
  }
}

inline void launchClassifierFreeGuidance(const float* modelOut, int64_t n, int64_t outChannels, int64_t channels,
                                         int64_t hw, int64_t guidedChannels, float scale, bool guided, float* out,
                                         void* stream) {
  const int64_t total = n * channels * hw;
  if (total == 0) return;
  auto kernel = classifierFreeGuidanceKernel;
  ND_LAUNCH(kernel, dim3(blocksFor(total, 256, 4096)), dim3(256), stream, modelOut, n, outChannels, channels, hw,
            guidedChannels, scale, guided, out);
}

}  // namespace nd::kcuda
#endif  // ND_KERNEL_DECLARATIONS_ONLY
