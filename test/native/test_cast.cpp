// castCpu: exhaustive 16-bit round trips, >= 10^6 random values against an independent reference,
// baseline vs AVX2 bit equality, a hand-checked table over all 64 dtype pairs, pool vs no pool.
#include <cfenv>
#include <cfloat>
#include <cinttypes>
#include <climits>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "check.h"
#include "core/cpu_features.h"
#include "core/dtype.h"
#include "core/half.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cast.h"

using nd::CpuIsa;
using nd::DType;

namespace {

template <typename To, typename From>
To bitsOf(From v) {
  static_assert(sizeof(To) == sizeof(From));
  To t;
  std::memcpy(&t, &v, sizeof t);
  return t;
}

// ---- independent reference: rounding written from the definition, in long double ---------------
// x87 long double has a 64-bit significand, so every f32, f64 and i64 is exact in it and a / quantum
// below is an exact power-of-two scaling; nearbyintl then does round-half-even once.
static_assert(LDBL_MANT_DIG >= 64, "the reference needs an exact long double for int64 inputs");

struct Format { int mant, ebits, bias, expField; };  // stored mantissa bits, exponent bits, bias, all-ones field
constexpr Format kF16{10, 5, 15, 31}, kBf16{7, 8, 127, 255}, kF32{23, 8, 127, 255}, kF64{52, 11, 1023, 2047};

uint64_t refRound(long double x, Format f) {
  uint64_t sign = std::signbit(x) ? uint64_t(1) << (f.mant + f.ebits) : 0;
  uint64_t inf = sign | uint64_t(f.expField) << f.mant;
  long double a = std::fabs(x);
  if (std::isinf(a)) return inf;
  if (a == 0) return sign;
  int e;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  int E = std::max(e - 1, 1 - f.bias);  // below the normal range the quantum stays fixed
  long double q = std::nearbyintl(std::ldexp(a, f.mant - E));  // a / 2^(E - mant), then RNE
  if (q >= std::ldexp(1.0L, f.mant + 1)) {  // rounded up to the next binade
    q /= 2;
    ++E;
  }
  if (q < std::ldexp(1.0L, f.mant)) return sign | uint64_t(q);  // subnormal (or 0)
  int field = E + f.bias;
  if (field >= f.expField) return inf;
  return sign | uint64_t(field) << f.mant | (uint64_t(q) - (uint64_t(1) << f.mant));
}

// NaN rule from the IEEE conversion spec: same sign, quiet bit set, top payload bits kept.
uint16_t refNanF32To16(uint32_t u, int mant) {
  uint32_t sign = (u >> 16) & 0x8000u, top = (u & 0x7fffffu) >> (23 - mant);
  uint32_t inf = mant == 10 ? 0x7c00u : 0x7f80u;
  return uint16_t(sign | inf | (1u << (mant - 1)) | top);
}

uint16_t refToHalf(float f) {
  uint32_t u = bitsOf<uint32_t>(f);
  return std::isnan(f) ? refNanF32To16(u, 10) : uint16_t(refRound(f, kF16));
}
uint16_t refToBf16(float f) {
  uint32_t u = bitsOf<uint32_t>(f);
  return std::isnan(f) ? refNanF32To16(u, 7) : uint16_t(refRound(f, kBf16));
}

template <typename D, typename S>
std::vector<D> castVec(const std::vector<S>& src, DType st, DType dt, nd::ThreadPool* pool = nullptr) {
  std::vector<D> out(src.size());
  nd::castCpu(src.data(), st, out.data(), dt, int64_t(src.size()), pool);
  return out;
}

std::vector<CpuIsa> isasToTest() {
  std::vector<CpuIsa> isas{CpuIsa::Baseline};
  if (nd::isaSupported(CpuIsa::Avx2)) isas.push_back(CpuIsa::Avx2);
  return isas;
}

// Restores the process-wide ISA choice when a test returns.
struct IsaGuard {
  CpuIsa saved = nd::activeIsa();
  ~IsaGuard() { nd::setActiveIsa(saved); }
};

std::vector<float> trickyFloats() {
  std::mt19937_64 rng(0x5eed0001);
  std::vector<float> v;
  auto push = [&](float f) { v.push_back(f); };
  for (int i = 0; i < 400000; ++i) push(bitsOf<float>(uint32_t(rng())));  // all classes, NaN payloads
  std::uniform_real_distribution<double> logMag(-27.0, 17.0);
  for (int i = 0; i < 250000; ++i) {  // spread over (and just beyond) the f16 range
    float f = float(std::exp2(logMag(rng)));
    push(rng() & 1 ? -f : f);
  }
  for (int i = 0; i < 250000; ++i) {  // f16 halfway points, exactly and one f32 ulp either side
    uint16_t h = uint16_t(rng() % 0x7bffu);
    float lo = nd::halfToFloat(h), hi = nd::halfToFloat(uint16_t(h + 1));
    float mid = lo + (hi - lo) / 2;  // exact: f16 needs 11 bits, the midpoint 12
    int d = int(rng() % 3) - 1;
    float f = d == 0 ? mid : std::nextafter(mid, d < 0 ? 0.0f : INFINITY);
    push(rng() & 1 ? -f : f);
  }
  for (int i = 0; i < 150000; ++i) {  // bf16 ties (low 16 bits exactly 0x8000) and neighbours
    uint32_t u = (uint32_t(rng()) & 0xffff0000u) | 0x8000u;
    u += uint32_t(int(rng() % 3) - 1);
    push(bitsOf<float>(u));
  }
  const float anchors[] = {0x1p-24f, 0x1p-25f, 0x1.8p-25f, 0x1p-14f, 0x1.ff8p-15f, 65504.0f, 65520.0f,
                           65519.996f, 0x1p-126f, 0x1p-149f, FLT_MAX, 0x1.fffep+127f, 0.0f, 1.0f};
  for (float a : anchors)
    for (int k = -64; k <= 64; ++k) {
      float f = a;
      for (int j = 0; j < std::abs(k); ++j) f = std::nextafter(f, k < 0 ? 0.0f : INFINITY);
      push(f);
      push(-f);
    }
  return v;
}

}  // namespace

ND_TEST(cpu_features_consistent) {
  const nd::CpuFeatures& f = nd::cpuFeatures();
  std::printf("  cpu: %s / %s; avx2=%d fma=%d f16c=%d osAvx=%d avx512f=%d bf16=%d; active isa %s\n",
              f.vendor.c_str(), f.brand.c_str(), f.avx2, f.fma, f.f16c, f.osAvx, f.avx512f,
              f.avx512bf16, nd::isaName(nd::activeIsa()));
  CHECK(&f == &nd::cpuFeatures());
  if (f.avx2) CHECK(f.avx);
  if (f.osAvx512) CHECK(f.osAvx);
  CHECK(nd::isaSupported(nd::activeIsa()));
  CHECK(std::strcmp(nd::isaName(CpuIsa::Baseline), "baseline") == 0);
  CHECK(std::strcmp(nd::isaName(CpuIsa::Avx2), "avx2") == 0);
  IsaGuard guard;
  nd::setActiveIsa(CpuIsa::Baseline);
  CHECK(nd::activeIsa() == CpuIsa::Baseline);
  if (nd::isaSupported(CpuIsa::Avx2)) {
    nd::setActiveIsa(CpuIsa::Avx2);
    CHECK(nd::activeIsa() == CpuIsa::Avx2);
  } else {
    CHECK_THROWS_CODE(nd::setActiveIsa(CpuIsa::Avx2), Device);
    std::printf("  no AVX2/FMA/F16C here: AVX2 halves of these tests are skipped\n");
  }
}

ND_TEST(f16_all_patterns_round_trip) {
  IsaGuard guard;
  std::vector<uint16_t> all(65536);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = uint16_t(i);
  for (CpuIsa isa : isasToTest()) {
    nd::setActiveIsa(isa);
    auto f = castVec<float>(all, DType::F16, DType::F32);
    auto back = castVec<uint16_t>(f, DType::F32, DType::F16);
    auto d = castVec<double>(all, DType::F16, DType::F64);
    auto back64 = castVec<uint16_t>(d, DType::F64, DType::F16);
    int bad = 0;
    for (uint32_t i = 0; i < 65536; ++i) {
      bool nan = (i & 0x7c00u) == 0x7c00u && (i & 0x3ffu);
      uint16_t want = nan ? uint16_t(i | 0x200u) : uint16_t(i);  // NaNs come back quiet, same payload
      if (back[i] != want || back64[i] != want || bitsOf<uint32_t>(f[i]) != bitsOf<uint32_t>(float(d[i])))
        ++bad;
      if (nan && !(std::isnan(f[i]) && (bitsOf<uint32_t>(f[i]) & 0x400000u))) ++bad;
      if (!nan && f[i] != f[i]) ++bad;
    }
    if (bad) std::fprintf(stderr, "  [%s] %d f16 patterns did not round-trip\n", nd::isaName(isa), bad);
    CHECK(bad == 0);
  }
}

ND_TEST(bf16_all_patterns_round_trip) {
  IsaGuard guard;
  std::vector<uint16_t> all(65536);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = uint16_t(i);
  for (CpuIsa isa : isasToTest()) {
    nd::setActiveIsa(isa);
    auto f = castVec<float>(all, DType::BF16, DType::F32);
    auto back = castVec<uint16_t>(f, DType::F32, DType::BF16);
    auto back64 = castVec<uint16_t>(castVec<double>(all, DType::BF16, DType::F64), DType::F64, DType::BF16);
    int bad = 0;
    for (uint32_t i = 0; i < 65536; ++i) {
      bool nan = (i & 0x7f80u) == 0x7f80u && (i & 0x7fu);
      uint32_t fb = bitsOf<uint32_t>(f[i]);
      uint32_t wantF = nan ? (i << 16) | 0x400000u : i << 16;  // widening is exact, NaN quieted
      uint16_t want = nan ? uint16_t(i | 0x40u) : uint16_t(i);
      if (fb != wantF || back[i] != want || back64[i] != want) ++bad;
    }
    if (bad) std::fprintf(stderr, "  [%s] %d bf16 patterns did not round-trip\n", nd::isaName(isa), bad);
    CHECK(bad == 0);
  }
}

ND_TEST(f16_and_bf16_cross_casts_exhaustive) {
  // f16 <-> bf16 must equal going through f32 by hand (exact widening, one rounding).
  IsaGuard guard;
  std::vector<uint16_t> all(65536);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = uint16_t(i);
  for (CpuIsa isa : isasToTest()) {
    nd::setActiveIsa(isa);
    auto hb = castVec<uint16_t>(all, DType::F16, DType::BF16);
    auto bh = castVec<uint16_t>(all, DType::BF16, DType::F16);
    int bad = 0;
    for (uint32_t i = 0; i < 65536; ++i) {
      if (hb[i] != refToBf16(nd::halfToFloat(uint16_t(i)))) ++bad;
      if (bh[i] != refToHalf(nd::bf16ToFloat(uint16_t(i)))) ++bad;
    }
    CHECK(bad == 0);
  }
}

ND_TEST(random_f32_to_f16_bf16_match_reference) {
  std::fesetround(FE_TONEAREST);
  IsaGuard guard;
  std::vector<float> in = trickyFloats();
  CHECK(in.size() >= 1000000);
  for (CpuIsa isa : isasToTest()) {
    nd::setActiveIsa(isa);
    auto h = castVec<uint16_t>(in, DType::F32, DType::F16);
    auto b = castVec<uint16_t>(in, DType::F32, DType::BF16);
    int64_t badH = 0, badB = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      uint16_t rh = refToHalf(in[i]), rb = refToBf16(in[i]);
      if (h[i] != rh && badH++ < 5)
        std::fprintf(stderr, "  [%s] f16(%a [%08x]) = %04x, reference %04x\n", nd::isaName(isa),
                     double(in[i]), bitsOf<uint32_t>(in[i]), h[i], rh);
      if (b[i] != rb && badB++ < 5)
        std::fprintf(stderr, "  [%s] bf16(%a [%08x]) = %04x, reference %04x\n", nd::isaName(isa),
                     double(in[i]), bitsOf<uint32_t>(in[i]), b[i], rb);
    }
    CHECK(badH == 0);
    CHECK(badB == 0);
  }
}

ND_TEST(f64_rounds_once_to_f16_bf16_f32) {
  std::fesetround(FE_TONEAREST);
  std::mt19937_64 rng(0x5eed0002);
  std::vector<double> in;
  for (int i = 0; i < 300000; ++i) {
    double d = bitsOf<double>(uint64_t(rng()));
    if (!std::isnan(d)) in.push_back(d);
  }
  // Just off a halfway point by far less than an f32 ulp: f64 -> f32 -> f16 would round twice.
  for (int i = 0; i < 200000; ++i) {
    uint16_t h = uint16_t(rng() % 0x7bffu);
    double mid = (double(nd::halfToFloat(h)) + double(nd::halfToFloat(uint16_t(h + 1)))) / 2;
    double off = std::ldexp(double(int(rng() % 2001) - 1000), std::ilogb(mid) - 40);
    in.push_back((rng() & 1 ? 1 : -1) * (mid + off));
  }
  for (int i = 0; i < 200000; ++i) {  // same for bf16 ties
    float lo = bitsOf<float>(uint32_t(rng()) & 0xffff0000u);
    if (!std::isnormal(lo) || std::fabs(lo) == 0x1.fep127f) continue;
    double mid = double(lo) + std::copysign(std::ldexp(1.0, std::ilogb(lo) - 8), double(lo));
    in.push_back(mid + std::ldexp(double(int(rng() % 2001) - 1000), std::ilogb(lo) - 45));
  }
  auto h = castVec<uint16_t>(in, DType::F64, DType::F16);
  auto b = castVec<uint16_t>(in, DType::F64, DType::BF16);
  auto f = castVec<float>(in, DType::F64, DType::F32);
  int64_t bad = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    uint16_t rh = uint16_t(refRound(in[i], kF16)), rb = uint16_t(refRound(in[i], kBf16));
    uint32_t rf = uint32_t(refRound(in[i], kF32));
    bool ok = h[i] == rh && b[i] == rb && bitsOf<uint32_t>(f[i]) == rf;
    if (!ok && bad++ < 5)
      std::fprintf(stderr, "  f64 %a: f16 %04x/%04x bf16 %04x/%04x f32 %08x/%08x\n", in[i], h[i], rh,
                   b[i], rb, bitsOf<uint32_t>(f[i]), rf);
  }
  CHECK(bad == 0);
  // The scalar entry points agree with castCpu (f32 inputs: doubleToHalf == floatToHalf).
  for (float x : trickyFloats())
    if (!std::isnan(x) && (nd::doubleToHalf(x) != nd::floatToHalf(x) || nd::doubleToBf16(x) != nd::floatToBf16(x)))
      ++bad;
  CHECK(bad == 0);
}

ND_TEST(random_i64_rounds_once) {
  std::fesetround(FE_TONEAREST);
  std::mt19937_64 rng(0x5eed0003);
  std::vector<int64_t> in;
  for (int i = 0; i < 200000; ++i) {
    int shift = 1 + int(rng() % 63);
    in.push_back(int64_t(rng() >> shift) * (rng() & 1 ? 1 : -1));
  }
  // Exact ties for 8/11/24-bit targets, optionally with a sticky bit set so low (top >= 54) that a
  // conversion through double would drop it and then round the tie to even: the wrong answer.
  for (int i = 0; i < 150000; ++i) {
    const int bits[] = {8, 11, 24};
    int p = bits[rng() % 3], top = 24 + int(rng() % 39);
    uint64_t v = (uint64_t(1) << top) | ((rng() & ((uint64_t(1) << (p - 1)) - 1)) << (top - p + 1)) |
                 (uint64_t(1) << (top - p));
    if (top >= 54 && rng() % 4) v |= (rng() & ((uint64_t(1) << (top - 53)) - 1)) | 1;
    in.push_back(rng() & 1 ? int64_t(v) : -int64_t(v));
  }
  in.push_back(INT64_MAX);
  in.push_back(INT64_MIN);
  auto h = castVec<uint16_t>(in, DType::I64, DType::F16);
  auto b = castVec<uint16_t>(in, DType::I64, DType::BF16);
  auto f = castVec<float>(in, DType::I64, DType::F32);
  auto d = castVec<double>(in, DType::I64, DType::F64);
  int64_t bad = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    long double x = (long double)in[i];
    bool ok = h[i] == refRound(x, kF16) && b[i] == refRound(x, kBf16) &&
              bitsOf<uint32_t>(f[i]) == refRound(x, kF32) && bitsOf<uint64_t>(d[i]) == refRound(x, kF64);
    if (!ok && bad++ < 5) std::fprintf(stderr, "  i64 %" PRId64 ": f16 %04x bf16 %04x\n", in[i], h[i], b[i]);
  }
  CHECK(bad == 0);
}

ND_TEST(baseline_and_avx2_bitwise_identical) {
  if (!nd::isaSupported(CpuIsa::Avx2)) {
    std::printf("  skipped: this CPU has no AVX2/FMA/F16C\n");
    return;
  }
  IsaGuard guard;
  std::vector<float> f = trickyFloats();
  for (uint64_t u = 0; u < (1ull << 32); u += 4093) f.push_back(bitsOf<float>(uint32_t(u)));
  std::vector<uint16_t> all(65536 + 29);
  for (size_t i = 0; i < all.size(); ++i) all[i] = uint16_t(i * 40503u);
  auto run = [&](CpuIsa isa) {
    nd::setActiveIsa(isa);
    std::vector<std::vector<uint8_t>> outs;
    auto keep = [&](const auto& v) {
      const uint8_t* p = reinterpret_cast<const uint8_t*>(v.data());
      outs.emplace_back(p, p + v.size() * sizeof(v[0]));
    };
    keep(castVec<uint16_t>(f, DType::F32, DType::F16));
    keep(castVec<uint16_t>(f, DType::F32, DType::BF16));
    keep(castVec<float>(all, DType::F16, DType::F32));
    keep(castVec<float>(all, DType::BF16, DType::F32));
    keep(castVec<uint16_t>(all, DType::F16, DType::BF16));
    keep(castVec<uint16_t>(all, DType::BF16, DType::F16));
    // Every short length and misaligned start, so the vector/tail split lands everywhere.
    for (int64_t off = 0; off < 3; ++off)
      for (int64_t n = 0; n <= 40; ++n) {
        std::vector<uint16_t> h(size_t(n) + 1, 0xabcd);
        std::vector<float> w(size_t(n) + 1, -1.0f);
        nd::castCpu(f.data() + 1000 + off, DType::F32, h.data() + 1, DType::F16, n, nullptr);
        nd::castCpu(all.data() + 0x7bf0 + off, DType::F16, w.data() + 1, DType::F32, n, nullptr);
        keep(h);
        keep(w);
      }
    return outs;
  };
  auto base = run(CpuIsa::Baseline);
  auto avx = run(CpuIsa::Avx2);
  CHECK(base.size() == avx.size());
  for (size_t k = 0; k < base.size() && k < avx.size(); ++k)
    if (base[k] != avx[k]) {
      std::fprintf(stderr, "  output set %zu differs between baseline and avx2\n", k);
      CHECK(base[k] == avx[k]);
    }
}

namespace {

enum : unsigned { kMF32 = 1, kMF16 = 2, kMBF16 = 4, kMF64 = 8, kMI32 = 16, kMI64 = 32, kMU8 = 64, kMBool = 128 };
// Expected result of casting the row's value to each dtype (f32/f64 as exact values).
struct Expect { double f32; uint16_t f16, bf16; double f64; int32_t i32; int64_t i64; int u8, b; };
struct FRow { const char* name; double v; unsigned mask; Expect e; };
struct IRow { const char* name; int64_t v; unsigned mask; Expect e; };

// Expected outputs derived by hand and cross-checked with exact rational arithmetic (Python
// fractions), not with this library. Masks list the source dtypes that hold the value exactly.
const FRow kFloatRows[] = {
    {"0", 0.0, kMF32 | kMF16 | kMBF16 | kMF64, {0.0, 0x0000, 0x0000, 0.0, 0, 0, 0, 0}},
    {"-0", -0.0, kMF32 | kMF16 | kMBF16 | kMF64, {-0.0, 0x8000, 0x8000, -0.0, 0, 0, 0, 0}},
    {"1.5", 1.5, kMF32 | kMF16 | kMBF16 | kMF64, {1.5, 0x3e00, 0x3fc0, 1.5, 1, 1, 1, 1}},
    {"-1.5", -1.5, kMF32 | kMF16 | kMBF16 | kMF64, {-1.5, 0xbe00, 0xbfc0, -1.5, -1, -1, 0, 1}},
    {"-0.75", -0.75, kMF32 | kMF16 | kMBF16 | kMF64, {-0.75, 0xba00, 0xbf40, -0.75, 0, 0, 0, 1}},
    {"0.5", 0.5, kMF32 | kMF16 | kMBF16 | kMF64, {0.5, 0x3800, 0x3f00, 0.5, 0, 0, 0, 1}},
    {"-0.5", -0.5, kMF32 | kMF16 | kMBF16 | kMF64, {-0.5, 0xb800, 0xbf00, -0.5, 0, 0, 0, 1}},
    {"255.5", 255.5, kMF32 | kMF16 | kMF64, {255.5, 0x5bfc, 0x4380, 255.5, 255, 255, 255, 1}},
    {"256", 256, kMF32 | kMF16 | kMBF16 | kMF64, {256, 0x5c00, 0x4380, 256, 256, 256, 255, 1}},
    {"-300", -300, kMF32 | kMF16 | kMBF16 | kMF64, {-300, 0xdcb0, 0xc396, -300, -300, -300, 0, 1}},
    {"300.75", 300.75, kMF32 | kMF16 | kMF64, {300.75, 0x5cb3, 0x4396, 300.75, 300, 300, 255, 1}},
    {"2049", 2049, kMF32 | kMF64, {2049, 0x6800, 0x4500, 2049, 2049, 2049, 255, 1}},
    {"65504", 65504, kMF32 | kMF16 | kMF64, {65504, 0x7bff, 0x4780, 65504, 65504, 65504, 255, 1}},
    {"65519", 65519, kMF32 | kMF64, {65519, 0x7bff, 0x4780, 65519, 65519, 65519, 255, 1}},
    {"65520", 65520, kMF32 | kMF64, {65520, 0x7c00, 0x4780, 65520, 65520, 65520, 255, 1}},
    {"1e10", 1e10, kMF32 | kMF64, {1e10, 0x7c00, 0x5015, 1e10, INT32_MAX, 10000000000ll, 255, 1}},
    {"-1e10", -1e10, kMF32 | kMF64, {-1e10, 0xfc00, 0xd015, -1e10, INT32_MIN, -10000000000ll, 0, 1}},
    {"2^63", 0x1p63, kMF32 | kMBF16 | kMF64, {0x1p63, 0x7c00, 0x5f00, 0x1p63, INT32_MAX, INT64_MAX, 255, 1}},
    {"-2^63", -0x1p63, kMF32 | kMBF16 | kMF64, {-0x1p63, 0xfc00, 0xdf00, -0x1p63, INT32_MIN, INT64_MIN, 0, 1}},
    {"2^63-1024", 0x1.fffffffffffffp62, kMF64,
     {0x1p63, 0x7c00, 0x5f00, 0x1.fffffffffffffp62, INT32_MAX, 9223372036854774784ll, 255, 1}},
    {"2147483647.5", 2147483647.5, kMF64, {0x1p31, 0x7c00, 0x4f00, 2147483647.5, INT32_MAX, 2147483647, 255, 1}},
    {"-2147483648.75", -2147483648.75, kMF64,
     {-0x1p31, 0xfc00, 0xcf00, -2147483648.75, INT32_MIN, -2147483648ll, 0, 1}},
    {"-2147483649", -2147483649.0, kMF64, {-0x1p31, 0xfc00, 0xcf00, -2147483649.0, INT32_MIN, -2147483649ll, 0, 1}},
    {"254.9", 254.9, kMF64, {0x1.fdccccp7, 0x5bf7, 0x437f, 254.9, 254, 254, 254, 1}},
    {"2^-24", 0x1p-24, kMF32 | kMF16 | kMBF16 | kMF64, {0x1p-24, 0x0001, 0x3380, 0x1p-24, 0, 0, 0, 1}},
    {"2^-25 (tie to 0)", 0x1p-25, kMF32 | kMBF16 | kMF64, {0x1p-25, 0x0000, 0x3300, 0x1p-25, 0, 0, 0, 1}},
    {"1.5*2^-25", 0x1.8p-25, kMF32 | kMBF16 | kMF64, {0x1.8p-25, 0x0001, 0x3340, 0x1.8p-25, 0, 0, 0, 1}},
    {"f32 subnormal", 0x1.16c2p-133, kMF32 | kMF64, {0x1.16c2p-133, 0x0000, 0x0001, 0x1.16c2p-133, 0, 0, 0, 1}},
    {"largest f32 subnormal", 0x1.fffffcp-127, kMF32 | kMF64,
     {0x1.fffffcp-127, 0x0000, 0x0080, 0x1.fffffcp-127, 0, 0, 0, 1}},
    {"1+2^-11+2^-40", 0x1.0020000001p0, kMF64, {0x1.002p0, 0x3c01, 0x3f80, 0x1.0020000001p0, 1, 1, 1, 1}},
    {"1+2^-8+2^-30", 0x1.01000004p0, kMF64, {0x1.01p0, 0x3c04, 0x3f81, 0x1.01000004p0, 1, 1, 1, 1}},
    {"1/3", 0x1.5555555555555p-2, kMF64, {0x1.555556p-2, 0x3555, 0x3eab, 0x1.5555555555555p-2, 0, 0, 0, 1}},
    {"-1e-8", -1e-8, kMF64, {-0x1.5798eep-27, 0x8000, 0xb22c, -1e-8, 0, 0, 0, 1}},
    {"1e-300", 1e-300, kMF64, {0.0, 0x0000, 0x0000, 1e-300, 0, 0, 0, 1}},
    {"1e300", 1e300, kMF64, {INFINITY, 0x7c00, 0x7f80, 1e300, INT32_MAX, INT64_MAX, 255, 1}},
    {"FLT_MAX", 0x1.fffffep127, kMF32 | kMF64, {0x1.fffffep127, 0x7c00, 0x7f80, 0x1.fffffep127, INT32_MAX, INT64_MAX, 255, 1}},
    {"inf", INFINITY, kMF32 | kMF16 | kMBF16 | kMF64, {INFINITY, 0x7c00, 0x7f80, INFINITY, INT32_MAX, INT64_MAX, 255, 1}},
    {"-inf", -INFINITY, kMF32 | kMF16 | kMBF16 | kMF64, {-INFINITY, 0xfc00, 0xff80, -INFINITY, INT32_MIN, INT64_MIN, 0, 1}},
    {"NaN", NAN, kMF32 | kMF16 | kMBF16 | kMF64, {NAN, 0x7e00, 0x7fc0, NAN, 0, 0, 0, 1}},
};

const IRow kIntRows[] = {
    {"0", 0, kMI32 | kMI64 | kMU8 | kMBool, {0.0, 0x0000, 0x0000, 0.0, 0, 0, 0, 0}},
    {"1", 1, kMI32 | kMI64 | kMU8 | kMBool, {1.0, 0x3c00, 0x3f80, 1.0, 1, 1, 1, 1}},
    {"2", 2, kMI32 | kMI64 | kMU8, {2.0, 0x4000, 0x4000, 2.0, 2, 2, 2, 1}},
    {"255", 255, kMI32 | kMI64 | kMU8, {255, 0x5bf8, 0x437f, 255, 255, 255, 255, 1}},
    {"256", 256, kMI32 | kMI64, {256, 0x5c00, 0x4380, 256, 256, 256, 255, 1}},
    {"-1", -1, kMI32 | kMI64, {-1, 0xbc00, 0xbf80, -1, -1, -1, 0, 1}},
    {"2049 (tie)", 2049, kMI32 | kMI64, {2049, 0x6800, 0x4500, 2049, 2049, 2049, 255, 1}},
    {"2051 (tie)", 2051, kMI32 | kMI64, {2051, 0x6802, 0x4500, 2051, 2051, 2051, 255, 1}},
    {"-70000", -70000, kMI32 | kMI64, {-70000, 0xfc00, 0xc789, -70000, -70000, -70000, 0, 1}},
    {"65519", 65519, kMI32 | kMI64, {65519, 0x7bff, 0x4780, 65519, 65519, 65519, 255, 1}},
    {"65520", 65520, kMI32 | kMI64, {65520, 0x7c00, 0x4780, 65520, 65520, 65520, 255, 1}},
    {"2^24+1", 16777217, kMI32 | kMI64, {0x1p24, 0x7c00, 0x4b80, 16777217, 16777217, 16777217, 255, 1}},
    {"INT32_MAX", INT32_MAX, kMI32 | kMI64, {0x1p31, 0x7c00, 0x4f00, 2147483647.0, INT32_MAX, INT32_MAX, 255, 1}},
    {"INT32_MIN", INT32_MIN, kMI32 | kMI64, {-0x1p31, 0xfc00, 0xcf00, -0x1p31, INT32_MIN, INT32_MIN, 0, 1}},
    {"INT64_MAX", INT64_MAX, kMI64, {0x1p63, 0x7c00, 0x5f00, 0x1p63, INT32_MAX, INT64_MAX, 255, 1}},
    {"INT64_MIN", INT64_MIN, kMI64, {-0x1p63, 0xfc00, 0xdf00, -0x1p63, INT32_MIN, INT64_MIN, 0, 1}},
    {"2^40+2^32", 1103806595072ll, kMI64, {0x1.01p40, 0x7c00, 0x5380, 0x1.01p40, INT32_MAX, 1103806595072ll, 255, 1}},
    {"2^53+1", 9007199254740993ll, kMI64, {0x1p53, 0x7c00, 0x5a00, 0x1p53, INT32_MAX, 9007199254740993ll, 255, 1}},
    // Via a double these two would round twice (to f32 and to bf16 respectively) and be wrong.
    {"2^60+2^36+1", 1152921573326323713ll, kMI64,
     {0x1.000002p60, 0x7c00, 0x5d80, 0x1.000001p60, INT32_MAX, 1152921573326323713ll, 255, 1}},
    {"2^62+2^54+1", 4629700416936869889ll, kMI64,
     {0x1.01p62, 0x7c00, 0x5e81, 0x1.01p62, INT32_MAX, 4629700416936869889ll, 255, 1}},
    {"-(2^62+2^54+1)", -4629700416936869889ll, kMI64,
     {-0x1.01p62, 0xfc00, 0xde81, -0x1.01p62, INT32_MIN, -4629700416936869889ll, 0, 1}},
};

constexpr int kRep = 37;  // long enough for the vector loops and a tail

// Fills kRep copies of the value as dtype t; returns false when the row does not cover t.
bool makeSource(DType t, unsigned mask, double fv, int64_t iv, const Expect& e, std::vector<uint8_t>& buf) {
  static const unsigned bit[] = {kMF32, kMF16, kMBF16, kMF64, kMI32, kMI64, kMU8, kMBool};
  if (!(mask & bit[int(t)])) return false;
  size_t sz = nd::dtypeSize(t);
  buf.assign(sz * kRep, 0);
  for (int i = 0; i < kRep; ++i) {
    uint8_t* p = buf.data() + i * sz;
    switch (t) {
      case DType::F32: { float f = float(fv); std::memcpy(p, &f, 4); break; }
      case DType::F64: std::memcpy(p, &fv, 8); break;
      case DType::F16: std::memcpy(p, &e.f16, 2); break;
      case DType::BF16: std::memcpy(p, &e.bf16, 2); break;
      case DType::I32: { int32_t v = int32_t(iv); std::memcpy(p, &v, 4); break; }
      case DType::I64: std::memcpy(p, &iv, 8); break;
      case DType::U8:
      case DType::Bool: *p = uint8_t(iv); break;
    }
  }
  return true;
}

bool sameFloat(double got, double want, bool isF32) {
  if (std::isnan(want)) return std::isnan(got);
  return isF32 ? bitsOf<uint32_t>(float(got)) == bitsOf<uint32_t>(float(want))
               : bitsOf<uint64_t>(got) == bitsOf<uint64_t>(want);
}

bool matches(DType t, const uint8_t* p, const Expect& e) {
  switch (t) {
    case DType::F32: { float f; std::memcpy(&f, p, 4); return sameFloat(f, e.f32, true); }
    case DType::F64: { double d; std::memcpy(&d, p, 8); return sameFloat(d, e.f64, false); }
    case DType::F16: { uint16_t h; std::memcpy(&h, p, 2); return h == e.f16; }
    case DType::BF16: { uint16_t h; std::memcpy(&h, p, 2); return h == e.bf16; }
    case DType::I32: { int32_t v; std::memcpy(&v, p, 4); return v == e.i32; }
    case DType::I64: { int64_t v; std::memcpy(&v, p, 8); return v == e.i64; }
    case DType::U8: return *p == e.u8;
    case DType::Bool: return *p == e.b;
  }
  return false;
}

int checkRow(const char* name, unsigned mask, double fv, int64_t iv, const Expect& e) {
  int bad = 0;
  std::vector<uint8_t> src, dst;
  for (DType st : nd::kAllDTypes) {
    if (!makeSource(st, mask, fv, iv, e, src)) continue;
    for (DType dt : nd::kAllDTypes) {
      size_t sz = nd::dtypeSize(dt);
      dst.assign(sz * kRep, 0xee);
      nd::castCpu(src.data(), st, dst.data(), dt, kRep, nullptr);
      for (int i = 0; i < kRep; ++i)
        if (!matches(dt, dst.data() + i * sz, e)) {
          std::fprintf(stderr, "  %s: %s -> %s wrong (isa %s)\n", name, nd::dtypeName(st),
                       nd::dtypeName(dt), nd::isaName(nd::activeIsa()));
          ++bad;
          break;
        }
    }
  }
  return bad;
}

}  // namespace

ND_TEST(all_pairs_hand_table) {
  IsaGuard guard;
  for (CpuIsa isa : isasToTest()) {
    nd::setActiveIsa(isa);
    int bad = 0;
    for (const FRow& r : kFloatRows) bad += checkRow(r.name, r.mask, r.v, 0, r.e);
    for (const IRow& r : kIntRows) bad += checkRow(r.name, r.mask, double(r.v), r.v, r.e);
    CHECK(bad == 0);
  }
  // Every pair was exercised: each dtype is a source in some row.
  unsigned covered = 0;
  for (const FRow& r : kFloatRows) covered |= r.mask;
  for (const IRow& r : kIntRows) covered |= r.mask;
  CHECK(covered == 0xffu);
}

ND_TEST(nan_payloads_and_bool_bytes) {
  auto f32To16 = [](uint32_t u, DType dt) {
    float f = bitsOf<float>(u);
    uint16_t h;
    nd::castCpu(&f, DType::F32, &h, dt, 1, nullptr);
    return h;
  };
  CHECK(f32To16(0x7f800001u, DType::F16) == 0x7e00);  // sNaN, payload below the kept bits
  CHECK(f32To16(0x7fa00000u, DType::F16) == 0x7f00);
  CHECK(f32To16(0xffc00001u, DType::F16) == 0xfe00);
  CHECK(f32To16(0x7fffffffu, DType::F16) == 0x7fff);
  CHECK(f32To16(0x7f810000u, DType::BF16) == 0x7fc1);
  CHECK(f32To16(0xff800001u, DType::BF16) == 0xffc0);  // must not round into -inf
  float sn = bitsOf<float>(0x7fa00000u);
  double d;
  nd::castCpu(&sn, DType::F32, &d, DType::F64, 1, nullptr);
  CHECK(bitsOf<uint64_t>(d) == 0x7ffc000000000000ull);
  double dn = bitsOf<double>(0xfff0000000000001ull);
  float f;
  uint16_t h, b;
  nd::castCpu(&dn, DType::F64, &f, DType::F32, 1, nullptr);
  nd::castCpu(&dn, DType::F64, &h, DType::F16, 1, nullptr);
  nd::castCpu(&dn, DType::F64, &b, DType::BF16, 1, nullptr);
  CHECK(bitsOf<uint32_t>(f) == 0xffc00000u && h == 0xfe00 && b == 0xffc0);
  uint16_t hs = 0x7d00;  // f16 sNaN -> bf16 keeps its top payload bits, quiet
  nd::castCpu(&hs, DType::F16, &b, DType::BF16, 1, nullptr);
  CHECK(b == 0x7fe0);
  // Any nonzero byte of a bool tensor is true; bool -> bool copies bytes.
  uint8_t bools[3] = {0, 2, 255};
  float out[3];
  nd::castCpu(bools, DType::Bool, out, DType::F32, 3, nullptr);
  CHECK(out[0] == 0.0f && out[1] == 1.0f && out[2] == 1.0f);
  int32_t iout[3];
  nd::castCpu(bools, DType::Bool, iout, DType::I32, 3, nullptr);
  CHECK(iout[0] == 0 && iout[1] == 1 && iout[2] == 1);
  CHECK_THROWS_CODE(nd::castCpu(bools, DType::Bool, out, DType::F32, -1, nullptr), Arg);
  nd::castCpu(nullptr, DType::F32, nullptr, DType::F16, 0, nullptr);  // n == 0 touches nothing
}

ND_TEST(pool_matches_single_thread) {
  IsaGuard guard;
  nd::ThreadPool pool(3);
  std::mt19937_64 rng(0x5eed0004);
  const size_t n = (size_t(1) << 20) + 37;
  std::vector<float> f(n);
  std::vector<double> d(n);
  std::vector<int64_t> l(n);
  for (size_t i = 0; i < n; ++i) {
    f[i] = bitsOf<float>(uint32_t(rng()));
    d[i] = std::ldexp(double(int64_t(rng())), int(rng() % 80) - 70);
    l[i] = int64_t(rng()) >> (rng() % 64);
  }
  for (CpuIsa isa : isasToTest()) {
    nd::setActiveIsa(isa);
    CHECK((castVec<uint16_t>(f, DType::F32, DType::F16) == castVec<uint16_t>(f, DType::F32, DType::F16, &pool)));
    CHECK((castVec<uint16_t>(f, DType::F32, DType::BF16) == castVec<uint16_t>(f, DType::F32, DType::BF16, &pool)));
    CHECK((castVec<int32_t>(d, DType::F64, DType::I32) == castVec<int32_t>(d, DType::F64, DType::I32, &pool)));
    CHECK((castVec<uint16_t>(d, DType::F64, DType::F16) == castVec<uint16_t>(d, DType::F64, DType::F16, &pool)));
    CHECK((castVec<uint16_t>(l, DType::I64, DType::BF16) == castVec<uint16_t>(l, DType::I64, DType::BF16, &pool)));
    CHECK((castVec<uint8_t>(l, DType::I64, DType::U8) == castVec<uint8_t>(l, DType::I64, DType::U8, &pool)));
  }
}

ND_TEST_MAIN()
