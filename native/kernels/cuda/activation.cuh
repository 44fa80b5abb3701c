// Elementwise activations on the device, twins of siluCpu, geluTanhCpu and swigluCpu: f32 in, any
// element type out (the DiT keeps its conditioning in f32 and feeds the 16-bit GEMMs 16-bit copies).
#pragma once
#include "core/dtype.h"
#include "core/error.h"

namespace nd {
enum class ActivationKind : uint8_t { Identity, Silu, GeluTanh };
// out[i] = act(x[i]) for n elements; x f32 (may alias out when outType is F32).
void activationCuda(ActivationKind kind, const float* x, void* out, DType outType, int64_t n, void* stream);
// out[r, j] = silu(in[r, j]) * in[r, hidden + j]; in rows of stride ldIn (>= 2 hidden) in inType,
// out rows of stride ldOut in outType.
void swigluCuda(const void* in, DType inType, int64_t rows, int64_t hidden, int64_t ldIn, void* out, DType outType,
                int64_t ldOut, void* stream);
}  // namespace nd

#ifndef ND_KERNEL_DECLARATIONS_ONLY
#include "kernels/cuda/device_common.cuh"

namespace nd::kcuda {

__device__ __forceinline__ float applyActivation(ActivationKind kind, float v) {
  if (kind == ActivationKind::Silu) return siluValue(v);
  if (kind == ActivationKind::GeluTanh) return geluTanhValue(v);
  return v;
}

template <class TO>
__global__ void activationKernel(ActivationKind kind, const float* x, TO* out, int64_t n) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step)
    out[i] = fromFloat<TO>(applyActivation(kind, x[i]));
}

template <class TI, class TO>
__global__ void swigluKernel(const TI* in, int64_t rows, int64_t hidden, int64_t ldIn, TO* out, int64_t ldOut) {
  const int64_t total = rows * hidden;
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const int64_t r = i / hidden, j = i % hidden;
    const float g = toFloat(in[r * ldIn + j]), u = toFloat(in[r * ldIn + hidden + j]);
    out[r * ldOut + j] = fromFloat<TO>(siluValue(g) * u);
  }
}

template <class TO>
void launchActivation(ActivationKind kind, const float* x, TO* out, int64_t n, void* stream) {
  if (n == 0) return;
  auto kernel = activationKernel<TO>;
  ND_LAUNCH(kernel, dim3(blocksFor(n, 256)), dim3(256), stream, kind, x, out, n);
}

template <class TI, class TO>
void launchSwiglu(const TI* in, int64_t rows, int64_t hidden, int64_t ldIn, TO* out, int64_t ldOut, void* stream) {
  if (rows * hidden == 0) return;
  auto kernel = swigluKernel<TI, TO>;
  ND_LAUNCH(kernel, dim3(blocksFor(rows * hidden, 256)), dim3(256), stream, in, rows, hidden, ldIn, out, ldOut);
}

}  // namespace nd::kcuda
#endif  // ND_KERNEL_DECLARATIONS_ONLY
