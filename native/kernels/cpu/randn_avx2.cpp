#include "kernels/cpu/randn_avx2.h"

#include <immintrin.h>

#include <cstdint>

namespace nd::avx2 {
namespace {

inline __m256d c(double v) { return _mm256_set1_pd(v); }
inline __m256d add(__m256d a, __m256d b) { return _mm256_add_pd(a, b); }
inline __m256d sub(__m256d a, __m256d b) { return _mm256_sub_pd(a, b); }
inline __m256d mul(__m256d a, __m256d b) { return _mm256_mul_pd(a, b); }
inline __m256d bits(uint64_t v) { return _mm256_castsi256_pd(_mm256_set1_epi64x(int64_t(v))); }

// logPositive of philox.h for normal positive finite x (the only inputs: uniforms on the RNG grid).
__m256d logNormalPositive(__m256d x) {
  const __m256i xb = _mm256_castpd_si256(x);
  // Biased exponent to double exactly: OR it into the mantissa of 2^52 and subtract 2^52.
  const __m256i biased = _mm256_srli_epi64(xb, 52);
  __m256d ed = sub(_mm256_castsi256_pd(_mm256_or_si256(biased, _mm256_set1_epi64x(0x4330000000000000ll))), c(0x1p52));
  ed = sub(ed, c(1023.0));
  __m256d m = _mm256_or_pd(_mm256_and_pd(x, bits(0x000fffffffffffffull)), bits(0x3ff0000000000000ull));
  const __m256d big = _mm256_cmp_pd(m, c(0x1.6a09e667f3bcdp+0), _CMP_GT_OQ);
  m = _mm256_blendv_pd(m, mul(m, c(0.5)), big);
  ed = _mm256_blendv_pd(ed, add(ed, c(1.0)), big);
  const __m256d f = sub(m, c(1.0));
  const __m256d s = _mm256_div_pd(f, add(c(2.0), f));
  const __m256d z = mul(s, s);
  __m256d p = c(0x1.8618618618618p-4);
  p = add(mul(p, z), c(0x1.af286bca1af28p-4));
  p = add(mul(p, z), c(0x1.e1e1e1e1e1e1ep-4));
  p = add(mul(p, z), c(0x1.1111111111111p-3));
  p = add(mul(p, z), c(0x1.3b13b13b13b14p-3));
  p = add(mul(p, z), c(0x1.745d1745d1746p-3));
  p = add(mul(p, z), c(0x1.c71c71c71c71cp-3));
  p = add(mul(p, z), c(0x1.2492492492492p-2));
  p = add(mul(p, z), c(0x1.999999999999ap-2));
  p = add(mul(p, z), c(0x1.5555555555555p-1));
  const __m256d r = mul(z, p);
  const __m256d hfsq = mul(mul(c(0.5), f), f);
  const __m256d small = add(mul(s, add(hfsq, r)), mul(ed, c(-0x1.718432a1b0e26p-35)));
  const __m256d logm = sub(f, sub(hfsq, small));
  return add(mul(ed, c(0x1.62e42ffp-1)), logm);
}

// sinCos2Pi of philox.h for u in [0, 1].
void sinCos2Pi(__m256d u, __m256d& sinOut, __m256d& cosOut) {
  const __m256d x = mul(u, c(4.0));
  __m256d qd = _mm256_round_pd(x, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);  // int(x), x >= 0
  __m256d t = sub(x, qd);
  const __m256d wrap = _mm256_cmp_pd(t, c(0.5), _CMP_GT_OQ);
  t = _mm256_blendv_pd(t, sub(t, c(1.0)), wrap);
  qd = _mm256_blendv_pd(qd, add(qd, c(1.0)), wrap);
  const __m256d tHi = _mm256_and_pd(t, bits(0xffffffffffc00000ull));
  const __m256d tLo = sub(t, tHi);
  const __m256d aHi = mul(tHi, c(0x1.921fb8p+0));
  const __m256d aLo = add(mul(tLo, c(0x1.921fb8p+0)), mul(t, c(-0x1.5dde973dcb3b4p-23)));
  const __m256d a = add(aHi, aLo);
  const __m256d e = sub(aLo, sub(a, aHi));
  const __m256d z = mul(a, a);

  __m256d ps = c(0x1.952c77030ad4ap-49);
  ps = add(mul(ps, z), c(-0x1.ae7f3e733b81fp-41));
  ps = add(mul(ps, z), c(0x1.6124613a86d09p-33));
  ps = add(mul(ps, z), c(-0x1.ae64567f544e4p-26));
  ps = add(mul(ps, z), c(0x1.71de3a556c734p-19));
  ps = add(mul(ps, z), c(-0x1.a01a01a01a01ap-13));
  ps = add(mul(ps, z), c(0x1.1111111111111p-7));
  ps = add(mul(ps, z), c(-0x1.5555555555555p-3));
  const __m256d hz = mul(c(0.5), z);
  const __m256d sinA = add(a, add(mul(mul(a, z), ps), mul(e, sub(c(1.0), hz))));

  __m256d pc = c(-0x1.6827863b97d97p-53);
  pc = add(mul(pc, z), c(0x1.ae7f3e733b81fp-45));
  pc = add(mul(pc, z), c(-0x1.93974a8c07c9dp-37));
  pc = add(mul(pc, z), c(0x1.1eed8eff8d898p-29));
  pc = add(mul(pc, z), c(-0x1.27e4fb7789f5cp-22));
  pc = add(mul(pc, z), c(0x1.a01a01a01a01ap-16));
  pc = add(mul(pc, z), c(-0x1.6c16c16c16c17p-10));
  pc = add(mul(pc, z), c(0x1.5555555555555p-5));
  const __m256d w = sub(c(1.0), hz);
  const __m256d wErr = sub(sub(c(1.0), w), hz);
  const __m256d tail = sub(mul(mul(z, z), pc), mul(e, a));
  const __m256d cosA = add(w, add(tail, wErr));

  // Quadrant q & 3: 0 (s, c), 1 (c, -s), 2 (-s, -c), 3 (-c, s).
  const __m256i q = _mm256_cvtepi32_epi64(_mm256_cvttpd_epi32(qd));
  const __m256i one = _mm256_set1_epi64x(1), two = _mm256_set1_epi64x(2);
  const __m256d odd = _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_and_si256(q, one), one));
  const __m256d negSin = _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_and_si256(q, two), two));
  const __m256d negCos = _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_and_si256(_mm256_add_epi64(q, one), two), two));
  const __m256d sign = bits(0x8000000000000000ull);
  const __m256d s0 = _mm256_blendv_pd(sinA, cosA, odd);
  const __m256d c0 = _mm256_blendv_pd(cosA, sinA, odd);
  sinOut = _mm256_xor_pd(s0, _mm256_and_pd(negSin, sign));
  cosOut = _mm256_xor_pd(c0, _mm256_and_pd(negCos, sign));
}

void boxMuller(__m256d uRadius, __m256d uAngle, __m256d& z0, __m256d& z1) {
  const __m256d r = _mm256_sqrt_pd(mul(c(-2.0), logNormalPositive(uRadius)));
  __m256d s, co;
  sinCos2Pi(uAngle, s, co);
  z0 = mul(r, co);
  z1 = mul(r, s);
}

// (double(x) + 0.5) * 2^-32 for the 32-bit words in the low halves of the 64-bit lanes; double(x)
// exactly, by placing x in the mantissa of 2^52.
__m256d uniforms(__m256i words) {
  const __m256d x = sub(_mm256_castsi256_pd(_mm256_or_si256(words, _mm256_set1_epi64x(0x4330000000000000ll))), c(0x1p52));
  return mul(add(x, c(0.5)), c(0x1p-32));
}

}  // namespace

void boxMuller4(const double uRadius[4], const double uAngle[4], double z0[4], double z1[4]) {
  __m256d a, b;
  boxMuller(_mm256_loadu_pd(uRadius), _mm256_loadu_pd(uAngle), a, b);
  _mm256_storeu_pd(z0, a);
  _mm256_storeu_pd(z1, b);
}

void normalsOf4Blocks(uint64_t seed, uint64_t stream, uint64_t block0, double out[16]) {
  const __m256i low = _mm256_set1_epi64x(0xffffffffll);
  const __m256i blocks = _mm256_add_epi64(_mm256_set1_epi64x(int64_t(block0)), _mm256_set_epi64x(3, 2, 1, 0));
  __m256i c0 = _mm256_and_si256(blocks, low);
  __m256i c1 = _mm256_srli_epi64(blocks, 32);
  __m256i c2 = _mm256_set1_epi64x(int64_t(stream & 0xffffffffull));
  __m256i c3 = _mm256_set1_epi64x(int64_t(stream >> 32));
  __m256i k0 = _mm256_set1_epi64x(int64_t(seed & 0xffffffffull));
  __m256i k1 = _mm256_set1_epi64x(int64_t(seed >> 32));
  const __m256i m0 = _mm256_set1_epi64x(0xD2511F53ll), m1 = _mm256_set1_epi64x(0xCD9E8D57ll);
  const __m256i bump0 = _mm256_set1_epi64x(0x9E3779B9ll), bump1 = _mm256_set1_epi64x(0xBB67AE85ll);
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 = _mm256_and_si256(_mm256_add_epi64(k0, bump0), low);
      k1 = _mm256_and_si256(_mm256_add_epi64(k1, bump1), low);
    }
    const __m256i p0 = _mm256_mul_epu32(c0, m0);
    const __m256i p1 = _mm256_mul_epu32(c2, m1);
    const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), c1), k0);
    const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), c3), k1);
    c1 = _mm256_and_si256(p1, low);
    c3 = _mm256_and_si256(p0, low);
    c0 = n0;
    c2 = n2;
  }
  __m256d z0, z1, z2, z3;
  boxMuller(uniforms(c0), uniforms(c1), z0, z1);
  boxMuller(uniforms(c2), uniforms(c3), z2, z3);
  // Lane k is block block0 + k; its four elements are (z0, z1, z2, z3)[k].
  alignas(32) double a[4], b[4], d[4], e[4];
  _mm256_store_pd(a, z0);
  _mm256_store_pd(b, z1);
  _mm256_store_pd(d, z2);
  _mm256_store_pd(e, z3);
  for (int k = 0; k < 4; ++k) {
    out[4 * k] = a[k];
    out[4 * k + 1] = b[k];
    out[4 * k + 2] = d[k];
    out[4 * k + 3] = e[k];
  }
}

}  // namespace nd::avx2
