#include "kernels/cpu/sincos_embedding.h"

#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"

namespace nd {

namespace {

void checkPos(int64_t gh, int64_t gw, int64_t dim, const void* out) {
  ND_REQUIRE(gh >= 0 && gw >= 0 && dim >= 0, Arg,
             "sincosPosEmbed2d: sizes must be >= 0 (gh " + std::to_string(gh) + ", gw " + std::to_string(gw) +
                 ", dim " + std::to_string(dim) + ")");
  ND_REQUIRE(dim % 4 == 0, Arg, "sincosPosEmbed2d: dim must be a multiple of 4, received " + std::to_string(dim));
  int64_t a = 0, total = 0;
  ND_REQUIRE(!__builtin_mul_overflow(gh, gw, &a) && !__builtin_mul_overflow(a, dim, &total), Arg,
             "sincosPosEmbed2d: gh * gw * dim overflows");
  if (total > 0) ND_REQUIRE(out != nullptr, Arg, "sincosPosEmbed2d: out must not be null");
}

void checkTime(const void* t, int64_t n, int64_t dim, double maxPeriod, int freqShift, const void* out) {
  ND_REQUIRE(n >= 0 && dim >= 0, Arg,
             "timestepEmbedding: sizes must be >= 0 (n " + std::to_string(n) + ", dim " + std::to_string(dim) + ")");
  ND_REQUIRE(std::isfinite(maxPeriod) && maxPeriod > 0, Arg,
             "timestepEmbedding: maxPeriod must be finite and > 0, received " + numberText(maxPeriod));
  int64_t half = dim / 2;
  ND_REQUIRE(freqShift >= 0 && (half == 0 || half > freqShift), Arg,
             "timestepEmbedding: freqShift must be >= 0 and < dim / 2, received " + std::to_string(freqShift));
  int64_t total = 0;
  ND_REQUIRE(!__builtin_mul_overflow(n, dim, &total), Arg, "timestepEmbedding: n * dim overflows");
  if (total > 0) ND_REQUIRE(t && out, Arg, "timestepEmbedding: t and out must not be null");
}

}  // namespace

void sincosPosEmbed2d(int64_t gh, int64_t gw, int64_t dim, float* out) {
  checkPos(gh, gw, dim, out);
  const int64_t q = dim / 4;
  if (q == 0 || gh == 0 || gw == 0) return;
  // omega_k = 1 / 10000^(k / q), as MAE's get_1d_sincos_pos_embed_from_grid computes it.
  std::vector<double> omega(static_cast<size_t>(q));
  for (int64_t k = 0; k < q; ++k) omega[size_t(k)] = 1.0 / std::pow(10000.0, double(k) / double(q));
  for (int64_t r = 0; r < gh; ++r)
    for (int64_t c = 0; c < gw; ++c) {
      float* row = out + (r * gw + c) * dim;
      for (int64_t k = 0; k < q; ++k) {
        double ac = double(c) * omega[size_t(k)], ar = double(r) * omega[size_t(k)];
        row[k] = float(std::sin(ac));
        row[q + k] = float(std::cos(ac));
        row[2 * q + k] = float(std::sin(ar));
        row[3 * q + k] = float(std::cos(ar));
      }
    }
}

void timestepEmbedding(const float* t, int64_t n, int64_t dim, double maxPeriod, int freqShift, float* out) {
  checkTime(t, n, dim, maxPeriod, freqShift, out);
  const int64_t half = dim / 2;
  // PyTorch: exp(-math.log(maxPeriod) * arange(half, float32) / (half - shift)), all in float32.
  std::vector<float> freqs(static_cast<size_t>(half));
  const float negLog = float(-std::log(maxPeriod));
  const float denom = float(half - freqShift);
  for (int64_t k = 0; k < half; ++k) freqs[size_t(k)] = std::exp(negLog * float(k) / denom);
  for (int64_t i = 0; i < n; ++i) {
    float* row = out + i * dim;
    for (int64_t k = 0; k < half; ++k) {
      float arg = t[i] * freqs[size_t(k)];
      row[k] = std::cos(arg);
      row[half + k] = std::sin(arg);
    }
    if (dim % 2) row[dim - 1] = 0.0f;
  }
}

void sincosPosEmbed2dReference(int64_t gh, int64_t gw, int64_t dim, double* out) {
  checkPos(gh, gw, dim, out);
  const int64_t q = dim / 4;
  for (int64_t tok = 0; tok < gh * gw; ++tok) {
    double pos[2] = {double(tok % gw), double(tok / gw)};  // column first, then row
    for (int64_t j = 0; j < dim; ++j) {
      int64_t part = j / q, k = j % q;
      double a = pos[part / 2] * std::exp(-std::log(10000.0) * double(k) / double(q));
      out[tok * dim + j] = part % 2 == 0 ? std::sin(a) : std::cos(a);
    }
  }
}

void timestepEmbeddingReference(const double* t, int64_t n, int64_t dim, double maxPeriod, int freqShift,
                                double* out) {
  checkTime(t, n, dim, maxPeriod, freqShift, out);
  const int64_t half = dim / 2;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < dim; ++j) {
      double v = 0.0;
      if (j < 2 * half) {
        int64_t k = j % half;
        double f = std::pow(maxPeriod, -double(k) / double(half - freqShift));
        v = j < half ? std::cos(t[i] * f) : std::sin(t[i] * f);
      }
      out[i * dim + j] = v;
    }
}

}  // namespace nd
