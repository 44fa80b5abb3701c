#include "kernels/cuda/gated_residual.cuh"

namespace nd {

void gatedResidualCuda(float* h, const void* y, DType yType, int64_t batch, int64_t tokens, int64_t dim,
                       const float* gate, int64_t gateStride, void* stream) {
  ND_REQUIRE(batch >= 0 && tokens >= 0 && dim >= 1, Arg, "gatedResidualCuda: bad shape");
  ND_REQUIRE(h && y, Arg, "gatedResidualCuda: h and y must not be null");
  ND_REQUIRE(!gate || gateStride >= dim, Arg, "gatedResidualCuda: gateStride must be >= dim");
  kcuda::withElem(kcuda::elemOf(yType, "gatedResidualCuda"), [&](auto t) {
    using TY = decltype(t);
    kcuda::launchGatedResidual(h, static_cast<const TY*>(y), batch, tokens, dim, gate, gateStride, stream);
  });
}

}  // namespace nd
