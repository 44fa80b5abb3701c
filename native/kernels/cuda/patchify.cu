#include "kernels/cuda/patchify.cuh"

namespace nd {

namespace {
void checkPatchShape(const char* op, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p) {
  ND_REQUIRE(n >= 0 && c >= 1 && p >= 1 && h >= p && w >= p && h % p == 0 && w % p == 0, Shape,
             std::string(op) + ": h and w must be positive multiples of the patch size");
}
}  // namespace

void patchifyCuda(const float* x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, void* out, DType outType,
                  void* stream) {
  checkPatchShape("patchifyCuda", n, c, h, w, p);
  ND_REQUIRE(x && out, Arg, "patchifyCuda: x and out must not be null");
  kcuda::withElem(kcuda::elemOf(outType, "patchifyCuda"), [&](auto t) {
    using TO = decltype(t);
    kcuda::launchPatchify(x, n, c, h, w, p, static_cast<TO*>(out), stream);
  });
}

void unpatchifyCuda(const void* tokens, DType tokensType, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p,
                    float* out, void* stream) {
  checkPatchShape("unpatchifyCuda", n, c, h, w, p);
  ND_REQUIRE(tokens && out, Arg, "unpatchifyCuda: tokens and out must not be null");
  kcuda::withElem(kcuda::elemOf(tokensType, "unpatchifyCuda"), [&](auto t) {
    using TI = decltype(t);
    kcuda::launchUnpatchify(static_cast<const TI*>(tokens), n, c, h, w, p, out, stream);
  });
}

}  // namespace nd
