// The per-element cast rules shared by castCpu (kernels/cpu/cast.cpp) and castCuda
// (kernels/cuda/cast.cu). Plain C++ with ND_HD functions, so both backends instantiate the very same
// castValue<S, D>; that is what makes CPU and GPU casts agree bit for bit.
// Semantics: see kernels/cpu/cast.h. In addition: NaN -> another float type keeps its sign and the
// top payload bits and comes out quiet; every float result is rounded once from the exact source
// value (f64 -> f16/bf16 and i64 -> f32/f16/bf16 included).
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/half.h"
#include "core/hd.h"

namespace nd {

namespace cast_detail {

template <DType T> struct Storage;
template <> struct Storage<DType::F32> { using type = float; };
template <> struct Storage<DType::F16> { using type = uint16_t; };
template <> struct Storage<DType::BF16> { using type = uint16_t; };
template <> struct Storage<DType::F64> { using type = double; };
template <> struct Storage<DType::I32> { using type = int32_t; };
template <> struct Storage<DType::I64> { using type = int64_t; };
template <> struct Storage<DType::U8> { using type = uint8_t; };
template <> struct Storage<DType::Bool> { using type = uint8_t; };
template <DType T> using StorageT = typename Storage<T>::type;

// Local copy of isFloating: dtype.h's is a host-only constexpr function.
template <DType T>
inline constexpr bool kFloating = T == DType::F32 || T == DType::F16 || T == DType::BF16 || T == DType::F64;

template <typename I> struct Limits;
template <> struct Limits<int32_t> { static constexpr int64_t lo = -2147483647 - 1, hi = 2147483647; };
template <> struct Limits<int64_t> {
  static constexpr int64_t lo = -9223372036854775807ll - 1, hi = 9223372036854775807ll;
};
template <> struct Limits<uint8_t> { static constexpr int64_t lo = 0, hi = 255; };

// Explicit NaN handling: x86 keeps payloads through cvtss2sd/cvtsd2ss but the CUDA ISA does not
// promise to, so the NaN case never goes through a hardware float<->double conversion.
ND_HD double floatToDouble(float f) {
  uint32_t u = floatBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return bitsDouble((uint64_t(u & 0x80000000u) << 32) | 0x7ff8000000000000ull |
                      (uint64_t(u & 0x7fffffu) << 29));
  return double(f);
}

ND_HD float doubleToFloat(double d) {
  uint64_t u = doubleBits(d);
  if ((u & 0x7fffffffffffffffull) > 0x7ff0000000000000ull)
    return bitsFloat(uint32_t(u >> 32 & 0x80000000u) | 0x7fc00000u |
                     uint32_t((u >> 29) & 0x7fffffu));
  return float(d);  // RNE, a single rounding
}

// An i64 beyond 2^53 becomes the 53-bit double nearest it with round-to-odd (the dropped bits are
// folded into a sticky lsb). Rounding that double again to <= 51 bits gives the correctly rounded
// result, so i64 -> f16/bf16 rounds once. (For f32/f64 the hardware conversion already does.)
ND_HD double int64ToDoubleOdd(int64_t v) {
  uint64_t mag = v < 0 ? 0 - uint64_t(v) : uint64_t(v);
  if (mag < (1ull << 53)) return double(v);
  int k = 0;
  while ((mag >> k) >> 53) ++k;
  uint64_t t = (mag >> k) | uint64_t((mag & ((1ull << k) - 1)) != 0);
  double r = double(t) * bitsDouble(uint64_t(1023 + k) << 52);  // both steps exact
  return v < 0 ? -r : r;
}

// Truncation toward zero with saturation; NaN -> 0. Inside the open bounds the C++ conversion is
// defined and truncates.
template <typename I>
ND_HD I saturateFromDouble(double v) {
  if (v != v) return I(0);
  if (v <= double(Limits<I>::lo)) return I(Limits<I>::lo);
  if (v >= double(Limits<I>::hi)) return I(Limits<I>::hi);  // i64: double(hi) is 2^63
  return I(v);
}

template <typename I>
ND_HD I saturateFromInt(int64_t v) {
  if (v < Limits<I>::lo) return I(Limits<I>::lo);
  if (v > Limits<I>::hi) return I(Limits<I>::hi);
  return I(v);
}

// The exact value of a floating source as f32 where that is lossless (f16/bf16/f32).
template <DType S>
ND_HD float widenToFloat(StorageT<S> x) {
  if constexpr (S == DType::F16) return halfToFloat(x);
  else if constexpr (S == DType::BF16) return bf16ToFloat(x);
  else return x;
}

template <DType S>
ND_HD double floatingToDouble(StorageT<S> x) {
  if constexpr (S == DType::F64) return x;
  else return floatToDouble(widenToFloat<S>(x));
}

template <DType S>
ND_HD bool nonZero(StorageT<S> x) {
  if constexpr (S == DType::F16 || S == DType::BF16) return (x & 0x7fffu) != 0;  // NaN is nonzero
  else return x != 0;  // floats: NaN != 0 is true, -0 == 0
}

template <DType S, DType D>
ND_HD StorageT<D> castValue(StorageT<S> x) {
  using Out = StorageT<D>;
  if constexpr (S == D) {
    return x;
  } else if constexpr (D == DType::Bool) {
    return Out(nonZero<S>(x) ? 1 : 0);
  } else if constexpr (kFloating<S>) {
    if constexpr (D == DType::F64) {
      return floatingToDouble<S>(x);
    } else if constexpr (S == DType::F64) {
      if constexpr (D == DType::F32) return doubleToFloat(x);
      else if constexpr (D == DType::F16) return doubleToHalf(x);
      else if constexpr (D == DType::BF16) return doubleToBf16(x);
      else return saturateFromDouble<Out>(x);
    } else {
      float f = widenToFloat<S>(x);  // exact
      if constexpr (D == DType::F32) return f;
      else if constexpr (D == DType::F16) return floatToHalf(f);
      else if constexpr (D == DType::BF16) return floatToBf16(f);
      else return saturateFromDouble<Out>(double(f));  // f is not NaN-sensitive here
    }
  } else {
    int64_t v = S == DType::Bool ? int64_t(x != 0) : int64_t(x);
    if constexpr (D == DType::F32) return float(v);  // cvtsi2ss / cvt.rn: one RNE rounding
    else if constexpr (D == DType::F64) return double(v);
    else if constexpr (D == DType::F16) return doubleToHalf(int64ToDoubleOdd(v));
    else if constexpr (D == DType::BF16) return doubleToBf16(int64ToDoubleOdd(v));
    else return saturateFromInt<Out>(v);
  }
}

}  // namespace cast_detail
}  // namespace nd
