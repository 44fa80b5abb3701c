#include "kernels/cuda/embedding.cuh"

namespace nd {

void timestepEmbeddingCuda(const float* t, int64_t n, int64_t dim, const float* freqs, float* out, void* stream) {
  ND_REQUIRE(n >= 0 && dim >= 2, Arg, "timestepEmbeddingCuda: bad shape");
  ND_REQUIRE(t && freqs && out, Arg, "timestepEmbeddingCuda: null pointer");
  kcuda::launchTimestepEmbedding(t, n, dim, freqs, out, stream);
}

void addClassEmbeddingCuda(float* cond, const int64_t* labels, int64_t n, int64_t dim, const void* table,
                           DType tableType, void* stream) {
  ND_REQUIRE(n >= 0 && dim >= 1, Arg, "addClassEmbeddingCuda: bad shape");
  ND_REQUIRE(cond && labels && table, Arg, "addClassEmbeddingCuda: null pointer");
  kcuda::withElem(kcuda::elemOf(tableType, "addClassEmbeddingCuda"), [&](auto e) {
    using TT = decltype(e);
    kcuda::launchAddClassEmbedding(cond, labels, n, dim, static_cast<const TT*>(table), stream);
  });
}

void addTokenTableCuda(float* x, const float* rows, int64_t n, int64_t tokens, int64_t dim, void* stream) {
  ND_REQUIRE(n >= 0 && tokens >= 0 && dim >= 0, Arg, "addTokenTableCuda: bad shape");
  ND_REQUIRE(x && rows, Arg, "addTokenTableCuda: null pointer");
  kcuda::launchAddTokenTable(x, rows, n, tokens, dim, stream);
}

}  // namespace nd
