// geluTanhCpu: the tanh approximation of GELU, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the
// activation of the DiT MLP (PyTorch's approximate='tanh').
#pragma once
#include <cstdint>

namespace nd {
class ThreadPool;

// In place allowed (out == x).
void geluTanhCpu(const float* x, float* out, int64_t n, ThreadPool* pool);
void geluTanhReference(const float* x, float* out, int64_t n);
// One value, the formula the kernels must agree with (also used by the GEMM epilogue).
float geluTanhScalar(float x);

}  // namespace nd
