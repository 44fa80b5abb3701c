// Counter-based random numbers shared bit for bit by the CPU and CUDA backends.
//
// THE CONTRACT (changing anything below changes every seeded image; bump it only deliberately):
//
// 1. Generator: Philox4x32-10 (Salmon et al., SC'11), exactly as Random123's philox4x32_10:
//    10 rounds, multipliers 0xD2511F53 / 0xCD9E8D57, key increments 0x9E3779B9 / 0xBB67AE85
//    (the key is bumped between rounds, not before the first). Checked against Random123's
//    known-answer vectors in test/native/test_philox.cpp.
// 2. Addressing: sample seed s (uint64), element j (0-based, row-major within the sample), stream id
//    `stream` (uint64; 0 = randn noise, other ops pick other ids). Block b = j / 4, lane = j % 4;
//      counter = (lo32(b), hi32(b), lo32(stream), hi32(stream)),  key = (lo32(s), hi32(s)).
//    A value depends only on (s, stream, j): never on the batch it is generated in, the thread
//    count, the device or the launch geometry.
// 3. Uniform: lane word x -> u = (x + 0.5) * 2^-32 in double; exact, never 0 or 1 (2^-33 .. 1-2^-33).
// 4. Normal: Box-Muller on lanes (0,1) and (2,3) of the block:
//      r = sqrt(-2 ln u_a), z_a = r cos(2 pi u_b), z_b = r sin(2 pi u_b)   for (a, b) = (0,1), (2,3)
//    element j takes z_lane. ln and sincos are OUR polynomial implementations below (libm and
//    CUDA's math library disagree in the last bit), evaluated with + - * / sqrt only, each rounded
//    to nearest double, no fused multiply-add. Error: below 1 ulp against exact values (tested
//    on >1e5 points; 2 ulp is the contract's tolerance).
// 5. Output: f64 = the double; f32 = round-to-nearest float of it; f16 / bf16 = the f32 rounded
//    again with floatToHalf / floatToBf16 (core/half.h). Uniforms use the same rounding, so a
//    narrow dtype can hold exactly 1.0 (f32: u >= 1 - 2^-25); ask for f64 when (0,1) must be open.
//
// Why the results agree across backends: every step is either integer arithmetic or a single
// IEEE-754 double operation with round-to-nearest-even (+, -, *, /, sqrt), which both the host
// and the GPU perform exactly. The only way to break that is contraction of a*b+c into one fma:
// host code is compiled with -ffp-contract=off, and on the device every operation below goes
// through __dadd_rn / __dmul_rn & co., which nvcc never fuses whatever --fmad says.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "core/half.h"
#include "core/hd.h"

namespace nd {

struct Philox4x32 { uint32_t v[4]; };  // a counter, or the four output words of one block
struct PhiloxKey { uint32_t v[2]; };

namespace philox_detail {

// One rounding step each; the device intrinsics are never contracted into fma.
#if defined(__CUDA_ARCH__)
ND_HD double add(double a, double b) { return __dadd_rn(a, b); }
ND_HD double sub(double a, double b) { return __dsub_rn(a, b); }
ND_HD double mul(double a, double b) { return __dmul_rn(a, b); }
ND_HD double div(double a, double b) { return __ddiv_rn(a, b); }
ND_HD double sqrtRn(double a) { return __dsqrt_rn(a); }
ND_HD uint64_t toBits(double d) { return uint64_t(__double_as_longlong(d)); }
ND_HD double fromBits(uint64_t u) { return __longlong_as_double((long long)u); }
#else
ND_HD double add(double a, double b) { return a + b; }
ND_HD double sub(double a, double b) { return a - b; }
ND_HD double mul(double a, double b) { return a * b; }
ND_HD double div(double a, double b) { return a / b; }
ND_HD double sqrtRn(double a) { return std::sqrt(a); }
ND_HD uint64_t toBits(double d) { uint64_t u; std::memcpy(&u, &d, 8); return u; }
ND_HD double fromBits(uint64_t u) { double d; std::memcpy(&d, &u, 8); return d; }
#endif

ND_HD void mulHiLo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  uint64_t p = uint64_t(a) * uint64_t(b);
  hi = uint32_t(p >> 32);
  lo = uint32_t(p);
}

ND_HD Philox4x32 philoxRound(Philox4x32 c, PhiloxKey k) {
  uint32_t hi0, lo0, hi1, lo1;
  mulHiLo(0xD2511F53u, c.v[0], hi0, lo0);
  mulHiLo(0xCD9E8D57u, c.v[2], hi1, lo1);
  return Philox4x32{{hi1 ^ c.v[1] ^ k.v[0], lo1, hi0 ^ c.v[3] ^ k.v[1], lo0}};
}

// ln 2 split so that e * kLn2Hi is exact for any binary exponent e (kLn2Hi has 32 significant bits).
constexpr double kLn2Hi = 0x1.62e42ffp-1;
constexpr double kLn2Lo = -0x1.718432a1b0e26p-35;
constexpr double kSqrt2 = 0x1.6a09e667f3bcdp+0;
// pi/2 split: kPio2Hi has 22 significant bits, so kPio2Hi times a 31-bit number is exact.
constexpr double kPio2Hi = 0x1.921fb8p+0;
constexpr double kPio2Lo = -0x1.5dde973dcb3b4p-23;

}  // namespace philox_detail

// Random123's philox4x32_10: ten rounds, the key bumped between rounds.
ND_HD Philox4x32 philox4x32_10(Philox4x32 counter, PhiloxKey key) {
  using philox_detail::philoxRound;
  Philox4x32 c = philoxRound(counter, key);
  for (int r = 1; r < 10; ++r) {
    key.v[0] += 0x9E3779B9u;
    key.v[1] += 0xBB67AE85u;
    c = philoxRound(c, key);
  }
  return c;
}

// The four words of block `block` of (seed, stream): contract item 2.
ND_HD Philox4x32 philoxBlock(uint64_t seed, uint64_t stream, uint64_t block) {
  Philox4x32 ctr{{uint32_t(block), uint32_t(block >> 32), uint32_t(stream), uint32_t(stream >> 32)}};
  PhiloxKey key{{uint32_t(seed), uint32_t(seed >> 32)}};
  return philox4x32_10(ctr, key);
}

// Contract item 3: exact (x has 32 bits, +0.5 makes 33, the scale is a power of two).
ND_HD double uniformFromBits(uint32_t x) {
  return philox_detail::mul(philox_detail::add(double(x), 0.5), 0x1p-32);
}

// Natural log for positive x (0 -> -inf, negative or NaN -> NaN, +inf -> +inf), < 1 ulp.
// x = 2^e * m with m in (sqrt2/2, sqrt2], f = m - 1 (exact), s = f / (2 + f), and
//   ln(1+f) = 2 atanh(s) = f - f^2/2 + s (f^2/2 + R),  R = sum_{k>=1} 2 s^2k / (2k+1),
// (the identity 2s = f - f^2/2 + s f^2/2 keeps the exact f as the leading term, so rounding in s
// only reaches the small correction). |s| <= 0.1716, so ten terms of R leave < 2^-59 relative.
ND_HD double logPositive(double x) {
  // Block-scope using-declarations (not a using-directive): they hide any same-named nd:: helper.
  using philox_detail::add, philox_detail::sub, philox_detail::mul, philox_detail::div;
  using philox_detail::toBits, philox_detail::fromBits;
  using philox_detail::kSqrt2, philox_detail::kLn2Hi, philox_detail::kLn2Lo;
  uint64_t bits = toBits(x);
  if (bits >= 0x7ff0000000000000ull) {  // sign set (negatives, -0, -NaN), +inf or +NaN
    if (bits == 0x8000000000000000ull) return fromBits(0xfff0000000000000ull);
    return bits == 0x7ff0000000000000ull ? x : fromBits(0x7ff8000000000000ull);
  }
  if (bits == 0) return fromBits(0xfff0000000000000ull);
  int e = 0;
  if ((bits >> 52) == 0) {  // subnormal: scale into the normal range first (exact)
    x = mul(x, 0x1p54);
    bits = toBits(x);
    e = -54;
  }
  e += int(bits >> 52) - 1023;
  double m = fromBits((bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull);
  if (m > kSqrt2) {
    m = mul(m, 0.5);
    ++e;
  }
  double f = sub(m, 1.0);
  double s = div(f, add(2.0, f));
  double z = mul(s, s);
  double p = 0x1.8618618618618p-4;  // 2/21
  p = add(mul(p, z), 0x1.af286bca1af28p-4);  // 2/19
  p = add(mul(p, z), 0x1.e1e1e1e1e1e1ep-4);  // 2/17
  p = add(mul(p, z), 0x1.1111111111111p-3);  // 2/15
  p = add(mul(p, z), 0x1.3b13b13b13b14p-3);  // 2/13
  p = add(mul(p, z), 0x1.745d1745d1746p-3);  // 2/11
  p = add(mul(p, z), 0x1.c71c71c71c71cp-3);  // 2/9
  p = add(mul(p, z), 0x1.2492492492492p-2);  // 2/7
  p = add(mul(p, z), 0x1.999999999999ap-2);  // 2/5
  p = add(mul(p, z), 0x1.5555555555555p-1);  // 2/3
  double r = mul(z, p);
  double hfsq = mul(mul(0.5, f), f);
  double ed = double(e);
  double small = add(mul(s, add(hfsq, r)), mul(ed, kLn2Lo));
  double logm = sub(f, sub(hfsq, small));
  return add(mul(ed, kLn2Hi), logm);
}

// sin(2 pi u) and cos(2 pi u) for u in [0, 1], < 1 ulp. The reduction is exact because it works
// on u itself: 4u = q + t with integer quadrant q and |t| <= 1/2, both exact, so the angle is
// q pi/2 + a with a = t pi/2 in [-pi/4, pi/4], carried as a + e (e: the rounding error of a).
// On [-pi/4, pi/4] the Taylor series through a^17 (sin) and a^18 (cos) leave < 2^-62 relative.
ND_HD void sinCos2Pi(double u, double& sinOut, double& cosOut) {
  using philox_detail::add, philox_detail::sub, philox_detail::mul;
  using philox_detail::toBits, philox_detail::fromBits, philox_detail::kPio2Hi, philox_detail::kPio2Lo;
  double x = mul(u, 4.0);
  int q = int(x);
  double t = sub(x, double(q));
  if (t > 0.5) {
    t = sub(t, 1.0);
    ++q;
  }
  // t * pi/2 as aHi + aLo with aHi exact: tHi keeps 31 significant bits of t, kPio2Hi has 22. On
  // the RNG's grid t has at most 30 bits, so tLo is 0 there; other inputs keep < 1 ulp this way.
  double tHi = fromBits(toBits(t) & 0xffffffffffc00000ull);
  double tLo = sub(t, tHi);
  double aHi = mul(tHi, kPio2Hi);
  double aLo = add(mul(tLo, kPio2Hi), mul(t, kPio2Lo));
  double a = add(aHi, aLo);
  double e = sub(aLo, sub(a, aHi));  // exact (Fast2Sum, |aHi| >= |aLo|)
  double z = mul(a, a);

  double ps = 0x1.952c77030ad4ap-49;         //  1/17!
  ps = add(mul(ps, z), -0x1.ae7f3e733b81fp-41);  // -1/15!
  ps = add(mul(ps, z), 0x1.6124613a86d09p-33);   //  1/13!
  ps = add(mul(ps, z), -0x1.ae64567f544e4p-26);  // -1/11!
  ps = add(mul(ps, z), 0x1.71de3a556c734p-19);   //  1/9!
  ps = add(mul(ps, z), -0x1.a01a01a01a01ap-13);  // -1/7!
  ps = add(mul(ps, z), 0x1.1111111111111p-7);    //  1/5!
  ps = add(mul(ps, z), -0x1.5555555555555p-3);   // -1/3!
  double hz = mul(0.5, z);
  // sin(a + e) = sin a + e cos a, with cos a ~ 1 - a^2/2 enough for a term of size 2^-53 a.
  double sinA = add(a, add(mul(mul(a, z), ps), mul(e, sub(1.0, hz))));

  double pc = -0x1.6827863b97d97p-53;          // -1/18!
  pc = add(mul(pc, z), 0x1.ae7f3e733b81fp-45);   //  1/16!
  pc = add(mul(pc, z), -0x1.93974a8c07c9dp-37);  // -1/14!
  pc = add(mul(pc, z), 0x1.1eed8eff8d898p-29);   //  1/12!
  pc = add(mul(pc, z), -0x1.27e4fb7789f5cp-22);  // -1/10!
  pc = add(mul(pc, z), 0x1.a01a01a01a01ap-16);   //  1/8!
  pc = add(mul(pc, z), -0x1.6c16c16c16c17p-10);  // -1/6!
  pc = add(mul(pc, z), 0x1.5555555555555p-5);    //  1/4!
  // 1 - a^2/2 loses up to 0.3 of its magnitude; recover the rounding error of w exactly.
  double w = sub(1.0, hz);
  double wErr = sub(sub(1.0, w), hz);
  double tail = sub(mul(mul(z, z), pc), mul(e, a));  // cos(a + e) = cos a - e sin a
  double cosA = add(w, add(tail, wErr));

  switch (q & 3) {
    case 0: sinOut = sinA; cosOut = cosA; break;
    case 1: sinOut = cosA; cosOut = -sinA; break;
    case 2: sinOut = -sinA; cosOut = -cosA; break;
    default: sinOut = -cosA; cosOut = sinA; break;
  }
}

// Contract item 4 for one lane pair: (r cos, r sin) from (u_radius, u_angle), u_radius in (0, 1).
ND_HD void boxMuller(double uRadius, double uAngle, double& z0, double& z1) {
  using philox_detail::mul, philox_detail::sqrtRn;
  double r = sqrtRn(mul(-2.0, logPositive(uRadius)));
  double s, c;
  sinCos2Pi(uAngle, s, c);
  z0 = mul(r, c);
  z1 = mul(r, s);
}

// The four normals of one block. `lanes` (1..4) is how many are needed: the second pair is only
// computed when lane 2 or 3 is used, which changes nothing about the values.
ND_HD void normalsFromBlock(const Philox4x32& w, double z[4], int lanes = 4) {
  boxMuller(uniformFromBits(w.v[0]), uniformFromBits(w.v[1]), z[0], z[1]);
  if (lanes > 2) boxMuller(uniformFromBits(w.v[2]), uniformFromBits(w.v[3]), z[2], z[3]);
}

// Contract item 5. dtype must be F32, F64, F16 or BF16 (checked by the callers).
ND_HD void storeRandom(void* out, DType dtype, int64_t i, double v) {
  switch (dtype) {
    case DType::F64: static_cast<double*>(out)[i] = v; break;
    case DType::F32: static_cast<float*>(out)[i] = float(v); break;
    case DType::F16: static_cast<uint16_t*>(out)[i] = floatToHalf(float(v)); break;
    case DType::BF16: static_cast<uint16_t*>(out)[i] = floatToBf16(float(v)); break;
    default: break;
  }
}

}  // namespace nd
