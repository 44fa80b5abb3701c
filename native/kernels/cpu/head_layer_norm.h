// headLayerNormCpu: LayerNorm with affine over each head's q and k vectors (the qk-norm of DiT-MoE's
// flash-attention blocks), in place on the fused qkv rows; v is left untouched.
#pragma once
#include <cstdint>

namespace nd {
class ThreadPool;

// qkv: rows of [3, heads, headDim] floats (rows * 3 * heads * headDim). qWeight/qBias/kWeight/kBias:
// headDim floats each (bias may be null).
void headLayerNormCpu(float* qkv, int64_t rows, int64_t heads, int64_t headDim, const float* qWeight,
                      const float* qBias, const float* kWeight, const float* kBias, float eps,
                      ThreadPool* pool);

void headLayerNormReference(float* qkv, int64_t rows, int64_t heads, int64_t headDim, const float* qWeight,
                            const float* qBias, const float* kWeight, const float* kBias, float eps);

}  // namespace nd
