// RAII device allocation for the GPU test programs.
#pragma once
#include <cuda_runtime.h>

#include <cstdio>
#include <string>

#include "check.h"
#include "core/error.h"

namespace ndtest {

struct DeviceBuffer {
  void* p = nullptr;
  explicit DeviceBuffer(size_t bytes) {
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) nd::fail(nd::ErrorCode::Oom, std::string("cudaMalloc: ") + cudaGetErrorString(e));
  }
  ~DeviceBuffer() {
    if (p) (void)cudaFree(p);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

// main() of a GPU test program: exit 77 (ctest's skip) without a CUDA device, else run the cases.
inline int runGpuTests() {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    std::printf("no CUDA device (%s): skipped\n", e != cudaSuccess ? cudaGetErrorString(e) : "count 0");
    return 77;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) std::printf("device 0: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
  return runAll();
}

}  // namespace ndtest
