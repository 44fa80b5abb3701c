#include "kernels/cuda/moe_routing.cuh"

namespace nd {

void moeRouteCuda(const float* logits, int64_t batch, int64_t tokens, int64_t experts, int64_t k, int64_t capacity,
                  const MoeRoutingBuffers& b, void* stream) {
  ND_REQUIRE(batch >= 0 && tokens >= 0 && experts >= 1 && experts < (int64_t(1) << 20), Arg, "moeRouteCuda: bad shape");
  ND_REQUIRE(k >= 1 && k <= experts && k <= kcuda::kMoeMaxK, Arg,
             "moeRouteCuda: top-k must be in [1, min(experts, " + std::to_string(kcuda::kMoeMaxK) + ")]");
  ND_REQUIRE(batch * tokens * k < (int64_t(1) << 31), Arg, "moeRouteCuda: too many assignments for int32 indices");
  ND_REQUIRE(capacity >= 0, Arg, "moeRouteCuda: capacity must be >= 0");
  ND_REQUIRE(logits && b.idx && b.val && b.kept && b.order && b.offsets && b.counts && b.dropped && b.entropy, Arg,
             "moeRouteCuda: null pointer");
  kcuda::launchMoeRoute(logits, batch, tokens, experts, k, capacity, b, stream);
}

void groupedLinearCuda(const void* x, int64_t ldx, const void* w, DType type, int64_t experts, int64_t n, int64_t kDim,
                       const int32_t* order, const int32_t* offsets, int64_t maxRows, int64_t slots, bool gather,
                       bool scatter, void* y, DType yType, int64_t ldy, void* stream) {
  ND_REQUIRE(experts >= 1 && n >= 1 && kDim >= 1 && maxRows >= 0 && slots >= 1, Arg, "groupedLinearCuda: bad shape");
  ND_REQUIRE(x && w && y && order && offsets, Arg, "groupedLinearCuda: null pointer");
  ND_REQUIRE(ldx >= kDim && ldy >= n, Arg, "groupedLinearCuda: a row stride is smaller than its row");
  kcuda::withElem(kcuda::elemOf(yType, "groupedLinearCuda"), [&](auto ty) {
    using TY = decltype(ty);
    kcuda::withElem(kcuda::elemOf(type, "groupedLinearCuda"), [&](auto tx) {
      using T = decltype(tx);
      kcuda::launchGroupedLinear(static_cast<const T*>(x), ldx, static_cast<const T*>(w), experts, n, kDim, order, offsets,
                                 maxRows, slots, gather, scatter, static_cast<TY*>(y), ldy, stream);
    });
  });
}

void moeCombineCuda(float* out, const float* routed, const float* val, const uint8_t* kept, int64_t rows, int64_t k,
                    int64_t dim, bool accumulate, void* stream) {
  ND_REQUIRE(rows >= 0 && k >= 1 && dim >= 1, Arg, "moeCombineCuda: bad shape");
  ND_REQUIRE(out && routed && val && kept, Arg, "moeCombineCuda: null pointer");
  kcuda::launchMoeCombine(out, routed, val, kept, rows, k, dim, accumulate, stream);
}

}  // namespace nd
