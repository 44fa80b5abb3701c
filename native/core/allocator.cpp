#include "core/allocator.h"

#include <string>

#include "core/error.h"

namespace nd {

namespace {
std::string mib(uint64_t b) { return std::to_string((b + (1u << 19)) >> 20) + " MiB"; }
}  // namespace

CachingAllocator::CachingAllocator(Device device, RawAlloc rawAlloc, RawFree rawFree, uint64_t cacheLimit)
    : device_(device), rawAlloc_(std::move(rawAlloc)), rawFree_(std::move(rawFree)), cacheLimit_(cacheLimit) {}

CachingAllocator::~CachingAllocator() {
  std::lock_guard<std::mutex> lk(mutex_);
  releaseCachedLocked();
}

size_t CachingAllocator::roundSize(size_t bytes) {
  if (bytes <= 64) return 64;
  constexpr size_t kLarge = size_t(1) << 20;
  if (bytes > kLarge) {
    ND_REQUIRE(bytes <= (size_t(1) << 52), Oom, "Allocation of " + std::to_string(bytes) + " bytes is too large");
    return (bytes + kLarge - 1) & ~(kLarge - 1);
  }
  size_t s = 64;
  while (s < bytes) s <<= 1;
  return s;
}

void* CachingAllocator::allocate(size_t bytes) {
  size_t size = roundSize(bytes);
  std::lock_guard<std::mutex> lk(mutex_);
  if (stats_.memoryLimit && stats_.bytesInUse + size > stats_.memoryLimit) {
    fail(ErrorCode::Oom, "Out of memory on " + device_.str() + ": requested " + std::to_string(bytes) +
                             " bytes with " + mib(stats_.bytesInUse) + " in use and a limit of " +
                             mib(stats_.memoryLimit));
  }
  void* p = nullptr;
  auto it = freeLists_.find(size);
  if (it != freeLists_.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    stats_.bytesCached -= size;
    ++stats_.cacheHits;
  } else {
    p = rawAlloc_(size);
    if (!p && stats_.bytesCached) {  // give the cache back and try once more
      releaseCachedLocked();
      p = rawAlloc_(size);
    }
    if (!p) {
      fail(ErrorCode::Oom, "Out of memory on " + device_.str() + ": requested " + std::to_string(bytes) +
                               " bytes with " + mib(stats_.bytesInUse) + " in use");
    }
    ++stats_.systemAllocations;
  }
  stats_.bytesInUse += size;
  if (stats_.bytesInUse > stats_.peakBytesInUse) stats_.peakBytesInUse = stats_.bytesInUse;
  ++stats_.allocations;
  return p;
}

void CachingAllocator::deallocate(void* ptr, size_t bytes) noexcept {
  if (!ptr) return;
  size_t size = roundSize(bytes);
  std::lock_guard<std::mutex> lk(mutex_);
  stats_.bytesInUse -= size;
  ++stats_.frees;
  if (stats_.bytesCached + size > cacheLimit_) {
    rawFree_(ptr, size);
    return;
  }
  try {
    freeLists_[size].push_back(ptr);
    stats_.bytesCached += size;
  } catch (...) {  // no memory for the list node: just give the block back
    rawFree_(ptr, size);
  }
}

void CachingAllocator::releaseCachedLocked() noexcept {
  for (auto& [size, list] : freeLists_)
    for (void* p : list) rawFree_(p, size);
  freeLists_.clear();
  stats_.bytesCached = 0;
}

void CachingAllocator::emptyCache() noexcept {
  std::lock_guard<std::mutex> lk(mutex_);
  releaseCachedLocked();
}

void CachingAllocator::setMemoryLimit(uint64_t bytes) {
  std::lock_guard<std::mutex> lk(mutex_);
  stats_.memoryLimit = bytes;
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lk(mutex_);
  return stats_;
}

}  // namespace nd
