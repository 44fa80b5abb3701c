// castCuda: one grid-stride kernel per dtype pair, each element through cast_detail::castValue —
// the same function castCpu's scalar loops use — so the two backends give the same bits.
// Built with --fmad=false; the conversions themselves are integer code or single IEEE roundings
// (cvt.rn.*), none of which FTZ or contraction could change.
#include "kernels/cuda/cast.cuh"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "kernels/cuda/cuda_check.cuh"

namespace nd {

namespace {

using cast_detail::castValue;
using cast_detail::StorageT;

template <DType S, DType D>
__global__ void castKernel(const StorageT<S>* __restrict__ src, StorageT<D>* __restrict__ dst, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    dst[i] = castValue<S, D>(src[i]);
}

constexpr int kThreads = 256;
// Enough blocks to fill any current GPU several times over; the grid-stride loop covers larger n.
constexpr int64_t kMaxBlocks = 8192;

using LaunchFn = void (*)(const void*, void*, int64_t);

template <DType S, DType D>
void launch(const void* src, void* dst, int64_t n) {
  int64_t blocks = std::min((n + kThreads - 1) / kThreads, kMaxBlocks);
  castKernel<S, D><<<unsigned(blocks), kThreads>>>(static_cast<const StorageT<S>*>(src),
                                                    static_cast<StorageT<D>*>(dst), n);
  ND_CUDA_CHECK_LAUNCH();
}

template <DType S>
LaunchFn pickLaunch(DType d) {
  switch (d) {
    case DType::F32: return &launch<S, DType::F32>;
    case DType::F16: return &launch<S, DType::F16>;
    case DType::BF16: return &launch<S, DType::BF16>;
    case DType::F64: return &launch<S, DType::F64>;
    case DType::I32: return &launch<S, DType::I32>;
    case DType::I64: return &launch<S, DType::I64>;
    case DType::U8: return &launch<S, DType::U8>;
    case DType::Bool: return &launch<S, DType::Bool>;
  }
  return nullptr;
}

LaunchFn pickLaunch(DType s, DType d) {
  switch (s) {
    case DType::F32: return pickLaunch<DType::F32>(d);
    case DType::F16: return pickLaunch<DType::F16>(d);
    case DType::BF16: return pickLaunch<DType::BF16>(d);
    case DType::F64: return pickLaunch<DType::F64>(d);
    case DType::I32: return pickLaunch<DType::I32>(d);
    case DType::I64: return pickLaunch<DType::I64>(d);
    case DType::U8: return pickLaunch<DType::U8>(d);
    case DType::Bool: return pickLaunch<DType::Bool>(d);
  }
  return nullptr;
}

}  // namespace

void castCuda(int device, const void* src, DType srcType, void* dst, DType dstType, int64_t n) {
  ND_REQUIRE(n >= 0, Arg, "Expected non-negative element count for cast but received " + std::to_string(n));
  if (n == 0) return;
  LaunchFn fn = srcType == dstType ? nullptr : pickLaunch(srcType, dstType);
  ND_REQUIRE(srcType == dstType || fn != nullptr, DType,
             std::string("Expected a known dtype pair for cast but received ") + dtypeName(srcType) +
                 " -> " + dtypeName(dstType));
  ND_CUDA_CHECK(cudaSetDevice(device));
  if (srcType == dstType) {
    // Stream-ordered like the kernels, so a later launch on the default stream sees the copy.
    ND_CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(n) * dtypeSize(srcType), cudaMemcpyDeviceToDevice, 0));
    return;
  }
  fn(src, dst, n);
}

}  // namespace nd
