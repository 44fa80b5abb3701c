#include "kernels/cuda/randn.cuh"

#include "core/cuda_backend.h"

namespace nd {

void randnCuda(int device, void* out, DType dtype, int64_t batch, int64_t perSample,
               const uint64_t* seedsHost, uint64_t stream) {
  cuda::setDevice(device);
  kcuda::launchRandom<true>("randn", out, dtype, batch, perSample, seedsHost, stream, nullptr);
}

void randUniformCuda(int device, void* out, DType dtype, int64_t batch, int64_t perSample,
                     const uint64_t* seedsHost, uint64_t stream) {
  cuda::setDevice(device);
  kcuda::launchRandom<false>("randUniform", out, dtype, batch, perSample, seedsHost, stream, nullptr);
}

void randnCudaAsync(void* out, DType dtype, int64_t batch, int64_t perSample, const uint64_t* seedsHost,
                    uint64_t stream, void* cudaStream) {
  kcuda::launchRandom<true>("randn", out, dtype, batch, perSample, seedsHost, stream, cudaStream);
}

}  // namespace nd
