// The process-wide set of devices. Each device context owns its caching allocator and, for CPU
// devices, its thread pool. Contexts are shared_ptr so storage and running jobs keep a device's
// allocator alive even when the device set is reconfigured underneath them.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/device.h"
#include "core/thread_pool.h"

namespace nd {

class DeviceContext {
 public:
  DeviceContext(Device device, std::shared_ptr<ThreadPool> pool, uint64_t cacheLimit);
  Device device() const { return device_; }
  CachingAllocator& allocator() { return allocator_; }
  // CPU devices: the pool their kernels run on. CUDA devices: the host pool used for host-side work.
  // A job takes the pointer once at its start, so setThreads() never pulls a pool from under it.
  std::shared_ptr<ThreadPool> pool() const;
  void setPool(std::shared_ptr<ThreadPool> pool);

 private:
  Device device_;
  mutable std::mutex poolMutex_;
  std::shared_ptr<ThreadPool> pool_;
  CachingAllocator allocator_;
};

struct VirtualCpuConfig {
  int count = 0;               // number of cpu:k devices
  int threadsPerDevice = 0;    // 0: split the available cores evenly (at least 1 each)
  uint64_t memoryLimit = 0;    // per device, 0 = unlimited
};

struct DeviceInfo {
  Device device;
  std::string name;
  int threads = 0;                 // CPU: pool size
  std::vector<int> cpuSet;         // CPU: pinned logical CPUs (virtual devices)
  uint64_t totalMemory = 0;        // CUDA: device memory
  AllocatorStats memory;
};

class Runtime {
 public:
  static Runtime& instance();

  // Throws ERR_ND_DEVICE for an unknown cpu:k / cuda:k, with the list of what exists.
  std::shared_ptr<DeviceContext> context(Device device);
  std::vector<DeviceInfo> listDevices();

  void setThreads(int threads);  // the whole-machine "cpu" device's pool
  int threads();
  void configureVirtualCpus(const VirtualCpuConfig& config);
  VirtualCpuConfig virtualCpuConfig();

 private:
  Runtime();
  std::shared_ptr<DeviceContext> makeCuda(int index);

  std::mutex mutex_;
  std::shared_ptr<DeviceContext> cpu_;
  std::vector<std::shared_ptr<DeviceContext>> virtualCpus_;
  std::vector<std::shared_ptr<DeviceContext>> cuda_;
  VirtualCpuConfig vcpuConfig_;
};

}  // namespace nd
