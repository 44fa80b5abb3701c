// Token-level MoE on the device, the twin of moeForwardCpu's routing (moe/token_moe.cpp), without a
// host round trip per layer:
//  - moeRouteCuda: softmax over the experts, top-k (ties toward the lower expert, picks in descending
//    order), admission under the per-sample capacity in (slot, token) priority, and the permutation
//    of kept assignments grouped by expert, stable in (token, slot) order (so the result does not
//    depend on thread timing), plus the statistics (per-expert counts, drops, router entropy).
//  - groupedLinearCuda: one tensor-core GEMM launch over all experts' segments of that permutation,
//    gathering token rows on the way in and scattering assignment rows on the way out.
//  - moeCombineCuda: out[r] (+)= sum over the token's kept slots of weight * expert output, in slot
//    order.
#pragma once
#include "core/dtype.h"
#include "core/error.h"

namespace nd {

struct MoeRoutingBuffers {   // device memory, sized for rows tokens and k slots
  int32_t* idx;              // [rows * k] chosen experts
  float* val;                // [rows * k] their probabilities
  uint8_t* kept;             // [rows * k] 1 kept, 0 dropped
  int32_t* order;            // [rows * k] kept assignments (token * k + slot) grouped by expert
  int32_t* offsets;          // [experts + 1] segment starts in `order`
  int32_t* counts;           // [experts] kept assignments per expert (statistics)
  int32_t* dropped;          // [1]
  float* entropy;            // [rows] router entropy per token (nats)
};

// logits: [rows, experts] f32 (the router GEMM's output). capacity 0: dropless. rows = batch * tokens.
void moeRouteCuda(const float* logits, int64_t batch, int64_t tokens, int64_t experts, int64_t k, int64_t capacity,
                  const MoeRoutingBuffers& b, void* stream);

// For every expert e and every position r in [offsets[e], offsets[e+1]): y[outRow] = x[inRow] W_eᵀ,
// where inRow = gather ? order[r] / k : r and outRow = scatter ? order[r] : r. W: [experts, n, k]
// contiguous in type (bf16/f16/f32, as x); y in yType. maxRows bounds offsets[experts] (rows * k).
void groupedLinearCuda(const void* x, int64_t ldx, const void* w, DType type, int64_t experts, int64_t n, int64_t kDim,
                       const int32_t* order, const int32_t* offsets, int64_t maxRows, int64_t slots, bool gather,
                       bool scatter, void* y, DType yType, int64_t ldy, void* stream);

// out[r, :] = (accumulate ? out[r, :] : 0) + sum_s kept * val * routed[r * k + s, :] (f32).
void moeCombineCuda(float* out, const float* routed, const float* val, const uint8_t* kept, int64_t rows, int64_t k,
                    int64_t dim, bool accumulate, void* stream);

}  // namespace nd

#ifndef ND_KERNEL_DECLARATIONS_ONLY
#include <type_traits>

#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/gemm.cuh"

namespace nd::kcuda {

// One warp per token: softmax, entropy, top-k.
constexpr int kMoeMaxK = 8;

__global__ void moeSoftmaxTopkKernel(const float* logits, int64_t rows, int64_t E, int64_t K, int32_t* idx, float* val,
                                     float* entropy, int32_t* dropped) {
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = int(threadIdx.x % 32);
  if (row == 0 && lane == 0) *dropped = 0;  // the admission kernel, next on the stream, counts into it
  if (row >= rows) return;
  const float* l = logits + row * E;
  float mx = -INFINITY;
  for (int64_t e = lane; e < E; e += 32) mx = l[e] > mx ? l[e] : mx;
  mx = warpMax(mx);
  float sum = 0.0f;
  for (int64_t e = lane; e < E; e += 32) sum += expf(l[e] - mx);
  sum = warpSum(sum);
  float ent = 0.0f;
  for (int64_t e = lane; e < E; e += 32) {
    const float p = expf(l[e] - mx) / sum;
    if (p > 0.0f) ent -= p * logf(p);
  }
  ent = warpSum(ent);
  if (lane == 0) entropy[row] = ent;
  // k rounds of a warp argmax (higher probability, then lower index), skipping earlier picks.
  int64_t prev[kMoeMaxK];
  for (int64_t s = 0; s < K; ++s) {
    float best = -1.0f;
    int64_t bestE = E;
    for (int64_t e = lane; e < E; e += 32) {
      bool taken = false;
      for (int64_t j = 0; j < s; ++j) taken = taken || prev[j] == e;
      const float p = expf(l[e] - mx) / sum;
      if (!taken && (p > best || (p == best && e < bestE))) {
        best = p;
        bestE = e;
      }
    }
    for (int o = 16; o > 0; o >>= 1) {
      const float ob = __shfl_xor_sync(0xffffffffu, best, o);
      const int64_t oe = __shfl_xor_sync(0xffffffffu, bestE, o);
      if (ob > best || (ob == best && oe < bestE)) {
        best = ob;
        bestE = oe;
      }
    }
    prev[s] = bestE;
    if (lane == 0) {
      idx[row * K + s] = int32_t(bestE);
      val[row * K + s] = best;
    }
  }
}

// One thread per (sample, expert): admission in (slot, token) order under the capacity.
__global__ void moeAdmitKernel(const int32_t* idx, int64_t batch, int64_t tokens, int64_t E, int64_t K, int64_t cap,
                               uint8_t* kept, int32_t* dropped) {
  const int64_t g = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (g >= batch * E) return;
  const int64_t b = g / E, e = g % E;
  int64_t load = 0, drops = 0;
  for (int64_t s = 0; s < K; ++s)
    for (int64_t t = 0; t < tokens; ++t) {
      const int64_t a = (b * tokens + t) * K + s;
      if (idx[a] != e) continue;
      const bool in = cap <= 0 || load < cap;
      kept[a] = in ? 1 : 0;
      if (in) ++load;
      else ++drops;
    }
  if (drops) atomicAdd(dropped, int32_t(drops));
}

// One block: thread e counts expert e's kept assignments, thread 0 makes the offsets, then every
// thread writes its expert's segment in assignment order (deterministic, stable).
__global__ void moePermuteKernel(const int32_t* idx, const uint8_t* kept, int64_t assignments, int64_t E,
                                 int32_t* counts, int32_t* offsets, int32_t* order) {
  for (int64_t e = threadIdx.x; e < E; e += blockDim.x) {
    int32_t c = 0;
    for (int64_t a = 0; a < assignments; ++a) c += (idx[a] == e && kept[a]) ? 1 : 0;
    counts[e] = c;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int32_t run = 0;
    for (int64_t e = 0; e < E; ++e) {
      offsets[e] = run;
      run += counts[e];
    }
    offsets[E] = run;
  }
  __syncthreads();
  for (int64_t e = threadIdx.x; e < E; e += blockDim.x) {
    int32_t at = offsets[e];
    for (int64_t a = 0; a < assignments; ++a)
      if (idx[a] == e && kept[a]) order[at++] = int32_t(a);
  }
}

__global__ void moeCombineKernel(float* out, const float* routed, const float* val, const uint8_t* kept, int64_t rows,
                                 int64_t K, int64_t D, bool accumulate) {
  const int64_t total = rows * D;
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const int64_t r = i / D, d = i % D;
    float o = accumulate ? out[i] : 0.0f;
    for (int64_t s = 0; s < K; ++s) {
      const int64_t a = r * K + s;
      if (kept[a]) o += val[a] * routed[a * D + d];
    }
    out[i] = o;
  }
}

// The grouped GEMM: the tensor-core kernel's main loop over gathered rows. Block y walks the
// experts' tile ranges (each expert's segment in tiles of BM rows); blocks past the last tile leave.
template <class T, class TY, bool kVec>
__global__ void __launch_bounds__(128)
    groupedGemmKernel(const T* x, int64_t ldx, const T* w, int64_t E, int64_t n, int64_t k, const int32_t* order,
                      const int32_t* offsets, int64_t slots, bool gather, bool scatter, TY* y, int64_t ldy) {
  namespace wmma = nvcuda::wmma;
  constexpr int BM = 64, BN = 64, WN = 2, NT = 128, WTM = 32, WTN = 32, FM = 2, FN = 2;
  constexpr int kABytes = BM * kTcLds * int(sizeof(T)), kBBytes = BN * kTcLds * int(sizeof(T));
  __shared__ __align__(32) unsigned char smem[kABytes + kBBytes];
  __shared__ int32_t srcRow[BM];
  T* sA = reinterpret_cast<T*>(smem);
  T* sB = reinterpret_cast<T*>(smem + kABytes);
  // Which expert and which rows of its segment this block takes.
  int64_t e = 0, tileBase = 0, first = -1, last = 0;
  for (; e < E; ++e) {
    const int64_t cnt = offsets[e + 1] - offsets[e], tiles = (cnt + BM - 1) / BM;
    if (int64_t(blockIdx.y) < tileBase + tiles) {
      first = offsets[e] + (int64_t(blockIdx.y) - tileBase) * BM;
      last = offsets[e + 1];
      break;
    }
    tileBase += tiles;
  }
  if (first < 0) return;  // the whole block leaves together
  for (int i = int(threadIdx.x); i < BM; i += NT) {
    const int64_t r = first + i;
    srcRow[i] = r < last ? (gather ? int32_t(order[r] / slots) : int32_t(r)) : -1;
  }
  __syncthreads();
  const T* we = w + e * n * k;
  const int warp = int(threadIdx.x / 32), lane = int(threadIdx.x % 32);
  const int wm = warp / WN, wn = warp % WN;
  const int64_t n0 = int64_t(blockIdx.x) * BN;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[FM][FN];
  for (int i = 0; i < FM; ++i)
    for (int j = 0; j < FN; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
  const T zero = fromFloat<T>(0.0f);
  for (int64_t k0 = 0; k0 < k; k0 += kTcBK) {
    __syncthreads();
    for (int ci = int(threadIdx.x); ci < BM * kTcBK / 8; ci += NT) {
      const int r = ci / (kTcBK / 8), c8 = (ci % (kTcBK / 8)) * 8;
      const int64_t src = srcRow[r], c = k0 + c8;
      T* dst = sA + r * kTcLds + c8;
      if (kVec && src >= 0 && c < k) {
        *reinterpret_cast<Pack8<T>*>(dst) = *reinterpret_cast<const Pack8<T>*>(x + src * ldx + c);
      } else {
        for (int q = 0; q < 8; ++q) dst[q] = (src >= 0 && c + q < k) ? x[src * ldx + c + q] : zero;
      }
      const int64_t wr = n0 + r;
      T* dstB = sB + r * kTcLds + c8;
      if (kVec && wr < n && c < k) {
        *reinterpret_cast<Pack8<T>*>(dstB) = *reinterpret_cast<const Pack8<T>*>(we + wr * k + c);
      } else {
        for (int q = 0; q < 8; ++q) dstB[q] = (wr < n && c + q < k) ? we[wr * k + c + q] : zero;
      }
    }
    __syncthreads();
    for (int kk = 0; kk < kTcBK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a[FM];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> bf[FN];
      for (int i = 0; i < FM; ++i) wmma::load_matrix_sync(a[i], sA + (wm * WTM + i * 16) * kTcLds + kk, kTcLds);
      for (int j = 0; j < FN; ++j) wmma::load_matrix_sync(bf[j], sB + (wn * WTN + j * 16) * kTcLds + kk, kTcLds);
      for (int i = 0; i < FM; ++i)
        for (int j = 0; j < FN; ++j) wmma::mma_sync(acc[i][j], a[i], bf[j], acc[i][j]);
    }
  }
  __syncthreads();
  float* scratch = reinterpret_cast<float*>(smem) + warp * 256;
  const GemmEpi store{LinearEpilogueCuda::Kind::Store, nullptr, 0, 1};
  for (int i = 0; i < FM; ++i)
    for (int j = 0; j < FN; ++j) {
      wmma::store_matrix_sync(scratch, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      for (int q = lane; q < 256; q += 32) {
        const int64_t r = first + wm * WTM + i * 16 + q / 16, c = n0 + wn * WTN + j * 16 + q % 16;
        if (r < last && c < n) gemmStore(y, ldy, scatter ? int64_t(order[r]) : r, c, scratch[q], nullptr, store);
      }
      __syncwarp();
    }
}

// f32 experts: the same walk with a plain loop (the parity path; f32 DiT-MoE checkpoints are small).
template <class TY>
__global__ void groupedGemmF32Kernel(const float* x, int64_t ldx, const float* w, int64_t E, int64_t n, int64_t k,
                                     const int32_t* order, const int32_t* offsets, int64_t maxRows, int64_t slots,
                                     bool gather, bool scatter, TY* y, int64_t ldy) {
  const int64_t total = maxRows * n;
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  const GemmEpi store{LinearEpilogueCuda::Kind::Store, nullptr, 0, 1};
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const int64_t r = i / n, c = i % n;
    if (r >= offsets[E]) continue;
    int64_t e = 0;
    while (offsets[e + 1] <= r) ++e;
    const float* xr = x + (gather ? int64_t(order[r] / slots) : r) * ldx;
    const float* wr = w + (e * n + c) * k;
    float acc = 0.0f;
    for (int64_t q = 0; q < k; ++q) acc += xr[q] * wr[q];
    gemmStore(y, ldy, scatter ? int64_t(order[r]) : r, c, acc, nullptr, store);
  }
}

inline void launchMoeRoute(const float* logits, int64_t batch, int64_t tokens, int64_t E, int64_t K, int64_t capacity,
                           const MoeRoutingBuffers& b, void* stream) {
  const int64_t rows = batch * tokens;
  if (rows == 0) return;
  auto topk = moeSoftmaxTopkKernel;
  ND_LAUNCH(topk, dim3(blocksFor(rows, 8, 0x7fffffff)), dim3(256), stream, logits, rows, E, K, b.idx, b.val, b.entropy,
            b.dropped);
  auto admit = moeAdmitKernel;
  ND_LAUNCH(admit, dim3(blocksFor(batch * E, 128, 0x7fffffff)), dim3(128), stream, b.idx, batch, tokens, E, K, capacity,
            b.kept, b.dropped);
  auto permute = moePermuteKernel;
  ND_LAUNCH(permute, dim3(1), dim3(E < 1024 ? unsigned((E + 31) / 32 * 32) : 1024u), stream, b.idx, b.kept, rows * K,
            E, b.counts, b.offsets, b.order);
}

template <class T, class TY>
void launchGroupedLinear(const T* x, int64_t ldx, const T* w, int64_t E, int64_t n, int64_t k, const int32_t* order,
                         const int32_t* offsets, int64_t maxRows, int64_t slots, bool gather, bool scatter, TY* y,
                         int64_t ldy, void* stream) {
  if (maxRows == 0) return;
  if constexpr (std::is_same_v<T, float>) {
    auto kernel = groupedGemmF32Kernel<TY>;
    ND_LAUNCH(kernel, dim3(blocksFor(maxRows * n, 256)), dim3(256), stream, x, ldx, w, E, n, k, order, offsets, maxRows,
              slots, gather, scatter, y, ldy);
  } else {
    // Upper bound of the row tiles over all experts: each segment wastes at most one partial tile.
    const dim3 grid(unsigned((n + 63) / 64), unsigned((maxRows + 63) / 64 + E));
    const bool vec = k % 8 == 0 && ldx % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
                     reinterpret_cast<uintptr_t>(w) % 16 == 0;
    if (vec) {
      auto kernel = groupedGemmKernel<T, TY, true>;
      ND_LAUNCH(kernel, grid, dim3(128), stream, x, ldx, w, E, n, k, order, offsets, slots, gather, scatter, y, ldy);
    } else {
      auto kernel = groupedGemmKernel<T, TY, false>;
      ND_LAUNCH(kernel, grid, dim3(128), stream, x, ldx, w, E, n, k, order, offsets, slots, gather, scatter, y, ldy);
    }
  }
}

inline void launchMoeCombine(float* out, const float* routed, const float* val, const uint8_t* kept, int64_t rows,
                             int64_t K, int64_t D, bool accumulate, void* stream) {
  if (rows * D == 0) return;
  auto kernel = moeCombineKernel;
  ND_LAUNCH(kernel, dim3(blocksFor(rows * D, 256)), dim3(256), stream, out, routed, val, kept, rows, K, D, accumulate);
}

}  // namespace nd::kcuda
#endif  // ND_KERNEL_DECLARATIONS_ONLY
