#include "kernels/cpu/cast.h"

#include <cstring>
#include <string>

#include "core/cpu_features.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cast_avx2.h"
// The element rules live with castCuda so both backends compile the same castValue<S, D>.
#include "core/cast_value.h"

namespace nd {

namespace {

using cast_detail::castValue;
using cast_detail::StorageT;

using RangeFn = void (*)(const void*, void*, int64_t, int64_t);
template <typename S, typename D>
using VectorFn = int64_t (*)(const S*, D*, int64_t);

template <DType S, DType D>
void scalarRange(const void* src, void* dst, int64_t b, int64_t e) {
  auto* s = static_cast<const StorageT<S>*>(src);
  auto* d = static_cast<StorageT<D>*>(dst);
  for (int64_t i = b; i < e; ++i) d[i] = castValue<S, D>(s[i]);
}

// The AVX2 loop takes the whole vectors, the scalar loop (same bits) the tail.
template <DType S, DType D, VectorFn<StorageT<S>, StorageT<D>> kVec>
void avx2Range(const void* src, void* dst, int64_t b, int64_t e) {
  auto* s = static_cast<const StorageT<S>*>(src);
  auto* d = static_cast<StorageT<D>*>(dst);
  int64_t done = kVec(s + b, d + b, e - b);
  scalarRange<S, D>(src, dst, b + done, e);
}

template <DType S>
RangeFn pickScalar(DType d) {
  switch (d) {
    case DType::F32: return &scalarRange<S, DType::F32>;
    case DType::F16: return &scalarRange<S, DType::F16>;
    case DType::BF16: return &scalarRange<S, DType::BF16>;
    case DType::F64: return &scalarRange<S, DType::F64>;
    case DType::I32: return &scalarRange<S, DType::I32>;
    case DType::I64: return &scalarRange<S, DType::I64>;
    case DType::U8: return &scalarRange<S, DType::U8>;
    case DType::Bool: return &scalarRange<S, DType::Bool>;
  }
  return nullptr;
}

RangeFn pickScalar(DType s, DType d) {
  switch (s) {
    case DType::F32: return pickScalar<DType::F32>(d);
    case DType::F16: return pickScalar<DType::F16>(d);
    case DType::BF16: return pickScalar<DType::BF16>(d);
    case DType::F64: return pickScalar<DType::F64>(d);
    case DType::I32: return pickScalar<DType::I32>(d);
    case DType::I64: return pickScalar<DType::I64>(d);
    case DType::U8: return pickScalar<DType::U8>(d);
    case DType::Bool: return pickScalar<DType::Bool>(d);
  }
  return nullptr;
}

// f32/f16/bf16 among themselves are the hot pairs (weights on load, latents).
RangeFn pickAvx2(DType s, DType d) {
  using T = DType;
  if (s == T::F32 && d == T::F16) return &avx2Range<T::F32, T::F16, &avx2::castF32ToF16>;
  if (s == T::F16 && d == T::F32) return &avx2Range<T::F16, T::F32, &avx2::castF16ToF32>;
  if (s == T::F32 && d == T::BF16) return &avx2Range<T::F32, T::BF16, &avx2::castF32ToBf16>;
  if (s == T::BF16 && d == T::F32) return &avx2Range<T::BF16, T::F32, &avx2::castBf16ToF32>;
  if (s == T::F16 && d == T::BF16) return &avx2Range<T::F16, T::BF16, &avx2::castF16ToBf16>;
  if (s == T::BF16 && d == T::F16) return &avx2Range<T::BF16, T::F16, &avx2::castBf16ToF16>;
  return nullptr;
}

}  // namespace

void castCpu(const void* src, DType srcType, void* dst, DType dstType, int64_t n, ThreadPool* pool) {
  ND_REQUIRE(n >= 0, Arg, "Expected non-negative element count for cast but received " + std::to_string(n));
  if (n == 0) return;
  if (srcType == dstType) {
    std::memcpy(dst, src, size_t(n) * dtypeSize(srcType));
    return;
  }
  // Chosen once per call, so every chunk of a pooled call runs the same code.
  RangeFn fn = activeIsa() == CpuIsa::Avx2 ? pickAvx2(srcType, dstType) : nullptr;
  if (!fn) fn = pickScalar(srcType, dstType);
  ND_REQUIRE(fn != nullptr, DType,
             std::string("Expected a known dtype pair for cast but received ") + dtypeName(srcType) +
                 " -> " + dtypeName(dstType));
  if (pool) pool->parallelFor(n, 1 << 16, [&](int64_t b, int64_t e) { fn(src, dst, b, e); });
  else fn(src, dst, 0, n);
}

}  // namespace nd
