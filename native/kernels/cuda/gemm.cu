#include "kernels/cuda/gemm.cuh"

#include <mutex>
#include <vector>

namespace nd {

namespace {
int multiprocessorsOfCurrentDevice() {
  static std::mutex mu;
  static std::vector<int> cache;
  int device = 0;
  ND_CUDA_CHECK(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lk(mu);
  if (size_t(device) >= cache.size()) cache.resize(size_t(device) + 1, 0);
  if (cache[size_t(device)] == 0)
    ND_CUDA_CHECK(cudaDeviceGetAttribute(&cache[size_t(device)], cudaDevAttrMultiProcessorCount, device));
  return cache[size_t(device)];
}
}  // namespace

void linearCuda(const void* x, int64_t m, int64_t ldx, const void* w, DType wType, int64_t n, int64_t k,
                int64_t ldw, const float* bias, void* y, DType yType, int64_t ldy, const LinearEpilogueCuda& epilogue,
                void* stream) {
  ND_REQUIRE(m >= 0 && n >= 1 && k >= 1, Arg, "linearCuda: m >= 0, n >= 1 and k >= 1 are required");
  if (m == 0) return;
  ND_REQUIRE(x && w && y, Arg, "linearCuda: x, w and y must not be null");
  ND_REQUIRE(ldx >= k && ldw >= k && ldy >= n, Arg, "linearCuda: a row stride is smaller than its row");
  ND_REQUIRE(m < (int64_t(65535) * 64) && n < (int64_t(1) << 31), Arg, "linearCuda: the matrix is too large");
  ND_REQUIRE(epilogue.kind != LinearEpilogueCuda::Kind::GatedAdd || yType == DType::F32, DType,
             "linearCuda: the gated residual epilogue accumulates into an f32 output");
  ND_REQUIRE(epilogue.kind != LinearEpilogueCuda::Kind::GatedAdd || !epilogue.gate ||
                 (epilogue.rowsPerSample >= 1 && epilogue.gateStride >= n),
             Arg, "linearCuda: the gate needs rowsPerSample >= 1 and gateStride >= n");
  const kcuda::GemmEpi epi = kcuda::gemmEpi(epilogue);
  const kcuda::Elem we = kcuda::elemOf(wType, "linearCuda");
  kcuda::withElem(kcuda::elemOf(yType, "linearCuda"), [&](auto ty) {
    using TY = decltype(ty);
    if (we == kcuda::Elem::F32) {
      kcuda::launchGemmSimt(static_cast<const float*>(x), m, ldx, static_cast<const float*>(w), n, k, ldw, bias,
                            static_cast<TY*>(y), ldy, epi, stream);
    } else if (we == kcuda::Elem::BF16) {
      kcuda::launchGemmTensorCore(static_cast<const kcuda::bf16*>(x), m, ldx, static_cast<const kcuda::bf16*>(w), n,
                                  k, ldw, bias, static_cast<TY*>(y), ldy, epi, multiprocessorsOfCurrentDevice(),
                                  stream);
    } else {
      kcuda::launchGemmTensorCore(static_cast<const kcuda::f16*>(x), m, ldx, static_cast<const kcuda::f16*>(w), n, k,
                                  ldw, bias, static_cast<TY*>(y), ldy, epi, multiprocessorsOfCurrentDevice(), stream);
    }
  });
}

}  // namespace nd
