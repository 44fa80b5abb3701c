// linearCpu: the GEMM under every Linear layer of the models, y = x · Wᵀ + bias, with W stored the
// way PyTorch's nn.Linear stores it ([out, in], row-major) in f32, f16 or bf16. Compute is f32 with
// f32 accumulation; f16/bf16 weights are widened while a block of W is packed, so a model keeps its
// weights in the stored dtype (half the memory) and pays the conversion once per block per call.
// Rows may be strided (lda/ldy), so a caller can write q, k and v (or SwiGLU's gate and up halves)
// from separate weight tensors into column slices of one output.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace nd {
class ThreadPool;

struct GemmWeight {
  const void* data = nullptr;  // W[n][k]; any alignment
  DType dtype = DType::F32;    // F32, F16 or BF16
  int64_t n = 0, k = 0;        // out features, in features
  int64_t ld = 0;              // row stride in elements (>= k); 0 means k
};

enum class GemmEpilogue : uint8_t {
  None,      // y = x Wᵀ + bias            (or y += x Wᵀ + bias when accumulate)
  GeluTanh,  // y = gelu_tanh(x Wᵀ + bias) (not with accumulate)
};

// Which kernel computes the rows. The vector paths have two kernels that sum each dot product in a
// different order: a weight-streaming one (best for a few rows) and a packed, tiled one. Either alone
// gives row i the same bits whatever m is and whatever the other rows hold; Auto switches between
// them on m, so a row's bits can change with m. A model whose m grows with the batch (per-sample
// conditioning layers, tokens routed to one expert) names a fixed kernel, so that a sample's output
// does not depend on which samples share its batch (docs/design.md, "Batch invariance").
enum class GemmRows : uint8_t {
  Auto,      // the faster kernel for this m (streaming when m is small): bits may depend on m
  Tiled,     // always the tiled kernel: row i independent of m; for layers with many rows
  Streamed,  // always the streaming kernel, any m: row i independent of m; for layers with few rows
};

// x: m rows of k floats, row stride ldx (>= k); y: m rows of n floats, row stride ldy (>= n);
// bias: n floats or null. x and y must not overlap. Threads split the work over the pool; the split
// never changes a result.
void linearCpu(const float* x, int64_t m, int64_t ldx, const GemmWeight& w, const float* bias, float* y,
               int64_t ldy, bool accumulate, GemmEpilogue epilogue, ThreadPool* pool,
               GemmRows rows = GemmRows::Auto);

// Plain reference (double accumulation, one thread): what the tests compare linearCpu against.
void linearReference(const float* x, int64_t m, int64_t ldx, const GemmWeight& w, const float* bias,
                     float* y, int64_t ldy, bool accumulate, GemmEpilogue epilogue);

// ---- internal: the implementations behind linearCpu (tests and benchmarks force one) -------------
namespace detail {

enum class GemmPath : int { Scalar = 0, Avx2 = 1, Avx512 = 2 };

// Whether this CPU (and OS) can run `path`; Scalar always can.
bool gemmPathSupported(GemmPath path);
// What linearCpu uses now: Scalar when activeIsa() is Baseline (ND_CPU_ISA=baseline), else the
// widest vector path the CPU supports.
GemmPath gemmDefaultPath();
const char* gemmPathName(GemmPath path);

// linearCpu with the implementation forced (same validation and contract). Throws ERR_ND_DEVICE when
// the CPU cannot run `path`.
void linearCpuPath(GemmPath path, const float* x, int64_t m, int64_t ldx, const GemmWeight& w,
                   const float* bias, float* y, int64_t ldy, bool accumulate, GemmEpilogue epilogue,
                   ThreadPool* pool, GemmRows rows = GemmRows::Auto);

// A validated call (m, n, k > 0, strides resolved) as the vector paths receive it.
struct GemmArgs {
  const float* x;
  int64_t m, ldx;
  const void* w;
  DType wtype;
  int64_t n, k, ldw;
  const float* bias;
  float* y;
  int64_t ldy;
  bool accumulate, gelu;
};

// One vector path (gemm_avx512.cpp / gemm_avx2.cpp). Only plain data and functions cross the
// boundary: the threading and the scratch memory live in gemm.cpp (baseline code), so no inline
// library code is instantiated with wider instructions than the CPU may have.
struct GemmKernels {
  int64_t nr;          // column panel width: tasks split n in multiples of it
  int64_t mr;          // rows per micro-tile
  int64_t smallM;      // GemmRows::Auto: m <= smallM streams W directly (dot-product kernel), no packing
  int64_t packFloats;  // scratch floats (64-byte aligned) one block call needs
  // Rows [i0, i1) x columns [j0, j1) of y (j0 a multiple of nr), packing W through `pack`.
  void (*block)(const GemmArgs& a, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* pack);
  // All m rows x columns [j0, j1) with the streaming kernel (any m; j0 a multiple of 4).
  void (*smallBlock)(const GemmArgs& a, int64_t j0, int64_t j1);
};
const GemmKernels& gemmKernelsAvx512();  // call only when gemmPathSupported(Avx512)
const GemmKernels& gemmKernelsAvx2();    // call only when gemmPathSupported(Avx2)

}  // namespace detail

}  // namespace nd
