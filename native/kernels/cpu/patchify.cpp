#include "kernels/cpu/patchify.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/thread_pool.h"

namespace nd {

namespace {

void checkArgs(const char* op, const float* src, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p,
               const float* dst) {
  ND_REQUIRE(n >= 0 && c >= 0 && h >= 0 && w >= 0, Arg,
             std::string(op) + ": sizes must be >= 0 (n " + std::to_string(n) + ", c " + std::to_string(c) +
                 ", h " + std::to_string(h) + ", w " + std::to_string(w) + ")");
  ND_REQUIRE(p >= 1, Arg, std::string(op) + ": patch size must be >= 1, received " + std::to_string(p));
  ND_REQUIRE(h % p == 0 && w % p == 0, Arg,
             std::string(op) + ": h and w must be multiples of p (h " + std::to_string(h) + ", w " +
                 std::to_string(w) + ", p " + std::to_string(p) + ")");
  int64_t a = 0, b = 0, total = 0;
  ND_REQUIRE(!__builtin_mul_overflow(n, c, &a) && !__builtin_mul_overflow(a, h, &b) &&
                 !__builtin_mul_overflow(b, w, &total),
             Arg, std::string(op) + ": n * c * h * w overflows");
  if (total > 0) ND_REQUIRE(src && dst, Arg, std::string(op) + ": input and output must not be null");
}

// Grain in patch-grid rows (b, r) so that one chunk moves about 16K floats.
int64_t gridRowGrain(int64_t c, int64_t w, int64_t p) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, c * w * p)); }

}  // namespace

void patchifyCpu(const float* x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, float* out,
                 ThreadPool* pool) {
  checkArgs("patchify", x, n, c, h, w, p, out);
  if (n * c * h * w == 0) return;
  const int64_t gh = h / p, gw = w / p, rowLen = c * p * p;
  // One unit of work: the gw tokens of patch-grid row r of image b.
  auto body = [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      int64_t b = u / gh, r = u % gh;
      for (int64_t cc = 0; cc < gw; ++cc) {
        float* dst = out + ((b * gh + r) * gw + cc) * rowLen;
        for (int64_t ch = 0; ch < c; ++ch)
          for (int64_t pi = 0; pi < p; ++pi) {
            const float* src = x + ((b * c + ch) * h + r * p + pi) * w + cc * p;
            std::memcpy(dst + (ch * p + pi) * p, src, size_t(p) * sizeof(float));
          }
      }
    }
  };
  int64_t units = n * gh, grain = gridRowGrain(c, w, p);
  parallelForOrInline(pool, units, grain, body);
}

void unpatchifyCpu(const float* tokens, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, float* out,
                   ThreadPool* pool) {
  checkArgs("unpatchify", tokens, n, c, h, w, p, out);
  if (n * c * h * w == 0) return;
  const int64_t gh = h / p, gw = w / p, rowLen = p * p * c;
  // One unit: patch-grid row r of image b, i.e. image rows [r p, r p + p) of every channel.
  auto body = [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      int64_t b = u / gh, r = u % gh;
      const float* rowTokens = tokens + (b * gh + r) * gw * rowLen;
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t pi = 0; pi < p; ++pi) {
          float* dst = out + ((b * c + ch) * h + r * p + pi) * w;
          for (int64_t cc = 0; cc < gw; ++cc) {
            const float* src = rowTokens + cc * rowLen + pi * p * c + ch;
            for (int64_t qj = 0; qj < p; ++qj) dst[cc * p + qj] = src[qj * c];
          }
        }
    }
  };
  int64_t units = n * gh, grain = gridRowGrain(c, w, p);
  parallelForOrInline(pool, units, grain, body);
}

void patchifyReference(const float* x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, float* out) {
  checkArgs("patchify", x, n, c, h, w, p, out);
  // Walk the image and send every pixel to its place.
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t xx = 0; xx < w; ++xx) {
          int64_t token = (y / p) * (w / p) + xx / p;
          int64_t inRow = ch * p * p + (y % p) * p + xx % p;
          out[(b * (h / p) * (w / p) + token) * (c * p * p) + inRow] = x[((b * c + ch) * h + y) * w + xx];
        }
}

void unpatchifyReference(const float* tokens, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p,
                         float* out) {
  checkArgs("unpatchify", tokens, n, c, h, w, p, out);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t xx = 0; xx < w; ++xx) {
          int64_t token = (y / p) * (w / p) + xx / p;
          int64_t inRow = ((y % p) * p + xx % p) * c + ch;
          out[((b * c + ch) * h + y) * w + xx] = tokens[(b * (h / p) * (w / p) + token) * (c * p * p) + inRow];
        }
}

}  // namespace nd
