// The inner loops of the per-token model kernels (LayerNorm + modulate, head LayerNorm, gated
// residual, GELU-tanh, SiLU, SwiGLU), shared by the baseline build and the AVX-512 build
// (model_kernels_avx512.cpp) of the same code.
//
// Everything here has internal linkage (anonymous namespace) and uses no library templates, so the
// copies compiled with AVX-512 flags can never be picked by the linker for a baseline caller. The
// loops use only IEEE +, -, *, / and sqrt with a fixed evaluation order; with -ffp-contract=off the
// scalar, SSE and AVX-512 builds therefore produce the same bits.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace nd::mk {
namespace {

inline uint32_t floatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float bitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
// c ? a : b through bit masks: both sides are always computed, so there is no branch for the
// vectoriser to refuse (a ?: on floats would leave control flow in the loop on SSE2).
inline float selectF(bool c, float a, float b) {
  uint32_t m = 0u - uint32_t(c);
  return bitsFloat((floatBits(a) & m) | (floatBits(b) & ~m));
}

// e^x for the sigmoid-type uses below (1 + e^-v): Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2,
// then a degree-7 Taylor polynomial (truncation < 1e-8 relative), about 1 ulp over [-87, 88.3].
// Below -87 it returns 0 (the true value is < 1.7e-38), above 88.3 +inf; NaN propagates.
inline float expForSigmoid(float x) {
  float xc = selectF(x < -87.0f, -87.0f, x);  // NaN stays NaN
  xc = selectF(xc > 88.3f, 88.3f, xc);
  // Adding 1.5 * 2^23 rounds t to the nearest integer, which then sits in the low mantissa bits.
  float big = xc * 1.44269504088896341f + 12582912.0f;
  float n = big - 12582912.0f;
  float r = xc - n * 0.693145751953125f;   // ln2 high part: 16 significant bits, n * hi is exact
  r = r - n * 1.428606765330187045e-06f;   // ln2 low part
  float p = 1.98412698412698413e-04f;      // 1/7!
  p = p * r + 1.38888888888888889e-03f;    // 1/6!
  p = p * r + 8.33333333333333333e-03f;    // 1/5!
  p = p * r + 4.16666666666666667e-02f;    // 1/4!
  p = p * r + 1.66666666666666667e-01f;    // 1/3!
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  uint32_t e = (floatBits(big) - 0x4B400000u + 127u) << 23;  // 2^n, n in [-126, 127]
  float v = p * bitsFloat(e);
  v = selectF(x < -87.0f, 0.0f, v);
  return selectF(x > 88.3f, INFINITY, v);
}

// GELU, tanh form: 0.5 x (1 + tanh(u)) with u = sqrt(2/pi) (x + 0.044715 x^3). Since
// 1 + tanh(u) = 2 / (1 + e^(-2u)), this is x / (1 + e^(-2u)), with no cancellation for x < 0.
inline float geluTanhValue(float x) {
  float inner = x + 0.044715f * (x * x * x);
  float v = 1.59576912160573071f * inner;  // 2 sqrt(2/pi)
  return x / (1.0f + expForSigmoid(-v));
}

inline float siluValue(float x) { return x / (1.0f + expForSigmoid(-x)); }

inline void geluRange(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = geluTanhValue(x[i]);
}

inline void siluRange(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = siluValue(x[i]);
}

inline void swigluRows(const float* in, int64_t r0, int64_t r1, int64_t hidden, int64_t ldIn, float* out,
                       int64_t ldOut) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* g = in + r * ldIn;
    const float* u = g + hidden;
    float* o = out + r * ldOut;
    for (int64_t j = 0; j < hidden; ++j) o[j] = siluValue(g[j]) * u[j];
  }
}

// Mean and 1 / sqrt(biased variance + eps) of n floats, two passes, accumulated in double in 16
// independent lanes (a fixed order, so every build gives the same bits).
inline void rowStats(const float* x, int64_t n, float eps, double& mean, double& rstd) {
  constexpr int kL = 16;
  double acc[kL] = {};
  int64_t i = 0;
  for (; i + kL <= n; i += kL)
    for (int j = 0; j < kL; ++j) acc[j] += double(x[i + j]);
  for (int j = 0; i < n; ++i, ++j) acc[j] += double(x[i]);
  double s = 0.0;
  for (int j = 0; j < kL; ++j) s += acc[j];
  double m = s / double(n);
  double sq[kL] = {};
  i = 0;
  for (; i + kL <= n; i += kL)
    for (int j = 0; j < kL; ++j) {
      double d = double(x[i + j]) - m;
      sq[j] += d * d;
    }
  for (int j = 0; i < n; ++i, ++j) {
    double d = double(x[i]) - m;
    sq[j] += d * d;
  }
  double q = 0.0;
  for (int j = 0; j < kL; ++j) q += sq[j];
  mean = m;
  rstd = 1.0 / std::sqrt(q / double(n) + double(eps));
}

// Rows [r0, r1) of [batch * tokens, dim]: LayerNorm (no affine), then * (1 + scale) + shift, each
// output rounded once from double.
inline void layerNormModulateRows(const float* x, int64_t r0, int64_t r1, int64_t tokens, int64_t dim,
                                  const float* shift, const float* scale, int64_t modStride, float eps,
                                  float* out) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * dim;
    float* o = out + r * dim;
    double mean, rstd;
    rowStats(xr, dim, eps, mean, rstd);
    int64_t b = r / tokens;
    const float* sh = shift ? shift + b * modStride : nullptr;
    const float* sc = scale ? scale + b * modStride : nullptr;
    if (sh && sc) {
      for (int64_t i = 0; i < dim; ++i)
        o[i] = float((double(xr[i]) - mean) * rstd * (1.0 + double(sc[i])) + double(sh[i]));
    } else if (sc) {
      for (int64_t i = 0; i < dim; ++i) o[i] = float((double(xr[i]) - mean) * rstd * (1.0 + double(sc[i])));
    } else if (sh) {
      for (int64_t i = 0; i < dim; ++i) o[i] = float((double(xr[i]) - mean) * rstd + double(sh[i]));
    } else {
      for (int64_t i = 0; i < dim; ++i) o[i] = float((double(xr[i]) - mean) * rstd);
    }
  }
}

// One head vector in place: LayerNorm, then * w (+ b).
inline void headNormVec(float* v, int64_t n, const float* w, const float* b, float eps) {
  double mean, rstd;
  rowStats(v, n, eps, mean, rstd);
  if (b) {
    for (int64_t i = 0; i < n; ++i) v[i] = float((double(v[i]) - mean) * rstd * double(w[i]) + double(b[i]));
  } else {
    for (int64_t i = 0; i < n; ++i) v[i] = float((double(v[i]) - mean) * rstd * double(w[i]));
  }
}

inline void headLayerNormRows(float* qkv, int64_t r0, int64_t r1, int64_t heads, int64_t headDim,
                              const float* qWeight, const float* qBias, const float* kWeight,
                              const float* kBias, float eps) {
  int64_t width = heads * headDim;
  for (int64_t r = r0; r < r1; ++r) {
    float* q = qkv + r * 3 * width;
    float* k = q + width;
    for (int64_t h = 0; h < heads; ++h) headNormVec(q + h * headDim, headDim, qWeight, qBias, eps);
    for (int64_t h = 0; h < heads; ++h) headNormVec(k + h * headDim, headDim, kWeight, kBias, eps);
  }
}

// h += gate * y over rows [r0, r1) of [batch * tokens, dim] (float, like x + gate * y in PyTorch).
inline void gatedResidualRows(float* h, const float* y, int64_t r0, int64_t r1, int64_t tokens, int64_t dim,
                              const float* gate, int64_t gateStride) {
  for (int64_t r = r0; r < r1; ++r) {
    float* hr = h + r * dim;
    const float* yr = y + r * dim;
    if (gate) {
      const float* g = gate + (r / tokens) * gateStride;
      for (int64_t i = 0; i < dim; ++i) hr[i] = hr[i] + g[i] * yr[i];
    } else {
      for (int64_t i = 0; i < dim; ++i) hr[i] = hr[i] + yr[i];
    }
  }
}

}  // namespace
}  // namespace nd::mk
