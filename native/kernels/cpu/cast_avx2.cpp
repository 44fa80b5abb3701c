// Built with -mavx2 -mfma -mf16c (see CMakeLists.txt); entered only after run-time detection.
// Deliberately calls no inline function from our headers (half.h etc.): a non-inlined copy compiled
// here is a COMDAT symbol the linker may also hand to baseline code, which would then fault on a CPU
// without AVX2. Hence each loop does whole vectors only and returns how far it got; castCpu finishes
// the tail with the scalar half.h code, which the vector code matches bit for bit.
#include "kernels/cpu/cast_avx2.h"

#if defined(__AVX2__) && defined(__F16C__)
#include <immintrin.h>

namespace nd::avx2 {

namespace {

constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

inline __m256 loadHalf8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// bf16 -> f32 is a 16-bit shift; a signalling NaN is quieted to match bf16ToFloat.
inline __m256 loadBf16x8(const uint16_t* p) {
  __m256i u = _mm256_slli_epi32(
      _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16);
  __m256i absu = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
  __m256i nan = _mm256_cmpgt_epi32(absu, _mm256_set1_epi32(0x7f800000));
  u = _mm256_or_si256(u, _mm256_and_si256(nan, _mm256_set1_epi32(0x00400000)));
  return _mm256_castsi256_ps(u);
}

// f32 -> bf16 in the low 16 bits of each 32-bit lane: RNE by integer add, NaN quieted instead
// (the add could carry a NaN into inf).
inline __m256i roundBf16x8(__m256 v) {
  __m256i u = _mm256_castps_si256(v);
  __m256i absu = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
  __m256i nan = _mm256_cmpgt_epi32(absu, _mm256_set1_epi32(0x7f800000));
  __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i rounded = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb);
  __m256i quiet = _mm256_or_si256(u, _mm256_set1_epi32(0x00400000));
  return _mm256_srli_epi32(_mm256_blendv_epi8(rounded, quiet, nan), 16);
}

// Packs two vectors of 16-bit values held in 32-bit lanes into 16 consecutive u16. packus works
// per 128-bit lane, so a cross-lane permute restores element order; values are < 2^16, no clamping.
inline void storeBf16x16(uint16_t* p, __m256i lo, __m256i hi) {
  __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xd8);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), packed);
}

inline void storeHalf8(uint16_t* p, __m256 v) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, kRound));
}

}  // namespace

int64_t castF32ToF16(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    storeHalf8(dst + i, _mm256_loadu_ps(src + i));
    storeHalf8(dst + i + 8, _mm256_loadu_ps(src + i + 8));
  }
  for (; i + 8 <= n; i += 8) storeHalf8(dst + i, _mm256_loadu_ps(src + i));
  return i;
}

int64_t castF16ToF32(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_ps(dst + i, loadHalf8(src + i));
    _mm256_storeu_ps(dst + i + 8, loadHalf8(src + i + 8));
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, loadHalf8(src + i));
  return i;
}

int64_t castF32ToBf16(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    storeBf16x16(dst + i, roundBf16x8(_mm256_loadu_ps(src + i)),
                 roundBf16x8(_mm256_loadu_ps(src + i + 8)));
  return i;
}

int64_t castBf16ToF32(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_ps(dst + i, loadBf16x8(src + i));
    _mm256_storeu_ps(dst + i + 8, loadBf16x8(src + i + 8));
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, loadBf16x8(src + i));
  return i;
}

// f16 -> f32 is exact, so rounding the f32 to bf16 is the single rounding the scalar path does.
int64_t castF16ToBf16(const uint16_t* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    storeBf16x16(dst + i, roundBf16x8(loadHalf8(src + i)), roundBf16x8(loadHalf8(src + i + 8)));
  return i;
}

int64_t castBf16ToF16(const uint16_t* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) storeHalf8(dst + i, loadBf16x8(src + i));
  return i;
}

}  // namespace nd::avx2

#else  // not an x86 build with AVX2/F16C flags: activeIsa() is Baseline there, nothing is converted

namespace nd::avx2 {
int64_t castF32ToF16(const float*, uint16_t*, int64_t) { return 0; }
int64_t castF16ToF32(const uint16_t*, float*, int64_t) { return 0; }
int64_t castF32ToBf16(const float*, uint16_t*, int64_t) { return 0; }
int64_t castBf16ToF32(const uint16_t*, float*, int64_t) { return 0; }
int64_t castF16ToBf16(const uint16_t*, uint16_t*, int64_t) { return 0; }
int64_t castBf16ToF16(const uint16_t*, uint16_t*, int64_t) { return 0; }
}  // namespace nd::avx2

#endif
