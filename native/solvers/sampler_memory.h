// Where a sampler's vectors live. A sampler never touches the latent's elements itself: it asks its
// memory for buffers, runs StepPasses over them, copies them and fills them with seeded noise, so
// the same sampler code keeps its state in host memory (the CPU backend) or on a CUDA device. The
// few computations that are not a linear pass (Imagen's thresholding quantiles, the conditioned
// schedules' shifts, the adaptive solver's error norm, pfgmpp's prior radius) read and write through
// toHost / fromHost, which on the host are not even copies.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/device.h"
#include "kernels/cpu/step_pass.h"

namespace nd {
class ThreadPool;
}

namespace nd::solvers {

template <class T>
class SamplerMemory {
 public:
  virtual ~SamplerMemory() = default;
  virtual Device device() const = 0;
  bool onHost() const { return device().isCpu(); }
  // n zeroed values, alive as long as this memory.
  virtual T* allocate(int64_t n) = 0;
  virtual void run(const StepPass<T>& pass, int64_t n) = 0;
  virtual void copy(T* dst, const T* src, int64_t n) = 0;
  // Standard normal noise, batch x dim, sample i from seeds[i] (a host array) on Philox stream
  // `stream`: the same bits in every memory (randnCpu / randnCuda).
  virtual void randn(T* out, int64_t batch, int64_t dim, const uint64_t* seeds, uint64_t stream) = 0;
  // Copies between this memory and host memory; both return when the host side is complete.
  virtual void toHost(T* host, const T* src, int64_t n) = 0;
  virtual void fromHost(T* dst, const T* host, int64_t n) = 0;
  // Waits until every pass enqueued so far is complete (a no-op on the host).
  virtual void synchronize() {}
  // The CUDA stream the passes are enqueued on (null on the host).
  virtual void* stream() const { return nullptr; }
};

template <class T>
class HostSamplerMemory final : public SamplerMemory<T> {
 public:
  explicit HostSamplerMemory(ThreadPool* pool) : pool_(pool) {}
  Device device() const override { return Device{}; }
  T* allocate(int64_t n) override;
  void run(const StepPass<T>& pass, int64_t n) override { stepPassCpu(pass, n, pool_); }
  void copy(T* dst, const T* src, int64_t n) override;
  void randn(T* out, int64_t batch, int64_t dim, const uint64_t* seeds, uint64_t stream) override;
  void toHost(T* host, const T* src, int64_t n) override { copy(host, src, n); }
  void fromHost(T* dst, const T* host, int64_t n) override { copy(dst, host, n); }

 private:
  ThreadPool* pool_;
  std::vector<std::vector<T>> blocks_;
};

// Device memory through a handful of runtime calls, so the same class runs on a GPU (the hooks from
// makeCudaSamplerMemory) and in the kernel emulator's tests (host memory posing as the device).
struct DeviceMemoryHooks {
  std::function<void*(size_t bytes)> allocate;  // zeroed, alive as long as the hooks
  std::function<void(void* dst, const void* src, size_t bytes)> copy;  // stream-ordered, any direction
  std::function<void()> synchronize;
  std::function<void()> activate;  // optional: makes the device current on the calling thread
  void* stream = nullptr;          // where the kernels are enqueued
};

// f32 only: the device step pass is an f32 kernel (f64 sampling is the exact-test path on the CPU).
class DeviceSamplerMemory final : public SamplerMemory<float> {
 public:
  DeviceSamplerMemory(Device device, DeviceMemoryHooks hooks) : device_(device), hooks_(std::move(hooks)) {}
  Device device() const override { return device_; }
  float* allocate(int64_t n) override;
  void run(const StepPass<float>& pass, int64_t n) override;
  void copy(float* dst, const float* src, int64_t n) override;
  void randn(float* out, int64_t batch, int64_t dim, const uint64_t* seeds, uint64_t stream) override;
  void toHost(float* host, const float* src, int64_t n) override;
  void fromHost(float* dst, const float* host, int64_t n) override;
  void synchronize() override { hooks_.synchronize(); }
  void* stream() const override { return hooks_.stream; }

 private:
  Device device_;
  DeviceMemoryHooks hooks_;
};

// Sampler memory on CUDA device `device`, its kernels on `stream` (null: a stream of its own).
// Allocations come from the caching allocator (ERR_ND_OOM when the device is full); builds without
// CUDA throw ERR_ND_DEVICE.
std::shared_ptr<SamplerMemory<float>> makeCudaSamplerMemory(Device device, void* stream = nullptr);

}  // namespace nd::solvers
