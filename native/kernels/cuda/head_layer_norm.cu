#include "kernels/cuda/head_layer_norm.cuh"

namespace nd {

void headLayerNormCuda(void* qkv, DType qkvType, int64_t rows, int64_t heads, int64_t headDim, const float* qWeight,
                       const float* qBias, const float* kWeight, const float* kBias, float eps, void* stream) {
  ND_REQUIRE(rows >= 0 && heads >= 1 && headDim >= 1, Arg, "headLayerNormCuda: bad shape");
  ND_REQUIRE(qkv && qWeight && kWeight, Arg, "headLayerNormCuda: qkv and the weights must not be null");
  ND_REQUIRE(eps >= 0.0f, Arg, "headLayerNormCuda: eps must be >= 0");
  kcuda::withElem(kcuda::elemOf(qkvType, "headLayerNormCuda"), [&](auto t) {
    using T = decltype(t);
    kcuda::launchHeadLayerNorm(static_cast<T*>(qkv), rows, heads, headDim, qWeight, qBias, kWeight, kBias, eps, stream);
  });
}

}  // namespace nd
