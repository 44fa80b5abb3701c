// gatedResidualCpu: h += gate[b] * y, the adaLN-Zero residual of a DiT block (gate per sample,
// broadcast over tokens).
#pragma once
#include <cstdint>

namespace nd {
class ThreadPool;

// h, y: [batch, tokens, dim]; gate: row b at gate + b * gateStride (dim floats), or null (h += y).
void gatedResidualCpu(float* h, const float* y, int64_t batch, int64_t tokens, int64_t dim,
                      const float* gate, int64_t gateStride, ThreadPool* pool);

void gatedResidualReference(float* h, const float* y, int64_t batch, int64_t tokens, int64_t dim,
                            const float* gate, int64_t gateStride);

}  // namespace nd
