// linearCpu's AVX-512 path (built with -mavx512f/bw/dq/vl -mavx2 -mfma -mf16c; see CMakeLists.txt).
// Entered only when gemmPathSupported(GemmPath::Avx512). Like cast_avx2.cpp, this file calls no
// inline function from our headers or the standard library (a non-inlined copy would be a COMDAT
// symbol the linker may hand to baseline code): only intrinsics and functions local to this file.
//
// Large m: BLIS-style. W columns [j0, j1) are taken in blocks of kNc columns x kKc depth and packed
// (transposed, widened to f32) into panels of kKc x 48 floats; an 8 x 48 micro-tile (24 zmm
// accumulators) runs over a panel with x broadcast straight from its rows (x needs no packing: its
// 8 x kc slice stays in L1 across the panels of the block, the packed block stays in L2). The
// epilogue (bias, accumulate, gelu) is applied as the tile is stored.
// Small m (or GemmRows::Streamed): dot-product kernel over W rows as stored (no packing), 4 W rows x
// up to 6 x rows.
// Both kernels keep one accumulator chain per output and nothing crosses rows, so a row gets the same
// bits in a full tile, a partial one (m % kMr, m % 6) or any thread's share: batch invariance
// (docs/design.md) rests on it.
#include "kernels/cpu/gemm.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__FMA__) && \
    defined(__F16C__)
// GCC 12 reports its own _mm512_undefined_ps() placeholders (inside immintrin.h) as uninitialized.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

namespace nd::detail {

namespace {

constexpr int64_t kMr = 8, kNr = 48, kKc = 384, kNc = 768;
constexpr int64_t kSmallM = 8;
constexpr int kF32 = 0, kF16 = 1, kBf16 = 2;

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

inline __mmask16 maskN(int64_t n) {  // low min(max(n, 0), 16) bits
  if (n >= 16) return __mmask16(0xffff);
  if (n <= 0) return 0;
  return __mmask16((1u << n) - 1u);
}

// 16 weights starting at element index `idx` of row-major W, widened to f32; lanes outside `mask`
// are zero and their memory is not touched.
template <int DT>
inline __m512 loadW(const void* w, int64_t idx, __mmask16 mask) {
  if constexpr (DT == kF32) {
    return _mm512_maskz_loadu_ps(mask, static_cast<const float*>(w) + idx);
  } else {
    __m256i h = _mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(w) + idx);
    if constexpr (DT == kF16)
      return _mm512_cvtph_ps(h);
    else
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

template <int DT>
inline __m512 loadW(const void* w, int64_t idx) {
  if constexpr (DT == kF32) {
    return _mm512_loadu_ps(static_cast<const float*>(w) + idx);
  } else {
    __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(w) + idx));
    if constexpr (DT == kF16)
      return _mm512_cvtph_ps(h);
    else
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

// In-register 16 x 16 transpose: r[i][j] -> r[j][i].
inline void transpose16(__m512 (&r)[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int q = 0; q < 4; ++q) {  // rows 4q..4q+3
    __m512d a = _mm512_castps_pd(t[4 * q]), b = _mm512_castps_pd(t[4 * q + 1]);
    __m512d c = _mm512_castps_pd(t[4 * q + 2]), d = _mm512_castps_pd(t[4 * q + 3]);
    u[4 * q + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));  // column 4l+0 of each lane l
    u[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));  // 4l+1
    u[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));  // 4l+2
    u[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));  // 4l+3
  }
  for (int c = 0; c < 4; ++c) {
    __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
    __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
    __m512 w0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
    __m512 w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
    r[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
    r[8 + c] = _mm512_shuffle_f32x4(v0, w0, 0xdd);
    r[4 + c] = _mm512_shuffle_f32x4(v1, w1, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(v1, w1, 0xdd);
  }
}

inline int64_t roundUp16(int64_t v) { return (v + 15) & ~int64_t(15); }

// Packs W rows [j0, j0 + nc) x depth [k0, k0 + kc) into ceil(nc / 48) panels of kc16 x 48 floats,
// kc16 = kc rounded up to 16 (panel p, depth t, column c at dst[p * kc16 * 48 + t * 48 + c]); missing
// columns and depths are zero.
template <int DT>
void packW(const GemmArgs& a, int64_t j0, int64_t nc, int64_t k0, int64_t kc, float* dst) {
  const int64_t panels = (nc + kNr - 1) / kNr, kc16 = roundUp16(kc);
  for (int64_t p = 0; p < panels; ++p) {
    float* pd = dst + p * kc16 * kNr;
    for (int64_t g = 0; g < kNr / 16; ++g) {
      int64_t c0 = p * kNr + g * 16;
      int64_t valid = imin(16, nc - c0);
      if (valid <= 0) {
        for (int64_t t = 0; t < kc16; ++t) _mm512_store_ps(pd + t * kNr + g * 16, _mm512_setzero_ps());
        continue;
      }
      const int64_t rowBase = (j0 + c0) * a.ldw + k0;
      for (int64_t kk = 0; kk < kc; kk += 16) {
        int64_t kt = imin(16, kc - kk);
        __m512 r[16];
        if (kt == 16) {
          for (int i = 0; i < 16; ++i)
            r[i] = i < valid ? loadW<DT>(a.w, rowBase + i * a.ldw + kk) : _mm512_setzero_ps();
        } else {
          __mmask16 km = maskN(kt);
          for (int i = 0; i < 16; ++i)
            r[i] = i < valid ? loadW<DT>(a.w, rowBase + i * a.ldw + kk, km) : _mm512_setzero_ps();
        }
        transpose16(r);
        float* o = pd + kk * kNr + g * 16;
        for (int t = 0; t < 16; ++t) _mm512_store_ps(o + t * kNr, r[t]);
      }
    }
  }
}

// Packed x: rows [0, R) x depth [0, kc) in blocks of 16 depths x 8 rows (128 floats, rows >= R and
// depths >= kc zero). Within a block the order is what two shuffle stages of a transpose leave:
// depth t, row r at aOffset(t, r). The micro-kernel unrolls the 16 depths, so the offsets are
// constants there.
constexpr int aOffset(int t, int r) { return ((t & 3) + 4 * (r >> 2)) * 16 + (t >> 2) * 4 + (r & 3); }

// Also prefetches (to L2) the same depths of the next `ahead` rows after these 8, the slice of x
// the next row tile packs: x comes from L3 or memory, and its short strided runs do not keep the
// hardware prefetchers busy enough on their own.
template <int R>
void packA(const float* x, int64_t ldx, int64_t kc, int64_t ahead, float* dst) {
  for (int64_t kk = 0; kk < kc; kk += 16) {
    __mmask16 km = maskN(kc - kk);
    for (int64_t i = 0; i < ahead; ++i)
      _mm_prefetch(reinterpret_cast<const char*>(x + (kMr + i) * ldx + kk), _MM_HINT_T1);
    __m512 r[8], t[8];
    for (int i = 0; i < 8; ++i) r[i] = i < R ? _mm512_maskz_loadu_ps(km, x + i * ldx + kk) : _mm512_setzero_ps();
    for (int i = 0; i < 4; ++i) {
      t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // u[c + 4h], lane l = rows 4h..4h+3 at depth 4l + c
    for (int h = 0; h < 2; ++h) {
      __m512d a0 = _mm512_castps_pd(t[4 * h]), a1 = _mm512_castps_pd(t[4 * h + 1]);
      __m512d b0 = _mm512_castps_pd(t[4 * h + 2]), b1 = _mm512_castps_pd(t[4 * h + 3]);
      _mm512_store_ps(dst + (0 + 4 * h) * 16, _mm512_castpd_ps(_mm512_unpacklo_pd(a0, b0)));
      _mm512_store_ps(dst + (1 + 4 * h) * 16, _mm512_castpd_ps(_mm512_unpackhi_pd(a0, b0)));
      _mm512_store_ps(dst + (2 + 4 * h) * 16, _mm512_castpd_ps(_mm512_unpacklo_pd(a1, b1)));
      _mm512_store_ps(dst + (3 + 4 * h) * 16, _mm512_castpd_ps(_mm512_unpackhi_pd(a1, b1)));
    }
    dst += 128;
  }
}

// gelu_tanh(v) = 0.5 v (1 + tanh(u)) = v / (1 + exp(-2u)), u = sqrt(2/pi) (v + 0.044715 v^3); the
// second form has no cancellation for negative v. exp: 2^n * e^r, |r| <= ln2/2, degree-7 Taylor.
inline __m512 geluVec(__m512 v) {
  const __m512 c0 = _mm512_set1_ps(0.7978845608028654f), c1 = _mm512_set1_ps(0.7978845608028654f * 0.044715f);
  __m512 v2 = _mm512_mul_ps(v, v);
  __m512 u = _mm512_mul_ps(v, _mm512_fmadd_ps(c1, v2, c0));
  __m512 z = _mm512_mul_ps(u, _mm512_set1_ps(-2.0f));
  z = _mm512_min_ps(_mm512_max_ps(z, _mm512_set1_ps(-100.0f)), _mm512_set1_ps(100.0f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(z, _mm512_set1_ps(1.4426950408889634f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), z);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  __m512 e = _mm512_scalef_ps(p, n);
  return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

void geluRow(float* p, int64_t n) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) _mm512_storeu_ps(p + j, geluVec(_mm512_loadu_ps(p + j)));
  if (j < n) {
    __mmask16 m = maskN(n - j);
    _mm512_mask_storeu_ps(p + j, m, geluVec(_mm512_maskz_loadu_ps(m, p + j)));
  }
}

enum : unsigned { kFirst = 1, kLast = 2 };

// R x 48 tile: y[R][ncols] (+)= packed x (R rows, kc16 depths) . packed W panel, with the epilogue.
template <int R>
void tile(const GemmArgs& a, const float* ap, const float* b, int64_t kc16, float* y, int64_t ncols,
          const float* bias, unsigned flags) {
  __m512 c[R][3];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < 3; ++q) c[r][q] = _mm512_setzero_ps();
  for (int64_t kb = 0; kb < kc16; kb += 16) {
#pragma GCC unroll 16
    for (int t = 0; t < 16; ++t) {
      __m512 b0 = _mm512_load_ps(b + t * kNr), b1 = _mm512_load_ps(b + t * kNr + 16),
             b2 = _mm512_load_ps(b + t * kNr + 32);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        __m512 av = _mm512_set1_ps(ap[aOffset(t, r)]);
        c[r][0] = _mm512_fmadd_ps(av, b0, c[r][0]);
        c[r][1] = _mm512_fmadd_ps(av, b1, c[r][1]);
        c[r][2] = _mm512_fmadd_ps(av, b2, c[r][2]);
      }
    }
    ap += 128;
    b += 16 * kNr;
  }
  __mmask16 m[3] = {maskN(ncols), maskN(ncols - 16), maskN(ncols - 32)};
  const bool first = flags & kFirst, gelu = (flags & kLast) && a.gelu;
  const bool addY = first ? a.accumulate : true;
  __m512 bv[3];
  for (int q = 0; q < 3; ++q)
    bv[q] = (first && bias) ? _mm512_maskz_loadu_ps(m[q], bias + 16 * q) : _mm512_setzero_ps();
  for (int r = 0; r < R; ++r) {
    float* yr = y + r * a.ldy;
    for (int q = 0; q < 3; ++q) {
      if (!m[q]) continue;
      __m512 v = c[r][q];
      if (addY) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m[q], yr + 16 * q));
      if (first && bias) v = _mm512_add_ps(v, bv[q]);
      if (gelu) v = geluVec(v);
      _mm512_mask_storeu_ps(yr + 16 * q, m[q], v);
    }
  }
}

// Rows [ir, ir + R) of the block: pack their x slice, then run every panel.
template <int R>
void rowTile(const GemmArgs& a, int64_t ir, int64_t ahead, int64_t jc, int64_t nc, int64_t pc, int64_t kc,
             const float* packB, float* packAbuf, unsigned flags) {
  const int64_t kc16 = roundUp16(kc);
  packA<R>(a.x + ir * a.ldx + pc, a.ldx, kc, ahead, packAbuf);
  float* y = a.y + ir * a.ldy + jc;
  for (int64_t jr = 0; jr < nc; jr += kNr)
    tile<R>(a, packAbuf, packB + (jr / kNr) * kc16 * kNr, kc16, y + jr, imin(kNr, nc - jr),
            a.bias ? a.bias + jc + jr : nullptr, flags);
}

using RowTileFn = void (*)(const GemmArgs&, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, const float*,
                           float*, unsigned);
constexpr RowTileFn kRowTiles[kMr + 1] = {nullptr,    rowTile<1>, rowTile<2>, rowTile<3>, rowTile<4>,
                                          rowTile<5>, rowTile<6>, rowTile<7>, rowTile<8>};

template <int DT>
void blockT(const GemmArgs& a, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* pack) {
  const int64_t kBlocks = (a.k + kKc - 1) / kKc;
  const int64_t kcStep = (a.k + kBlocks - 1) / kBlocks;  // balanced depth blocks
  float* packAbuf = pack + kKc * kNc;
  for (int64_t jc = j0; jc < j1; jc += kNc) {
    const int64_t nc = imin(kNc, j1 - jc);
    for (int64_t pc = 0; pc < a.k; pc += kcStep) {
      const int64_t kc = imin(kcStep, a.k - pc);
      packW<DT>(a, jc, nc, pc, kc, pack);
      unsigned flags = (pc == 0 ? kFirst : 0u) | (pc + kc == a.k ? kLast : 0u);
      for (int64_t ir = i0; ir < i1; ir += kMr)
        kRowTiles[imin(kMr, i1 - ir)](a, ir, imin(kMr, i1 - ir - kMr), jc, nc, pc, kc, pack, packAbuf, flags);
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

// [sum a0, sum a1, sum a2, sum a3]
inline __m128 reduce4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  __m512 t0 = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));
  __m512 t1 = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
  __m512 u = _mm512_add_ps(
      _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t1))),
      _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t1))));
  __m256 h = _mm256_add_ps(_mm512_castps512_ps256(u), _mm512_extractf32x8_ps(u, 1));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// x rows [i0, i0 + R) against W rows [j, j + nj), nj <= 4, reading W as stored.
template <int DT, int R>
void dotTile(const GemmArgs& a, int64_t i0, int64_t j, int64_t nj) {
  int64_t wrow[4];
  for (int q = 0; q < 4; ++q) wrow[q] = (j + (q < nj ? q : nj - 1)) * a.ldw;
  const float* xr[R];
  for (int r = 0; r < R; ++r) xr[r] = a.x + (i0 + r) * a.ldx;
  __m512 c[R][4];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < 4; ++q) c[r][q] = _mm512_setzero_ps();
  int64_t kk = 0;
  for (; kk + 16 <= a.k; kk += 16) {
    __m512 wv[4];
    for (int q = 0; q < 4; ++q) wv[q] = loadW<DT>(a.w, wrow[q] + kk);
    for (int r = 0; r < R; ++r) {
      __m512 xv = _mm512_loadu_ps(xr[r] + kk);
      for (int q = 0; q < 4; ++q) c[r][q] = _mm512_fmadd_ps(xv, wv[q], c[r][q]);
    }
  }
  if (kk < a.k) {
    __mmask16 km = maskN(a.k - kk);
    __m512 wv[4];
    for (int q = 0; q < 4; ++q) wv[q] = loadW<DT>(a.w, wrow[q] + kk, km);
    for (int r = 0; r < R; ++r) {
      __m512 xv = _mm512_maskz_loadu_ps(km, xr[r] + kk);
      for (int q = 0; q < 4; ++q) c[r][q] = _mm512_fmadd_ps(xv, wv[q], c[r][q]);
    }
  }
  __mmask8 m = __mmask8((1u << nj) - 1u);
  __m128 bv = a.bias ? _mm_maskz_loadu_ps(m, a.bias + j) : _mm_setzero_ps();
  for (int r = 0; r < R; ++r) {
    float* yr = a.y + (i0 + r) * a.ldy + j;
    __m128 v = reduce4(c[r][0], c[r][1], c[r][2], c[r][3]);
    if (a.accumulate) v = _mm_add_ps(v, _mm_maskz_loadu_ps(m, yr));
    if (a.bias) v = _mm_add_ps(v, bv);
    _mm_mask_storeu_ps(yr, m, v);
  }
}

template <int DT>
void smallT(const GemmArgs& a, int64_t j0, int64_t j1) {
  for (int64_t j = j0; j < j1; j += 4) {
    const int64_t nj = imin(4, j1 - j);
    int64_t i = 0;
    for (; i + 6 <= a.m; i += 6) dotTile<DT, 6>(a, i, j, nj);
    switch (a.m - i) {
      case 5: dotTile<DT, 5>(a, i, j, nj); break;
      case 4: dotTile<DT, 4>(a, i, j, nj); break;
      case 3: dotTile<DT, 3>(a, i, j, nj); break;
      case 2: dotTile<DT, 2>(a, i, j, nj); break;
      case 1: dotTile<DT, 1>(a, i, j, nj); break;
      default: break;
    }
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

constexpr GemmKernels kKernels{kNr, kMr, kSmallM, kKc * kNc + kMr * kKc, block, smallBlock};

}  // namespace

const GemmKernels& gemmKernelsAvx512() { return kKernels; }

}  // namespace nd::detail

#else
#include "core/error.h"
namespace nd::detail {
const GemmKernels& gemmKernelsAvx512() {
  fail(ErrorCode::Internal, "linearCpu: built without AVX-512 support");
}
}  // namespace nd::detail
#endif
