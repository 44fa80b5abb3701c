#include "kernels/cpu/swiglu.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <string>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/model_kernels_avx512.h"
#include "kernels/cpu/model_kernels_impl.h"

namespace nd {

namespace {

void checkArgs(const float* in, int64_t rows, int64_t hidden, int64_t ldIn, const float* out, int64_t ldOut) {
  ND_REQUIRE(rows >= 0 && hidden >= 0, Arg,
             "swiglu: sizes must be >= 0 (rows " + std::to_string(rows) + ", hidden " + std::to_string(hidden) + ")");
  ND_REQUIRE(hidden <= INT64_MAX / 2 && ldIn >= 2 * hidden && ldOut >= hidden, Arg,
             "swiglu: need ldIn >= 2 * hidden and ldOut >= hidden (hidden " + std::to_string(hidden) + ", ldIn " +
                 std::to_string(ldIn) + ", ldOut " + std::to_string(ldOut) + ")");
  int64_t a = 0, b = 0;
  ND_REQUIRE(!__builtin_mul_overflow(rows, ldIn, &a) && !__builtin_mul_overflow(rows, ldOut, &b), Arg,
             "swiglu: rows * ld overflows");
  if (rows > 0 && hidden > 0) ND_REQUIRE(in && out, Arg, "swiglu: in and out must not be null");
}

}  // namespace

void swigluCpu(const float* in, int64_t rows, int64_t hidden, int64_t ldIn, float* out, int64_t ldOut,
               ThreadPool* pool) {
  checkArgs(in, rows, hidden, ldIn, out, ldOut);
  if (rows == 0 || hidden == 0) return;
  bool avx = mk::modelKernelsUseAvx512();
  auto body = [&](int64_t r0, int64_t r1) {
    if (avx)
      mk::swigluRowsAvx512(in, r0, r1, hidden, ldIn, out, ldOut);
    else
      mk::swigluRows(in, r0, r1, hidden, ldIn, out, ldOut);
  };
  int64_t grain = std::max<int64_t>(1, 16384 / hidden);
  parallelForOrInline(pool, rows, grain, body);
}

void swigluReference(const float* in, int64_t rows, int64_t hidden, int64_t ldIn, float* out,
                     int64_t ldOut) {
  checkArgs(in, rows, hidden, ldIn, out, ldOut);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < hidden; ++j) {
      double g = in[r * ldIn + j], u = in[r * ldIn + hidden + j];
      out[r * ldOut + j] = float(g / (1.0 + std::exp(-g)) * u);
    }
}

}  // namespace nd
