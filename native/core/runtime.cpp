#include "core/runtime.h"

#include <cstdlib>

#include "core/cuda_backend.h"
#include "core/error.h"

namespace nd {

namespace {
constexpr size_t kCpuAlignment = 64;  // cache line; also enough for AVX-512 loads
constexpr uint64_t kCpuCacheLimit = uint64_t(256) << 20;
constexpr uint64_t kCudaCacheLimit = uint64_t(1) << 40;  // effectively unbounded, like torch

CachingAllocator::RawAlloc cpuRawAlloc() {
  return [](size_t bytes) -> void* { return std::aligned_alloc(kCpuAlignment, bytes); };
}
CachingAllocator::RawFree cpuRawFree() {
  return [](void* p, size_t) { std::free(p); };
}
}  // namespace

DeviceContext::DeviceContext(Device device, std::shared_ptr<ThreadPool> pool, uint64_t cacheLimit)
    : device_(device),
      pool_(std::move(pool)),
      allocator_(device, device.isCpu() ? cpuRawAlloc() : CachingAllocator::RawAlloc([idx = device.index](size_t b) -> void* {
                   try {
                     return cuda::deviceMalloc(idx, b);
                   } catch (const Error& e) {
                     if (e.code() == ErrorCode::Oom) return nullptr;
                     throw;
                   }
                 }),
                 device.isCpu() ? cpuRawFree() : CachingAllocator::RawFree([idx = device.index](void* p, size_t) {
                   cuda::deviceFree(idx, p);
                 }),
                 cacheLimit) {}

std::shared_ptr<ThreadPool> DeviceContext::pool() const {
  std::lock_guard<std::mutex> lk(poolMutex_);
  return pool_;
}

void DeviceContext::setPool(std::shared_ptr<ThreadPool> pool) {
  std::lock_guard<std::mutex> lk(poolMutex_);
  pool_ = std::move(pool);
}

Runtime& Runtime::instance() {
  // Leaked on purpose: worker threads may still release storage during static destruction.
  static Runtime* rt = new Runtime();
  return *rt;
}

Runtime::Runtime() {
  cpu_ = std::make_shared<DeviceContext>(Device{DeviceType::Cpu, -1},
                                         std::make_shared<ThreadPool>(defaultThreadCount()), kCpuCacheLimit);
  if (const char* env = std::getenv("ND_VIRTUAL_CPUS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end && *end == '\0' && v > 0 && v <= 256) configureVirtualCpus({int(v), 0, 0});
  }
}

std::shared_ptr<DeviceContext> Runtime::makeCuda(int index) {
  auto probe = cuda::probe();
  if (!probe.compiled) fail(ErrorCode::Device, "Device " + Device{DeviceType::Cuda, index}.str() +
                                                   " is unavailable: " + probe.error);
  if (!probe.error.empty()) fail(ErrorCode::Device, "CUDA is unavailable: " + probe.error);
  if (index >= probe.deviceCount)
    fail(ErrorCode::Device, "Device cuda:" + std::to_string(index) + " does not exist; this machine has " +
                                std::to_string(probe.deviceCount) + " CUDA device(s)");
  return std::make_shared<DeviceContext>(Device{DeviceType::Cuda, index}, cpu_->pool(), kCudaCacheLimit);
}

std::shared_ptr<DeviceContext> Runtime::context(Device device) {
  std::lock_guard<std::mutex> lk(mutex_);
  if (device.isCpu()) {
    if (device.index < 0) return cpu_;
    if (size_t(device.index) < virtualCpus_.size()) return virtualCpus_[size_t(device.index)];
    fail(ErrorCode::Device, "Device " + device.str() + " does not exist; " +
                                std::to_string(virtualCpus_.size()) +
                                " virtual CPU device(s) are configured (configureDevices({ virtualCpus }))");
  }
  if (size_t(device.index) >= cuda_.size()) cuda_.resize(size_t(device.index) + 1);
  auto& slot = cuda_[size_t(device.index)];
  if (!slot) slot = makeCuda(device.index);
  return slot;
}

void Runtime::setThreads(int threads) {
  // The allocator (and its statistics) stays; only the pool is replaced. Jobs still running hold
  // the old pool through their shared_ptr until they finish.
  auto pool = std::make_shared<ThreadPool>(threads);
  cpu_->setPool(pool);
  // CUDA devices do their host-side work on the same pool.
  std::lock_guard<std::mutex> lk(mutex_);
  for (auto& c : cuda_)
    if (c) c->setPool(pool);
}

int Runtime::threads() {
  return cpu_->pool()->threads();
}

void Runtime::configureVirtualCpus(const VirtualCpuConfig& config) {
  ND_REQUIRE(config.count >= 0 && config.count <= 256, Arg,
             "Expected integer in [0, 256] for virtualCpus but received " + std::to_string(config.count));
  ND_REQUIRE(config.threadsPerDevice >= 0 && config.threadsPerDevice <= 1024, Arg,
             "Expected integer in [0, 1024] for threadsPerDevice but received " +
                 std::to_string(config.threadsPerDevice));
  std::vector<int> allowed = availableCpuList();
  int cores = int(allowed.size());
  int perDevice = config.threadsPerDevice > 0 ? config.threadsPerDevice : std::max(1, cores / std::max(1, config.count));
  ND_REQUIRE(int64_t(perDevice) * config.count <= 4096, Arg,
             "Expected at most 4096 threads over all virtual CPU devices but received " +
                 std::to_string(config.count) + " x " + std::to_string(perDevice));
  std::vector<std::shared_ptr<DeviceContext>> devices;
  for (int k = 0; k < config.count; ++k) {
    int threads = perDevice;
    // Consecutive ranges of the CPUs this process may use, wrapping around when there are more
    // virtual devices than cores.
    std::vector<int> cpus;
    for (int t = 0; t < threads; ++t) cpus.push_back(allowed[size_t((k * threads + t) % cores)]);
    auto ctx = std::make_shared<DeviceContext>(Device{DeviceType::Cpu, k},
                                               std::make_shared<ThreadPool>(threads, cpus), kCpuCacheLimit);
    ctx->allocator().setMemoryLimit(config.memoryLimit);
    devices.push_back(std::move(ctx));
  }
  std::lock_guard<std::mutex> lk(mutex_);
  virtualCpus_ = std::move(devices);
  vcpuConfig_ = config;
}

VirtualCpuConfig Runtime::virtualCpuConfig() {
  std::lock_guard<std::mutex> lk(mutex_);
  return vcpuConfig_;
}

std::vector<DeviceInfo> Runtime::listDevices() {
  std::vector<std::shared_ptr<DeviceContext>> cpus;
  {
    std::lock_guard<std::mutex> lk(mutex_);
    cpus.push_back(cpu_);
    cpus.insert(cpus.end(), virtualCpus_.begin(), virtualCpus_.end());
  }
  std::vector<DeviceInfo> out;
  for (auto& c : cpus) {
    DeviceInfo info;
    info.device = c->device();
    info.name = c->device().index < 0 ? "CPU" : "virtual CPU";
    auto pool = c->pool();
    info.threads = pool->threads();
    info.cpuSet = pool->cpuSet();
    info.memory = c->allocator().stats();
    out.push_back(std::move(info));
  }
  auto probe = cuda::probe();
  if (probe.compiled && probe.error.empty()) {
    for (int i = 0; i < probe.deviceCount; ++i) {
      DeviceInfo info;
      info.device = Device{DeviceType::Cuda, i};
      auto props = cuda::deviceProps(i);
      info.name = props.name;
      info.totalMemory = props.totalMemory;
      {
        std::lock_guard<std::mutex> lk(mutex_);
        if (size_t(i) < cuda_.size() && cuda_[size_t(i)]) info.memory = cuda_[size_t(i)]->allocator().stats();
      }
      out.push_back(std::move(info));
    }
  }
  return out;
}

}  // namespace nd
