// AVX2/F16C cast loops (cast_avx2.cpp). Internal to castCpu: call only when
// activeIsa() == CpuIsa::Avx2. Each converts a prefix of whole vectors and returns its length
// (n rounded down to a multiple of 8 or 16); the caller converts the rest with the scalar code.
// Results are bit-identical to the scalar half.h conversions.
#pragma once
#include <cstdint>

namespace nd::avx2 {

int64_t castF32ToF16(const float* src, uint16_t* dst, int64_t n);
int64_t castF16ToF32(const uint16_t* src, float* dst, int64_t n);
int64_t castF32ToBf16(const float* src, uint16_t* dst, int64_t n);
int64_t castBf16ToF32(const uint16_t* src, float* dst, int64_t n);
int64_t castF16ToBf16(const uint16_t* src, uint16_t* dst, int64_t n);
int64_t castBf16ToF16(const uint16_t* src, uint16_t* dst, int64_t n);

}  // namespace nd::avx2
