// layerNormModulateCpu: the adaLN step of a DiT block, LayerNorm without affine (biased variance,
// eps inside the square root) followed by the per-sample modulation z * (1 + scale) + shift, in one
// pass over each token.
#pragma once
#include <cstdint>

namespace nd {
class ThreadPool;

// x, out: [batch, tokens, dim] (out may equal x). shift, scale: row b at shift + b * modStride (dim
// floats each); either may be null (no shift / no scale, i.e. plain LayerNorm).
void layerNormModulateCpu(const float* x, int64_t batch, int64_t tokens, int64_t dim, const float* shift,
                          const float* scale, int64_t modStride, float eps, float* out, ThreadPool* pool);

void layerNormModulateReference(const float* x, int64_t batch, int64_t tokens, int64_t dim,
                                const float* shift, const float* scale, int64_t modStride, float eps,
                                float* out);

}  // namespace nd
