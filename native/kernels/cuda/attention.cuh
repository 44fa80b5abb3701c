// attentionCuda: the CUDA twin of attentionCpu, softmax(q kᵀ · scale) v for every (sample, head) of
// the fused qkv rows, as a flash attention: keys and values stream through shared memory in tiles
// of 32 with a running max and sum per query row, so memory is O(tile) for any sequence length.
//  - bf16 / f16: a block takes 32 queries; Q·Kᵀ and P·V run on tensor cores (WMMA, f32
//    accumulation); the head size is zero-padded to a multiple of 16 (72 -> 80 for DiT-XL).
//  - f32: a SIMT kernel, one warp per 4 query rows, each lane holding 4 of the head's dimensions.
// Head sizes up to 128.
#pragma once
#include "core/dtype.h"
#include "core/error.h"

namespace nd {
// qkv: [batch, tokens, 3, heads, headDim] in type (f32/bf16/f16) on the device; out: [batch,
// tokens, heads * headDim] in the same type.
void attentionCuda(const void* qkv, DType type, int64_t batch, int64_t tokens, int64_t heads, int64_t headDim,
                   float scale, void* out, void* stream);
}  // namespace nd

#ifndef ND_KERNEL_DECLARATIONS_ONLY
#include "kernels/cuda/device_common.cuh"

namespace nd::kcuda {

constexpr int kAttnMaxHead = 128;
constexpr int kAttnTile = 32;  // queries per block and keys per tile

// ---- f32 SIMT ----------------------------------------------------------------------------------
constexpr int kAttnSimtRowsPerWarp = 4;
constexpr int kAttnSimtWarps = 8;

__global__ void __launch_bounds__(kAttnSimtWarps * 32)
    attentionSimtKernel(const float* qkv, int64_t T, int64_t H, int64_t hd, float scale, float* out) {
  __shared__ float sK[kAttnTile][kAttnMaxHead];
  __shared__ float sV[kAttnTile][kAttnMaxHead];
  const int warp = int(threadIdx.x / 32), lane = int(threadIdx.x % 32);
  const int64_t b = blockIdx.z, h = blockIdx.y;
  const int64_t q0 = int64_t(blockIdx.x) * (kAttnSimtWarps * kAttnSimtRowsPerWarp) + warp * kAttnSimtRowsPerWarp;
  const int64_t rowStride = 3 * H * hd;
  const float* base = qkv + b * T * rowStride + h * hd;
  constexpr int R = kAttnSimtRowsPerWarp, U = kAttnMaxHead / 32;
  float q[R][U], o[R][U], mx[R], l[R];
  for (int r = 0; r < R; ++r) {
    mx[r] = -INFINITY;
    l[r] = 0.0f;
    for (int u = 0; u < U; ++u) {
      const int64_t d = lane + 32 * u;
      q[r][u] = (q0 + r < T && d < hd) ? base[(q0 + r) * rowStride + d] : 0.0f;
      o[r][u] = 0.0f;
    }
  }
  for (int64_t k0 = 0; k0 < T; k0 += kAttnTile) {
    __syncthreads();
    for (int64_t e = threadIdx.x; e < int64_t(kAttnTile) * hd; e += blockDim.x) {
      const int64_t j = e / hd, d = e % hd;
      const bool in = k0 + j < T;
      sK[j][d] = in ? base[(k0 + j) * rowStride + H * hd + d] : 0.0f;
      sV[j][d] = in ? base[(k0 + j) * rowStride + 2 * H * hd + d] : 0.0f;
    }
    __syncthreads();
    const int nk = int(T - k0 < kAttnTile ? T - k0 : kAttnTile);
    for (int r = 0; r < R; ++r) {
      float mine = -INFINITY;  // lane j keeps the score of key j
      for (int j = 0; j < nk; ++j) {
        float part = 0.0f;
        for (int u = 0; u < U; ++u)
          if (lane + 32 * u < hd) part += q[r][u] * sK[j][lane + 32 * u];
        const float s = warpSum(part) * scale;
        if (lane == j) mine = s;
      }
      const float tileMax = warpMax(mine);
      const float mNew = mx[r] > tileMax ? mx[r] : tileMax;
      const float p = lane < nk ? expf(mine - mNew) : 0.0f;
      const float corr = expf(mx[r] - mNew);
      l[r] = l[r] * corr + warpSum(p);
      mx[r] = mNew;
      for (int u = 0; u < U; ++u) o[r][u] *= corr;
      for (int j = 0; j < nk; ++j) {
        const float pj = __shfl_sync(0xffffffffu, p, j);
        for (int u = 0; u < U; ++u)
          if (lane + 32 * u < hd) o[r][u] += pj * sV[j][lane + 32 * u];
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    if (q0 + r >= T) continue;
    float* dst = out + ((b * T + q0 + r) * H + h) * hd;
    for (int u = 0; u < U; ++u)
      if (lane + 32 * u < hd) dst[lane + 32 * u] = o[r][u] / l[r];
  }
}

// ---- tensor cores ------------------------------------------------------------------------------
template <class T, int HDP>
__global__ void __launch_bounds__(128)
    attentionTensorCoreKernel(const T* qkv, int64_t T_, int64_t H, int64_t hd, float scale, T* out) {
  namespace wmma = nvcuda::wmma;
  constexpr int BQ = kAttnTile, BK = kAttnTile;
  constexpr int LDQ = HDP + 8, LDS = BK + 4, LDP = BK + 8, LDO = HDP + 4;
  __shared__ __align__(32) T sQ[BQ * LDQ];
  __shared__ __align__(32) T sKV[BK * LDQ];
  __shared__ __align__(32) float sS[BQ * LDS];
  __shared__ __align__(32) T sP[BQ * LDP];
  __shared__ __align__(32) float sO[BQ * LDO];
  __shared__ float sM[BQ], sL[BQ], sAlpha[BQ];

  const int tid = int(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int64_t b = blockIdx.z, h = blockIdx.y, q0 = int64_t(blockIdx.x) * BQ;
  const int64_t rowStride = 3 * H * hd;
  const T* base = qkv + b * T_ * rowStride + h * hd;
  const T zero = fromFloat<T>(0.0f);

  for (int e = tid; e < BQ * HDP; e += 128) {
    const int r = e / HDP, d = e % HDP;
    sQ[r * LDQ + d] = (q0 + r < T_ && d < hd) ? base[(q0 + r) * rowStride + d] : zero;
    sO[r * LDO + d] = 0.0f;
  }
  if (tid < BQ) {
    sM[tid] = -INFINITY;
    sL[tid] = 0.0f;
  }
  for (int64_t k0 = 0; k0 < T_; k0 += BK) {
    __syncthreads();  // the previous tile's P·V is done with sKV
    for (int e = tid; e < BK * HDP; e += 128) {
      const int j = e / HDP, d = e % HDP;
      sKV[j * LDQ + d] = (k0 + j < T_ && d < hd) ? base[(k0 + j) * rowStride + H * hd + d] : zero;
    }
    __syncthreads();
    {  // S = Q Kᵀ: warp w computes the 16x16 block (w / 2, w % 2)
      const int i = warp / 2, j = warp % 2;
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> s;
      wmma::fill_fragment(s, 0.0f);
      for (int kk = 0; kk < HDP; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> bk;
        wmma::load_matrix_sync(a, sQ + i * 16 * LDQ + kk, LDQ);
        wmma::load_matrix_sync(bk, sKV + j * 16 * LDQ + kk, LDQ);
        wmma::mma_sync(s, a, bk, s);
      }
      wmma::store_matrix_sync(sS + i * 16 * LDS + j * 16, s, LDS, wmma::mem_row_major);
    }
    __syncthreads();
    for (int e = tid; e < BK * HDP; e += 128) {
      const int j = e / HDP, d = e % HDP;
      sKV[j * LDQ + d] = (k0 + j < T_ && d < hd) ? base[(k0 + j) * rowStride + 2 * H * hd + d] : zero;
    }
    // Online softmax, one warp per 8 rows, lane = key.
    const bool keyIn = k0 + lane < T_;
    for (int r = warp * 8; r < warp * 8 + 8; ++r) {
      const float s = keyIn ? sS[r * LDS + lane] * scale : -INFINITY;
      const float tileMax = warpMax(s);
      const float mOld = sM[r];
      const float mNew = mOld > tileMax ? mOld : tileMax;
      const float p = keyIn ? expf(s - mNew) : 0.0f;
      const float sum = warpSum(p);
      sP[r * LDP + lane] = fromFloat<T>(p);
      __syncwarp();
      if (lane == 0) {
        const float alpha = expf(mOld - mNew);
        sAlpha[r] = alpha;
        sL[r] = sL[r] * alpha + sum;
        sM[r] = mNew;
      }
      __syncwarp();
    }
    __syncthreads();
    for (int e = tid; e < BQ * HDP; e += 128) sO[(e / HDP) * LDO + e % HDP] *= sAlpha[e / HDP];
    __syncthreads();
    {  // O += P V: warp w takes row block w / 2 and every other 16-column block
      const int i = warp / 2;
      for (int jd = warp % 2; jd < HDP / 16; jd += 2) {
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> o;
        wmma::load_matrix_sync(o, sO + i * 16 * LDO + jd * 16, LDO, wmma::mem_row_major);
        for (int kk = 0; kk < BK; kk += 16) {
          wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
          wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> bv;
          wmma::load_matrix_sync(a, sP + i * 16 * LDP + kk, LDP);
          wmma::load_matrix_sync(bv, sKV + kk * LDQ + jd * 16, LDQ);
          wmma::mma_sync(o, a, bv, o);
        }
        wmma::store_matrix_sync(sO + i * 16 * LDO + jd * 16, o, LDO, wmma::mem_row_major);
      }
    }
  }
  __syncthreads();
  for (int e = tid; e < BQ * HDP; e += 128) {
    const int r = e / HDP, d = e % HDP;
    if (q0 + r < T_ && d < hd) out[((b * T_ + q0 + r) * H + h) * hd + d] = fromFloat<T>(sO[r * LDO + d] / sL[r]);
  }
}

inline void launchAttentionSimt(const float* qkv, int64_t batch, int64_t T, int64_t H, int64_t hd, float scale,
                                float* out, void* stream) {
  const int rowsPerBlock = kAttnSimtWarps * kAttnSimtRowsPerWarp;
  const dim3 grid(unsigned((T + rowsPerBlock - 1) / rowsPerBlock), unsigned(H), unsigned(batch));
  auto kernel = attentionSimtKernel;
  ND_LAUNCH(kernel, grid, dim3(kAttnSimtWarps * 32), stream, qkv, T, H, hd, scale, out);
}

template <class T>
void launchAttentionTensorCore(const T* qkv, int64_t batch, int64_t tokens, int64_t H, int64_t hd, float scale, T* out,
                               void* stream) {
  const dim3 grid(unsigned((tokens + kAttnTile - 1) / kAttnTile), unsigned(H), unsigned(batch));
  auto go = [&](auto kernel) { ND_LAUNCH(kernel, grid, dim3(128), stream, qkv, tokens, H, hd, scale, out); };
  if (hd <= 32) go(attentionTensorCoreKernel<T, 32>);
  else if (hd <= 64) go(attentionTensorCoreKernel<T, 64>);
  else if (hd <= 80) go(attentionTensorCoreKernel<T, 80>);
  else if (hd <= 96) go(attentionTensorCoreKernel<T, 96>);
  else go(attentionTensorCoreKernel<T, 128>);
}

}  // namespace nd::kcuda
#endif  // ND_KERNEL_DECLARATIONS_ONLY
