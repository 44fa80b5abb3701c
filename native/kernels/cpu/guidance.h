// Classifier-free guidance over a DiT's output: the conditional and unconditional halves of one
// batched forward combined as unc + scale (cond - unc) on the guided channels (the first
// `guidedChannels` of the latent; DiT's convention guides 3 of 4), the conditional output as is on
// the rest, and the learned-sigma channels (outChannels > channels) dropped.
#pragma once
#include <cstdint>

namespace nd {

// modelOut: [guided ? 2n : n, outChannels, hw] (rows n..2n-1 are the unconditional half);
// out: [n, channels, hw]. guided = false copies the conditional channels.
void classifierFreeGuidanceCpu(const float* modelOut, int64_t n, int64_t outChannels, int64_t channels, int64_t hw,
                               int64_t guidedChannels, float scale, bool guided, float* out);

// The argument rules both backends apply (ERR_ND_ARG / ERR_ND_SHAPE).
void checkClassifierFreeGuidance(const float* modelOut, int64_t n, int64_t outChannels, int64_t channels, int64_t hw,
                                 int64_t guidedChannels, const float* out);

}  // namespace nd
