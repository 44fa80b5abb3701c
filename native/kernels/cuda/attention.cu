#include "kernels/cuda/attention.cuh"

namespace nd {

void attentionCuda(const void* qkv, DType type, int64_t batch, int64_t tokens, int64_t heads, int64_t headDim,
                   float scale, void* out, void* stream) {
  ND_REQUIRE(batch >= 0 && tokens >= 0 && heads >= 1 && headDim >= 1, Arg, "attentionCuda: bad shape");
  if (batch == 0 || tokens == 0) return;
  ND_REQUIRE(qkv && out, Arg, "attentionCuda: qkv and out must not be null");
  ND_REQUIRE(headDim <= kcuda::kAttnMaxHead, Arg,
             "attentionCuda: head size " + std::to_string(headDim) + " is above the CUDA kernels' limit of 128");
  ND_REQUIRE(heads <= 65535 && batch <= 65535, Arg, "attentionCuda: at most 65535 heads and samples per call");
  switch (kcuda::elemOf(type, "attentionCuda")) {
    case kcuda::Elem::F32:
      kcuda::launchAttentionSimt(static_cast<const float*>(qkv), batch, tokens, heads, headDim, scale,
                                 static_cast<float*>(out), stream);
      break;
    case kcuda::Elem::BF16:
      kcuda::launchAttentionTensorCore(static_cast<const kcuda::bf16*>(qkv), batch, tokens, heads, headDim, scale,
                                       static_cast<kcuda::bf16*>(out), stream);
      break;
    case kcuda::Elem::F16:
      kcuda::launchAttentionTensorCore(static_cast<const kcuda::f16*>(qkv), batch, tokens, heads, headDim, scale,
                                       static_cast<kcuda::f16*>(out), stream);
      break;
  }
}

}  // namespace nd
