#include <algorithm>
#include <chrono>
#include <vector>

#include "core/cuda_backend.h"
#include "core/error.h"
#include "core/tensor.h"
#define ND_KERNEL_DECLARATIONS_ONLY
#include "kernels/cuda/step_pass.cuh"
#include "solvers/step_pass_device.h"

namespace nd {

StepPassDeviceTiming benchmarkStepPassCuda(int device, int64_t n, int reps) {
  ND_REQUIRE(n >= 1 && reps >= 1, Arg, "benchmarkStepPassCuda: n and reps must be >= 1");
  const Device dev{DeviceType::Cuda, device};
  std::vector<Tensor> v;
  for (int i = 0; i < 5; ++i) v.push_back(zeros({n}, DType::F32, dev));
  cuda::setDevice(device);
  void* stream = cuda::streamCreate(device);
  auto median = [](std::vector<double> s) {
    std::sort(s.begin(), s.end());
    return s[s.size() / 2];
  };
  StepPassDeviceTiming t;
  try {
    StepPass<float> p;  // a dpmpp-2m-shaped step: d = cx x + cm m, out = a x + b d + c h
    p.x = v[0].ptr<float>();
    p.m = v[1].ptr<float>();
    p.cx = 1.1;
    p.cm = -0.2;
    p.dStore = v[2].ptr<float>();
    p.a = 0.9;
    p.b = 0.05;
    p.term(0.01, v[3].ptr<float>());
    p.out = v[4].ptr<float>();
    std::vector<double> step, copy;
    for (int r = 0; r < reps + 1; ++r) {  // the first of each is a warm-up
      auto t0 = std::chrono::steady_clock::now();
      stepPassCuda(p, n, stream);
      cuda::streamSynchronize(stream);
      auto t1 = std::chrono::steady_clock::now();
      cuda::memcpyAsync(v[4].data(), v[0].data(), size_t(n) * sizeof(float), stream);
      cuda::streamSynchronize(stream);
      auto t2 = std::chrono::steady_clock::now();
      if (r == 0) continue;
      step.push_back(std::chrono::duration<double>(t1 - t0).count());
      copy.push_back(std::chrono::duration<double>(t2 - t1).count());
    }
    t.stepSeconds = median(step);
    t.copySeconds = median(copy);
    t.stepBytes = 5 * n * int64_t(sizeof(float));
    t.copyBytes = 2 * n * int64_t(sizeof(float));
  } catch (...) {
    cuda::streamDestroy(device, stream);
    throw;
  }
  cuda::streamDestroy(device, stream);
  return t;
}

}  // namespace nd
