// Built with -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -mf16c (see CMakeLists.txt);
// entered only through attention.cpp after run-time detection. Like cast_avx2.cpp it calls no inline
// function or template from outside this file (a non-inlined COMDAT copy compiled here could be the one
// the linker keeps for baseline code); everything below has internal linkage.
//
// Layout: a task is one (sample, head, group of kAttnAvx512Group blocks of 32 queries). The 32 queries
// of a block live in the 16 lanes of two zmm registers, so every per-query quantity of the online
// softmax (running max, running sum, rescale factor) is one pair of vectors and all reductions over
// keys are vertical:
//   Qt [headDim][32]     q * scale * log2(e), transposed once per task (padding lanes are 0)
//   Kp, Vp [keyTile][d]  the key/value tile packed contiguous (the qkv rows are 3*heads*headDim apart,
//                        a page each for big models), shared by the group's query blocks
//   S  [keyTile][32]     scores of the key tile, then p = 2^(s - m) in place
//   Ot [headDim][32]     the unnormalised output, transposed
// S = K_tile · Qt: broadcast k[j][c], FMA with Qt[c] (2 zmm), 8 keys x 2 zmm accumulators.
// Ot = Ot * alpha + V_tileᵀ · P: broadcast v[j][c], FMA with P[j] (2 zmm), 12 columns x 2 zmm.
// Scratch per thread: attentionAvx512ScratchFloats(headDim) = O(group * 32 * headDim + keyTile * (32 + headDim)).
#include "kernels/cpu/attention.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__) && \
    defined(__FMA__)
// GCC 12 reports its own _mm512_undefined_ps() (self-initialised) as maybe-uninitialized once
// the intrinsics are inlined here; the warning is about the header, not this code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

namespace nd::detail {

namespace {

constexpr int64_t QB = kAttnAvx512QueryBlock;  // 32 = 2 zmm of query lanes
constexpr int64_t KT = kAttnAvx512KeyTile;
constexpr int NJ = 8;   // keys per score micro-kernel (2 x NJ accumulators)
constexpr int NC = 12;  // headDim columns per P·V micro-kernel (2 x NC accumulators)
static_assert(QB == 32, "the kernels hold a query block in two zmm");

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

// 2^x for x <= 0, within ~1 ulp: n = round(x), f = x - n in [-0.5, 0.5], 2^f by a degree-6
// polynomial (fitted for relative error 2e-9 on [-0.5, 0.5]), then scalef by n (exact, underflows
// gracefully). x is clamped at -200 (2^-200 is 0 in f32), which also maps -inf to 0; NaN stays NaN.
inline __m512 exp2Neg(__m512 x) {
  x = _mm512_max_ps(_mm512_set1_ps(-200.0f), x);
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(1.535358751e-04f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.339888549e-03f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618436918e-03f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550332367e-02f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402264774e-01f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931471825e-01f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// Scores of J keys (rows k, k + rowStride, ...) against the 32 queries of Qt; stores S[J][32] and
// folds them into the tile max (mx0, mx1).
template <int J>
inline void scoreBlock(const float* Qt, const float* k, int64_t rowStride, int64_t d, float* S,
                       __m512& mx0, __m512& mx1) {
  __m512 a0[J], a1[J];
  const float* kr[J];
#pragma GCC unroll 16
  for (int j = 0; j < J; ++j) {
    a0[j] = _mm512_setzero_ps();
    a1[j] = _mm512_setzero_ps();
    kr[j] = k + j * rowStride;
  }
  for (int64_t c = 0; c < d; ++c) {
    const __m512 q0 = _mm512_load_ps(Qt + c * QB), q1 = _mm512_load_ps(Qt + c * QB + 16);
#pragma GCC unroll 16
    for (int j = 0; j < J; ++j) {
      const __m512 kb = _mm512_set1_ps(kr[j][c]);
      a0[j] = _mm512_fmadd_ps(kb, q0, a0[j]);
      a1[j] = _mm512_fmadd_ps(kb, q1, a1[j]);
    }
  }
#pragma GCC unroll 16
  for (int j = 0; j < J; ++j) {
    _mm512_store_ps(S + j * QB, a0[j]);
    _mm512_store_ps(S + j * QB + 16, a1[j]);
    mx0 = _mm512_max_ps(mx0, a0[j]);
    mx1 = _mm512_max_ps(mx1, a1[j]);
  }
}

// Ot[C columns][32] = Ot * alpha + Σ_j v[j][c] * P[j] over the nk keys of the tile (summed apart
// from Ot, so rounding grows with keyTile + tiles rather than with tokens).
template <int C>
inline void pvBlock(float* Ot, const float* P, const float* v, int64_t rowStride, int64_t nk, __m512 al0,
                    __m512 al1) {
  __m512 a0[C], a1[C];
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
    a0[c] = _mm512_setzero_ps();
    a1[c] = _mm512_setzero_ps();
  }
  for (int64_t j = 0; j < nk; ++j) {
    const __m512 p0 = _mm512_load_ps(P + j * QB), p1 = _mm512_load_ps(P + j * QB + 16);
    const float* vr = v + j * rowStride;
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const __m512 vb = _mm512_set1_ps(vr[c]);
      a0[c] = _mm512_fmadd_ps(vb, p0, a0[c]);
      a1[c] = _mm512_fmadd_ps(vb, p1, a1[c]);
    }
  }
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {  // the tile's sum joins the running one: two-level summation
    _mm512_store_ps(Ot + c * QB, _mm512_fmadd_ps(_mm512_load_ps(Ot + c * QB), al0, a0[c]));
    _mm512_store_ps(Ot + c * QB + 16, _mm512_fmadd_ps(_mm512_load_ps(Ot + c * QB + 16), al1, a1[c]));
  }
}

void scoreTail(int64_t n, const float* Qt, const float* k, int64_t rowStride, int64_t d, float* S,
               __m512& mx0, __m512& mx1) {
  switch (n) {
    case 1: scoreBlock<1>(Qt, k, rowStride, d, S, mx0, mx1); break;
    case 2: scoreBlock<2>(Qt, k, rowStride, d, S, mx0, mx1); break;
    case 3: scoreBlock<3>(Qt, k, rowStride, d, S, mx0, mx1); break;
    case 4: scoreBlock<4>(Qt, k, rowStride, d, S, mx0, mx1); break;
    case 5: scoreBlock<5>(Qt, k, rowStride, d, S, mx0, mx1); break;
    case 6: scoreBlock<6>(Qt, k, rowStride, d, S, mx0, mx1); break;
    case 7: scoreBlock<7>(Qt, k, rowStride, d, S, mx0, mx1); break;
    default: break;
  }
  static_assert(NJ == 8, "scoreTail covers 1..NJ-1");
}

void pvTail(int64_t n, float* Ot, const float* P, const float* v, int64_t rowStride, int64_t nk, __m512 al0,
            __m512 al1) {
  switch (n) {
    case 1: pvBlock<1>(Ot, P, v, rowStride, nk, al0, al1); break;
    case 2: pvBlock<2>(Ot, P, v, rowStride, nk, al0, al1); break;
    case 3: pvBlock<3>(Ot, P, v, rowStride, nk, al0, al1); break;
    case 4: pvBlock<4>(Ot, P, v, rowStride, nk, al0, al1); break;
    case 5: pvBlock<5>(Ot, P, v, rowStride, nk, al0, al1); break;
    case 6: pvBlock<6>(Ot, P, v, rowStride, nk, al0, al1); break;
    case 7: pvBlock<7>(Ot, P, v, rowStride, nk, al0, al1); break;
    case 8: pvBlock<8>(Ot, P, v, rowStride, nk, al0, al1); break;
    case 9: pvBlock<9>(Ot, P, v, rowStride, nk, al0, al1); break;
    case 10: pvBlock<10>(Ot, P, v, rowStride, nk, al0, al1); break;
    case 11: pvBlock<11>(Ot, P, v, rowStride, nk, al0, al1); break;
    default: break;
  }
  static_assert(NC == 12, "pvTail covers 1..NC-1");
}

// Copies n floats (whole zmm, then one masked zmm for the rest: 72 = 64 + 8).
inline void copyRow(float* dst, const float* src, int64_t n) {
  int64_t c = 0;
  for (; c + 16 <= n; c += 16) _mm512_storeu_ps(dst + c, _mm512_loadu_ps(src + c));
  if (c < n) {
    const __mmask16 m = __mmask16((1u << (n - c)) - 1u);
    _mm512_mask_storeu_ps(dst + c, m, _mm512_maskz_loadu_ps(m, src + c));
  }
}

}  // namespace

bool attentionAvx512Compiled() { return true; }

int64_t attentionAvx512TaskCount(int64_t batch, int64_t tokens, int64_t heads) {
  const int64_t nQB = (tokens + QB - 1) / QB;
  return batch * heads * ((nQB + kAttnAvx512Group - 1) / kAttnAvx512Group);
}

int64_t attentionAvx512ScratchFloats(int64_t headDim) {
  const int64_t G = kAttnAvx512Group;
  return 2 * G * headDim * QB + KT * QB + 2 * KT * headDim + 2 * G * QB + 64;
}

void attentionAvx512Tasks(const float* qkv, int64_t tokens, int64_t heads, int64_t headDim, float scale,
                          float* out, int64_t t0, int64_t t1, float* scratch) {
  const int64_t d = headDim, G = kAttnAvx512Group;
  const int64_t nQB = (tokens + QB - 1) / QB, nGroups = (nQB + G - 1) / G;
  const int64_t rowStride = 3 * heads * d, outStride = heads * d;
  float* const QtAll = scratch;            // [G][d][32]
  float* const OtAll = QtAll + G * d * QB;  // [G][d][32]
  float* const S = OtAll + G * d * QB;      // [KT][32]
  float* const M = S + KT * QB;             // [G][32] running max
  float* const L = M + G * QB;              // [G][32] running sum
  float* const Kp = L + G * QB;             // [KT][d] the key tile, packed
  float* const Vp = Kp + KT * d;            // [KT][d] the value tile, packed
  const float qs = scale * 1.44269504088896340736f;  // exp(x) = 2^(x log2 e): fold log2 e into q
  const __m512 zero = _mm512_setzero_ps();

  for (int64_t t = t0; t < t1; ++t) {
    const int64_t grp = t % nGroups, h = (t / nGroups) % heads, b = t / (nGroups * heads);
    const int64_t blk0 = grp * G, nb = imin(G, nQB - blk0);
    const float* const base = qkv + b * tokens * rowStride + h * d;
    const float* const kBase = base + heads * d;
    const float* const vBase = base + 2 * heads * d;

    for (int64_t g = 0; g < nb; ++g) {
      const int64_t q0 = (blk0 + g) * QB, nq = imin(QB, tokens - q0);
      float* const Qt = QtAll + g * d * QB;
      float* const Ot = OtAll + g * d * QB;
      // Qt: transposed, pre-scaled queries; lanes past the last query are 0 (results dropped).
      if (nq < QB)
        for (int64_t c = 0; c < d; ++c)
          for (int64_t i = nq; i < QB; ++i) Qt[c * QB + i] = 0.0f;
      for (int64_t i = 0; i < nq; ++i) {
        const float* q = base + (q0 + i) * rowStride;
        for (int64_t c = 0; c < d; ++c) Qt[c * QB + i] = q[c] * qs;
      }
      for (int64_t c = 0; c < d; ++c) {
        _mm512_store_ps(Ot + c * QB, zero);
        _mm512_store_ps(Ot + c * QB + 16, zero);
      }
      const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
      _mm512_store_ps(M + g * QB, ninf);
      _mm512_store_ps(M + g * QB + 16, ninf);
      _mm512_store_ps(L + g * QB, zero);
      _mm512_store_ps(L + g * QB + 16, zero);
    }

    for (int64_t j0 = 0; j0 < tokens; j0 += KT) {
      const int64_t nk = imin(KT, tokens - j0);
      // Pack the tile once for the group's query blocks: contiguous rows instead of one page each.
      for (int64_t j = 0; j < nk; ++j) {
        copyRow(Kp + j * d, kBase + (j0 + j) * rowStride, d);
        copyRow(Vp + j * d, vBase + (j0 + j) * rowStride, d);
      }
      for (int64_t g = 0; g < nb; ++g) {
        const float* const Qt = QtAll + g * d * QB;
        float* const Ot = OtAll + g * d * QB;
        const __m512 m0 = _mm512_load_ps(M + g * QB), m1 = _mm512_load_ps(M + g * QB + 16);
        __m512 mx0 = m0, mx1 = m1;
        int64_t jb = 0;
        for (; jb + NJ <= nk; jb += NJ) scoreBlock<NJ>(Qt, Kp + jb * d, d, d, S + jb * QB, mx0, mx1);
        if (jb < nk) scoreTail(nk - jb, Qt, Kp + jb * d, d, d, S + jb * QB, mx0, mx1);

        // New max: what was accumulated so far is scaled by 2^(m_old - m_new) (0 on the first tile).
        const __m512 al0 = exp2Neg(_mm512_sub_ps(m0, mx0)), al1 = exp2Neg(_mm512_sub_ps(m1, mx1));
        _mm512_store_ps(M + g * QB, mx0);
        _mm512_store_ps(M + g * QB + 16, mx1);
        __m512 s0 = zero, s1 = zero;
        for (int64_t j = 0; j < nk; ++j) {
          const __m512 p0 = exp2Neg(_mm512_sub_ps(_mm512_load_ps(S + j * QB), mx0));
          const __m512 p1 = exp2Neg(_mm512_sub_ps(_mm512_load_ps(S + j * QB + 16), mx1));
          _mm512_store_ps(S + j * QB, p0);
          _mm512_store_ps(S + j * QB + 16, p1);
          s0 = _mm512_add_ps(s0, p0);
          s1 = _mm512_add_ps(s1, p1);
        }
        _mm512_store_ps(L + g * QB, _mm512_fmadd_ps(_mm512_load_ps(L + g * QB), al0, s0));
        _mm512_store_ps(L + g * QB + 16, _mm512_fmadd_ps(_mm512_load_ps(L + g * QB + 16), al1, s1));

        int64_t c0 = 0;
        for (; c0 + NC <= d; c0 += NC) pvBlock<NC>(Ot + c0 * QB, S, Vp + c0, d, nk, al0, al1);
        if (c0 < d) pvTail(d - c0, Ot + c0 * QB, S, Vp + c0, d, nk, al0, al1);
      }
    }

    for (int64_t g = 0; g < nb; ++g) {
      const int64_t q0 = (blk0 + g) * QB, nq = imin(QB, tokens - q0);
      float* const Ot = OtAll + g * d * QB;
      const __m512 inv0 = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_load_ps(L + g * QB));
      const __m512 inv1 = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_load_ps(L + g * QB + 16));
      for (int64_t c = 0; c < d; ++c) {
        _mm512_store_ps(Ot + c * QB, _mm512_mul_ps(_mm512_load_ps(Ot + c * QB), inv0));
        _mm512_store_ps(Ot + c * QB + 16, _mm512_mul_ps(_mm512_load_ps(Ot + c * QB + 16), inv1));
      }
      for (int64_t i = 0; i < nq; ++i) {
        float* o = out + (b * tokens + q0 + i) * outStride + h * d;
        for (int64_t c = 0; c < d; ++c) o[c] = Ot[c * QB + i];
      }
    }
  }
}

}  // namespace nd::detail

#else  // built without AVX-512 flags: attentionAvx512Supported() is false, nothing here runs

namespace nd::detail {
bool attentionAvx512Compiled() { return false; }
int64_t attentionAvx512TaskCount(int64_t, int64_t, int64_t) { return 0; }
int64_t attentionAvx512ScratchFloats(int64_t) { return 0; }
void attentionAvx512Tasks(const float*, int64_t, int64_t, int64_t, float, float*, int64_t, int64_t, float*) {}
}  // namespace nd::detail

#endif
