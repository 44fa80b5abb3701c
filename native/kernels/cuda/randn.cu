#include "kernels/cuda/randn.cuh"

#include <cuda_runtime.h>

#include <algorithm>

#include "core/philox.h"
#include "kernels/cpu/randn.h"  // checkRandomArgs: the same argument rules as the CPU path
#include "kernels/cuda/cuda_check.cuh"

namespace nd {

namespace {

// Seeds travel inside the kernel's parameter block, so there is no device allocation to manage and
// the launch stays asynchronous. 64 seeds = 512 bytes, far below the 4 KiB parameter limit; larger
// batches take one launch per 64 samples.
constexpr int kSeedsPerLaunch = 64;
struct SeedChunk { uint64_t s[kSeedsPerLaunch]; };

constexpr int kThreads = 256;
constexpr int64_t kMaxGrid = 8192;  // enough to fill any current GPU; the loop below covers the rest

// One thread per Philox block (four consecutive elements), exactly as the CPU loop does it, so
// each value comes out of the same sequence of operations (see core/philox.h for why that makes
// it the same bits).
template <bool Normal>
__global__ void randomKernel(void* out, DType dtype, int64_t batch, int64_t perSample,
                             int64_t blocksPerSample, SeedChunk seeds, uint64_t stream) {
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
void launchRandom(const char* op, int device, void* out, DType dtype, int64_t batch,
                  int64_t perSample, const uint64_t* seedsHost, uint64_t stream) {
  const int64_t n = checkRandomArgs(op, out, dtype, batch, perSample, seedsHost);
  if (n == 0) return;
  ND_CUDA_CHECK(cudaSetDevice(device));
  const int64_t blocksPerSample = (perSample + 3) / 4;
  const size_t rowBytes = size_t(perSample) * dtypeSize(dtype);
  for (int64_t first = 0; first < batch; first += kSeedsPerLaunch) {
    const int64_t count = std::min<int64_t>(kSeedsPerLaunch, batch - first);
    SeedChunk chunk{};
    std::copy(seedsHost + first, seedsHost + first + count, chunk.s);
    const int64_t total = count * blocksPerSample;
    const int grid = int(std::min<int64_t>((total + kThreads - 1) / kThreads, kMaxGrid));
    randomKernel<Normal><<<grid, kThreads>>>(static_cast<char*>(out) + size_t(first) * rowBytes, dtype,
                                             count, perSample, blocksPerSample, chunk, stream);
    ND_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace

void randnCuda(int device, void* out, DType dtype, int64_t batch, int64_t perSample,
               const uint64_t* seedsHost, uint64_t stream) {
  launchRandom<true>("randn", device, out, dtype, batch, perSample, seedsHost, stream);
}

void randUniformCuda(int device, void* out, DType dtype, int64_t batch, int64_t perSample,
                     const uint64_t* seedsHost, uint64_t stream) {
  launchRandom<false>("randUniform", device, out, dtype, batch, perSample, seedsHost, stream);
}

}  // namespace nd
