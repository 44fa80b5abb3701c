// attentionCpu: both paths (portable flash, AVX-512) against the f64 full-row reference over a grid of
// batch/tokens/heads/headDim, with and without a pool; large-logit stability; a max that grows late
// (accumulator rescaling); dispatch under ND_CPU_ISA-style ISA switches; argument validation.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "check.h"
#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/cpu/attention.h"

using nd::CpuIsa;

namespace {

struct Shape { int64_t batch, tokens, heads, dim; };

std::vector<float> randomQkv(const Shape& s, uint32_t seed, float sd = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, sd);
  std::vector<float> x(size_t(s.batch * s.tokens * 3 * s.heads * s.dim));
  for (float& v : x) v = nd(rng);
  return x;
}

using Fn = void (*)(const float*, int64_t, int64_t, int64_t, int64_t, float, float*, nd::ThreadPool*);

struct Path { const char* name; Fn fn; };

std::vector<Path> paths() {
  std::vector<Path> p{{"portable", &nd::detail::attentionPortable}, {"dispatch", &nd::attentionCpu}};
  if (nd::detail::attentionAvx512Supported()) p.push_back({"avx512", &nd::detail::attentionAvx512});
  return p;
}

// max |a - ref| / max |ref| (0 when ref is all zero and a equals it); -1 on a non-finite value.
double relError(const std::vector<float>& a, const std::vector<float>& ref) {
  double maxRef = 0, maxDiff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return -1;
    maxRef = std::max(maxRef, std::fabs(double(ref[i])));
    maxDiff = std::max(maxDiff, std::fabs(double(a[i]) - double(ref[i])));
  }
  return maxRef > 0 ? maxDiff / maxRef : maxDiff;
}

double gWorst[3] = {0, 0, 0};  // worst relative error seen per path (printed by the grid test)

void checkAgainstReference(const Shape& s, const std::vector<float>& qkv, float scale, double tol,
                           nd::ThreadPool* pool) {
  std::vector<float> ref(size_t(s.batch * s.tokens * s.heads * s.dim));
  nd::attentionReference(qkv.data(), s.batch, s.tokens, s.heads, s.dim, scale, ref.data());
  const std::vector<Path> ps = paths();
  for (size_t k = 0; k < ps.size(); ++k) {
    const Path& p = ps[k];
    std::vector<float> out(ref.size(), std::nanf(""));
    p.fn(qkv.data(), s.batch, s.tokens, s.heads, s.dim, scale, out.data(), pool);
    double e = relError(out, ref);
    gWorst[k] = std::max(gWorst[k], e);
    if (!(e >= 0 && e <= tol) || std::getenv("ATTN_VERBOSE")) {
      std::fprintf(stderr, "  %s b=%lld t=%lld h=%lld d=%lld pool=%d: rel error %g (tol %g)\n", p.name,
                   (long long)s.batch, (long long)s.tokens, (long long)s.heads, (long long)s.dim,
                   pool ? pool->threads() : 0, e, tol);
      CHECK(e >= 0 && e <= tol);
    }
  }
}

}  // namespace

ND_TEST(attention_paths_available) {
  std::printf("  avx512 path %s\n", nd::detail::attentionAvx512Supported() ? "supported" : "not supported");
  CHECK(paths().size() >= 2);
}

ND_TEST(attention_grid_vs_reference) {
  nd::ThreadPool pool(2);
  uint32_t seed = 1;
  const int64_t dims[] = {1, 7, 64, 72, 88, 128};
  for (int64_t tokens : {1, 3, 17, 64, 257})
    for (int64_t heads : {1, 3})
      for (int64_t dim : dims) {
        Shape s{tokens <= 17 ? 2 : 1, tokens, heads, dim};
        auto qkv = randomQkv(s, seed++);
        checkAgainstReference(s, qkv, float(1.0 / std::sqrt(double(dim))), 2e-6, (seed & 1) ? &pool : nullptr);
      }
  // Wider and longer ones: 16 heads, 1024 tokens, two samples.
  for (Shape s : {Shape{2, 64, 16, 72}, Shape{1, 257, 16, 64}, Shape{1, 1024, 1, 72}, Shape{1, 1024, 3, 64},
                  Shape{2, 1024, 1, 128}, Shape{1, 1024, 1, 88}, Shape{1, 1024, 1, 7}}) {
    auto qkv = randomQkv(s, seed++);
    checkAgainstReference(s, qkv, float(1.0 / std::sqrt(double(s.dim))), 2e-6, &pool);
  }
  const std::vector<Path> ps = paths();
  for (size_t k = 0; k < ps.size(); ++k) std::printf("  %s: worst error %.3g of max|out|\n", ps[k].name, gWorst[k]);
}

ND_TEST(attention_pool_matches_inline) {
  // Tasks are independent, so the split over threads must not change a single bit.
  nd::ThreadPool pool(2);
  Shape s{2, 97, 3, 72};
  auto qkv = randomQkv(s, 77);
  for (const Path& p : paths()) {
    std::vector<float> a(size_t(s.batch * s.tokens * s.heads * s.dim)), b(a.size());
    p.fn(qkv.data(), s.batch, s.tokens, s.heads, s.dim, 0.1178511f, a.data(), nullptr);
    p.fn(qkv.data(), s.batch, s.tokens, s.heads, s.dim, 0.1178511f, b.data(), &pool);
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
  }
}

ND_TEST(attention_large_logits) {
  // Scores up to about +-1e4: the max subtraction must keep everything finite; the f32 score itself
  // carries an absolute error of ~1e4 * 2^-24 * sqrt(dim), so the tolerance is looser than usual.
  Shape s{1, 200, 2, 64};
  auto qkv = randomQkv(s, 5, 1.0f);
  const int64_t row = 3 * s.heads * s.dim;
  for (int64_t t = 0; t < s.tokens; ++t)
    for (int64_t c = 0; c < 2 * s.heads * s.dim; ++c) qkv[size_t(t * row + c)] *= 35.0f;  // q and k
  double maxScore = 0;
  for (int64_t i = 0; i < s.tokens; ++i)
    for (int64_t j = 0; j < s.tokens; ++j) {
      double dot = 0;
      for (int64_t c = 0; c < s.dim; ++c)
        dot += double(qkv[size_t(i * row + c)]) * qkv[size_t(j * row + s.heads * s.dim + c)];
      maxScore = std::max(maxScore, std::fabs(dot / 8.0));
    }
  std::printf("  max |score| %.0f\n", maxScore);
  CHECK(maxScore > 5e3 && maxScore < 2e4);
  checkAgainstReference(s, qkv, 0.125f, 1e-3, nullptr);

  // Every key equal and huge logits: the output is exactly the mean of v (up to rounding).
  Shape e{1, 130, 1, 72};
  std::vector<float> x = randomQkv(e, 9);
  const int64_t erow = 3 * e.dim;
  for (int64_t t = 0; t < e.tokens; ++t)
    for (int64_t c = 0; c < e.dim; ++c) {
      x[size_t(t * erow + c)] = 100.0f;           // q
      x[size_t(t * erow + e.dim + c)] = 10.0f;    // k: score 1000 * 72 * scale for every key
    }
  checkAgainstReference(e, x, 1.0f, 2e-6, nullptr);
  for (const Path& p : paths()) {
    std::vector<float> out(size_t(e.tokens * e.dim));
    p.fn(x.data(), e.batch, e.tokens, e.heads, e.dim, 1.0f, out.data(), nullptr);
    for (float v : out) CHECK(std::isfinite(v));
  }
}

ND_TEST(attention_max_grows_late) {
  // Scores rise with the key index (k_j = j * u) so the running max grows on every tile and the
  // accumulator is rescaled many times; also the reverse order (max on the first key).
  for (bool rising : {true, false}) {
    Shape s{1, 300, 1, 72};
    auto qkv = randomQkv(s, rising ? 11 : 12);
    const int64_t row = 3 * s.dim;
    for (int64_t j = 0; j < s.tokens; ++j) {
      // One non-zero product per score, so the f32 score is exact and only the softmax is tested.
      for (int64_t c = 0; c < s.dim; ++c) {
        qkv[size_t(j * row + c)] = c == 0 ? 1.0f : 0.0f;
        qkv[size_t(j * row + s.dim + c)] = c == 0 ? 0.03f * float(rising ? j : s.tokens - 1 - j) : 0.0f;
      }
    }
    checkAgainstReference(s, qkv, 1.0f, 2e-6, nullptr);
  }
}

ND_TEST(attention_dispatch_follows_isa) {
  // With the ISA lowered to baseline (what ND_CPU_ISA=baseline does) attentionCpu is the portable path.
  Shape s{1, 45, 2, 72};
  auto qkv = randomQkv(s, 21);
  const size_t n = size_t(s.batch * s.tokens * s.heads * s.dim);
  std::vector<float> portable(n), fast(n), viaCpu(n);
  nd::detail::attentionPortable(qkv.data(), 1, s.tokens, s.heads, s.dim, 0.2f, portable.data(), nullptr);
  CpuIsa saved = nd::activeIsa();
  nd::setActiveIsa(CpuIsa::Baseline);
  nd::attentionCpu(qkv.data(), 1, s.tokens, s.heads, s.dim, 0.2f, viaCpu.data(), nullptr);
  CHECK(std::memcmp(viaCpu.data(), portable.data(), n * sizeof(float)) == 0);
  if (nd::isaSupported(CpuIsa::Avx2) && nd::detail::attentionAvx512Supported()) {
    nd::setActiveIsa(CpuIsa::Avx2);
    nd::detail::attentionAvx512(qkv.data(), 1, s.tokens, s.heads, s.dim, 0.2f, fast.data(), nullptr);
    nd::attentionCpu(qkv.data(), 1, s.tokens, s.heads, s.dim, 0.2f, viaCpu.data(), nullptr);
    CHECK(std::memcmp(viaCpu.data(), fast.data(), n * sizeof(float)) == 0);
  }
  nd::setActiveIsa(saved);
  if (!nd::detail::attentionAvx512Supported())
    CHECK_THROWS_CODE(nd::detail::attentionAvx512(qkv.data(), 1, 1, 1, 1, 1.0f, fast.data(), nullptr), Device);
}

ND_TEST(attention_arguments) {
  float buf[64] = {};
  for (const Path& p : paths()) {
    CHECK_THROWS_CODE(p.fn(buf, -1, 1, 1, 1, 1.0f, buf, nullptr), Arg);
    CHECK_THROWS_CODE(p.fn(buf, 1, -1, 1, 1, 1.0f, buf, nullptr), Arg);
    CHECK_THROWS_CODE(p.fn(buf, 1, 1, -1, 1, 1.0f, buf, nullptr), Arg);
    CHECK_THROWS_CODE(p.fn(buf, 1, 1, 1, -1, 1.0f, buf, nullptr), Arg);
    CHECK_THROWS_CODE(p.fn(nullptr, 1, 1, 1, 1, 1.0f, buf, nullptr), Arg);
    CHECK_THROWS_CODE(p.fn(buf, 1, 1, 1, 1, 1.0f, nullptr, nullptr), Arg);
    CHECK_THROWS_CODE(p.fn(buf, int64_t(1) << 40, int64_t(1) << 40, 1, 1, 1.0f, buf, nullptr), Arg);
    // Nothing to do: returns without reading or writing (null pointers allowed).
    p.fn(nullptr, 0, 5, 2, 8, 1.0f, nullptr, nullptr);
    p.fn(nullptr, 3, 0, 2, 8, 1.0f, nullptr, nullptr);
    p.fn(nullptr, 3, 5, 0, 8, 1.0f, nullptr, nullptr);
    p.fn(nullptr, 3, 5, 2, 0, 1.0f, nullptr, nullptr);
  }
  CHECK_THROWS_CODE(nd::attentionReference(buf, 1, 1, 1, -1, 1.0f, buf), Arg);
  CHECK_THROWS_CODE(nd::attentionReference(nullptr, 1, 1, 1, 1, 1.0f, buf), Arg);
  // One token: softmax over a single key, out = v exactly.
  const float one[9] = {0.5f, -1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 7.0f, -8.0f, 9.0f};  // q | k | v, dim 3
  for (const Path& p : paths()) {
    float o[3] = {};
    p.fn(one, 1, 1, 1, 3, 0.5f, o, nullptr);
    CHECK(o[0] == 7.0f && o[1] == -8.0f && o[2] == 9.0f);
  }
}

ND_TEST_MAIN()
