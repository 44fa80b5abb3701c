// Scalar IEEE binary16 and bfloat16 conversions, round-to-nearest-even, usable on host and device.
// These are the reference every vectorised cast kernel is tested against.
//
// NaN rule (IEEE 754 format conversion, and what x86 F16C does): a NaN stays a NaN of the same
// sign, comes out quiet, and keeps the top bits of its payload (the bits that fit). Rounding is done
// with integer arithmetic only, so results do not depend on the FPU rounding mode or on FTZ/DAZ.
#pragma once
#include <cstdint>
#include <cstring>

#include "core/hd.h"

namespace nd {

ND_HD uint32_t floatBits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}

ND_HD float bitsFloat(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

ND_HD uint64_t doubleBits(double d) {
#if defined(__CUDA_ARCH__)
  return uint64_t(__double_as_longlong(d));
#else
  uint64_t u;
  std::memcpy(&u, &d, 8);
  return u;
#endif
}

ND_HD double bitsDouble(uint64_t u) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double((long long)u);
#else
  double d;
  std::memcpy(&d, &u, 8);
  return d;
#endif
}

ND_HD float halfToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) {
    if (man == 0) return bitsFloat(sign | 0x7f800000u);
    return bitsFloat(sign | 0x7fc00000u | (man << 13));  // quieted, as F16C's vcvtph2ps does
  }
  if (exp == 0) {
    if (man == 0) return bitsFloat(sign);
    // Subnormal: value = man * 2^-24, exactly representable in f32 (the product is a normal f32).
    float v = float(man) * 5.9604644775390625e-08f;
    return sign ? -v : v;
  }
  return bitsFloat(sign | ((exp + 112u) << 23) | (man << 13));
}

ND_HD uint16_t floatToHalf(float f) {
  uint32_t u = floatBits(f);
  uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  uint32_t absu = u & 0x7fffffffu;
  if (absu >= 0x7f800000u) {
    if (absu == 0x7f800000u) return uint16_t(sign | 0x7c00u);
    return uint16_t(sign | 0x7e00u | ((absu >> 13) & 0x3ffu));
  }
  if (absu >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // >= 65520 rounds to inf
  if (absu < 0x38800000u) {
    // Subnormal or zero result: count units of 2^-24. At or below 2^-25 (a tie, or less) that is 0.
    if (absu <= 0x33000000u) return sign;
    uint32_t m = (absu & 0x7fffffu) | 0x800000u;
    uint32_t s = 126u - (absu >> 23);  // 14..24
    // Round-half-even right shift; a carry into 0x400 is exactly the smallest normal's encoding.
    uint32_t q = (m + (1u << (s - 1)) - 1u + ((m >> s) & 1u)) >> s;
    return uint16_t(sign | q);
  }
  // Normal: rebias the exponent and round the 13 dropped mantissa bits to nearest even.
  uint32_t mantOdd = (absu >> 13) & 1u;
  absu += 0xc8000fffu + mantOdd;  // (15-127)<<23 rebias, plus the rounding increment
  return uint16_t(sign | uint16_t(absu >> 13));
}

ND_HD float bf16ToFloat(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  // Quiet a signalling NaN so that widening behaves like halfToFloat (and IEEE conversion).
  if ((u & 0x7fffffffu) > 0x7f800000u) u |= 0x00400000u;
  return bitsFloat(u);
}

ND_HD uint16_t floatToBf16(float f) {
  uint32_t u = floatBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x0040u);  // quiet the NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

namespace half_detail {
// Rounds a finite or non-finite double straight to a 16-bit format with kMant stored mantissa bits
// and exponent bias kBias (5-bit exponent field for f16, 8-bit for bf16). One rounding only:
// going through f32 first would round twice and can land one ulp off on halfway cases.
template <int kMant, int kBias, uint32_t kExpMax>
ND_HD uint16_t doubleToNarrow(double d) {
  uint64_t u = doubleBits(d);
  uint16_t sign = uint16_t((u >> 48) & 0x8000u);
  uint32_t exp = uint32_t(u >> 52) & 0x7ffu;
  uint64_t frac = u & 0xfffffffffffffull;
  const uint16_t inf = uint16_t(sign | (kExpMax << kMant));
  if (exp == 0x7ff) {
    if (frac == 0) return inf;
    return uint16_t(inf | (1u << (kMant - 1)) | uint16_t(frac >> (52 - kMant)));
  }
  if (exp == 0) return sign;  // f64 subnormals are far below half of either format's smallest step
  int e = int(exp) - 1023 + kBias;  // biased exponent in the target format
  if (e >= int(kExpMax)) return inf;
  uint64_t m = frac | (1ull << 52);
  int s = 52 - kMant + (e >= 1 ? 0 : 1 - e);  // how many low bits of m fall below the target step
  if (s > 53) return sign;                    // < half the smallest subnormal (m < 2^53)
  uint64_t q = (m + (1ull << (s - 1)) - 1 + ((m >> s) & 1)) >> s;
  // For normals q includes the implicit bit, so adding (e-1)<<kMant yields the encoding; a carry out
  // of the mantissa bumps the exponent, up to the inf encoding. Subnormals encode as q directly.
  uint32_t r = e >= 1 ? uint32_t(q) + (uint32_t(e - 1) << kMant) : uint32_t(q);
  if (r >= (kExpMax << kMant)) return inf;
  return uint16_t(sign | r);
}
}  // namespace half_detail

ND_HD uint16_t doubleToHalf(double d) { return half_detail::doubleToNarrow<10, 15, 0x1fu>(d); }
ND_HD uint16_t doubleToBf16(double d) { return half_detail::doubleToNarrow<7, 127, 0xffu>(d); }

}  // namespace nd
