// linearCpu against linearReference (double accumulation) on every path this CPU runs (scalar, AVX2,
// AVX-512): f32/f16/bf16 weights, odd sizes, strided rows (padding filled with NaN, so a read of it
// shows), bias, accumulate, the GeluTanh epilogue, with and without a pool; argument checks. Then
// batch invariance: with a fixed row mode (Tiled, Streamed) every row has the bits it has alone.
//
// Error bound per output: any order of summing k products with f32 roundings (FMA or not) is within
// gamma = (k + 3) u of the exact value, scaled by S = sum |x_i w_i| + |bias| + |y0| (the 3 covers the
// bias / accumulate adds and the reference's own rounding); u = 2^-24. The test uses 1.5 x that. A
// wrong index moves an output by about S / k, far above (k + 3) u S for the sizes tested.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "check.h"
#include "core/cpu_features.h"
#include "core/half.h"
#include "core/thread_pool.h"
#include "kernels/cpu/gelu_tanh.h"
#include "kernels/cpu/gemm.h"

using nd::DType;
using nd::GemmEpilogue;
using nd::GemmWeight;
using nd::detail::GemmPath;

namespace {

const int64_t kSizes[] = {1, 2, 3, 7, 15, 17, 31, 33, 64, 100, 255, 257};
constexpr double kU = 1.0 / 16777216.0;

std::vector<GemmPath> paths() {
  std::vector<GemmPath> out;
  for (GemmPath p : {GemmPath::Scalar, GemmPath::Avx2, GemmPath::Avx512})
    if (nd::detail::gemmPathSupported(p)) out.push_back(p);
  return out;
}

nd::ThreadPool& pool2() {
  static nd::ThreadPool pool(2);
  return pool;
}

struct Case {
  int64_t m = 1, n = 1, k = 1;
  int64_t padX = 0, padY = 0, padW = 0;  // extra elements per row
  DType dtype = DType::F32;
  bool bias = false, accumulate = false, gelu = false, pool = false;
  float xScale = 1.0f;
  nd::GemmRows rows = nd::GemmRows::Auto;
};

struct Data {
  Case c;
  std::vector<float> x, bias, y0;
  std::vector<float> wf;         // f32 weights, or the widened f16/bf16 values
  std::vector<uint16_t> wh;      // f16/bf16 weights as stored
  GemmWeight w;
  int64_t ldx, ldy, ldw;
};

const float kNaN = std::numeric_limits<float>::quiet_NaN();

Data makeData(const Case& c, uint64_t seed) {
  Data d;
  d.c = c;
  d.ldx = c.k + c.padX;
  d.ldy = c.n + c.padY;
  d.ldw = c.k + c.padW;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  // Exact-size buffers: padding after the last row is not there, padding between rows is NaN.
  d.x.assign(size_t((c.m - 1) * d.ldx + c.k), kNaN);
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t kk = 0; kk < c.k; ++kk) d.x[size_t(i * d.ldx + kk)] = uni(rng) * c.xScale;
  size_t wn = size_t((c.n - 1) * d.ldw + c.k);
  d.wf.assign(wn, kNaN);
  if (c.dtype != DType::F32) d.wh.assign(wn, c.dtype == DType::F16 ? uint16_t(0x7e00) : uint16_t(0x7fc0));
  for (int64_t j = 0; j < c.n; ++j)
    for (int64_t kk = 0; kk < c.k; ++kk) {
      size_t idx = size_t(j * d.ldw + kk);
      float v = uni(rng);
      if (c.dtype == DType::F16) {
        d.wh[idx] = nd::floatToHalf(v);
        v = nd::halfToFloat(d.wh[idx]);
      } else if (c.dtype == DType::BF16) {
        d.wh[idx] = nd::floatToBf16(v);
        v = nd::bf16ToFloat(d.wh[idx]);
      }
      d.wf[idx] = v;
    }
  d.w.data = c.dtype == DType::F32 ? static_cast<const void*>(d.wf.data()) : d.wh.data();
  d.w.dtype = c.dtype;
  d.w.n = c.n;
  d.w.k = c.k;
  d.w.ld = c.padW ? d.ldw : 0;
  if (c.bias) {
    d.bias.resize(size_t(c.n));
    for (float& b : d.bias) b = uni(rng);
  }
  d.y0.assign(size_t((c.m - 1) * d.ldy + c.n), -7.25f);  // padding sentinel
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t j = 0; j < c.n; ++j) d.y0[size_t(i * d.ldy + j)] = c.accumulate ? uni(rng) : kNaN;
  return d;
}

// Runs one path on the case and compares with linearReference; returns the number of bad outputs.
int runCase(GemmPath path, const Case& c, uint64_t seed) {
  Data d = makeData(c, seed);
  const float* bias = c.bias ? d.bias.data() : nullptr;
  GemmEpilogue ep = c.gelu ? GemmEpilogue::GeluTanh : GemmEpilogue::None;
  std::vector<float> ref = d.y0, got = d.y0;
  nd::linearReference(d.x.data(), c.m, d.ldx, d.w, bias, ref.data(), d.ldy, c.accumulate, ep);
  nd::detail::linearCpuPath(path, d.x.data(), c.m, d.ldx, d.w, bias, got.data(), d.ldy, c.accumulate, ep,
                            c.pool ? &pool2() : nullptr, c.rows);
  int bad = 0;
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t j = 0; j < d.ldy && i * d.ldy + j < int64_t(got.size()); ++j) {
      size_t idx = size_t(i * d.ldy + j);
      if (j >= c.n) {  // row padding: untouched
        if (std::memcmp(&got[idx], &d.y0[idx], sizeof(float)) != 0) ++bad;
        continue;
      }
      double s = 0, pre = 0;
      for (int64_t kk = 0; kk < c.k; ++kk) {
        double p = double(d.x[size_t(i * d.ldx + kk)]) * double(d.wf[size_t(j * d.ldw + kk)]);
        s += std::fabs(p);
        pre += p;
      }
      if (bias) s += std::fabs(bias[j]), pre += bias[j];
      if (c.accumulate) s += std::fabs(d.y0[idx]), pre += d.y0[idx];
      double tol = 1.5 * double(c.k + 3) * kU * s + 1e-30;
      // gelu' is within [-0.13, 1.13]; its f32 evaluation (vector or scalar formula) adds a few ulp
      // of the result plus the scalar form's cancellation, a few ulp of the input.
      if (c.gelu) tol = 1.13 * tol + 8 * kU * std::fabs(double(ref[idx])) + 4 * kU * std::fabs(pre) + 1e-30;
      double err = std::fabs(double(got[idx]) - double(ref[idx]));
      if (!(err <= tol)) {
        if (bad < 5)
          std::fprintf(stderr, "  %s m=%lld n=%lld k=%lld dt=%s y[%lld][%lld]=%.9g ref=%.9g tol=%.3g\n",
                       nd::detail::gemmPathName(path), (long long)c.m, (long long)c.n, (long long)c.k,
                       nd::dtypeName(c.dtype), (long long)i, (long long)j, got[idx], ref[idx], tol);
        ++bad;
      }
    }
  }
  return bad;
}

void checkCase(const Case& c, uint64_t seed) {
  for (GemmPath p : paths()) {
    int bad = runCase(p, c, seed);
    if (bad) {
      std::fprintf(stderr, "  %s: %d bad outputs (m=%lld n=%lld k=%lld pads %lld/%lld/%lld bias=%d acc=%d gelu=%d pool=%d rows=%d)\n",
                   nd::detail::gemmPathName(p), bad, (long long)c.m, (long long)c.n, (long long)c.k,
                   (long long)c.padX, (long long)c.padY, (long long)c.padW, c.bias, c.accumulate, c.gelu, c.pool,
                   int(c.rows));
    }
    CHECK(bad == 0);
  }
}

}  // namespace

ND_TEST(gemm_paths_available) {
  CHECK(nd::detail::gemmPathSupported(GemmPath::Scalar));
  std::printf("  gemm paths on this CPU:");
  for (GemmPath p : paths()) std::printf(" %s", nd::detail::gemmPathName(p));
  std::printf(" (default %s)\n", nd::detail::gemmPathName(nd::detail::gemmDefaultPath()));
  if (nd::activeIsa() == nd::CpuIsa::Baseline) CHECK(nd::detail::gemmDefaultPath() == GemmPath::Scalar);
}

ND_TEST(gemm_reference_hand_checked) {
  // y = x W^T + b with x = [[1, 2], [3, 4]], W = [[1, 0], [2, -1], [0.5, 0.5]], b = [10, 20, 30].
  float x[4] = {1, 2, 3, 4}, wv[6] = {1, 0, 2, -1, 0.5f, 0.5f}, b[3] = {10, 20, 30}, y[6];
  GemmWeight w;
  w.data = wv;
  w.n = 3;
  w.k = 2;
  nd::linearReference(x, 2, 2, w, b, y, 3, false, GemmEpilogue::None);
  const float want[6] = {11, 20, 31.5f, 13, 22, 33.5f};
  for (int i = 0; i < 6; ++i) CHECK(y[i] == want[i]);
  nd::linearReference(x, 2, 2, w, nullptr, y, 3, true, GemmEpilogue::None);  // y += x W^T
  const float want2[6] = {12, 20, 33, 16, 24, 37};
  for (int i = 0; i < 6; ++i) CHECK(y[i] == want2[i]);
  for (GemmPath p : paths()) {
    float z[6];
    nd::detail::linearCpuPath(p, x, 2, 2, w, b, z, 3, false, GemmEpilogue::None, nullptr);
    for (int i = 0; i < 6; ++i) CHECK(z[i] == want[i]);
  }
}

// Every (m, n) pair of the odd sizes, k cycling through them, the dtypes cycling too.
ND_TEST(gemm_odd_sizes_all_dtypes) {
  const DType dts[] = {DType::F32, DType::F16, DType::BF16};
  int idx = 0;
  for (int64_t m : kSizes)
    for (int64_t n : kSizes) {
      Case c;
      c.m = m;
      c.n = n;
      c.k = kSizes[(idx * 5 + 3) % 12];
      c.dtype = dts[idx % 3];
      c.bias = idx % 2;
      c.pool = (idx / 2) % 2;
      checkCase(c, 1000 + uint64_t(idx));
      ++idx;
    }
}

ND_TEST(gemm_every_k_each_dtype) {
  int idx = 0;
  for (DType dt : {DType::F32, DType::F16, DType::BF16})
    for (int64_t k : kSizes)
      for (int64_t m : {int64_t(5), int64_t(33)}) {
        Case c;
        c.m = m;
        c.n = 50;  // not a multiple of 16 or 48
        c.k = k;
        c.dtype = dt;
        c.bias = true;
        checkCase(c, 2000 + uint64_t(idx++));
      }
}

ND_TEST(gemm_strides_bias_accumulate_gelu) {
  int idx = 0;
  for (DType dt : {DType::F32, DType::F16, DType::BF16})
    for (int variant = 0; variant < 8; ++variant)
      for (int64_t m : {int64_t(3), int64_t(12), int64_t(13), int64_t(47)}) {
        Case c;
        c.m = m;
        c.n = (variant % 2) ? 97 : 64;
        c.k = (variant % 4) < 2 ? 71 : 130;
        c.padX = 5;
        c.padY = 3;
        c.padW = (variant % 3) ? 7 : 0;
        c.dtype = dt;
        c.bias = variant & 1;
        c.accumulate = (variant & 2) && !(variant & 4);
        c.gelu = variant & 4;
        c.pool = variant & 1;
        c.xScale = c.gelu ? 4.0f : 1.0f;  // pre-activations out to the gelu tails
        checkCase(c, 3000 + uint64_t(idx++));
      }
}

// Depth beyond one k block (several packed blocks, accumulate between them) and width beyond one
// n block, with and without the pool; the model's small-m shape.
ND_TEST(gemm_deep_and_wide) {
  const Case cases[] = {
      {17, 100, 1000, 0, 0, 0, DType::F32, true, false, false, false, 1.0f},
      {17, 100, 1000, 0, 0, 0, DType::BF16, true, true, false, true, 1.0f},
      {40, 64, 777, 3, 0, 9, DType::F16, false, false, true, true, 1.0f},
      {9, 1000, 40, 0, 0, 0, DType::F32, true, false, true, false, 3.0f},
      {30, 1000, 40, 0, 5, 0, DType::F16, true, false, false, false, 1.0f},
      {30, 1000, 40, 0, 5, 0, DType::F16, true, true, false, true, 1.0f},
      {2, 700, 1152, 0, 0, 0, DType::BF16, true, false, false, true, 1.0f},
      {64, 200, 1152, 0, 0, 0, DType::F32, true, false, true, true, 1.0f},
  };
  int idx = 0;
  for (const Case& c : cases) checkCase(c, 4000 + uint64_t(idx++));
}

// Work is split by columns (and rows) only, so the pool never changes a result.
ND_TEST(gemm_pool_bitwise_equal) {
  for (GemmPath p : paths())
    for (int64_t m : {int64_t(4), int64_t(100)}) {
      Case c;
      c.m = m;
      c.n = 300;
      c.k = 500;
      c.dtype = DType::F16;
      c.bias = true;
      Data d = makeData(c, 77);
      std::vector<float> a(d.y0), b(d.y0);
      nd::detail::linearCpuPath(p, d.x.data(), c.m, d.ldx, d.w, d.bias.data(), a.data(), d.ldy, false,
                                GemmEpilogue::None, nullptr);
      nd::detail::linearCpuPath(p, d.x.data(), c.m, d.ldx, d.w, d.bias.data(), b.data(), d.ldy, false,
                                GemmEpilogue::None, &pool2());
      CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    }
}

ND_TEST(gemm_default_path_and_baseline_isa) {
  Case c;
  c.m = 20;
  c.n = 33;
  c.k = 65;
  c.bias = true;
  Data d = makeData(c, 5);
  std::vector<float> ref(d.y0), got(d.y0);
  nd::linearReference(d.x.data(), c.m, d.ldx, d.w, d.bias.data(), ref.data(), d.ldy, false, GemmEpilogue::None);
  nd::CpuIsa saved = nd::activeIsa();
  for (nd::CpuIsa isa : {nd::CpuIsa::Baseline, nd::CpuIsa::Avx2}) {
    if (!nd::isaSupported(isa)) continue;
    nd::setActiveIsa(isa);
    if (isa == nd::CpuIsa::Baseline) CHECK(nd::detail::gemmDefaultPath() == GemmPath::Scalar);
    else CHECK(nd::detail::gemmDefaultPath() != GemmPath::Scalar);
    nd::linearCpu(d.x.data(), c.m, d.ldx, d.w, d.bias.data(), got.data(), d.ldy, false, GemmEpilogue::None,
                  &pool2());
    for (size_t i = 0; i < got.size(); ++i) CHECK_NEAR(got[i], ref[i], 1e-4);
  }
  nd::setActiveIsa(saved);
}

ND_TEST(gemm_empty_and_k_zero) {
  for (GemmPath p : paths()) {
    GemmWeight w;
    w.n = 3;
    w.k = 0;
    float bias[3] = {1.0f, -2.0f, 0.5f};
    float y[6] = {10, 10, 10, 20, 20, 20};
    nd::detail::linearCpuPath(p, nullptr, 2, 0, w, bias, y, 3, false, GemmEpilogue::None, nullptr);
    for (int i = 0; i < 6; ++i) CHECK(y[i] == bias[i % 3]);
    nd::detail::linearCpuPath(p, nullptr, 2, 0, w, bias, y, 3, true, GemmEpilogue::None, nullptr);
    for (int i = 0; i < 6; ++i) CHECK(y[i] == 2 * bias[i % 3]);
    nd::detail::linearCpuPath(p, nullptr, 2, 0, w, nullptr, y, 3, false, GemmEpilogue::None, nullptr);
    for (int i = 0; i < 6; ++i) CHECK(y[i] == 0.0f);
    nd::detail::linearCpuPath(p, nullptr, 2, 0, w, bias, y, 3, false, GemmEpilogue::GeluTanh, nullptr);
    for (int i = 0; i < 6; ++i) CHECK(y[i] == nd::geluTanhScalar(bias[i % 3]));
    // m == 0 or n == 0: nothing is read or written, null pointers are fine.
    GemmWeight w2;
    w2.n = 0;
    w2.k = 5;
    nd::detail::linearCpuPath(p, nullptr, 4, 5, w2, nullptr, nullptr, 0, false, GemmEpilogue::None, nullptr);
    w2.n = 4;
    nd::detail::linearCpuPath(p, nullptr, 0, 5, w2, nullptr, nullptr, 4, false, GemmEpilogue::None, nullptr);
  }
}

ND_TEST(gemm_rejects_bad_arguments) {
  float x[8] = {}, wv[8] = {}, y[8] = {};
  GemmWeight w;
  w.data = wv;
  w.n = 2;
  w.k = 4;
  auto call = [&](int64_t m, int64_t ldx, const GemmWeight& ww, float* yy, int64_t ldy, bool acc, GemmEpilogue ep) {
    nd::linearCpu(x, m, ldx, ww, nullptr, yy, ldy, acc, ep, nullptr);
  };
  CHECK_THROWS_CODE(call(-1, 4, w, y, 2, false, GemmEpilogue::None), Arg);
  CHECK_THROWS_CODE(call(2, 3, w, y, 2, false, GemmEpilogue::None), Arg);  // ldx < k
  CHECK_THROWS_CODE(call(2, 4, w, y, 1, false, GemmEpilogue::None), Arg);  // ldy < n
  CHECK_THROWS_CODE(call(2, 4, w, nullptr, 2, false, GemmEpilogue::None), Arg);
  CHECK_THROWS_CODE(call(2, 4, w, y, 2, true, GemmEpilogue::GeluTanh), Arg);
  CHECK_THROWS_CODE(call(2, 4, w, y, 2, false, GemmEpilogue(7)), Arg);
  GemmWeight bad = w;
  bad.ld = 3;  // < k
  CHECK_THROWS_CODE(call(2, 4, bad, y, 2, false, GemmEpilogue::None), Arg);
  bad = w;
  bad.n = -1;
  CHECK_THROWS_CODE(call(2, 4, bad, y, 2, false, GemmEpilogue::None), Arg);
  bad = w;
  bad.dtype = DType::F64;
  CHECK_THROWS_CODE(call(2, 4, bad, y, 2, false, GemmEpilogue::None), DType);
  bad.dtype = DType::I32;
  CHECK_THROWS_CODE(nd::linearReference(x, 2, 4, bad, nullptr, y, 2, false, GemmEpilogue::None), DType);
  bad = w;
  bad.data = nullptr;
  CHECK_THROWS_CODE(call(2, 4, bad, y, 2, false, GemmEpilogue::None), Arg);
  CHECK_THROWS_CODE(nd::linearCpu(nullptr, 2, 4, w, nullptr, y, 2, false, GemmEpilogue::None, nullptr), Arg);
  for (GemmPath p : paths())
    CHECK_THROWS_CODE(nd::detail::linearCpuPath(p, x, 2, 3, w, nullptr, y, 2, false, GemmEpilogue::None, nullptr), Arg);
}

// ---- batch invariance -------------------------------------------------------------------------------

const char* rowsName(nd::GemmRows r) {
  switch (r) {
    case nd::GemmRows::Auto: return "auto";
    case nd::GemmRows::Tiled: return "tiled";
    case nd::GemmRows::Streamed: return "streamed";
  }
  return "?";
}

// The fixed row modes compute right, at every m (Tiled below the streaming threshold, Streamed
// above it and past one row group).
ND_TEST(gemm_row_modes_match_reference) {
  int idx = 0;
  for (nd::GemmRows rows : {nd::GemmRows::Tiled, nd::GemmRows::Streamed})
    for (int64_t m : {int64_t(1), int64_t(3), int64_t(8), int64_t(9), int64_t(40), int64_t(65), int64_t(150)}) {
      Case c;
      c.m = m;
      c.n = (idx % 2) ? 97 : 50;
      c.k = (idx % 3) ? 401 : 33;
      c.padX = idx % 2 ? 3 : 0;
      c.padY = idx % 3 ? 2 : 0;
      c.dtype = idx % 3 == 0 ? DType::F32 : idx % 3 == 1 ? DType::F16 : DType::BF16;
      c.bias = idx % 2 == 0;
      c.accumulate = idx % 4 == 1;
      c.gelu = idx % 4 == 3;
      c.xScale = c.gelu ? 4.0f : 1.0f;
      c.pool = idx % 2 == 1;
      c.rows = rows;
      checkCase(c, 6000 + uint64_t(idx++));
    }
}

// Row i of an m-row call equals, bit for bit, the same row computed alone (m = 1), for every m in
// 1..40 and some larger ones (the pool then also splits m), on every path, in the two modes that
// promise it: partial row tiles, row groups of the streaming kernel and the thread split must not
// change a row's arithmetic. (Auto does not promise it: it switches kernels at K.smallM.)
ND_TEST(gemm_rows_bitwise_independent_of_m) {
  struct Shape {
    int64_t n, k;
  };
  // n not a multiple of 16 or 48, or smaller than one panel; k odd, below and beyond one depth block.
  const Shape shapes[] = {{1, 7}, {5, 33}, {16, 64}, {47, 130}, {50, 401}, {97, 17}, {40, 300}};
  const int64_t bigM[] = {41, 57, 64, 65, 100, 131, 200};
  std::vector<int64_t> ms;
  for (int64_t m = 1; m <= 40; ++m) ms.push_back(m);
  for (int64_t m : bigM) ms.push_back(m);
  const int64_t maxM = 200;
  int idx = 0;
  for (GemmPath p : paths())
    for (nd::GemmRows rows : {nd::GemmRows::Tiled, nd::GemmRows::Streamed})
      for (DType dt : {DType::F32, DType::F16, DType::BF16})
        for (const Shape& sh : shapes) {
          const int variant = idx++;
          Case c;
          c.m = maxM;
          c.n = sh.n;
          c.k = sh.k;
          c.padX = variant % 2 ? 3 : 0;
          c.padY = variant % 3 ? 1 : 0;
          c.padW = variant % 5 == 0 ? 2 : 0;
          c.dtype = dt;
          c.bias = variant % 3 != 1;
          c.accumulate = variant % 4 == 1;
          c.gelu = variant % 4 == 3;
          c.xScale = c.gelu ? 4.0f : 1.0f;
          Data d = makeData(c, 7000 + uint64_t(variant));
          const float* bias = c.bias ? d.bias.data() : nullptr;
          const GemmEpilogue ep = c.gelu ? GemmEpilogue::GeluTanh : GemmEpilogue::None;
          for (bool threaded : {false, true}) {
            nd::ThreadPool* pool = threaded ? &pool2() : nullptr;
            // Each row alone; y starts from that row of y0 (it matters when accumulating).
            std::vector<float> alone(size_t(maxM * c.n));
            for (int64_t i = 0; i < maxM; ++i) {
              std::vector<float> yi(d.y0.begin() + i * d.ldy, d.y0.begin() + i * d.ldy + c.n);
              nd::detail::linearCpuPath(p, d.x.data() + i * d.ldx, 1, d.ldx, d.w, bias, yi.data(), c.n,
                                        c.accumulate, ep, pool, rows);
              std::memcpy(alone.data() + i * c.n, yi.data(), size_t(c.n) * sizeof(float));
            }
            int bad = 0;
            for (int64_t m : ms) {
              std::vector<float> y(d.y0.begin(), d.y0.begin() + ((m - 1) * d.ldy + c.n));
              nd::detail::linearCpuPath(p, d.x.data(), m, d.ldx, d.w, bias, y.data(), d.ldy, c.accumulate, ep,
                                        pool, rows);
              for (int64_t i = 0; i < m; ++i)
                if (std::memcmp(y.data() + i * d.ldy, alone.data() + i * c.n, size_t(c.n) * sizeof(float)) != 0) {
                  if (bad < 3)
                    std::fprintf(stderr, "  %s %s %s n=%lld k=%lld pool=%d: row %lld of m=%lld differs from it alone\n",
                                 nd::detail::gemmPathName(p), rowsName(rows), nd::dtypeName(dt), (long long)c.n,
                                 (long long)c.k, int(threaded), (long long)i, (long long)m);
                  ++bad;
                }
            }
            CHECK(bad == 0);
          }
        }
}

// The row mode changes the kernel, never the contract: bad values are rejected.
ND_TEST(gemm_rows_rejects_unknown_mode) {
  float x[8] = {}, wv[8] = {}, y[8] = {};
  GemmWeight w;
  w.data = wv;
  w.n = 2;
  w.k = 4;
  CHECK_THROWS_CODE(nd::linearCpu(x, 2, 4, w, nullptr, y, 2, false, GemmEpilogue::None, nullptr, nd::GemmRows(9)), Arg);
}

ND_TEST_MAIN()
