// patchifyCuda / unpatchifyCuda: the CUDA twins of patchifyCpu / unpatchifyCpu, with the same in-row
// orders: (channel, row-in-patch, col-in-patch) on the way in, (row-in-patch, col-in-patch, channel)
// on the way out. One thread per output element.
#pragma once
#include "core/dtype.h"
#include "core/error.h"

namespace nd {
// x: [n, c, h, w] f32; out: [n, (h/p)(w/p), c p p] in outType.
void patchifyCuda(const float* x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, void* out, DType outType,
                  void* stream);
// tokens: [n, (h/p)(w/p), p p c] in tokensType; out: [n, c, h, w] f32.
void unpatchifyCuda(const void* tokens, DType tokensType, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p,
                    float* out, void* stream);
}  // namespace nd

#ifndef ND_KERNEL_DECLARATIONS_ONLY
#include "kernels/cuda/device_common.cuh"

namespace nd::kcuda {

template <class TO>
__global__ void patchifyKernel(const float* x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, TO* out) {
  const int64_t gw = w / p, T = (h / p) * gw, row = c * p * p, total = n * T * row;
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const int64_t j = i % row, tok = (i / row) % T, s = i / (row * T);
    const int64_t ch = j / (p * p), pi = (j / p) % p, qj = j % p;
    const int64_t r = (tok / gw) * p + pi, col = (tok % gw) * p + qj;
    out[i] = fromFloat<TO>(x[((s * c + ch) * h + r) * w + col]);
  }
}

template <class TI>
__global__ void unpatchifyKernel(const TI* tokens, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p,
                                 float* out) {
  const int64_t gw = w / p, total = n * c * h * w;
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const int64_t col = i % w, r = (i / w) % h, ch = (i / (w * h)) % c, s = i / (w * h * c);
    const int64_t tok = (r / p) * gw + col / p, j = ((r % p) * p + col % p) * c + ch;
    out[i] = toFloat(tokens[(s * (h / p) * gw + tok) * (p * p * c) + j]);
  }
}

template <class TO>
void launchPatchify(const float* x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, TO* out, void* stream) {
  const int64_t total = n * c * h * w;
  if (total == 0) return;
  auto kernel = patchifyKernel<TO>;
  ND_LAUNCH(kernel, dim3(blocksFor(total, 256)), dim3(256), stream, x, n, c, h, w, p, out);
}

template <class TI>
void launchUnpatchify(const TI* tokens, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, float* out,
                      void* stream) {
  const int64_t total = n * c * h * w;
  if (total == 0) return;
  auto kernel = unpatchifyKernel<TI>;
  ND_LAUNCH(kernel, dim3(blocksFor(total, 256)), dim3(256), stream, tokens, n, c, h, w, p, out);
}

}  // namespace nd::kcuda
#endif  // ND_KERNEL_DECLARATIONS_ONLY
