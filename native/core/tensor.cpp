// Host code: the CUDA kernel headers give their entry points only.
#define ND_KERNEL_DECLARATIONS_ONLY
#include "core/tensor.h"

#include <cstring>

#include "core/cuda_backend.h"
#include "core/error.h"
#include "kernels/cpu/cast.h"
#include "kernels/cpu/randn.h"
#ifdef ND_WITH_CUDA
#include "kernels/cuda/cast.cuh"
#include "kernels/cuda/randn.cuh"
#endif

namespace nd {

std::shared_ptr<Storage> Storage::allocate(std::shared_ptr<DeviceContext> ctx, size_t bytes) {
  std::shared_ptr<Storage> s(new Storage());
  s->data_ = ctx->allocator().allocate(bytes);
  s->bytes_ = bytes;
  s->device_ = ctx->device();
  s->ctx_ = std::move(ctx);
  return s;
}

std::shared_ptr<Storage> Storage::wrapHost(void* data, size_t bytes, std::function<void()> release, bool readOnly) {
  std::shared_ptr<Storage> s(new Storage());
  s->readOnly_ = readOnly;
  s->data_ = data;
  s->bytes_ = bytes;
  s->device_ = Device{DeviceType::Cpu, -1};
  s->release_ = std::move(release);
  return s;
}

Storage::~Storage() {
  if (ctx_) ctx_->allocator().deallocate(data_, bytes_);
  if (release_) release_();
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  Tensor t;
  t.shape = shape;
  t.dtype = dtype;
  int64_t n = shapeNumel(shape);
  ND_REQUIRE(uint64_t(n) <= (uint64_t(1) << 48) / dtypeSize(dtype), Oom,
             "Tensor of shape " + shapeToString(shape) + " is too large");
  t.storage = Storage::allocate(Runtime::instance().context(device), size_t(n) * dtypeSize(dtype));
  return t;
}

Tensor zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  if (device.isCpu()) std::memset(t.data(), 0, t.nbytes());
  else cuda::memsetZero(device.index, t.data(), t.nbytes());
  return t;
}

Tensor toDevice(const Tensor& src, Device device) {
  Tensor dst = Tensor::empty(src.shape, src.dtype, device);
  size_t n = src.nbytes();
  if (n == 0) return dst;
  Device from = src.device();
  if (from.isCpu() && device.isCpu()) std::memcpy(dst.data(), src.data(), n);
  else if (from.isCpu()) cuda::memcpyHostToDevice(device.index, dst.data(), src.data(), n);
  else if (device.isCpu()) cuda::memcpyDeviceToHost(from.index, dst.data(), src.data(), n);
  else cuda::memcpyDeviceToDevice(device.index, dst.data(), from.index, src.data(), n);
  return dst;
}

void copyToHost(const Tensor& src, void* dst) {
  size_t n = src.nbytes();
  if (n == 0) return;
  // memmove: the destination may be JS memory that overlaps a zero-copy source.
  if (src.device().isCpu()) std::memmove(dst, src.data(), n);
  else cuda::memcpyDeviceToHost(src.device().index, dst, src.data(), n);
}

Tensor castTo(const Tensor& src, DType dtype) {
  Device device = src.device();
  Tensor dst = Tensor::empty(src.shape, dtype, device);
  if (device.isCpu()) {
    auto pool = Runtime::instance().context(device)->pool();
    castCpu(src.data(), src.dtype, dst.data(), dtype, src.numel(), pool.get());
  } else {
#ifdef ND_WITH_CUDA
    castCuda(device.index, src.data(), src.dtype, dst.data(), dtype, src.numel());
    // Kernels run asynchronously; settle here so a fault is reported by the op that caused it.
    cuda::synchronize(device.index);
#else
    fail(ErrorCode::Device, "This build of node-diffusion has no CUDA backend");
#endif
  }
  return dst;
}

Tensor randn(const Shape& shape, DType dtype, Device device, const std::vector<uint64_t>& seeds, uint64_t stream) {
  ND_REQUIRE(isFloating(dtype), DType, std::string("randn produces floating-point tensors; received dtype ") + dtypeName(dtype));
  int64_t batch = shape.empty() ? 1 : shape[0];
  int64_t numel = shapeNumel(shape);
  int64_t perSample = batch ? numel / batch : 0;
  ND_REQUIRE(int64_t(seeds.size()) == batch, Arg,
             "Expected " + std::to_string(batch) + " seeds (one per sample) but received " + std::to_string(seeds.size()));
  Tensor t = Tensor::empty(shape, dtype, device);
  if (numel == 0) return t;
  if (device.isCpu()) {
    auto pool = Runtime::instance().context(device)->pool();
    randnCpu(t.data(), dtype, batch, perSample, seeds.data(), stream, pool.get());
  } else {
#ifdef ND_WITH_CUDA
    randnCuda(device.index, t.data(), dtype, batch, perSample, seeds.data(), stream);
    cuda::synchronize(device.index);
#else
    fail(ErrorCode::Device, "This build of node-diffusion has no CUDA backend");
#endif
  }
  return t;
}

}  // namespace nd
