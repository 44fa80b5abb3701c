// stepPassCuda: the CUDA twin of stepPassCpu (kernels/cpu/step_pass.h), the one fused memory pass
// a sampler step is made of. The arithmetic is written in the CPU loop's order and the device code
// is compiled without FMA contraction (--fmad=false), as the host code is (-ffp-contract=off), so
// an f32 step gives the same bits on both backends.
#pragma once
#include "kernels/cpu/step_pass.h"
#include "core/dtype.h"
#include "core/error.h"

namespace nd {
// The pointers in `pass` are device pointers (f32); the coefficients travel in the kernel's
// parameters, so a captured graph replays with the coefficients it was captured with.
void stepPassCuda(const StepPass<float>& pass, int64_t n, void* stream);
}  // namespace nd

#ifndef ND_KERNEL_DECLARATIONS_ONLY
#include "kernels/cuda/device_common.cuh"

namespace nd::kcuda {

struct StepPassArgs {
  const float* x;
  const float* m;
  float cx, cm, a, b, cz;
  float* dStore;
  const float* h[kMaxStepTerms];
  float c[kMaxStepTerms];
  int nTerms;
  const float* z;
  float* out;
};

inline StepPassArgs stepPassArgs(const StepPass<float>& p) {
  StepPassArgs r{};
  r.x = p.x;
  r.m = p.m;
  r.cx = float(p.cx);  // rounded to f32 once, as passRange does
  r.cm = float(p.cm);
  r.a = float(p.a);
  r.b = float(p.b);
  r.cz = float(p.cz);
  r.dStore = p.dStore;
  r.nTerms = p.nTerms;
  for (int k = 0; k < p.nTerms; ++k) {
    r.h[k] = p.terms[k].data;
    r.c[k] = float(p.terms[k].coef);
  }
  r.z = p.z;
  r.out = p.out;
  return r;
}

__global__ void stepPassKernel(StepPassArgs p, int64_t n) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const float xi = p.x[i];
    float acc = p.a * xi;
    float d = 0.0f;
    if (p.m) {
      d = p.cx * xi + p.cm * p.m[i];
      acc += p.b * d;
    }
    for (int k = 0; k < p.nTerms; ++k) acc += p.c[k] * p.h[k][i];
    if (p.z) acc += p.cz * p.z[i];
    if (p.m) p.dStore[i] = d;
    if (p.out) p.out[i] = acc;
  }
}

inline void launchStepPass(const StepPass<float>& pass, int64_t n, void* stream) {
  if (n == 0) return;
  auto kernel = stepPassKernel;
  ND_LAUNCH(kernel, dim3(blocksFor(n, 256, 4096)), dim3(256), stream, stepPassArgs(pass), n);
}

}  // namespace nd::kcuda
#endif  // ND_KERNEL_DECLARATIONS_ONLY
