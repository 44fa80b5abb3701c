#include "kernels/cuda/layer_norm_modulate.cuh"

namespace nd {

void layerNormModulateCuda(const float* x, int64_t batch, int64_t tokens, int64_t dim, const float* shift,
                           const float* scale, int64_t modStride, float eps, void* out, DType outType,
                           void* stream) {
  ND_REQUIRE(batch >= 0 && tokens >= 0 && dim >= 1, Arg, "layerNormModulateCuda: bad shape");
  ND_REQUIRE(x && out, Arg, "layerNormModulateCuda: x and out must not be null");
  ND_REQUIRE(eps >= 0.0f, Arg, "layerNormModulateCuda: eps must be >= 0");
  ND_REQUIRE((!shift && !scale) || modStride >= dim, Arg, "layerNormModulateCuda: modStride must be >= dim");
  kcuda::withElem(kcuda::elemOf(outType, "layerNormModulateCuda"), [&](auto t) {
    using TO = decltype(t);
    kcuda::launchLayerNormModulate(x, batch, tokens, dim, shift, scale, modStride, eps, static_cast<TO*>(out), stream);
  });
}

}  // namespace nd
