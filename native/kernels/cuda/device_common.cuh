// What every kernel header (kernels/cuda/*_kernel.cuh) is written against: the element types, their
// conversions, warp reductions and the launch macro. The kernel headers compile under nvcc and under
// the CPU emulator of the native tests (test/native/cuda_emu.h), which is how CI, without a GPU,
// runs the kernels' indexing and synchronisation against the CPU references.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include "kernels/cuda/cuda_check.cuh"
// A kernel launch, checked. `kernel` must be one token (bind templates to a local first: a template
// argument list would split the macro's arguments).
#define ND_LAUNCH(kernel, grid, block, stream, ...)                                            \
  do {                                                                                         \
    kernel<<<(grid), (block), 0, static_cast<cudaStream_t>(stream)>>>(__VA_ARGS__);            \
    ND_CUDA_CHECK_LAUNCH();                                                                    \
  } while (0)
#define ND_RESTRICT __restrict__
#elif defined(ND_CUDA_EMULATION)
#define ND_LAUNCH(kernel, grid, block, stream, ...) \
  do {                                              \
    (void)(stream);                                 \
    ::ndemu::launch((grid), (block), kernel, __VA_ARGS__); \
  } while (0)
#define ND_RESTRICT
#else
#error "kernel headers compile under nvcc or the CPU emulator (test/native/cuda_emu.h)"
#endif

#include "core/dtype.h"
#include "core/error.h"

namespace nd::kcuda {

using bf16 = __nv_bfloat16;
using f16 = __half;

__device__ __forceinline__ float toFloat(float v) { return v; }
__device__ __forceinline__ float toFloat(bf16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float toFloat(f16 v) { return __half2float(v); }

template <class T> __device__ __forceinline__ T fromFloat(float v);
template <> __device__ __forceinline__ float fromFloat<float>(float v) { return v; }
template <> __device__ __forceinline__ bf16 fromFloat<bf16>(float v) { return __float2bfloat16(v); }
template <> __device__ __forceinline__ f16 fromFloat<f16>(float v) { return __float2half(v); }

__device__ __forceinline__ float warpSum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warpMax(float v) {
  for (int o = 16; o > 0; o >>= 1) {
    float w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}

// The formulas of the CPU kernels (kernels/cpu/model_kernels_impl.h), written the same way so that
// the f32 paths agree to rounding.
__device__ __forceinline__ float siluValue(float x) { return x / (1.0f + expf(-x)); }
__device__ __forceinline__ float geluTanhValue(float x) {
  float inner = x + 0.044715f * (x * x * x);
  float v = 1.59576912160573071f * inner;  // 2 sqrt(2/pi)
  return x / (1.0f + expf(-v));
}

// The element types a kernel is instantiated for. Host code maps a DType to one of these.
enum class Elem { F32, BF16, F16 };
inline Elem elemOf(DType t, const char* op) {
  switch (t) {
    case DType::F32: return Elem::F32;
    case DType::BF16: return Elem::BF16;
    case DType::F16: return Elem::F16;
    default: break;
  }
  fail(ErrorCode::DType, std::string(op) + ": CUDA kernels take f32, bf16 or f16 tensors, got " + dtypeName(t));
}

// Calls f(T{}) with T the element type of `e` (the host side of a kernel's type dispatch).
template <class F>
void withElem(Elem e, F&& f) {
  switch (e) {
    case Elem::F32: f(float{}); break;
    case Elem::BF16: f(bf16{}); break;
    case Elem::F16: f(f16{}); break;
  }
}

inline unsigned blocksFor(int64_t work, int threads, int64_t cap = 65535) {
  int64_t b = (work + threads - 1) / threads;
  if (b < 1) b = 1;
  return unsigned(b < cap ? b : cap);
}

}  // namespace nd::kcuda
