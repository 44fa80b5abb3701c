// siluCpu: x * sigmoid(x), applied to the conditioning vector before every adaLN Linear and inside
// the timestep MLP.
#pragma once
#include <cstdint>

namespace nd {
class ThreadPool;

void siluCpu(const float* x, float* out, int64_t n, ThreadPool* pool);  // out may equal x
void siluReference(const float* x, float* out, int64_t n);

}  // namespace nd
