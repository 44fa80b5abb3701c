// The DiT's input embeddings on the device: the timestep frequency embedding (twin of
// timestepEmbedding, with the frequencies computed once on the host exactly as the CPU computes
// them, so only the device's cos/sin differ), the class-embedding lookup added to the conditioning,
// and a per-token table (the sin-cos positions) added to every sample.
#pragma once
#include "core/dtype.h"
#include "core/error.h"

namespace nd {
// out: [n, 2 * half (+1 zero column when dim is odd)] f32; t: n f32; freqs: half f32 (device).
void timestepEmbeddingCuda(const float* t, int64_t n, int64_t dim, const float* freqs, float* out, void* stream);
// cond[i, :] += table[labels[i], :] (table: rows x dim in tableType; labels: n int64 on the device,
// already checked by the caller).
void addClassEmbeddingCuda(float* cond, const int64_t* labels, int64_t n, int64_t dim, const void* table,
                           DType tableType, void* stream);
// x[s, t, :] += rows[t, :] for every sample s (x: [n, tokens, dim] f32, rows: [tokens, dim] f32).
void addTokenTableCuda(float* x, const float* rows, int64_t n, int64_t tokens, int64_t dim, void* stream);
}  // namespace nd

#ifndef ND_KERNEL_DECLARATIONS_ONLY
#include "kernels/cuda/device_common.cuh"

namespace nd::kcuda {

__global__ void timestepEmbeddingKernel(const float* t, int64_t n, int64_t dim, const float* freqs, float* out) {
  const int64_t half = dim / 2, total = n * dim;
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const int64_t s = i / dim, j = i % dim;
    float v = 0.0f;
    if (j < half) v = cosf(t[s] * freqs[j]);
    else if (j < 2 * half) v = sinf(t[s] * freqs[j - half]);
    out[i] = v;
  }
}

template <class TT>
__global__ void addClassEmbeddingKernel(float* cond, const int64_t* labels, int64_t n, int64_t dim, const TT* table) {
  const int64_t total = n * dim;
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const int64_t s = i / dim, d = i % dim;
    cond[i] = cond[i] + toFloat(table[labels[s] * dim + d]);
  }
}

__global__ void addTokenTableKernel(float* x, const float* rows, int64_t total, int64_t perSample) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step)
    x[i] = x[i] + rows[i % perSample];
}

inline void launchTimestepEmbedding(const float* t, int64_t n, int64_t dim, const float* freqs, float* out,
                                    void* stream) {
  if (n * dim == 0) return;
  auto kernel = timestepEmbeddingKernel;
  ND_LAUNCH(kernel, dim3(blocksFor(n * dim, 256)), dim3(256), stream, t, n, dim, freqs, out);
}

template <class TT>
void launchAddClassEmbedding(float* cond, const int64_t* labels, int64_t n, int64_t dim, const TT* table,
                             void* stream) {
  if (n * dim == 0) return;
  auto kernel = addClassEmbeddingKernel<TT>;
  ND_LAUNCH(kernel, dim3(blocksFor(n * dim, 256)), dim3(256), stream, cond, labels, n, dim, table);
}

inline void launchAddTokenTable(float* x, const float* rows, int64_t n, int64_t tokens, int64_t dim, void* stream) {
  const int64_t total = n * tokens * dim;
  if (total == 0) return;
  auto kernel = addTokenTableKernel;
  ND_LAUNCH(kernel, dim3(blocksFor(total, 256)), dim3(256), stream, x, rows, total, tokens * dim);
}

}  // namespace nd::kcuda
#endif  // ND_KERNEL_DECLARATIONS_ONLY
