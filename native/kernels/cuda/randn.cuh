// Seeded noise on a CUDA device, bit-identical to randnCpu / randUniformCpu (contract: core/philox.h).
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace nd {

// out: device pointer to batch * perSample elements of dtype (F32, F64, F16 or BF16, else
// ERR_ND_DTYPE) on `device`; sample i is drawn with seedsHost[i] (a host array, read before the
// call returns). The kernels are enqueued on the default stream and the call returns without
// waiting for them, like the other device kernels; execution errors surface at the next
// synchronising call (a device-to-host copy, cuda::synchronize).
void randnCuda(int device, void* out, DType dtype, int64_t batch, int64_t perSample,
               const uint64_t* seedsHost, uint64_t stream);
void randUniformCuda(int device, void* out, DType dtype, int64_t batch, int64_t perSample,
                     const uint64_t* seedsHost, uint64_t stream);

// The same draw enqueued on `cudaStream` of the current device (the samplers' noise, ordered with
// the step passes that read it). `stream` is the Philox stream, as above.
void randnCudaAsync(void* out, DType dtype, int64_t batch, int64_t perSample, const uint64_t* seedsHost,
                    uint64_t stream, void* cudaStream);

}  // namespace nd

#ifndef ND_KERNEL_DECLARATIONS_ONLY
#include <algorithm>

#include "core/philox.h"
#include "kernels/cpu/randn.h"  // checkRandomArgs: the same argument rules as the CPU path
#include "kernels/cuda/device_common.cuh"

namespace nd::kcuda {

// Seeds travel inside the kernel's parameter block, so there is no device allocation to manage and
// the launch stays asynchronous. 64 seeds = 512 bytes, far below the 4 KiB parameter limit; larger
// batches take one launch per 64 samples.
constexpr int kSeedsPerLaunch = 64;
struct SeedChunk {
  uint64_t s[kSeedsPerLaunch];
};
constexpr int kRandomThreads = 256;
constexpr int64_t kRandomMaxGrid = 8192;  // enough to fill any current GPU; the loop covers the rest

// One thread per Philox block (four consecutive elements), exactly as the CPU loop does it, so
// each value comes out of the same sequence of operations (see core/philox.h for why that makes
// it the same bits).
template <bool Normal>
__global__ void randomKernel(void* out, DType dtype, int64_t batch, int64_t perSample, int64_t blocksPerSample,
                             SeedChunk seeds, uint64_t stream) {
  const int64_t total = batch * blocksPerSample;
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t g = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; g < total; g += step) {
    const int64_t sample = g / blocksPerSample;
    const int64_t block = g - sample * blocksPerSample;
    const int64_t j0 = block * 4;
    const int lanes = int(perSample - j0 < 4 ? perSample - j0 : 4);
    const Philox4x32 w = philoxBlock(seeds.s[sample], stream, uint64_t(block));
    double v[4];
    if constexpr (Normal) {
      normalsFromBlock(w, v, lanes);
    } else {
      for (int l = 0; l < 4; ++l) v[l] = uniformFromBits(w.v[l]);
    }
    const int64_t base = sample * perSample + j0;
    for (int l = 0; l < lanes; ++l) storeRandom(out, dtype, base + l, v[l]);
  }
}

template <bool Normal>
void launchRandom(const char* op, void* out, DType dtype, int64_t batch, int64_t perSample,
                  const uint64_t* seedsHost, uint64_t stream, void* cudaStream) {
  const int64_t n = checkRandomArgs(op, out, dtype, batch, perSample, seedsHost);
  if (n == 0) return;
  const int64_t blocksPerSample = (perSample + 3) / 4;
  const size_t rowBytes = size_t(perSample) * dtypeSize(dtype);
  auto kernel = randomKernel<Normal>;
  for (int64_t first = 0; first < batch; first += kSeedsPerLaunch) {
    const int64_t count = std::min<int64_t>(kSeedsPerLaunch, batch - first);
    SeedChunk chunk{};
    std::copy(seedsHost + first, seedsHost + first + count, chunk.s);
    const int64_t total = count * blocksPerSample;
    const unsigned grid = unsigned(std::min<int64_t>((total + kRandomThreads - 1) / kRandomThreads, kRandomMaxGrid));
    ND_LAUNCH(kernel, dim3(grid), dim3(kRandomThreads), cudaStream, static_cast<char*>(out) + size_t(first) * rowBytes,
              dtype, count, perSample, blocksPerSample, chunk, stream);
  }
}

}  // namespace nd::kcuda
#endif  // ND_KERNEL_DECLARATIONS_ONLY
