// Minimal assertion harness for the native unit tests (each test file is one ctest executable).
// Kept tiny on purpose: ctest is the runner, these macros only count and report failures.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"

namespace ndtest {

struct Case { const char* name; std::function<void()> fn; };
inline std::vector<Case>& cases() { static std::vector<Case> c; return c; }
inline int& failures() { static int f = 0; return f; }
struct Register { Register(const char* n, std::function<void()> f) { cases().push_back({n, std::move(f)}); } };

inline int runAll() {
  int failedCases = 0;
  for (auto& c : cases()) {
    int before = failures();
    try {
      c.fn();
    } catch (const nd::Error& e) {
      std::fprintf(stderr, "  unexpected nd::Error %s: %s\n", nd::errorCodeName(e.code()), e.what());
      ++failures();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "  unexpected exception: %s\n", e.what());
      ++failures();
    }
    bool ok = failures() == before;
    if (!ok) ++failedCases;
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", c.name);
  }
  std::printf("%zu passed, %d failed\n", cases().size() - failedCases, failedCases);
  return failedCases == 0 ? 0 : 1;
}

}  // namespace ndtest

#define ND_TEST(name) \
  static void name(); \
  static ndtest::Register name##_reg(#name, name); \
  static void name()

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
      ++ndtest::failures();                                                      \
    }                                                                            \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                          \
  do {                                                                                 \
    double va_ = (a), vb_ = (b);                                                       \
    if (!(std::fabs(va_ - vb_) <= (tol))) {                                            \
      std::fprintf(stderr, "  %s:%d: %s=%.17g vs %s=%.17g (tol %g)\n", __FILE__, __LINE__, #a, va_, \
                   #b, vb_, (double)(tol));                                            \
      ++ndtest::failures();                                                            \
    }                                                                                  \
  } while (0)

// CHECK_THROWS_CODE(expr, Code): expr must throw nd::Error with ErrorCode::Code.
#define CHECK_THROWS_CODE(expr, code_)                                                   \
  do {                                                                                   \
    bool threw_ = false;                                                                 \
    try { (void)(expr); } catch (const nd::Error& e_) {                                  \
      threw_ = true;                                                                     \
      if (e_.code() != nd::ErrorCode::code_) {                                           \
        std::fprintf(stderr, "  %s:%d: %s threw %s (%s), expected " #code_ "\n", __FILE__, \
                     __LINE__, #expr, nd::errorCodeName(e_.code()), e_.what());          \
        ++ndtest::failures();                                                            \
      }                                                                                  \
    } catch (...) { threw_ = true; std::fprintf(stderr, "  %s:%d: foreign exception\n", __FILE__, __LINE__); ++ndtest::failures(); } \
    if (!threw_) { std::fprintf(stderr, "  %s:%d: %s did not throw\n", __FILE__, __LINE__, #expr); ++ndtest::failures(); } \
  } while (0)

// max |a - b| / max |b|: the relative error the backends' parity tolerances are stated in.
namespace ndtest {
// n floats uniform in [lo, hi) from a seeded mt19937: the inputs of the kernel tests.
inline std::vector<float> randomFloats(size_t n, uint32_t seed, float lo = -2.0f, float hi = 2.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

inline double maxRelError(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num = std::max(num, std::fabs(double(a[i]) - double(b[i])));
    den = std::max(den, std::fabs(double(b[i])));
  }
  return a.size() != b.size() ? INFINITY : den == 0 ? num : num / den;
}
}  // namespace ndtest

#define CHECK_REL(a, b, tol)                                                                           \
  do {                                                                                                 \
    const double e_ = ndtest::maxRelError(a, b);                                                       \
    if (!(e_ <= (tol))) {                                                                              \
      std::fprintf(stderr, "  %s:%d: relative error %.3g > %g\n", __FILE__, __LINE__, e_, double(tol)); \
      ++ndtest::failures();                                                                            \
    }                                                                                                  \
  } while (0)

#define ND_TEST_MAIN() int main() { return ndtest::runAll(); }
