#include "kernels/cpu/guidance.h"

#include <cstring>

#include "core/error.h"

namespace nd {

void checkClassifierFreeGuidance(const float* modelOut, int64_t n, int64_t outChannels, int64_t channels, int64_t hw,
                                 int64_t guidedChannels, const float* out) {
  ND_REQUIRE(n >= 0 && hw >= 0 && channels >= 1 && outChannels >= channels, Shape,
             "classifierFreeGuidance: needs outChannels >= channels >= 1 and n, hw >= 0");
  ND_REQUIRE(guidedChannels >= 0 && guidedChannels <= channels, Arg,
             "classifierFreeGuidance: guidedChannels must be in [0, channels]");
  ND_REQUIRE(n * hw == 0 || (modelOut != nullptr && out != nullptr), Arg, "classifierFreeGuidance: null buffer");
}

void classifierFreeGuidanceCpu(const float* modelOut, int64_t n, int64_t outChannels, int64_t channels, int64_t hw,
                               int64_t guidedChannels, float scale, bool guided, float* out) {
  checkClassifierFreeGuidance(modelOut, n, outChannels, channels, hw, guidedChannels, out);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t ch = 0; ch < channels; ++ch) {
      const float* cond = modelOut + (i * outChannels + ch) * hw;
      float* dst = out + (i * channels + ch) * hw;
      if (guided && ch < guidedChannels) {
        const float* unc = modelOut + ((n + i) * outChannels + ch) * hw;
        for (int64_t j = 0; j < hw; ++j) dst[j] = unc[j] + scale * (cond[j] - unc[j]);
      } else {
        std::memcpy(dst, cond, size_t(hw) * sizeof(float));
      }
    }
  }
}

}  // namespace nd
