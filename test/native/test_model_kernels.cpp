// The per-token model kernels (LayerNorm + modulate, head LayerNorm, gated residual, GELU-tanh,
// SiLU, SwiGLU, patchify / unpatchify, sin-cos embeddings, softmax + top-k): each against its
// double-precision reference on odd sizes, with and without a pool, in place, with null optional
// operands, AVX-512 vs baseline bit equality, hand-checked values and argument errors.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "check.h"
#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/cpu/gated_residual.h"
#include "kernels/cpu/gelu_tanh.h"
#include "kernels/cpu/head_layer_norm.h"
#include "kernels/cpu/layer_norm_modulate.h"
#include "kernels/cpu/patchify.h"
#include "kernels/cpu/silu.h"
#include "kernels/cpu/sincos_embedding.h"
#include "kernels/cpu/swiglu.h"
#include "kernels/cpu/topk.h"

using nd::CpuIsa;

namespace {

std::vector<float> randomVec(size_t n, uint32_t seed, float lo = -3.0f, float hi = 3.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

bool sameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Count of elements with |a - b| > rel * max(1, |b|) (prints the first few).
int countFar(const std::vector<float>& a, const std::vector<float>& b, double rel, const char* what) {
  int bad = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double tol = rel * std::max(1.0, std::fabs(double(b[i])));
    if (!(std::fabs(double(a[i]) - double(b[i])) <= tol)) {
      if (bad < 5) std::fprintf(stderr, "  %s[%zu]: %.9g vs %.9g\n", what, i, a[i], b[i]);
      ++bad;
    }
  }
  return bad;
}

// Runs fn under every CPU kernel family this machine has (baseline, then the default), so the
// AVX-512 builds are compared with the baseline ones; restores the active ISA.
template <typename F>
void forEachIsa(F fn) {
  CpuIsa saved = nd::activeIsa();
  nd::setActiveIsa(CpuIsa::Baseline);
  fn(CpuIsa::Baseline);
  if (nd::isaSupported(CpuIsa::Avx2)) {
    nd::setActiveIsa(CpuIsa::Avx2);
    fn(CpuIsa::Avx2);
  }
  nd::setActiveIsa(saved);
}

}  // namespace

// ---- LayerNorm + modulate ------------------------------------------------------------------------

ND_TEST(layer_norm_modulate_matches_reference) {
  nd::ThreadPool pool(2);
  struct Shape { int64_t batch, tokens, dim; };
  for (Shape s : {Shape{3, 7, 37}, Shape{1, 5, 1152}, Shape{2, 3, 1}, Shape{2, 300, 1152}, Shape{1, 2, 17}}) {
    int64_t stride = s.dim + 5, n = s.batch * s.tokens * s.dim;
    auto x = randomVec(size_t(n), 1u + uint32_t(s.dim), -2.0f, 3.0f);
    auto shift = randomVec(size_t(s.batch * stride), 7u);
    auto scale = randomVec(size_t(s.batch * stride), 8u, -0.9f, 0.9f);
    for (int mode = 0; mode < 4; ++mode) {
      const float* sh = mode & 1 ? shift.data() : nullptr;
      const float* sc = mode & 2 ? scale.data() : nullptr;
      std::vector<float> ref(static_cast<size_t>(n));
      nd::layerNormModulateReference(x.data(), s.batch, s.tokens, s.dim, sh, sc, stride, 1e-6f, ref.data());
      std::vector<float> baseline;
      forEachIsa([&](CpuIsa isa) {
        std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
        nd::layerNormModulateCpu(x.data(), s.batch, s.tokens, s.dim, sh, sc, stride, 1e-6f, a.data(), nullptr);
        nd::layerNormModulateCpu(x.data(), s.batch, s.tokens, s.dim, sh, sc, stride, 1e-6f, b.data(), &pool);
        CHECK(sameBits(a, b));
        std::vector<float> inPlace = x;
        nd::layerNormModulateCpu(inPlace.data(), s.batch, s.tokens, s.dim, sh, sc, stride, 1e-6f, inPlace.data(),
                                 &pool);
        CHECK(sameBits(a, inPlace));
        CHECK(countFar(a, ref, 1e-6, "layerNormModulate") == 0);
        if (isa == CpuIsa::Baseline) baseline = a;
        else CHECK(sameBits(a, baseline));
      });
    }
  }
}

ND_TEST(layer_norm_modulate_accurate_with_large_mean) {
  // Rows far from zero: the statistics must not lose the small spread.
  const int64_t dim = 1152;
  auto x = randomVec(size_t(2 * dim), 3u, -1.0f, 1.0f);
  for (auto& v : x) v += 1000.0f;
  std::vector<float> a(x.size()), ref(x.size());
  nd::layerNormModulateCpu(x.data(), 1, 2, dim, nullptr, nullptr, 0, 1e-6f, a.data(), nullptr);
  nd::layerNormModulateReference(x.data(), 1, 2, dim, nullptr, nullptr, 0, 1e-6f, ref.data());
  CHECK(countFar(a, ref, 1e-6, "largeMean") == 0);
  // And the normalised row has mean ~0 and variance ~1.
  double m = 0, v = 0;
  for (int64_t i = 0; i < dim; ++i) m += a[size_t(i)];
  m /= double(dim);
  for (int64_t i = 0; i < dim; ++i) v += (a[size_t(i)] - m) * (a[size_t(i)] - m);
  v /= double(dim);
  CHECK_NEAR(m, 0.0, 1e-6);
  CHECK_NEAR(v, 1.0, 1e-5);
}

ND_TEST(layer_norm_modulate_known_values) {
  // x = [1, 2, 3, 4]: mean 2.5, var 1.25; eps 0 -> z = (x - 2.5) / sqrt(1.25).
  const float x[4] = {1, 2, 3, 4}, shift[4] = {0.5f, 0, 0, -1}, scale[4] = {1, 0, -1, 0.5f};
  float out[4];
  nd::layerNormModulateCpu(x, 1, 1, 4, shift, scale, 4, 0.0f, out, nullptr);
  const double s = std::sqrt(1.25);
  CHECK_NEAR(out[0], -1.5 / s * 2 + 0.5, 1e-6);
  CHECK_NEAR(out[1], -0.5 / s, 1e-6);
  CHECK_NEAR(out[2], 0.0, 1e-7);
  CHECK_NEAR(out[3], 1.5 / s * 1.5 - 1, 1e-6);
  // A constant row normalises to 0 (with eps > 0), not NaN.
  const float c[3] = {5, 5, 5};
  float z[3];
  nd::layerNormModulateCpu(c, 1, 1, 3, nullptr, nullptr, 0, 1e-6f, z, nullptr);
  for (float v : z) CHECK(v == 0.0f);
}

// ---- head LayerNorm ------------------------------------------------------------------------------

ND_TEST(head_layer_norm_matches_reference) {
  nd::ThreadPool pool(2);
  struct Shape { int64_t rows, heads, hd; };
  for (Shape s : {Shape{5, 3, 19}, Shape{1, 1, 1}, Shape{300, 16, 72}, Shape{7, 2, 64}}) {
    int64_t width = s.heads * s.hd, n = s.rows * 3 * width;
    auto qkv = randomVec(size_t(n), 11u + uint32_t(s.hd), -2.0f, 2.5f);
    auto qw = randomVec(size_t(s.hd), 12u, 0.5f, 1.5f), qb = randomVec(size_t(s.hd), 13u);
    auto kw = randomVec(size_t(s.hd), 14u, 0.5f, 1.5f), kb = randomVec(size_t(s.hd), 15u);
    for (int withBias = 0; withBias < 2; ++withBias) {
      const float* qbp = withBias ? qb.data() : nullptr;
      const float* kbp = withBias ? kb.data() : nullptr;
      std::vector<float> ref = qkv;
      nd::headLayerNormReference(ref.data(), s.rows, s.heads, s.hd, qw.data(), qbp, kw.data(), kbp, 1e-6f);
      std::vector<float> baseline;
      forEachIsa([&](CpuIsa isa) {
        std::vector<float> a = qkv, b = qkv;
        nd::headLayerNormCpu(a.data(), s.rows, s.heads, s.hd, qw.data(), qbp, kw.data(), kbp, 1e-6f, nullptr);
        nd::headLayerNormCpu(b.data(), s.rows, s.heads, s.hd, qw.data(), qbp, kw.data(), kbp, 1e-6f, &pool);
        CHECK(sameBits(a, b));
        CHECK(countFar(a, ref, 1e-6, "headLayerNorm") == 0);
        // v untouched, bit for bit.
        bool vSame = true;
        for (int64_t r = 0; r < s.rows; ++r)
          vSame = vSame && std::memcmp(&a[size_t(r * 3 * width + 2 * width)], &qkv[size_t(r * 3 * width + 2 * width)],
                                       size_t(width) * sizeof(float)) == 0;
        CHECK(vSame);
        if (isa == CpuIsa::Baseline) baseline = a;
        else CHECK(sameBits(a, baseline));
      });
    }
  }
  // q and k use their own parameters: q weight 2, k weight 1, hd 2 -> q = [-2, 2], k = [-1, 1].
  float qkv[6] = {0, 4, 10, 11, 7, 8};
  const float w2[2] = {2, 2}, w1[2] = {1, 1};
  nd::headLayerNormCpu(qkv, 1, 1, 2, w2, nullptr, w1, nullptr, 0.0f, nullptr);
  CHECK_NEAR(qkv[0], -2, 1e-6);
  CHECK_NEAR(qkv[1], 2, 1e-6);
  CHECK_NEAR(qkv[2], -1, 1e-6);
  CHECK_NEAR(qkv[3], 1, 1e-6);
  CHECK(qkv[4] == 7 && qkv[5] == 8);
}

// ---- gated residual ------------------------------------------------------------------------------

ND_TEST(gated_residual_matches_reference) {
  nd::ThreadPool pool(2);
  struct Shape { int64_t batch, tokens, dim; };
  for (Shape s : {Shape{3, 7, 37}, Shape{2, 300, 1152}, Shape{1, 1, 1}}) {
    int64_t stride = s.dim + 3, n = s.batch * s.tokens * s.dim;
    auto h = randomVec(size_t(n), 21u), y = randomVec(size_t(n), 22u);
    auto gate = randomVec(size_t(s.batch * stride), 23u);
    for (int withGate = 0; withGate < 2; ++withGate) {
      const float* g = withGate ? gate.data() : nullptr;
      std::vector<float> ref = h;
      nd::gatedResidualReference(ref.data(), y.data(), s.batch, s.tokens, s.dim, g, stride);
      std::vector<float> baseline;
      forEachIsa([&](CpuIsa isa) {
        std::vector<float> a = h, b = h;
        nd::gatedResidualCpu(a.data(), y.data(), s.batch, s.tokens, s.dim, g, stride, nullptr);
        nd::gatedResidualCpu(b.data(), y.data(), s.batch, s.tokens, s.dim, g, stride, &pool);
        CHECK(sameBits(a, b));
        CHECK(countFar(a, ref, 1e-6, "gatedResidual") == 0);
        if (isa == CpuIsa::Baseline) baseline = a;
        else CHECK(sameBits(a, baseline));
      });
    }
  }
  // Gate per sample, broadcast over tokens: batch 2, tokens 2, dim 2.
  float h[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  const float y[8] = {1, 2, 3, 4, 5, 6, 7, 8}, gate[4] = {2, 0, -1, 0.5f};
  nd::gatedResidualCpu(h, y, 2, 2, 2, gate, 2, nullptr);
  const float want[8] = {3, 1, 7, 1, -4, 4, -6, 5};
  for (int i = 0; i < 8; ++i) CHECK(h[i] == want[i]);
}

// ---- GELU / SiLU / SwiGLU ------------------------------------------------------------------------

namespace {

// Inputs spanning the interesting range plus specials.
std::vector<float> activationInputs() {
  auto v = randomVec(100003, 31u, -12.0f, 12.0f);
  const float specials[] = {0.0f, -0.0f, 1.0f, -1.0f, 1e-30f, -1e-30f, 1e-8f, 50.0f, -50.0f, 87.0f, -87.0f,
                            88.5f, -88.5f, 100.0f, -100.0f, 1e20f, -1e20f, 3e38f, -3e38f};
  v.insert(v.begin(), std::begin(specials), std::end(specials));
  return v;
}

// Elementwise error bound for the sigmoid-form activations: a few ulp of the value, plus the
// amplification |v| eps of the exponent argument in the far negative tail, plus the double
// reference's own cancellation in 1 + tanh(u) (about |x| 1e-16) and the kernels' flush to -0 once
// e^-v passes 2^127 (|result| < 1e-36 there).
int countActivationFar(const std::vector<float>& x, const std::vector<float>& a, const std::vector<float>& ref,
                       const char* what) {
  int bad = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double xv = x[i], r = ref[i];
    double tol = 4e-7 * std::fabs(r) * (1.0 + std::fabs(xv) + 0.1 * std::fabs(xv * xv * xv)) + 1e-15 * std::fabs(xv) + 1e-35;
    if (!(std::fabs(double(a[i]) - r) <= tol)) {
      if (bad < 5) std::fprintf(stderr, "  %s(%.9g): %.9g vs %.9g\n", what, x[i], a[i], ref[i]);
      ++bad;
    }
  }
  return bad;
}

}  // namespace

ND_TEST(gelu_tanh_matches_reference_and_scalar) {
  nd::ThreadPool pool(2);
  auto x = activationInputs();
  std::vector<float> ref(x.size());
  nd::geluTanhReference(x.data(), ref.data(), int64_t(x.size()));
  std::vector<float> scalar(x.size());
  for (size_t i = 0; i < x.size(); ++i) scalar[i] = nd::geluTanhScalar(x[i]);
  forEachIsa([&](CpuIsa) {
    std::vector<float> a(x.size()), b(x.size());
    nd::geluTanhCpu(x.data(), a.data(), int64_t(x.size()), nullptr);
    nd::geluTanhCpu(x.data(), b.data(), int64_t(x.size()), &pool);
    CHECK(sameBits(a, scalar));  // the GEMM epilogue's scalar agrees bit for bit
    CHECK(sameBits(b, scalar));
    std::vector<float> c = x;
    nd::geluTanhCpu(c.data(), c.data(), int64_t(c.size()), &pool);
    CHECK(sameBits(c, scalar));
    CHECK(countActivationFar(x, a, ref, "gelu") == 0);
  });
  // Odd lengths (vector tails).
  for (int64_t n : {1, 3, 15, 17, 33}) {
    std::vector<float> a(static_cast<size_t>(n));
    nd::geluTanhCpu(x.data() + 100, a.data(), n, nullptr);
    for (int64_t i = 0; i < n; ++i) CHECK(a[size_t(i)] == scalar[size_t(100 + i)]);
  }
  CHECK(nd::geluTanhScalar(0.0f) == 0.0f);
  CHECK_NEAR(nd::geluTanhScalar(1.0f), 0.84119199132, 2e-7);    // 0.5 (1 + tanh(0.7978845608 * 1.044715))
  CHECK_NEAR(nd::geluTanhScalar(-1.0f), -0.15880800868, 2e-7);
  CHECK(nd::geluTanhScalar(INFINITY) == INFINITY);
  CHECK(std::isnan(nd::geluTanhScalar(NAN)));
}

ND_TEST(silu_matches_reference) {
  nd::ThreadPool pool(2);
  auto x = activationInputs();
  std::vector<float> ref(x.size());
  nd::siluReference(x.data(), ref.data(), int64_t(x.size()));
  std::vector<float> baseline;
  forEachIsa([&](CpuIsa isa) {
    std::vector<float> a(x.size()), b(x.size());
    nd::siluCpu(x.data(), a.data(), int64_t(x.size()), nullptr);
    nd::siluCpu(x.data(), b.data(), int64_t(x.size()), &pool);
    CHECK(sameBits(a, b));
    std::vector<float> c = x;
    nd::siluCpu(c.data(), c.data(), int64_t(c.size()), &pool);
    CHECK(sameBits(a, c));
    CHECK(countActivationFar(x, a, ref, "silu") == 0);
    if (isa == CpuIsa::Baseline) baseline = a;
    else CHECK(sameBits(a, baseline));
  });
  float v[4] = {0.0f, 1.0f, -1.0f, 20.0f};
  nd::siluCpu(v, v, 4, nullptr);
  CHECK(v[0] == 0.0f);
  CHECK_NEAR(v[1], 0.73105857863, 2e-7);
  CHECK_NEAR(v[2], -0.26894142137, 2e-7);
  CHECK_NEAR(v[3], 19.999999958, 4e-6);
}

ND_TEST(swiglu_matches_reference) {
  nd::ThreadPool pool(2);
  struct Shape { int64_t rows, hidden, ldIn, ldOut; };
  for (Shape s : {Shape{7, 13, 30, 15}, Shape{300, 1024, 2048, 1024}, Shape{1, 1, 2, 1}, Shape{5, 33, 66, 40}}) {
    auto in = randomVec(size_t(s.rows * s.ldIn), 41u, -6.0f, 6.0f);
    std::vector<float> ref(size_t(s.rows * s.ldOut), -7.0f);
    nd::swigluReference(in.data(), s.rows, s.hidden, s.ldIn, ref.data(), s.ldOut);
    std::vector<float> baseline;
    forEachIsa([&](CpuIsa isa) {
      std::vector<float> a(ref.size(), -7.0f), b(ref.size(), -7.0f);
      nd::swigluCpu(in.data(), s.rows, s.hidden, s.ldIn, a.data(), s.ldOut, nullptr);
      nd::swigluCpu(in.data(), s.rows, s.hidden, s.ldIn, b.data(), s.ldOut, &pool);
      CHECK(sameBits(a, b));
      CHECK(countFar(a, ref, 3e-6, "swiglu") == 0);  // padding stays -7 in both
      if (isa == CpuIsa::Baseline) baseline = a;
      else CHECK(sameBits(a, baseline));
    });
  }
  const float in[4] = {1.0f, -2.0f, 3.0f, 0.5f};  // gate [1, -2], up [3, 0.5]
  float out[2];
  nd::swigluCpu(in, 1, 2, 4, out, 2, nullptr);
  CHECK_NEAR(out[0], 0.73105857863 * 3, 6e-7);
  CHECK_NEAR(out[1], -0.23840584404 * 0.5, 2e-7);
}

// ---- patchify / unpatchify -----------------------------------------------------------------------

ND_TEST(patchify_matches_reference) {
  nd::ThreadPool pool(2);
  struct Shape { int64_t n, c, h, w, p; };
  for (Shape s : {Shape{2, 3, 6, 10, 2}, Shape{1, 4, 32, 32, 2}, Shape{3, 1, 9, 6, 3}, Shape{1, 2, 5, 3, 1},
                  Shape{2, 4, 64, 64, 4}}) {
    int64_t total = s.n * s.c * s.h * s.w;
    auto x = randomVec(size_t(total), 51u);
    std::vector<float> ref(static_cast<size_t>(total)), a(static_cast<size_t>(total)), b(static_cast<size_t>(total));
    nd::patchifyReference(x.data(), s.n, s.c, s.h, s.w, s.p, ref.data());
    nd::patchifyCpu(x.data(), s.n, s.c, s.h, s.w, s.p, a.data(), nullptr);
    nd::patchifyCpu(x.data(), s.n, s.c, s.h, s.w, s.p, b.data(), &pool);
    CHECK(sameBits(a, ref));
    CHECK(sameBits(b, ref));
    nd::unpatchifyReference(x.data(), s.n, s.c, s.h, s.w, s.p, ref.data());
    nd::unpatchifyCpu(x.data(), s.n, s.c, s.h, s.w, s.p, a.data(), nullptr);
    nd::unpatchifyCpu(x.data(), s.n, s.c, s.h, s.w, s.p, b.data(), &pool);
    CHECK(sameBits(a, ref));
    CHECK(sameBits(b, ref));

    // Round trip: patchify, move each row from (ch, pi, qj) to (pi, qj, ch), unpatchify.
    std::vector<float> tok(static_cast<size_t>(total)), moved(static_cast<size_t>(total)), back(static_cast<size_t>(total));
    nd::patchifyCpu(x.data(), s.n, s.c, s.h, s.w, s.p, tok.data(), &pool);
    int64_t rowLen = s.c * s.p * s.p, rowsN = total / rowLen;
    for (int64_t t = 0; t < rowsN; ++t)
      for (int64_t ch = 0; ch < s.c; ++ch)
        for (int64_t k = 0; k < s.p * s.p; ++k)
          moved[size_t(t * rowLen + k * s.c + ch)] = tok[size_t(t * rowLen + ch * s.p * s.p + k)];
    nd::unpatchifyCpu(moved.data(), s.n, s.c, s.h, s.w, s.p, back.data(), &pool);
    CHECK(sameBits(back, x));
    // Without the reorder the two orders only coincide for one channel (or 1 x 1 patches).
    nd::unpatchifyCpu(tok.data(), s.n, s.c, s.h, s.w, s.p, back.data(), nullptr);
    CHECK(sameBits(back, x) == (s.c == 1 || s.p == 1));
  }
}

ND_TEST(patchify_hand_checked_1x2x4x4_p2) {
  // x[ch][y][x] = 100 ch + 10 y + x.
  float x[32];
  for (int ch = 0; ch < 2; ++ch)
    for (int y = 0; y < 4; ++y)
      for (int xx = 0; xx < 4; ++xx) x[ch * 16 + y * 4 + xx] = float(100 * ch + 10 * y + xx);
  float tok[32];
  nd::patchifyCpu(x, 1, 2, 4, 4, 2, tok, nullptr);
  // Token order (r, c): (0,0), (0,1), (1,0), (1,1); in-row order (ch, pi, qj).
  const float want[32] = {0,  1,  10, 11, 100, 101, 110, 111,   //
                          2,  3,  12, 13, 102, 103, 112, 113,   //
                          20, 21, 30, 31, 120, 121, 130, 131,   //
                          22, 23, 32, 33, 122, 123, 132, 133};
  for (int i = 0; i < 32; ++i) CHECK(tok[i] == want[i]);

  // unpatchify reads rows in (pi, qj, ch) order: tokens[t][j] = 1000 t + j.
  float rows[32], img[32];
  for (int t = 0; t < 4; ++t)
    for (int j = 0; j < 8; ++j) rows[t * 8 + j] = float(1000 * t + j);
  nd::unpatchifyCpu(rows, 1, 2, 4, 4, 2, img, nullptr);
  const float wantImg[32] = {
      // channel 0
      0, 2, 1000, 1002,      //
      4, 6, 1004, 1006,      //
      2000, 2002, 3000, 3002,  //
      2004, 2006, 3004, 3006,  //
      // channel 1
      1, 3, 1001, 1003,      //
      5, 7, 1005, 1007,      //
      2001, 2003, 3001, 3003,  //
      2005, 2007, 3005, 3007};
  for (int i = 0; i < 32; ++i) CHECK(img[i] == wantImg[i]);
}

// ---- sin-cos embeddings --------------------------------------------------------------------------

ND_TEST(sincos_pos_embed_matches_reference) {
  struct Shape { int64_t gh, gw, dim; };
  for (Shape s : {Shape{2, 3, 8}, Shape{16, 16, 1152}, Shape{3, 5, 12}, Shape{1, 1, 4}, Shape{7, 2, 64}}) {
    size_t n = size_t(s.gh * s.gw * s.dim);
    std::vector<float> a(n);
    std::vector<double> ref(n);
    nd::sincosPosEmbed2d(s.gh, s.gw, s.dim, a.data());
    nd::sincosPosEmbed2dReference(s.gh, s.gw, s.dim, ref.data());
    int bad = 0;
    for (size_t i = 0; i < n; ++i) bad += !(std::fabs(double(a[i]) - ref[i]) <= 6e-8);
    CHECK(bad == 0);
  }
  // 2 x 3 grid, dim 8: w = [1, 0.01]; token (r = 1, c = 2) is index 5.
  float t[2 * 3 * 8];
  nd::sincosPosEmbed2d(2, 3, 8, t);
  const double want[8] = {std::sin(2.0), std::sin(0.02), std::cos(2.0), std::cos(0.02),
                          std::sin(1.0), std::sin(0.01), std::cos(1.0), std::cos(0.01)};
  for (int j = 0; j < 8; ++j) CHECK(t[5 * 8 + j] == float(want[j]));
  const float origin[8] = {0, 0, 1, 1, 0, 0, 1, 1};
  for (int j = 0; j < 8; ++j) CHECK(t[j] == origin[j]);
  // Token (r = 0, c = 1): column 1 in the first half, row 0 in the second.
  const double want01[8] = {std::sin(1.0), std::sin(0.01), std::cos(1.0), std::cos(0.01), 0, 0, 1, 1};
  for (int j = 0; j < 8; ++j) CHECK(t[1 * 8 + j] == float(want01[j]));
}

ND_TEST(sincos_pos_embed_transpose_relation) {
  // Token (r, c) of a gh x gw grid = [col c | row r]; token (c, r) of the gw x gh grid = [col r | row c].
  const int64_t gh = 3, gw = 5, dim = 16, half = dim / 2;
  std::vector<float> a(size_t(gh * gw * dim)), b(size_t(gw * gh * dim)), sq(size_t(5 * 5 * dim));
  nd::sincosPosEmbed2d(gh, gw, dim, a.data());
  nd::sincosPosEmbed2d(gw, gh, dim, b.data());
  nd::sincosPosEmbed2d(5, 5, dim, sq.data());
  bool ok = true;
  for (int64_t r = 0; r < gh; ++r)
    for (int64_t c = 0; c < gw; ++c) {
      const float* ta = &a[size_t((r * gw + c) * dim)];
      const float* tb = &b[size_t((c * gh + r) * dim)];
      const float* ts = &sq[size_t((r * 5 + c) * dim)];  // the square grid holds the same token
      ok = ok && std::memcmp(ta, tb + half, size_t(half) * sizeof(float)) == 0;
      ok = ok && std::memcmp(ta + half, tb, size_t(half) * sizeof(float)) == 0;
      ok = ok && std::memcmp(ta, ts, size_t(dim) * sizeof(float)) == 0;
    }
  CHECK(ok);
}

ND_TEST(timestep_embedding_matches_reference) {
  const float ts[] = {0.0f, 1.0f, 17.5f, 250.25f, 999.0f, 0.001f};
  const int64_t n = 6;
  std::vector<double> td(ts, ts + n);
  for (int64_t dim : {256, 255, 2, 3, 1, 64})
    for (int shift : {0, 1}) {
      if (dim / 2 <= shift) continue;
      std::vector<float> a(size_t(n * dim), -5.0f);
      std::vector<double> ref(size_t(n * dim));
      nd::timestepEmbedding(ts, n, dim, 10000.0, shift, a.data());
      nd::timestepEmbeddingReference(td.data(), n, dim, 10000.0, shift, ref.data());
      int bad = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < dim; ++j) {
          // float32 arguments: |t f| carries a few ulp of error.
          double tol = 4e-7 * std::fabs(double(ts[i])) + 3e-7;
          bad += !(std::fabs(double(a[size_t(i * dim + j)]) - ref[size_t(i * dim + j)]) <= tol);
        }
      CHECK(bad == 0);
      if (dim % 2) {
        for (int64_t i = 0; i < n; ++i) CHECK(a[size_t(i * dim + dim - 1)] == 0.0f);
      }
    }
  // t = 0: [1 ... 1, 0 ... 0].
  float z[10];
  const float zero = 0.0f;
  nd::timestepEmbedding(&zero, 1, 10, 10000.0, 0, z);
  for (int j = 0; j < 5; ++j) CHECK(z[j] == 1.0f);
  for (int j = 5; j < 10; ++j) CHECK(z[j] == 0.0f);
  // dim 4, shift 0: freqs [1, 0.01]; t = 3 -> [cos 3, cos 0.03, sin 3, sin 0.03].
  float e[4];
  const float three = 3.0f;
  nd::timestepEmbedding(&three, 1, 4, 10000.0, 0, e);
  CHECK_NEAR(e[0], std::cos(3.0), 1e-7);
  CHECK_NEAR(e[1], std::cos(0.03), 1e-7);
  CHECK_NEAR(e[2], std::sin(3.0), 1e-7);
  CHECK_NEAR(e[3], std::sin(0.03), 1e-7);
  // Shift 1, dim 4: freqs [1, 1e-4].
  nd::timestepEmbedding(&three, 1, 4, 10000.0, 1, e);
  CHECK_NEAR(e[1], std::cos(3e-4), 1e-7);
  CHECK_NEAR(e[3], std::sin(3e-4), 1e-7);
}

// ---- softmax / top-k -----------------------------------------------------------------------------

ND_TEST(softmax_rows_matches_reference) {
  nd::ThreadPool pool(2);
  for (int64_t cols : {1, 3, 8, 17, 64}) {
    const int64_t rows = 1000;
    auto x = randomVec(size_t(rows * cols), 61u + uint32_t(cols), -8.0f, 8.0f);
    x[0] = 1000.0f;  // no overflow after the max subtraction
    std::vector<float> ref(x.size()), a(x.size()), b(x.size());
    nd::softmaxRowsReference(x.data(), rows, cols, ref.data());
    nd::softmaxRowsCpu(x.data(), rows, cols, a.data(), nullptr);
    nd::softmaxRowsCpu(x.data(), rows, cols, b.data(), &pool);
    CHECK(sameBits(a, b));
    std::vector<float> c = x;
    nd::softmaxRowsCpu(c.data(), rows, cols, c.data(), &pool);
    CHECK(sameBits(a, c));
    int bad = 0;
    for (size_t i = 0; i < a.size(); ++i) bad += !(std::fabs(double(a[i]) - double(ref[i])) <= 1e-6 * ref[i] + 1e-9);
    CHECK(bad == 0);
    double sum = 0;
    for (int64_t j = 0; j < cols; ++j) sum += a[size_t(cols + j)];
    CHECK_NEAR(sum, 1.0, 1e-6);
  }
}

ND_TEST(topk_matches_reference_and_ties) {
  nd::ThreadPool pool(2);
  for (int64_t cols : {1, 5, 8, 16, 64})
    for (int64_t k : {int64_t(1), int64_t(2), cols}) {
      if (k > cols) continue;
      const int64_t rows = 1500;
      // Few distinct values, so ties are common.
      auto x = randomVec(size_t(rows * cols), 71u + uint32_t(cols * 3 + k), 0.0f, 6.0f);
      for (auto& v : x) v = std::floor(v);
      std::vector<int32_t> ri(size_t(rows * k)), ai(ri.size()), bi(ri.size());
      std::vector<float> rv(ri.size()), av(ri.size()), bv(ri.size());
      nd::topkReference(x.data(), rows, cols, k, ri.data(), rv.data());
      nd::topkCpu(x.data(), rows, cols, k, ai.data(), av.data(), nullptr);
      nd::topkCpu(x.data(), rows, cols, k, bi.data(), bv.data(), &pool);
      CHECK(ai == ri && bi == ri);
      CHECK(sameBits(av, rv) && sameBits(bv, rv));
    }
  const float row[5] = {1, 3, 3, 2, 3};
  int32_t idx[4];
  float val[4];
  nd::topkCpu(row, 1, 5, 3, idx, val, nullptr);
  CHECK(idx[0] == 1 && idx[1] == 2 && idx[2] == 4);
  CHECK(val[0] == 3 && val[1] == 3 && val[2] == 3);
  nd::topkCpu(row, 1, 5, 4, idx, val, nullptr);
  CHECK(idx[0] == 1 && idx[1] == 2 && idx[2] == 4 && idx[3] == 3 && val[3] == 2);
  const float flat[4] = {0.5f, 0.5f, 0.5f, 0.5f};
  nd::topkCpu(flat, 1, 4, 4, idx, val, nullptr);
  CHECK(idx[0] == 0 && idx[1] == 1 && idx[2] == 2 && idx[3] == 3);
  const float desc[4] = {4, 3, 2, 1};
  nd::topkCpu(desc, 1, 4, 2, idx, val, nullptr);
  CHECK(idx[0] == 0 && idx[1] == 1 && val[0] == 4 && val[1] == 3);
  // NaN does not break the ordering (it ranks first, as in torch.topk); -0 ties with +0.
  const float odd[5] = {1, NAN, -0.0f, 0.0f, 2};
  nd::topkCpu(odd, 1, 5, 4, idx, val, nullptr);
  CHECK(idx[0] == 1 && idx[1] == 4 && idx[2] == 0 && idx[3] == 2);
}

// ---- argument errors and empty inputs --------------------------------------------------------------

ND_TEST(argument_errors_throw_arg) {
  float buf[64] = {};
  int32_t ib[8] = {};
  CHECK_THROWS_CODE(nd::layerNormModulateCpu(buf, -1, 1, 4, nullptr, nullptr, 0, 1e-6f, buf, nullptr), Arg);
  CHECK_THROWS_CODE(nd::layerNormModulateCpu(nullptr, 1, 1, 4, nullptr, nullptr, 0, 1e-6f, buf, nullptr), Arg);
  CHECK_THROWS_CODE(nd::layerNormModulateCpu(buf, 1, 1, 4, nullptr, nullptr, 0, -1.0f, buf, nullptr), Arg);
  CHECK_THROWS_CODE(nd::layerNormModulateCpu(buf, 1, 1, 4, buf, buf, -4, 1e-6f, buf, nullptr), Arg);
  CHECK_THROWS_CODE(nd::layerNormModulateCpu(buf, INT64_MAX, 2, 4, nullptr, nullptr, 0, 1e-6f, buf, nullptr), Arg);
  CHECK_THROWS_CODE(nd::headLayerNormCpu(buf, 1, 1, 4, nullptr, nullptr, buf, nullptr, 1e-6f, nullptr), Arg);
  CHECK_THROWS_CODE(nd::headLayerNormCpu(buf, 1, -1, 4, buf, nullptr, buf, nullptr, 1e-6f, nullptr), Arg);
  CHECK_THROWS_CODE(nd::gatedResidualCpu(buf, nullptr, 1, 1, 4, nullptr, 0, nullptr), Arg);
  CHECK_THROWS_CODE(nd::gatedResidualCpu(buf, buf, 1, -2, 4, nullptr, 0, nullptr), Arg);
  CHECK_THROWS_CODE(nd::geluTanhCpu(buf, buf, -1, nullptr), Arg);
  CHECK_THROWS_CODE(nd::geluTanhCpu(nullptr, buf, 4, nullptr), Arg);
  CHECK_THROWS_CODE(nd::siluCpu(buf, nullptr, 4, nullptr), Arg);
  CHECK_THROWS_CODE(nd::siluCpu(buf, buf, -3, nullptr), Arg);
  CHECK_THROWS_CODE(nd::swigluCpu(buf, 2, 4, 7, buf, 4, nullptr), Arg);   // ldIn < 2 hidden
  CHECK_THROWS_CODE(nd::swigluCpu(buf, 2, 4, 8, buf, 3, nullptr), Arg);   // ldOut < hidden
  CHECK_THROWS_CODE(nd::swigluCpu(buf, -1, 4, 8, buf, 4, nullptr), Arg);
  CHECK_THROWS_CODE(nd::swigluCpu(nullptr, 1, 4, 8, buf, 4, nullptr), Arg);
  CHECK_THROWS_CODE(nd::patchifyCpu(buf, 1, 1, 4, 5, 2, buf, nullptr), Arg);   // w % p
  CHECK_THROWS_CODE(nd::patchifyCpu(buf, 1, 1, 3, 4, 2, buf, nullptr), Arg);   // h % p
  CHECK_THROWS_CODE(nd::patchifyCpu(buf, 1, 1, 4, 4, 0, buf, nullptr), Arg);   // p = 0
  CHECK_THROWS_CODE(nd::patchifyCpu(buf, -1, 1, 4, 4, 2, buf, nullptr), Arg);
  CHECK_THROWS_CODE(nd::unpatchifyCpu(buf, 1, 1, 6, 4, 4, buf, nullptr), Arg);
  CHECK_THROWS_CODE(nd::unpatchifyCpu(nullptr, 1, 1, 4, 4, 2, buf, nullptr), Arg);
  CHECK_THROWS_CODE(nd::sincosPosEmbed2d(2, 2, 6, buf), Arg);  // dim % 4
  CHECK_THROWS_CODE(nd::sincosPosEmbed2d(-1, 2, 8, buf), Arg);
  CHECK_THROWS_CODE(nd::sincosPosEmbed2d(2, 2, 8, nullptr), Arg);
  CHECK_THROWS_CODE(nd::timestepEmbedding(buf, 1, 8, 0.0, 0, buf), Arg);
  CHECK_THROWS_CODE(nd::timestepEmbedding(buf, 1, 2, 10000.0, 1, buf), Arg);  // half == shift
  CHECK_THROWS_CODE(nd::timestepEmbedding(buf, -1, 8, 10000.0, 0, buf), Arg);
  CHECK_THROWS_CODE(nd::timestepEmbedding(nullptr, 1, 8, 10000.0, 0, buf), Arg);
  CHECK_THROWS_CODE(nd::softmaxRowsCpu(buf, -1, 4, buf, nullptr), Arg);
  CHECK_THROWS_CODE(nd::softmaxRowsCpu(nullptr, 1, 4, buf, nullptr), Arg);
  CHECK_THROWS_CODE(nd::topkCpu(buf, 1, 4, 0, ib, buf, nullptr), Arg);
  CHECK_THROWS_CODE(nd::topkCpu(buf, 1, 4, 5, ib, buf, nullptr), Arg);
  CHECK_THROWS_CODE(nd::topkCpu(buf, 1, 0, 1, ib, buf, nullptr), Arg);
  CHECK_THROWS_CODE(nd::topkCpu(buf, 1, 4, 2, nullptr, buf, nullptr), Arg);
  CHECK_THROWS_CODE(nd::topkReference(buf, 1, 4, 5, ib, buf), Arg);
  CHECK_THROWS_CODE(nd::patchifyReference(buf, 1, 1, 4, 5, 2, buf), Arg);
}

ND_TEST(empty_inputs_are_no_ops) {
  nd::ThreadPool pool(2);
  nd::layerNormModulateCpu(nullptr, 0, 5, 8, nullptr, nullptr, 0, 1e-6f, nullptr, &pool);
  nd::layerNormModulateCpu(nullptr, 2, 5, 0, nullptr, nullptr, 0, 1e-6f, nullptr, &pool);
  nd::headLayerNormCpu(nullptr, 0, 2, 4, nullptr, nullptr, nullptr, nullptr, 1e-6f, &pool);
  nd::gatedResidualCpu(nullptr, nullptr, 0, 3, 3, nullptr, 0, &pool);
  nd::geluTanhCpu(nullptr, nullptr, 0, &pool);
  nd::siluCpu(nullptr, nullptr, 0, &pool);
  nd::swigluCpu(nullptr, 0, 4, 8, nullptr, 4, &pool);
  nd::patchifyCpu(nullptr, 0, 3, 4, 4, 2, nullptr, &pool);
  nd::unpatchifyCpu(nullptr, 1, 3, 0, 4, 2, nullptr, &pool);
  nd::sincosPosEmbed2d(0, 4, 8, nullptr);
  nd::timestepEmbedding(nullptr, 0, 8, 10000.0, 0, nullptr);
  nd::softmaxRowsCpu(nullptr, 0, 4, nullptr, &pool);
  nd::topkCpu(nullptr, 0, 4, 2, nullptr, nullptr, &pool);
  CHECK(true);
}

ND_TEST_MAIN()
