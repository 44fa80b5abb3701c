// linearCuda: the CUDA twin of linearCpu, y = epilogue(x Wᵀ + bias) with W stored as nn.Linear
// stores it ([n, k], row-major).
//  - bf16 / f16 operands: tensor cores (WMMA 16x16x16) with f32 accumulation. A block computes a
//    128x128 (or, when that leaves SMs idle, 64x64) tile of y; each k-slice of 32 is staged through
//    shared memory while the next one is already being loaded into registers.
//  - f32 operands: a SIMT kernel (64x64 tiles, 4x4 outputs per thread) in f32 — the parity path
//    the CPU backend is checked against.
// The epilogue is fused: bias, then GELU (tanh) or a gated residual add into y (the adaLN-Zero
// residual of a DiT block, h += gate[sample] * (x Wᵀ + b)), then the cast to y's type. Why our own
// kernels and not cuBLAS: docs/design.md, "The CUDA backend".
#pragma once
#include "core/dtype.h"
#include "core/error.h"

namespace nd {

struct LinearEpilogueCuda {
  enum class Kind : uint8_t { Store, GeluTanh, GatedAdd };
  Kind kind = Kind::Store;
  // GatedAdd (y must be f32): y[r, c] += gate[(r / rowsPerSample) * gateStride + c] * v; gate null: y += v.
  const float* gate = nullptr;
  int64_t gateStride = 0;
  int64_t rowsPerSample = 1;
};

// x: m rows of k elements (row stride ldx) and w: n rows of k (row stride ldw), both of wType (f32,
// bf16 or f16) on the device; bias: n f32 or null; y: m rows of n in yType (row stride ldy).
void linearCuda(const void* x, int64_t m, int64_t ldx, const void* w, DType wType, int64_t n, int64_t k,
                int64_t ldw, const float* bias, void* y, DType yType, int64_t ldy, const LinearEpilogueCuda& epilogue,
                void* stream);

}  // namespace nd

#ifndef ND_KERNEL_DECLARATIONS_ONLY
#include "kernels/cuda/device_common.cuh"

namespace nd::kcuda {

struct GemmEpi {
  LinearEpilogueCuda::Kind kind;
  const float* gate;
  int64_t gateStride, rowsPerSample;
};

template <class TY>
__device__ __forceinline__ void gemmStore(TY* y, int64_t ldy, int64_t r, int64_t c, float v, const float* bias,
                                          const GemmEpi& e) {
  if (bias) v = v + bias[c];
  TY* p = y + r * ldy + c;
  if (e.kind == LinearEpilogueCuda::Kind::GeluTanh) {
    *p = fromFloat<TY>(geluTanhValue(v));
  } else if (e.kind == LinearEpilogueCuda::Kind::GatedAdd) {
    const float g = e.gate ? e.gate[(r / e.rowsPerSample) * e.gateStride + c] : 1.0f;
    *p = fromFloat<TY>(toFloat(*p) + g * v);
  } else {
    *p = fromFloat<TY>(v);
  }
}

// ---- tensor cores ----------------------------------------------------------------------------
constexpr int kTcBK = 32;           // k per shared-memory stage
constexpr int kTcLds = kTcBK + 8;   // padded row (elements): 80-byte rows spread the banks

template <class T>
struct alignas(16) Pack8 {
  T v[8];
};

// Loads the 8-element chunks this thread owns of a rows x 32 slice (rows of `ld` elements, rows
// from r0, k from k0) into registers; out-of-range elements are zero.
template <class T, int ROWS, int NT, bool kVec>
__device__ __forceinline__ void tcLoadSlice(const T* src, int64_t ld, int64_t rowsTotal, int64_t kTotal, int64_t r0,
                                            int64_t k0, Pack8<T> (&regs)[ROWS * kTcBK / 8 / NT]) {
  constexpr int kChunks = ROWS * kTcBK / 8 / NT;
  for (int i = 0; i < kChunks; ++i) {
    const int ci = int(threadIdx.x) + i * NT;
    const int64_t r = r0 + ci / (kTcBK / 8), c = k0 + (ci % (kTcBK / 8)) * 8;
    if constexpr (kVec) {
      if (r < rowsTotal && c < kTotal) {
        regs[i] = *reinterpret_cast<const Pack8<T>*>(src + r * ld + c);
      } else {
        for (int e = 0; e < 8; ++e) regs[i].v[e] = fromFloat<T>(0.0f);
      }
    } else {
      for (int e = 0; e < 8; ++e)
        regs[i].v[e] = (r < rowsTotal && c + e < kTotal) ? src[r * ld + c + e] : fromFloat<T>(0.0f);
    }
  }
}

template <class T, int ROWS, int NT>
__device__ __forceinline__ void tcStoreSlice(T* s, const Pack8<T> (&regs)[ROWS * kTcBK / 8 / NT]) {
  constexpr int kChunks = ROWS * kTcBK / 8 / NT;
  for (int i = 0; i < kChunks; ++i) {
    const int ci = int(threadIdx.x) + i * NT;
    *reinterpret_cast<Pack8<T>*>(s + (ci / (kTcBK / 8)) * kTcLds + (ci % (kTcBK / 8)) * 8) = regs[i];
  }
}

// kVec: k and both row strides are multiples of 8 and the bases 16-byte aligned (16-byte loads).
template <class T, class TY, int BM, int BN, int WM, int WN, bool kVec>
__global__ void __launch_bounds__(WM* WN * 32)
    gemmTensorCoreKernel(const T* x, int64_t m, int64_t ldx, const T* w, int64_t n, int64_t k, int64_t ldw,
                         const float* bias, TY* y, int64_t ldy, GemmEpi epi) {
  namespace wmma = nvcuda::wmma;
  constexpr int NT = WM * WN * 32;
  constexpr int WTM = BM / WM, WTN = BN / WN;  // a warp's tile
  constexpr int FM = WTM / 16, FN = WTN / 16;
  constexpr int kABytes = BM * kTcLds * int(sizeof(T)), kBBytes = BN * kTcLds * int(sizeof(T));
  static_assert(kABytes + kBBytes >= WM * WN * 16 * 16 * 4, "epilogue scratch must fit the tiles");
  __shared__ __align__(32) unsigned char smem[kABytes + kBBytes];
  T* sA = reinterpret_cast<T*>(smem);
  T* sB = reinterpret_cast<T*>(smem + kABytes);

  const int warp = int(threadIdx.x / 32), lane = int(threadIdx.x % 32);
  const int wm = warp / WN, wn = warp % WN;
  const int64_t m0 = int64_t(blockIdx.y) * BM, n0 = int64_t(blockIdx.x) * BN;

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[FM][FN];
  for (int i = 0; i < FM; ++i)
    for (int j = 0; j < FN; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  Pack8<T> ra[BM * kTcBK / 8 / NT], rb[BN * kTcBK / 8 / NT];
  tcLoadSlice<T, BM, NT, kVec>(x, ldx, m, k, m0, 0, ra);
  tcLoadSlice<T, BN, NT, kVec>(w, ldw, n, k, n0, 0, rb);
  for (int64_t k0 = 0; k0 < k; k0 += kTcBK) {
    __syncthreads();  // the previous slice's fragments are loaded
    tcStoreSlice<T, BM, NT>(sA, ra);
    tcStoreSlice<T, BN, NT>(sB, rb);
    __syncthreads();
    if (k0 + kTcBK < k) {  // the next slice travels while this one is multiplied
      tcLoadSlice<T, BM, NT, kVec>(x, ldx, m, k, m0, k0 + kTcBK, ra);
      tcLoadSlice<T, BN, NT, kVec>(w, ldw, n, k, n0, k0 + kTcBK, rb);
    }
    for (int kk = 0; kk < kTcBK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a[FM];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b[FN];
      for (int i = 0; i < FM; ++i) wmma::load_matrix_sync(a[i], sA + (wm * WTM + i * 16) * kTcLds + kk, kTcLds);
      // W is [n, k] row-major, i.e. the k x n operand in column-major order.
      for (int j = 0; j < FN; ++j) wmma::load_matrix_sync(b[j], sB + (wn * WTN + j * 16) * kTcLds + kk, kTcLds);
      for (int i = 0; i < FM; ++i)
        for (int j = 0; j < FN; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
  }
  __syncthreads();  // the tiles' memory becomes the epilogue's scratch
  float* scratch = reinterpret_cast<float*>(smem) + warp * 256;
  for (int i = 0; i < FM; ++i)
    for (int j = 0; j < FN; ++j) {
      wmma::store_matrix_sync(scratch, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      for (int e = lane; e < 256; e += 32) {
        const int64_t r = m0 + wm * WTM + i * 16 + e / 16, c = n0 + wn * WTN + j * 16 + e % 16;
        if (r < m && c < n) gemmStore(y, ldy, r, c, scratch[e], bias, epi);
      }
      __syncwarp();
    }
}

// ---- f32 SIMT ----------------------------------------------------------------------------------
constexpr int kSimtBM = 64, kSimtBN = 64, kSimtBK = 16;

template <class TY>
__global__ void __launch_bounds__(256)
    gemmSimtKernel(const float* x, int64_t m, int64_t ldx, const float* w, int64_t n, int64_t k, int64_t ldw,
                   const float* bias, TY* y, int64_t ldy, GemmEpi epi) {
  __shared__ float sA[kSimtBK][kSimtBM + 4];
  __shared__ float sB[kSimtBK][kSimtBN + 4];
  const int tid = int(threadIdx.x), tx = tid % 16, ty = tid / 16;
  const int64_t m0 = int64_t(blockIdx.y) * kSimtBM, n0 = int64_t(blockIdx.x) * kSimtBN;
  float acc[4][4];
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
  for (int64_t k0 = 0; k0 < k; k0 += kSimtBK) {
    for (int e = tid; e < kSimtBM * kSimtBK; e += 256) {
      const int r = e / kSimtBK, kk = e % kSimtBK;
      const int64_t gr = m0 + r, gk = k0 + kk;
      sA[kk][r] = (gr < m && gk < k) ? x[gr * ldx + gk] : 0.0f;
      const int64_t gn = n0 + r;
      sB[kk][r] = (gn < n && gk < k) ? w[gn * ldw + gk] : 0.0f;
    }
    __syncthreads();
    for (int kk = 0; kk < kSimtBK; ++kk) {
      float a[4], b[4];
      for (int i = 0; i < 4; ++i) a[i] = sA[kk][ty + 16 * i];
      for (int j = 0; j < 4; ++j) b[j] = sB[kk][tx + 16 * j];
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      const int64_t r = m0 + ty + 16 * i, c = n0 + tx + 16 * j;
      if (r < m && c < n) gemmStore(y, ldy, r, c, acc[i][j], bias, epi);
    }
}

// ---- host side -----------------------------------------------------------------------------------
inline GemmEpi gemmEpi(const LinearEpilogueCuda& e) { return GemmEpi{e.kind, e.gate, e.gateStride, e.rowsPerSample}; }

template <class T, class TY, int BM, int BN, int WM, int WN>
void launchGemmTensorCoreTile(const T* x, int64_t m, int64_t ldx, const T* w, int64_t n, int64_t k, int64_t ldw,
                              const float* bias, TY* y, int64_t ldy, GemmEpi epi, void* stream) {
  const dim3 grid(unsigned((n + BN - 1) / BN), unsigned((m + BM - 1) / BM));
  const bool vec = k % 8 == 0 && ldx % 8 == 0 && ldw % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(w) % 16 == 0;
  if (vec) {
    auto kernel = gemmTensorCoreKernel<T, TY, BM, BN, WM, WN, true>;
    ND_LAUNCH(kernel, grid, dim3(WM * WN * 32), stream, x, m, ldx, w, n, k, ldw, bias, y, ldy, epi);
  } else {
    auto kernel = gemmTensorCoreKernel<T, TY, BM, BN, WM, WN, false>;
    ND_LAUNCH(kernel, grid, dim3(WM * WN * 32), stream, x, m, ldx, w, n, k, ldw, bias, y, ldy, epi);
  }
}

// multiprocessors: the device's SM count; a grid of 128x128 tiles that would leave SMs idle takes
// 64x64 tiles instead (4x the blocks).
template <class T, class TY>
void launchGemmTensorCore(const T* x, int64_t m, int64_t ldx, const T* w, int64_t n, int64_t k, int64_t ldw,
                          const float* bias, TY* y, int64_t ldy, GemmEpi epi, int multiprocessors, void* stream) {
  const int64_t bigTiles = ((m + 127) / 128) * ((n + 127) / 128);
  if (bigTiles >= multiprocessors)
    launchGemmTensorCoreTile<T, TY, 128, 128, 2, 4>(x, m, ldx, w, n, k, ldw, bias, y, ldy, epi, stream);
  else
    launchGemmTensorCoreTile<T, TY, 64, 64, 2, 2>(x, m, ldx, w, n, k, ldw, bias, y, ldy, epi, stream);
}

template <class TY>
void launchGemmSimt(const float* x, int64_t m, int64_t ldx, const float* w, int64_t n, int64_t k, int64_t ldw,
                    const float* bias, TY* y, int64_t ldy, GemmEpi epi, void* stream) {
  const dim3 grid(unsigned((n + kSimtBN - 1) / kSimtBN), unsigned((m + kSimtBM - 1) / kSimtBM));
  auto kernel = gemmSimtKernel<TY>;
  ND_LAUNCH(kernel, grid, dim3(256), stream, x, m, ldx, w, n, k, ldw, bias, y, ldy, epi);
}

}  // namespace nd::kcuda
#endif  // ND_KERNEL_DECLARATIONS_ONLY
