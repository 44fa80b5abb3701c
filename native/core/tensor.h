// Tensor: a contiguous, row-major block of one dtype on one device. Storage is shared (views and
// copies in flight keep it alive); the core never holds JS objects.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>

#include "core/device.h"
#include "core/dtype.h"
#include "core/runtime.h"

namespace nd {

class Storage {
 public:
  // Memory from the device's caching allocator.
  static std::shared_ptr<Storage> allocate(std::shared_ptr<DeviceContext> ctx, size_t bytes);
  // Host memory owned by someone else (e.g. a JS ArrayBuffer kept alive by the JS Tensor);
  // `release` runs when the last reference goes away.
  static std::shared_ptr<Storage> wrapHost(void* data, size_t bytes, std::function<void()> release,
                                           bool readOnly = false);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }
  bool ownsMemory() const { return ctx_ != nullptr; }
  // Memory that must not be written (a read-only file mapping): ops only read it; view() refuses.
  bool readOnly() const { return readOnly_; }
  const std::shared_ptr<DeviceContext>& context() const { return ctx_; }

 private:
  Storage() = default;
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  std::shared_ptr<DeviceContext> ctx_;  // null for wrapped memory
  std::function<void()> release_;
  bool readOnly_ = false;
};

struct Tensor {
  std::shared_ptr<Storage> storage;
  Shape shape;
  DType dtype = DType::F32;

  int64_t numel() const { return shapeNumel(shape); }
  size_t nbytes() const { return size_t(numel()) * dtypeSize(dtype); }
  Device device() const { return storage ? storage->device() : Device{}; }
  void* data() const { return storage ? storage->data() : nullptr; }
  template <typename T> T* ptr() const { return static_cast<T*>(data()); }

  // Uninitialised tensor on `device` (ERR_ND_DEVICE / ERR_ND_OOM on failure).
  static Tensor empty(const Shape& shape, DType dtype, Device device);
};

// Tensor operations that dispatch on device: each runs the CPU kernel or its CUDA twin.
Tensor zeros(const Shape& shape, DType dtype, Device device);
Tensor toDevice(const Tensor& src, Device device);
Tensor castTo(const Tensor& src, DType dtype);
// Host copy of `src` into dst (which holds src.nbytes()).
void copyToHost(const Tensor& src, void* dst);
// Normal noise, one seed per sample along dim 0 (see core/philox.h for the counter layout).
Tensor randn(const Shape& shape, DType dtype, Device device, const std::vector<uint64_t>& seeds, uint64_t stream);

}  // namespace nd
