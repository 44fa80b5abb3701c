#include "kernels/cuda/guidance.cuh"

#include "kernels/cpu/guidance.h"

namespace nd {

void classifierFreeGuidanceCuda(const float* modelOut, int64_t n, int64_t outChannels, int64_t channels, int64_t hw,
                                int64_t guidedChannels, float scale, bool guided, float* out, void* stream) {
  checkClassifierFreeGuidance(modelOut, n, outChannels, channels, hw, guidedChannels, out);
  kcuda::launchClassifierFreeGuidance(modelOut, n, outChannels, channels, hw, guidedChannels, scale, guided, out,
                                      stream);
}

}  // namespace nd
