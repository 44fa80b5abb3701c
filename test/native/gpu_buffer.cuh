// RAII device allocation for the GPU test programs.
#pragma once
#include <cuda_runtime.h>

#include <string>

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

}  // namespace ndtest
