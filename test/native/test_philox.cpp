// Philox4x32-10, our log / sincos, the normal transform and randnCpu / randUniformCpu: the contract
// of core/philox.h pinned down so that the CUDA kernels (gputest_randn.cu) can be held to it.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "check.h"
#include "core/cpu_features.h"
#include "core/half.h"
#include "core/philox.h"
#include "core/thread_pool.h"
#include "kernels/cpu/randn.h"

using namespace nd;

namespace {

// Test-side point generator (not part of any contract).
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t bitsOf(double d) { uint64_t u; std::memcpy(&u, &d, 8); return u; }

// |got - ref| in units of the last place of ref rounded to double.
double ulpError(double got, long double ref) {
  double r = double(ref);
  double a = std::fabs(r);
  double ulp = a == 0 ? std::numeric_limits<double>::denorm_min() : std::nextafter(a, INFINITY) - a;
  return double(std::fabs((long double)got - ref) / (long double)ulp);
}

// Uniform-grid words covering both ends and the bulk: the inputs the RNG actually produces.
std::vector<uint32_t> testWords() {
  std::vector<uint32_t> w;
  for (uint32_t k = 0; k < 40000; ++k) {
    w.push_back(k);
    w.push_back(0xffffffffu - k);
  }
  // Around the binade edges and sqrt2/2 (where the log reduction switches) and the octants.
  const double edges[] = {0.125, 0.25, 0.375, 0.5, 0.625, 0.70710678118654752, 0.75, 0.875};
  for (int k = 1; k < 32; ++k)
    for (int d = -40; d <= 40; ++d) w.push_back(uint32_t((1ull << k) + d));
  for (double e : edges)
    for (int d = -200; d <= 200; ++d) w.push_back(uint32_t(int64_t(e * 4294967296.0) + d));
  uint64_t st = 7;
  for (int k = 0; k < 200000; ++k) w.push_back(uint32_t(splitmix64(st)));
  return w;
}

double phi(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

// One-sample Kolmogorov-Smirnov statistic against the standard normal CDF (sorts a copy).
double ksNormal(std::vector<double> x) {
  std::sort(x.begin(), x.end());
  const double n = double(x.size());
  double d = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    double f = phi(x[i]);
    d = std::max(d, std::max(double(i + 1) / n - f, f - double(i) / n));
  }
  return d;
}

// Asymptotic critical value sqrt(-ln(alpha/2) / 2) / sqrt(n) at alpha = 0.001.
double ksCritical(size_t n) { return std::sqrt(-0.5 * std::log(0.0005)) / std::sqrt(double(n)); }

// Pearson correlation of f(x[i]) and f(x[i + lag]).
template <typename F>
double lagCorrelation(const std::vector<double>& x, size_t lag, F f) {
  double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  const size_t n = x.size() - lag;
  for (size_t i = 0; i < n; ++i) {
    double a = f(x[i]), b = f(x[i + lag]);
    sa += a; sb += b; saa += a * a; sbb += b * b; sab += a * b;
  }
  double ma = sa / n, mb = sb / n;
  return (sab / n - ma * mb) / std::sqrt((saa / n - ma * ma) * (sbb / n - mb * mb));
}

std::vector<double> normalsF64(uint64_t seed, uint64_t stream, int64_t n) {
  std::vector<double> v(static_cast<size_t>(n));
  randnCpu(v.data(), DType::F64, 1, n, &seed, stream, nullptr);
  return v;
}

constexpr size_t kStatN = 1000000;
constexpr double kPi = 3.141592653589793238462643383279502884;
constexpr long double kPiL = 3.141592653589793238462643383279502884L;

}  // namespace

ND_TEST(philox_known_answers) {
  // Random123 tests/kat_vectors, the three "philox4x32 10" lines: counter[4], key[2] -> out[4].
  struct Kat { Philox4x32 ctr; PhiloxKey key; uint32_t out[4]; };
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, {{0, 0}}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, {{0xffffffff, 0xffffffff}},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, {{0xa4093822, 0x299f31d0}},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) {
    Philox4x32 r = philox4x32_10(k.ctr, k.key);
    for (int i = 0; i < 4; ++i) CHECK(r.v[i] == k.out[i]);
  }
}

ND_TEST(philox_block_addressing) {
  // Contract item 2, including the high halves that no test-sized tensor reaches.
  const uint64_t seed = 0x0123456789abcdefull, stream = 0xfedcba9876543210ull;
  const uint64_t block = 0x0000000500000007ull;
  Philox4x32 a = philoxBlock(seed, stream, block);
  Philox4x32 b = philox4x32_10(Philox4x32{{7u, 5u, 0x76543210u, 0xfedcba98u}},
                               PhiloxKey{{0x89abcdefu, 0x01234567u}});
  for (int i = 0; i < 4; ++i) CHECK(a.v[i] == b.v[i]);
}

ND_TEST(uniform_is_open_interval_and_exact) {
  CHECK(uniformFromBits(0) == 0x1p-33);
  CHECK(uniformFromBits(0xffffffffu) == 1.0 - 0x1p-33);
  CHECK(uniformFromBits(0x80000000u) == 0.5 + 0x1p-33);
}

ND_TEST(log_accuracy) {
  static_assert(LDBL_MANT_DIG >= 64, "the reference needs extended long double");
  double maxRef = 0, maxStd = 0;
  size_t count = 0;
  auto probe = [&](double u) {
    double got = logPositive(u);
    maxRef = std::max(maxRef, ulpError(got, std::log((long double)u)));
    maxStd = std::max(maxStd, ulpError(got, (long double)std::log(u)));
    ++count;
  };
  for (uint32_t x : testWords()) probe(uniformFromBits(x));
  // Beyond the RNG's grid: full-precision mantissas over the whole exponent range, subnormals.
  uint64_t st = 11;
  for (int k = 0; k < 100000; ++k) {
    uint64_t r = splitmix64(st);
    double u = std::ldexp(1.0 + double(r >> 12) * 0x1p-52, int(r % 2000) - 1000);
    probe(u);
  }
  const double odd[] = {DBL_MIN, DBL_MAX, 5e-324, 1e-310, 1.0, 2.0, 0.5, std::nextafter(1.0, 0.0),
                        std::nextafter(1.0, 2.0), 0x1.6a09e667f3bcdp+0, 0x1.6a09e667f3bcep+0};
  for (double u : odd) probe(u);
  std::printf("  log: %zu points, max error %.3f ulp (exact ref), %.3f ulp (vs std::log)\n", count,
              maxRef, maxStd);
  CHECK(maxRef < 1.0);
  CHECK(maxStd < 2.0);
  CHECK(logPositive(1.0) == 0.0);
  CHECK(std::isinf(logPositive(0.0)) && logPositive(0.0) < 0);
  CHECK(std::isinf(logPositive(-0.0)) && logPositive(-0.0) < 0);
  CHECK(std::isnan(logPositive(-1.0)));
  CHECK(std::isnan(logPositive(NAN)));
  CHECK(logPositive(INFINITY) == INFINITY);
}

ND_TEST(sincos_accuracy) {
  // The reference reduces exactly the same way mathematically (4u = q + t, both exact) and then
  // evaluates in extended precision: sin(2 pi u) itself is too ill-conditioned near multiples of
  // pi to compute from a rounded 2 pi u.
  const long double pio2 = 1.5707963267948966192313216916397514L;
  double maxErr = 0, maxStdErr = 0;
  size_t count = 0;
  auto probe = [&](double u) {
    double x = 4.0 * u, q = std::nearbyint(x), t = x - q;  // ties irrelevant: either is exact
    long double a = (long double)t * pio2, s = std::sin(a), c = std::cos(a);
    long double rs, rc;
    switch (int(q) & 3) {
      case 0: rs = s; rc = c; break;
      case 1: rs = c; rc = -s; break;
      case 2: rs = -s; rc = -c; break;
      default: rs = -c; rc = s; break;
    }
    double gs, gc;
    sinCos2Pi(u, gs, gc);
    maxErr = std::max({maxErr, ulpError(gs, rs), ulpError(gc, rc)});
    // Against plain std::sin / std::cos of the unreduced angle, where that is well conditioned
    // (in long double: the rounding of 2 pi u in double alone would cost several ulp).
    long double ang = 2 * kPiL * (long double)u, ss = std::sin(ang), cc = std::cos(ang);
    if (std::fabs(ss) > 0.25L && std::fabs(cc) > 0.25L)
      maxStdErr = std::max({maxStdErr, ulpError(gs, ss), ulpError(gc, cc)});
    ++count;
  };
  for (uint32_t x : testWords()) probe(uniformFromBits(x));
  uint64_t st = 13;
  for (int k = 0; k < 100000; ++k) probe(double(splitmix64(st) >> 11) * 0x1p-53);  // 53-bit u
  const double odd[] = {0.0, 1.0, 0.25, 0.5, 0.75, 0.125, 0.375, 1e-300, 5e-324};
  for (double u : odd) probe(u);
  std::printf("  sincos: %zu points, max error %.3f ulp (exact ref), %.3f ulp (vs std, |sin|,|cos|>1/4)\n",
              count, maxErr, maxStdErr);
  CHECK(maxErr < 1.0);
  CHECK(maxStdErr < 2.0);
}

ND_TEST(normal_mapping_contract) {
  // Element j of a sample = z_lane of block j / 4, built by hand from the primitives.
  const uint64_t seed = 0x0123456789abcdefull, stream = 0xfedcba9876543210ull;
  std::vector<double> v = normalsF64(seed, stream, 11);
  std::vector<double> u(11);
  randUniformCpu(u.data(), DType::F64, 1, 11, &seed, stream, nullptr);
  for (int j = 0; j < 11; ++j) {
    Philox4x32 w = philox4x32_10(Philox4x32{{uint32_t(j / 4), 0u, 0x76543210u, 0xfedcba98u}},
                                 PhiloxKey{{0x89abcdefu, 0x01234567u}});
    double z[4];
    boxMuller(uniformFromBits(w.v[0]), uniformFromBits(w.v[1]), z[0], z[1]);
    boxMuller(uniformFromBits(w.v[2]), uniformFromBits(w.v[3]), z[2], z[3]);
    CHECK(bitsOf(v[j]) == bitsOf(z[j % 4]));
    CHECK(bitsOf(u[j]) == bitsOf(uniformFromBits(w.v[j % 4])));
  }
}

ND_TEST(golden_values) {
  // Pins the contract end to end: a change here changes every seeded image ever produced.
  std::vector<double> v = normalsF64(42, 0, 6);
  // (Cross-checked against a 200-bit mpmath evaluation of the same formula: every value is within
  // 1 ulp of the exactly rounded result, as the three roundings of r, cos/sin and r*cos allow.)
  const uint64_t want[6] = {0xbfef0bcb75618958ull, 0x3fc8d59cf6099693ull, 0xbff3c51a41acf63cull,
                            0x3ffec8676a61759full, 0xbfb2bc05f972144aull, 0x3fc1cf41ea22a41dull};
  for (int j = 0; j < 6; ++j) {
    if (bitsOf(v[j]) != want[j]) std::fprintf(stderr, "  z[%d] = %.17g = 0x%016llx\n", j, v[j],
                                              (unsigned long long)bitsOf(v[j]));
    CHECK(bitsOf(v[j]) == want[j]);
  }
}

ND_TEST(golden_digest) {
  // A digest of many values: catches what six values can miss, e.g. host code built with fma
  // contraction (-ffp-contract=fast with -mfma changes a fraction of the last bits).
  std::vector<double> v = normalsF64(42, 0, 1 << 16);
  std::vector<double> u(1 << 16);
  const uint64_t seed = 42;
  randUniformCpu(u.data(), DType::F64, 1, 1 << 16, &seed, 0, nullptr);
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a over the bit patterns
  for (double d : v) h = (h ^ bitsOf(d)) * 0x100000001b3ull;
  uint64_t hu = 0xcbf29ce484222325ull;
  for (double d : u) hu = (hu ^ bitsOf(d)) * 0x100000001b3ull;
  std::printf("  digest normals 0x%016llx uniforms 0x%016llx\n", (unsigned long long)h,
              (unsigned long long)hu);
  CHECK(h == 0x9bf082bc542f3e64ull);
  CHECK(hu == 0x79c3743711c62325ull);
}

ND_TEST(normal_statistics) {
  std::vector<double> x = normalsF64(12345, 0, int64_t(kStatN));
  double mean = 0, var = 0, maxAbs = 0;
  for (double v : x) { mean += v; maxAbs = std::max(maxAbs, std::fabs(v)); }
  mean /= double(kStatN);
  for (double v : x) var += (v - mean) * (v - mean);
  var /= double(kStatN - 1);
  const double n = double(kStatN);
  CHECK(std::fabs(mean) < 5 / std::sqrt(n));
  CHECK(std::fabs(var - 1) < 5 * std::sqrt(2 / n));
  CHECK(maxAbs <= std::sqrt(-2 * std::log(0x1p-33)) + 1e-12);  // the largest r the grid allows

  const double d = ksNormal(x), crit = ksCritical(kStatN);
  std::printf("  n=%zu mean=%.5f var=%.5f KS D=%.6f (critical %.6f at alpha=0.001)\n", kStatN, mean,
              var, d, crit);
  CHECK(d < crit);
  // Each lane on its own (a lane with a wrong formula would hide in the pooled sample).
  for (int lane = 0; lane < 4; ++lane) {
    std::vector<double> sub;
    for (size_t i = size_t(lane); i < kStatN; i += 4) sub.push_back(x[i]);
    CHECK(ksNormal(sub) < ksCritical(sub.size()));
  }
  // Neighbours, and the two halves of a Box-Muller pair, must be independent: linear and
  // squared correlations (the squares catch a shared radius) within 5 sigma.
  const double tol = 5 / std::sqrt(n);
  for (size_t lag : {1, 2, 3, 4}) {
    CHECK(std::fabs(lagCorrelation(x, lag, [](double v) { return v; })) < tol);
    CHECK(std::fabs(lagCorrelation(x, lag, [](double v) { return v * v; })) < tol);
  }
}

ND_TEST(statistics_detect_broken_transforms) {
  // The same checks reject plausible bugs, so a pass above means something.
  const double crit = ksCritical(kStatN), tol = 5 / std::sqrt(double(kStatN));
  std::vector<double> forgotTwo(kStatN), halfAngle(kStatN), droppedLane(kStatN);
  const uint64_t seed = 12345;
  for (size_t b = 0; b < kStatN / 4; ++b) {
    Philox4x32 w = philoxBlock(seed, 0, b);
    double u[4];
    for (int l = 0; l < 4; ++l) u[l] = uniformFromBits(w.v[l]);
    for (int p = 0; p < 2; ++p) {
      double r = std::sqrt(-2 * std::log(u[2 * p])), a = 2 * kPi * u[2 * p + 1];
      double r1 = std::sqrt(-std::log(u[2 * p]));  // missing factor 2
      forgotTwo[4 * b + 2 * p] = r1 * std::cos(a);
      forgotTwo[4 * b + 2 * p + 1] = r1 * std::sin(a);
      halfAngle[4 * b + 2 * p] = r * std::cos(a / 2);  // angle over [0, pi) only
      halfAngle[4 * b + 2 * p + 1] = r * std::sin(a / 2);
      droppedLane[4 * b + 2 * p] = r * std::cos(a);  // the sine lane dropped, cosine reused
      droppedLane[4 * b + 2 * p + 1] = r * std::cos(a);
    }
  }
  const double dTwo = ksNormal(forgotTwo), dHalf = ksNormal(halfAngle);
  const double cDrop = lagCorrelation(droppedLane, 1, [](double v) { return v; });
  std::printf("  controls: KS D %.4f (no factor 2), %.4f (half angle); lag-1 corr %.3f (lane dropped)\n",
              dTwo, dHalf, cDrop);
  CHECK(dTwo > crit);
  CHECK(dHalf > crit);
  CHECK(std::fabs(cDrop) > tol);
}

ND_TEST(batch_composition_independence) {
  const uint64_t seeds[3] = {1, 0xdeadbeefcafef00dull, 7};
  const int64_t per = 1001;  // not a multiple of 4
  for (DType t : {DType::F64, DType::F32, DType::F16, DType::BF16}) {
    const size_t es = dtypeSize(t);
    std::vector<uint8_t> all(size_t(3 * per) * es), one(size_t(per) * es);
    for (int uniform = 0; uniform < 2; ++uniform) {
      auto gen = uniform ? randUniformCpu : randnCpu;
      gen(all.data(), t, 3, per, seeds, 0, nullptr);
      for (int i = 0; i < 3; ++i) {
        gen(one.data(), t, 1, per, &seeds[i], 0, nullptr);
        CHECK(std::memcmp(one.data(), all.data() + size_t(i * per) * es, one.size()) == 0);
      }
      // A shorter sample is a prefix of a longer one.
      gen(one.data(), t, 1, 6, &seeds[1], 0, nullptr);
      CHECK(std::memcmp(one.data(), all.data() + size_t(per) * es, 6 * es) == 0);
    }
  }
}

ND_TEST(narrow_dtypes_round_the_double) {
  const uint64_t seeds[2] = {99, 100};
  const int64_t per = 4099, n = 2 * per;
  for (int uniform = 0; uniform < 2; ++uniform) {
    auto gen = uniform ? randUniformCpu : randnCpu;
    std::vector<double> d(n);
    std::vector<float> f(n);
    std::vector<uint16_t> h(n), b(n);
    gen(d.data(), DType::F64, 2, per, seeds, 3, nullptr);
    gen(f.data(), DType::F32, 2, per, seeds, 3, nullptr);
    gen(h.data(), DType::F16, 2, per, seeds, 3, nullptr);
    gen(b.data(), DType::BF16, 2, per, seeds, 3, nullptr);
    int bad = 0;
    for (int64_t i = 0; i < n; ++i) {
      float fd = float(d[i]);
      bad += std::memcmp(&fd, &f[i], 4) != 0;
      bad += h[i] != floatToHalf(f[i]);
      bad += b[i] != floatToBf16(f[i]);
      if (uniform) bad += !(d[i] > 0 && d[i] < 1);
    }
    CHECK(bad == 0);
  }
}

ND_TEST(streams_and_seeds_differ_and_reproduce) {
  const int64_t n = 4096;
  std::vector<double> a = normalsF64(5, 0, n), a2 = normalsF64(5, 0, n);
  std::vector<double> s1 = normalsF64(5, 1, n), s2 = normalsF64(6, 0, n);
  std::vector<double> hi = normalsF64(5, uint64_t(1) << 32, n);
  CHECK(std::memcmp(a.data(), a2.data(), n * 8) == 0);
  int same1 = 0, same2 = 0, sameHi = 0;
  for (int64_t i = 0; i < n; ++i) {
    same1 += a[i] == s1[i];
    same2 += a[i] == s2[i];
    sameHi += a[i] == hi[i];
  }
  CHECK(same1 == 0 && same2 == 0 && sameHi == 0);
}

ND_TEST(pool_matches_serial) {
  ThreadPool pool(4);
  const uint64_t seeds[3] = {3, 1ull << 40, 0xffffffffffffffffull};
  const int64_t per = 100003;
  for (DType t : {DType::F64, DType::F32, DType::F16, DType::BF16}) {
    const size_t bytes = size_t(3 * per) * dtypeSize(t);
    std::vector<uint8_t> serial(bytes), parallel(bytes);
    randnCpu(serial.data(), t, 3, per, seeds, 0, nullptr);
    randnCpu(parallel.data(), t, 3, per, seeds, 0, &pool);
    CHECK(std::memcmp(serial.data(), parallel.data(), bytes) == 0);
    randUniformCpu(serial.data(), t, 3, per, seeds, 9, nullptr);
    randUniformCpu(parallel.data(), t, 3, per, seeds, 9, &pool);
    CHECK(std::memcmp(serial.data(), parallel.data(), bytes) == 0);
  }
}

ND_TEST(avx2_normals_are_bit_identical_to_the_scalar_path) {
  if (!isaSupported(CpuIsa::Avx2)) {
    std::printf("  (no AVX2 on this CPU: nothing to compare)\n");
    return;
  }
  ThreadPool pool(3);
  const CpuIsa before = activeIsa();
  // Odd sample sizes put partial blocks and odd block counts everywhere; the pool splits inside samples.
  for (int64_t per : {int64_t(1), int64_t(3), int64_t(5), int64_t(7), int64_t(8), int64_t(9), int64_t(12), int64_t(100003)}) {
    const int64_t batch = per > 100 ? 3 : 17;
    std::vector<uint64_t> seeds(static_cast<size_t>(batch));
    for (int64_t b = 0; b < batch; ++b) seeds[size_t(b)] = 0x9e3779b97f4a7c15ull * uint64_t(b + 1);
    for (DType t : {DType::F64, DType::F32, DType::F16, DType::BF16}) {
      const size_t bytes = size_t(batch * per) * dtypeSize(t);
      std::vector<uint8_t> scalar(bytes), vec(bytes), vecPool(bytes);
      setActiveIsa(CpuIsa::Baseline);
      randnCpu(scalar.data(), t, batch, per, seeds.data(), 5, nullptr);
      setActiveIsa(CpuIsa::Avx2);
      randnCpu(vec.data(), t, batch, per, seeds.data(), 5, nullptr);
      randnCpu(vecPool.data(), t, batch, per, seeds.data(), 5, &pool);
      CHECK(std::memcmp(scalar.data(), vec.data(), bytes) == 0);
      CHECK(std::memcmp(scalar.data(), vecPool.data(), bytes) == 0);
    }
  }
  setActiveIsa(before);
}

ND_TEST(argument_errors) {
  uint64_t seed = 1;
  double out[4];
  CHECK_THROWS_CODE(randnCpu(out, DType::I32, 1, 4, &seed, 0, nullptr), DType);
  CHECK_THROWS_CODE(randUniformCpu(out, DType::U8, 1, 4, &seed, 0, nullptr), DType);
  CHECK_THROWS_CODE(randnCpu(out, DType::F64, -1, 4, &seed, 0, nullptr), Arg);
  CHECK_THROWS_CODE(randnCpu(out, DType::F64, 1, -4, &seed, 0, nullptr), Arg);
  CHECK_THROWS_CODE(randnCpu(out, DType::F64, 1, 4, nullptr, 0, nullptr), Arg);
  CHECK_THROWS_CODE(randnCpu(nullptr, DType::F64, 1, 4, &seed, 0, nullptr), Arg);
  CHECK_THROWS_CODE(randnCpu(out, DType::F64, INT64_MAX / 2, 4, &seed, 0, nullptr), Arg);
  randnCpu(nullptr, DType::F64, 0, 4, nullptr, 0, nullptr);  // empty: nothing to touch
  randnCpu(nullptr, DType::F32, 3, 0, nullptr, 0, nullptr);
}

ND_TEST_MAIN()
