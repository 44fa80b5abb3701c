#include "kernels/cuda/activation.cuh"

namespace nd {

void activationCuda(ActivationKind kind, const float* x, void* out, DType outType, int64_t n, void* stream) {
  ND_REQUIRE(n >= 0, Arg, "activationCuda: n must be >= 0");
  if (n == 0) return;
  ND_REQUIRE(x && out, Arg, "activationCuda: x and out must not be null");
  kcuda::withElem(kcuda::elemOf(outType, "activationCuda"), [&](auto t) {
    using TO = decltype(t);
    kcuda::launchActivation(kind, x, static_cast<TO*>(out), n, stream);
  });
}

void swigluCuda(const void* in, DType inType, int64_t rows, int64_t hidden, int64_t ldIn, void* out, DType outType,
                int64_t ldOut, void* stream) {
  ND_REQUIRE(rows >= 0 && hidden >= 0, Arg, "swigluCuda: bad shape");
  if (rows == 0 || hidden == 0) return;
  ND_REQUIRE(in && out, Arg, "swigluCuda: in and out must not be null");
  ND_REQUIRE(ldIn >= 2 * hidden && ldOut >= hidden, Arg, "swigluCuda: row strides too small");
  kcuda::withElem(kcuda::elemOf(inType, "swigluCuda"), [&](auto ti) {
    kcuda::withElem(kcuda::elemOf(outType, "swigluCuda"), [&](auto to) {
      using TI = decltype(ti);
      using TO = decltype(to);
      kcuda::launchSwiglu(static_cast<const TI*>(in), rows, hidden, ldIn, static_cast<TO*>(out), ldOut, stream);
    });
  });
}

}  // namespace nd
