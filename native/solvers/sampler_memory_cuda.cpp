// DeviceSamplerMemory's passes (the step-pass and Philox kernels) and, in CUDA builds, the hooks
// that give it device memory. The emulated sampler test compiles this file for the kernel emulator
// with host memory behind the hooks.
#ifndef ND_CUDA_EMULATION
#define ND_KERNEL_DECLARATIONS_ONLY  // host code: the kernel headers' entry points only
#endif
#include <cstring>
#include <vector>

#include "core/cuda_backend.h"
#include "core/error.h"
#include "core/tensor.h"
#include "kernels/cuda/randn.cuh"
#include "kernels/cuda/step_pass.cuh"
#include "solvers/sampler_memory.h"

namespace nd::solvers {

float* DeviceSamplerMemory::allocate(int64_t n) {
  return static_cast<float*>(hooks_.allocate(size_t(n) * sizeof(float)));
}

void DeviceSamplerMemory::run(const StepPass<float>& pass, int64_t n) {
  if (hooks_.activate) hooks_.activate();
  stepPassCuda(pass, n, hooks_.stream);
}

void DeviceSamplerMemory::copy(float* dst, const float* src, int64_t n) {
  if (dst == src || n <= 0) return;
  if (hooks_.activate) hooks_.activate();
  hooks_.copy(dst, src, size_t(n) * sizeof(float));
}

void DeviceSamplerMemory::randn(float* out, int64_t batch, int64_t dim, const uint64_t* seeds, uint64_t stream) {
  if (hooks_.activate) hooks_.activate();
  randnCudaAsync(out, DType::F32, batch, dim, seeds, stream, hooks_.stream);
}

void DeviceSamplerMemory::toHost(float* host, const float* src, int64_t n) {
  if (n <= 0) return;
  if (hooks_.activate) hooks_.activate();
  hooks_.copy(host, src, size_t(n) * sizeof(float));
  hooks_.synchronize();
}

void DeviceSamplerMemory::fromHost(float* dst, const float* host, int64_t n) {
  if (n <= 0) return;
  if (hooks_.activate) hooks_.activate();
  hooks_.copy(dst, host, size_t(n) * sizeof(float));
  hooks_.synchronize();  // the host buffer may be reused as soon as this returns
}

#ifndef ND_CUDA_EMULATION
namespace {

struct CudaSamplerResources {
  int device = 0;
  void* stream = nullptr;
  bool ownsStream = false;
  std::vector<Tensor> blocks;
  ~CudaSamplerResources() {
    // Passes still in flight must not see their buffers go back to the allocator's cache.
    try {
      cuda::streamSynchronize(stream);
    } catch (...) {
    }
    if (ownsStream) cuda::streamDestroy(device, stream);
  }
};

}  // namespace

std::shared_ptr<SamplerMemory<float>> makeCudaSamplerMemory(Device device, void* stream) {
  ND_REQUIRE(device.isCuda(), Device, "Sampler memory on a device needs a CUDA device, got " + device.str());
  auto r = std::make_shared<CudaSamplerResources>();
  r->device = device.index < 0 ? 0 : device.index;
  cuda::setDevice(r->device);
  r->stream = stream;
  if (!r->stream) {
    r->stream = cuda::streamCreate(r->device);
    r->ownsStream = true;
  }
  DeviceMemoryHooks hooks;
  hooks.stream = r->stream;
  hooks.allocate = [r, device](size_t bytes) -> void* {
    Tensor t = Tensor::empty({int64_t(bytes)}, DType::U8, device);
    cuda::memsetZeroAsync(t.data(), bytes, r->stream);
    r->blocks.push_back(t);
    return t.data();
  };
  hooks.copy = [r](void* dst, const void* src, size_t bytes) { cuda::memcpyAsync(dst, src, bytes, r->stream); };
  hooks.synchronize = [r] { cuda::streamSynchronize(r->stream); };
  hooks.activate = [r] { cuda::setDevice(r->device); };
  return std::make_shared<DeviceSamplerMemory>(device, std::move(hooks));
}
#endif

}  // namespace nd::solvers
