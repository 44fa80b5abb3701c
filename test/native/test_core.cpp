// Core pieces: device names, the caching allocator, the thread pool, the runtime's device set.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <set>

#include "check.h"
#include "core/allocator.h"
#include "core/device.h"
#include "core/dtype.h"
#include "core/runtime.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

using namespace nd;

ND_TEST(device_parse) {
  CHECK(Device::parse("cpu") == (Device{DeviceType::Cpu, -1}));
  CHECK(Device::parse("cpu:3") == (Device{DeviceType::Cpu, 3}));
  CHECK(Device::parse("cuda") == (Device{DeviceType::Cuda, 0}));
  CHECK(Device::parse("cuda:1").str() == "cuda:1");
  for (const char* bad : {"", "gpu", "cpu:", "cpu:-1", "cuda:x", "cuda:1x", "cpu:99999", "CPU"})
    CHECK_THROWS_CODE(Device::parse(bad), Device);
}

ND_TEST(dtype_names_and_numel) {
  for (DType t : kAllDTypes) CHECK(parseDType(dtypeName(t)) == t);
  CHECK_THROWS_CODE(parseDType("f8"), DType);
  CHECK(shapeNumel({}) == 1);
  CHECK(shapeNumel({2, 0, 5}) == 0);
  CHECK_THROWS_CODE(shapeNumel({-1}), Shape);
  CHECK_THROWS_CODE(shapeNumel({int64_t(1) << 40, int64_t(1) << 40}), Shape);
}

ND_TEST(allocator_caches_and_counts) {
  int rawAllocs = 0, rawFrees = 0;
  CachingAllocator a(Device{}, [&](size_t b) { ++rawAllocs; return std::malloc(b); },
                     [&](void* p, size_t) { ++rawFrees; std::free(p); }, 1 << 20);
  CHECK(CachingAllocator::roundSize(1) == 64);
  CHECK(CachingAllocator::roundSize(65) == 128);
  CHECK(CachingAllocator::roundSize((1 << 20) + 1) == 2 << 20);
  void* p = a.allocate(1000);
  std::memset(p, 1, 1000);
  a.deallocate(p, 1000);
  void* q = a.allocate(900);  // same 1 KiB class: served from the cache
  CHECK(q == p);
  auto s = a.stats();
  CHECK(s.allocations == 2 && s.cacheHits == 1 && s.systemAllocations == 1 && s.bytesInUse == 1024);
  a.deallocate(q, 900);
  CHECK(a.stats().bytesCached == 1024);
  a.emptyCache();
  CHECK(a.stats().bytesCached == 0 && rawFrees == 1);
  // Blocks beyond the cache limit go straight back.
  void* big = a.allocate(2 << 20);
  a.deallocate(big, 2 << 20);
  CHECK(a.stats().bytesCached == 0 && rawFrees == 2);
  CHECK(a.stats().peakBytesInUse == (2 << 20));
  CHECK(rawAllocs == 2);
}

ND_TEST(allocator_limit_and_system_oom) {
  CachingAllocator a(Device{}, [](size_t b) { return std::malloc(b); }, [](void* p, size_t) { std::free(p); }, 1 << 20);
  a.setMemoryLimit(4096);
  void* p = a.allocate(4096);
  CHECK_THROWS_CODE(a.allocate(64), Oom);
  a.deallocate(p, 4096);
  int calls = 0;
  CachingAllocator failing(Device{DeviceType::Cpu, 2}, [&](size_t) -> void* { ++calls; return nullptr; },
                           [](void*, size_t) {}, 1 << 20);
  try {
    failing.allocate(100);
    CHECK(false);
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::Oom);
    CHECK(std::string(e.what()).find("cpu:2") != std::string::npos);
  }
  CHECK(calls == 1);
}

ND_TEST(thread_pool_covers_range_once_and_propagates_errors) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> hits(100000);
  pool.parallelFor(100000, 10, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
  });
  bool once = true;
  for (auto& h : hits) once = once && h.load() == 1;
  CHECK(once);
  CHECK_THROWS_CODE(pool.parallelFor(1000, 1, [](int64_t b, int64_t) {
    if (b > 500) fail(ErrorCode::Arg, "boom");
  }), Arg);
  // Still usable after an exception; nested calls run inline instead of deadlocking.
  std::atomic<int64_t> sum{0};
  pool.parallelFor(64, 1, [&](int64_t b, int64_t e) {
    pool.parallelFor(e - b, 1, [&](int64_t bb, int64_t ee) { sum += ee - bb; });
  });
  CHECK(sum.load() == 64);
  CHECK_THROWS_CODE(ThreadPool(0), Arg);
}

ND_TEST(thread_pool_concurrent_submitters) {
  ThreadPool pool(3);
  std::vector<std::thread> ts;
  std::atomic<int64_t> total{0};
  for (int k = 0; k < 4; ++k)
    ts.emplace_back([&] {
      for (int r = 0; r < 50; ++r) pool.parallelFor(1000, 10, [&](int64_t b, int64_t e) { total += e - b; });
    });
  for (auto& t : ts) t.join();
  CHECK(total.load() == 4 * 50 * 1000);
}

ND_TEST(runtime_virtual_devices) {
  auto& rt = Runtime::instance();
  rt.configureVirtualCpus({3, 1, 1 << 16});
  auto devices = rt.listDevices();
  CHECK(devices.size() >= 4);
  std::set<std::string> ids;
  for (auto& d : devices) ids.insert(d.device.str());
  CHECK(ids.count("cpu:0") && ids.count("cpu:2"));
  Tensor t = Tensor::empty({1000}, DType::F32, Device{DeviceType::Cpu, 1});
  CHECK(rt.context(Device{DeviceType::Cpu, 1})->allocator().stats().bytesInUse == 4096);
  CHECK(rt.context(Device{DeviceType::Cpu, 0})->allocator().stats().bytesInUse == 0);
  CHECK_THROWS_CODE(Tensor::empty({1 << 20}, DType::F32, Device{DeviceType::Cpu, 0}), Oom);
  CHECK_THROWS_CODE(rt.context(Device{DeviceType::Cpu, 3}), Device);
  // Tensors outlive a reconfiguration: their storage keeps the old device context alive.
  rt.configureVirtualCpus({0, 0, 0});
  Tensor c = toDevice(t, Device{});
  CHECK(c.nbytes() == 4000);
  CHECK_THROWS_CODE(Tensor::empty({1}, DType::F32, Device{DeviceType::Cuda, 0}), Device);
}

ND_TEST(tensor_ops_cpu) {
  Tensor z = zeros({3, 4}, DType::F64, Device{});
  bool allZero = true;
  for (int i = 0; i < 12; ++i) allZero = allZero && z.ptr<double>()[i] == 0.0;
  CHECK(allZero);
  Tensor f = castTo(z, DType::F16);
  CHECK(f.dtype == DType::F16 && f.nbytes() == 24);
  CHECK_THROWS_CODE(randn({2, 3}, DType::F32, Device{}, {1}, 0), Arg);
  CHECK_THROWS_CODE(randn({2}, DType::I32, Device{}, {1, 2}, 0), DType);
  Tensor r = randn({2, 3}, DType::F32, Device{}, {1, 2}, 0);
  Tensor r1 = randn({1, 3}, DType::F32, Device{}, {2}, 0);
  CHECK(std::memcmp(r.ptr<float>() + 3, r1.ptr<float>(), 12) == 0);
}

ND_TEST_MAIN()
