// Caching allocator, one per device. Freed blocks are kept in per-size free lists and handed out
// again, so steady-state sampling loops allocate nothing from the OS/driver (the same idea as
// PyTorch's CUDA caching allocator, much simplified: exact size classes, no block splitting).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

#include "core/device.h"

namespace nd {

struct AllocatorStats {
  uint64_t bytesInUse = 0;      // handed out to tensors now (rounded sizes)
  uint64_t peakBytesInUse = 0;  // high-water mark of bytesInUse
  uint64_t bytesCached = 0;     // freed blocks held for reuse
  uint64_t allocations = 0;     // allocate() calls that succeeded
  uint64_t frees = 0;           // deallocate() calls
  uint64_t cacheHits = 0;       // allocations served from the cache
  uint64_t systemAllocations = 0;  // allocations that reached the OS/driver
  uint64_t memoryLimit = 0;     // 0 = none
};

class CachingAllocator {
 public:
  using RawAlloc = std::function<void*(size_t)>;  // returns nullptr when out of memory
  using RawFree = std::function<void(void*, size_t)>;

  CachingAllocator(Device device, RawAlloc rawAlloc, RawFree rawFree, uint64_t cacheLimit);
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // Throws ERR_ND_OOM (naming the device, the request and the usage) when neither the cache, nor
  // the system after emptying the cache, nor the memory limit allows the request.
  void* allocate(size_t bytes);
  void deallocate(void* ptr, size_t bytes) noexcept;
  void emptyCache() noexcept;
  void setMemoryLimit(uint64_t bytes);  // 0 = unlimited
  AllocatorStats stats() const;
  Device device() const { return device_; }

  // Size class a request is served from: small requests round to powers of two (>= 64 B), large
  // ones to multiples of 1 MiB, which bounds internal waste to 50% / 1 MiB.
  static size_t roundSize(size_t bytes);

 private:
  void releaseCachedLocked() noexcept;

  Device device_;
  RawAlloc rawAlloc_;
  RawFree rawFree_;
  uint64_t cacheLimit_;
  mutable std::mutex mutex_;
  std::map<size_t, std::vector<void*>> freeLists_;
  AllocatorStats stats_;
};

}  // namespace nd
