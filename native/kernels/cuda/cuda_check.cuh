// Every CUDA runtime call goes through ND_CUDA_CHECK: a failure becomes nd::Error, never an abort.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "core/error.h"

namespace nd::cuda {
[[noreturn]] inline void throwCudaError(cudaError_t err, const char* what, const char* file, int line) {
  (void)cudaGetLastError();  // clear the sticky-free error state so later calls can proceed
  std::string msg = std::string("CUDA error in ") + what + " (" + file + ":" + std::to_string(line) +
                    "): " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err);
  fail(err == cudaErrorMemoryAllocation ? ErrorCode::Oom : ErrorCode::Device, msg);
}
}  // namespace nd::cuda

#define ND_CUDA_CHECK(call)                                                       \
  do {                                                                            \
    cudaError_t nd_err_ = (call);                                                 \
    if (nd_err_ != cudaSuccess) ::nd::cuda::throwCudaError(nd_err_, #call, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: catches bad launch configurations without a device-wide sync.
#define ND_CUDA_CHECK_LAUNCH() ND_CUDA_CHECK(cudaGetLastError())
