// linearCpu's AVX2 path (built with -mavx2 -mfma -mf16c; see CMakeLists.txt), for CPUs without
// AVX-512. Entered only when gemmPathSupported(GemmPath::Avx2). Calls no inline function from our
// headers or the standard library (see cast_avx2.cpp for why): intrinsics and local functions only.
//
// Same structure as gemm_avx512.cpp with ymm registers: W packed into kc x 16 panels, a 6 x 16
// micro-tile (12 accumulators), x broadcast from its rows; small m (or GemmRows::Streamed) streams W
// rows as stored. As there, a row's bits do not depend on the tile it falls in.
#include "kernels/cpu/gemm.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

namespace nd::detail {

namespace {

constexpr int64_t kMr = 6, kNr = 16, kKc = 256, kNc = 384;
constexpr int64_t kSmallM = 8;
constexpr int kF32 = 0, kF16 = 1, kBf16 = 2;

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

// Lane i set when i < n.
inline __m256i laneMask(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n < 0 ? 0 : (n > 8 ? 8 : n))),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

template <int DT>
inline __m256 loadW(const void* w, int64_t idx) {
  if constexpr (DT == kF32) {
    return _mm256_loadu_ps(static_cast<const float*>(w) + idx);
  } else {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + idx));
    if constexpr (DT == kF16)
      return _mm256_cvtph_ps(h);
    else
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

// The first n (< 8) weights from idx, the rest zero; touches only those n elements.
template <int DT>
inline __m256 loadWPartial(const void* w, int64_t idx, int64_t n) {
  if constexpr (DT == kF32) {
    return _mm256_maskload_ps(static_cast<const float*>(w) + idx, laneMask(n));
  } else {
    alignas(16) uint16_t tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const uint16_t* s = static_cast<const uint16_t*>(w) + idx;
    for (int64_t i = 0; i < n; ++i) tmp[i] = s[i];
    return loadW<DT>(tmp, 0);
  }
}

inline void transpose8(__m256 (&r)[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {  // rows 4h..4h+3
    u[4 * h + 0] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
    u[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xee);
    u[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
    u[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xee);
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
    r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
  }
}

// W rows [j0, j0 + nc) x depth [k0, k0 + kc) -> panels of kc x 16 floats, missing columns zero.
template <int DT>
void packW(const GemmArgs& a, int64_t j0, int64_t nc, int64_t k0, int64_t kc, float* dst) {
  const int64_t panels = (nc + kNr - 1) / kNr;
  for (int64_t p = 0; p < panels; ++p) {
    float* pd = dst + p * kc * kNr;
    for (int64_t g = 0; g < kNr / 8; ++g) {
      int64_t c0 = p * kNr + g * 8;
      int64_t valid = imin(8, nc - c0);
      if (valid <= 0) {
        for (int64_t t = 0; t < kc; ++t) _mm256_store_ps(pd + t * kNr + g * 8, _mm256_setzero_ps());
        continue;
      }
      const int64_t rowBase = (j0 + c0) * a.ldw + k0;
      for (int64_t kk = 0; kk < kc; kk += 8) {
        int64_t kt = imin(8, kc - kk);
        __m256 r[8];
        for (int i = 0; i < 8; ++i) {
          if (i >= valid)
            r[i] = _mm256_setzero_ps();
          else if (kt == 8)
            r[i] = loadW<DT>(a.w, rowBase + i * a.ldw + kk);
          else
            r[i] = loadWPartial<DT>(a.w, rowBase + i * a.ldw + kk, kt);
        }
        transpose8(r);
        float* o = pd + kk * kNr + g * 8;
        for (int t = 0; t < kt; ++t) _mm256_store_ps(o + t * kNr, r[t]);
      }
    }
  }
}

// gelu_tanh(v) = v / (1 + exp(-2u)), u = sqrt(2/pi) (v + 0.044715 v^3); see gemm_avx512.cpp.
inline __m256 geluVec(__m256 v) {
  const __m256 c0 = _mm256_set1_ps(0.7978845608028654f), c1 = _mm256_set1_ps(0.7978845608028654f * 0.044715f);
  __m256 u = _mm256_mul_ps(v, _mm256_fmadd_ps(c1, _mm256_mul_ps(v, v), c0));
  __m256 z = _mm256_mul_ps(u, _mm256_set1_ps(-2.0f));
  z = _mm256_min_ps(_mm256_max_ps(z, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
  __m256 n = _mm256_round_ps(_mm256_mul_ps(z, _mm256_set1_ps(1.4426950408889634f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), z);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  // 2^n for n in [-126, 127] (z is clamped so that n stays there) built in the exponent field.
  __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  __m256 e = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

void geluRow(float* p, int64_t n) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) _mm256_storeu_ps(p + j, geluVec(_mm256_loadu_ps(p + j)));
  if (j < n) {
    __m256i m = laneMask(n - j);
    _mm256_maskstore_ps(p + j, m, geluVec(_mm256_maskload_ps(p + j, m)));
  }
}

enum : unsigned { kFirst = 1, kLast = 2 };

template <int R>
void tile(const GemmArgs& a, const float* x, const float* b, int64_t kc, float* y, int64_t ncols,
          const float* bias, unsigned flags) {
  __m256 c[R][2];
  for (int r = 0; r < R; ++r) c[r][0] = c[r][1] = _mm256_setzero_ps();
  const float* xr[R];
  for (int r = 0; r < R; ++r) xr[r] = x + r * a.ldx;
  for (int64_t k = 0; k < kc; ++k) {
    __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    b += kNr;
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      __m256 av = _mm256_broadcast_ss(xr[r] + k);
      c[r][0] = _mm256_fmadd_ps(av, b0, c[r][0]);
      c[r][1] = _mm256_fmadd_ps(av, b1, c[r][1]);
    }
  }
  __m256i m[2] = {laneMask(ncols), laneMask(ncols - 8)};
  bool live[2] = {ncols > 0, ncols > 8};
  const bool first = flags & kFirst, gelu = (flags & kLast) && a.gelu;
  const bool addY = first ? a.accumulate : true;
  __m256 bv[2];
  for (int q = 0; q < 2; ++q)
    bv[q] = (first && bias && live[q]) ? _mm256_maskload_ps(bias + 8 * q, m[q]) : _mm256_setzero_ps();
  for (int r = 0; r < R; ++r) {
    float* yr = y + r * a.ldy;
    for (int q = 0; q < 2; ++q) {
      if (!live[q]) continue;
      __m256 v = c[r][q];
      if (addY) v = _mm256_add_ps(v, _mm256_maskload_ps(yr + 8 * q, m[q]));
      if (first && bias) v = _mm256_add_ps(v, bv[q]);
      if (gelu) v = geluVec(v);
      _mm256_maskstore_ps(yr + 8 * q, m[q], v);
    }
  }
}

using TileFn = void (*)(const GemmArgs&, const float*, const float*, int64_t, float*, int64_t, const float*,
                        unsigned);
constexpr TileFn kTiles[kMr + 1] = {nullptr, tile<1>, tile<2>, tile<3>, tile<4>, tile<5>, tile<6>};

template <int DT>
void blockT(const GemmArgs& a, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* pack) {
  const int64_t kBlocks = (a.k + kKc - 1) / kKc;
  const int64_t kcStep = (a.k + kBlocks - 1) / kBlocks;
  for (int64_t jc = j0; jc < j1; jc += kNc) {
    const int64_t nc = imin(kNc, j1 - jc);
    for (int64_t pc = 0; pc < a.k; pc += kcStep) {
      const int64_t kc = imin(kcStep, a.k - pc);
      packW<DT>(a, jc, nc, pc, kc, pack);
      unsigned flags = (pc == 0 ? kFirst : 0u) | (pc + kc == a.k ? kLast : 0u);
      for (int64_t ir = i0; ir < i1; ir += kMr) {
        const int64_t mr = imin(kMr, i1 - ir);
        const float* x = a.x + ir * a.ldx + pc;
        float* y = a.y + ir * a.ldy + jc;
        TileFn fn = kTiles[mr];
        for (int64_t jr = 0; jr < nc; jr += kNr)
          fn(a, x, pack + (jr / kNr) * kc * kNr, kc, y + jr, imin(kNr, nc - jr),
             a.bias ? a.bias + jc + jr : nullptr, flags);
      }
    }
  }
}

void block(const GemmArgs& a, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* pack) {
  switch (a.wtype) {
    case DType::F16: return blockT<kF16>(a, i0, i1, j0, j1, pack);
    case DType::BF16: return blockT<kBf16>(a, i0, i1, j0, j1, pack);
    default: return blockT<kF32>(a, i0, i1, j0, j1, pack);
  }
}

inline __m128 reduce4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

// x rows [i0, i0 + R) against W rows [j, j + nj), nj <= 4, W read as stored.
template <int DT, int R>
void dotTile(const GemmArgs& a, int64_t i0, int64_t j, int64_t nj) {
  int64_t wrow[4];
  for (int q = 0; q < 4; ++q) wrow[q] = (j + (q < nj ? q : nj - 1)) * a.ldw;
  const float* xr[R];
  for (int r = 0; r < R; ++r) xr[r] = a.x + (i0 + r) * a.ldx;
  __m256 c[R][4];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < 4; ++q) c[r][q] = _mm256_setzero_ps();
  int64_t kk = 0;
  for (; kk + 8 <= a.k; kk += 8) {
    __m256 wv[4];
    for (int q = 0; q < 4; ++q) wv[q] = loadW<DT>(a.w, wrow[q] + kk);
    for (int r = 0; r < R; ++r) {
      __m256 xv = _mm256_loadu_ps(xr[r] + kk);
      for (int q = 0; q < 4; ++q) c[r][q] = _mm256_fmadd_ps(xv, wv[q], c[r][q]);
    }
  }
  if (kk < a.k) {
    int64_t kt = a.k - kk;
    __m256 wv[4];
    for (int q = 0; q < 4; ++q) wv[q] = loadWPartial<DT>(a.w, wrow[q] + kk, kt);
    for (int r = 0; r < R; ++r) {
      __m256 xv = _mm256_maskload_ps(xr[r] + kk, laneMask(kt));
      for (int q = 0; q < 4; ++q) c[r][q] = _mm256_fmadd_ps(xv, wv[q], c[r][q]);
    }
  }
  __m128i m = _mm256_castsi256_si128(laneMask(nj));
  __m128 bv = a.bias ? _mm_maskload_ps(a.bias + j, m) : _mm_setzero_ps();
  for (int r = 0; r < R; ++r) {
    float* yr = a.y + (i0 + r) * a.ldy + j;
    __m128 v = reduce4(c[r][0], c[r][1], c[r][2], c[r][3]);
    if (a.accumulate) v = _mm_add_ps(v, _mm_maskload_ps(yr, m));
    if (a.bias) v = _mm_add_ps(v, bv);
    _mm_maskstore_ps(yr, m, v);
  }
}

template <int DT>
void smallT(const GemmArgs& a, int64_t j0, int64_t j1) {
  for (int64_t j = j0; j < j1; j += 4) {
    const int64_t nj = imin(4, j1 - j);
    int64_t i = 0;
    for (; i + 2 <= a.m; i += 2) dotTile<DT, 2>(a, i, j, nj);
    if (i < a.m) dotTile<DT, 1>(a, i, j, nj);
  }
  if (a.gelu)
    for (int64_t i = 0; i < a.m; ++i) geluRow(a.y + i * a.ldy + j0, j1 - j0);
}

void smallBlock(const GemmArgs& a, int64_t j0, int64_t j1) {
  switch (a.wtype) {
    case DType::F16: return smallT<kF16>(a, j0, j1);
    case DType::BF16: return smallT<kBf16>(a, j0, j1);
    default: return smallT<kF32>(a, j0, j1);
  }
}

constexpr GemmKernels kKernels{kNr, kMr, kSmallM, kKc * kNc, block, smallBlock};

}  // namespace

const GemmKernels& gemmKernelsAvx2() { return kKernels; }

}  // namespace nd::detail

#else
#include "core/error.h"
namespace nd::detail {
const GemmKernels& gemmKernelsAvx2() { fail(ErrorCode::Internal, "linearCpu: built without AVX2 support"); }
}  // namespace nd::detail
#endif
