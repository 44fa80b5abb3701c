// Tensor creation, transfer, casting, reading and random tensors.
#include <cstring>

#include "bindings.h"
#include "convert.h"
#include "core/error.h"
#include "core/tensor.h"
#include "errors.h"
#include "promise_worker.h"
#include "tensor_handle.h"

namespace ndjs {

namespace {

struct ViewBytes {
  uint8_t* data = nullptr;
  size_t bytes = 0;
  bool shared = false;
};

ViewBytes viewBytes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsTypedArray())
    nd::fail(nd::ErrorCode::Arg, std::string("Expected TypedArray for ") + name);
  // napi_get_typedarray_info (unlike the ArrayBuffer accessors) also works for SharedArrayBuffers.
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  napi_value buffer;
  if (napi_get_typedarray_info(info.Env(), info[i], &type, &length, &data, &buffer, &offset) != napi_ok)
    nd::fail(nd::ErrorCode::Arg, std::string("Expected TypedArray for ") + name);
  ViewBytes v;
  v.data = static_cast<uint8_t*>(data);
  v.bytes = info[i].As<Napi::TypedArray>().ByteLength();
  return v;
}

// fromArray(view, shape, dtype, copy): a CPU tensor over the view's bytes. Zero-copy unless `copy`
// (lib/ decides when adoption is safe: natural dtype, aligned, not shared); the handle pins the view.
Napi::Value fromArray(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    // Scalars first: reading the shape can run JS (getters), which could resize or detach the data.
    nd::Shape shape = argShape(info, 1, "shape");
    nd::DType dtype = argDType(info, 2, "dtype");
    bool copy = argBool(info, 3, "copy");
    int64_t numel = nd::shapeNumel(shape);
    ND_REQUIRE(uint64_t(numel) <= (uint64_t(1) << 48) / nd::dtypeSize(dtype), Shape,
               "Tensor of shape " + nd::shapeToString(shape) + " is too large");
    size_t need = size_t(numel) * nd::dtypeSize(dtype);
    ViewBytes v = viewBytes(info, 0, "data");
    ND_REQUIRE(v.bytes == need, Shape,
               "Data holds " + std::to_string(v.bytes) + " bytes but shape " + nd::shapeToString(shape) + " of " +
                   nd::dtypeName(dtype) + " needs " + std::to_string(need));
    if (copy) {
      nd::Tensor t = nd::Tensor::empty(shape, dtype, nd::Device{});
      if (need) std::memcpy(t.data(), v.data, need);
      return TensorHandle::wrap(info.Env(), std::move(t));
    }
    ND_REQUIRE(reinterpret_cast<uintptr_t>(v.data) % nd::dtypeSize(dtype) == 0, Arg,
               "Zero-copy tensor data must be aligned to its element size");
    nd::Tensor t;
    t.shape = shape;
    t.dtype = dtype;
    t.storage = nd::Storage::wrapHost(v.data, need, nullptr);
    auto keep = std::make_shared<Napi::Reference<Napi::Value>>(Napi::Persistent(info[0]));
    return TensorHandle::wrap(info.Env(), std::move(t), std::move(keep));
  });
}

Napi::Value empty(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    nd::Tensor t = nd::Tensor::empty(argShape(info, 0, "shape"), argDType(info, 1, "dtype"), argDevice(info, 2, "device"));
    return TensorHandle::wrap(info.Env(), std::move(t));
  });
}

// Async ops share one shape: capture inputs on the main thread, compute off it, wrap the result.
Napi::Value resultWorker(const Napi::CallbackInfo& info, std::function<nd::Tensor()> work, std::vector<Napi::Value> pin) {
  auto result = std::make_shared<nd::Tensor>();
  return PromiseWorker::run(
      info.Env(), [work = std::move(work), result] { *result = work(); },
      [result](Napi::Env env) -> Napi::Value { return TensorHandle::wrap(env, std::move(*result)); }, std::move(pin));
}

Napi::Value zeros(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    nd::Shape shape = argShape(info, 0, "shape");
    nd::DType dtype = argDType(info, 1, "dtype");
    nd::Device device = argDevice(info, 2, "device");
    return resultWorker(info, [=] { return nd::zeros(shape, dtype, device); }, {});
  });
}

Napi::Value toDevice(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    nd::Tensor src = TensorHandle::unwrap(info[0], "tensor")->tensor();
    nd::Device device = argDevice(info, 1, "device");
    return resultWorker(info, [=] { return nd::toDevice(src, device); }, {info[0]});
  });
}

Napi::Value cast(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    nd::Tensor src = TensorHandle::unwrap(info[0], "tensor")->tensor();
    nd::DType dtype = argDType(info, 1, "dtype");
    return resultWorker(info, [=] { return nd::castTo(src, dtype); }, {info[0]});
  });
}

void checkReadTarget(const nd::Tensor& t, const ViewBytes& v) {
  ND_REQUIRE(v.bytes == t.nbytes(), Shape,
             "Destination holds " + std::to_string(v.bytes) + " bytes but the tensor has " + std::to_string(t.nbytes()));
}

// read(handle, view): copies the tensor's bytes into the view (device -> host when needed).
Napi::Value read(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    nd::Tensor t = TensorHandle::unwrap(info[0], "tensor")->tensor();
    ViewBytes v = viewBytes(info, 1, "destination");
    checkReadTarget(t, v);
    return PromiseWorker::run(info.Env(), [t, v] { nd::copyToHost(t, v.data); }, nullptr, {info[0], info[1]});
  });
}

Napi::Value readSync(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    nd::Tensor t = TensorHandle::unwrap(info[0], "tensor")->tensor();
    ViewBytes v = viewBytes(info, 1, "destination");
    checkReadTarget(t, v);
    nd::copyToHost(t, v.data);
    return info.Env().Undefined();
  });
}

// view(handle): an ArrayBuffer over a CPU tensor's own memory (no copy). The buffer holds the
// storage (and, for memory borrowed from JS, the JS reference that keeps it alive), so the memory
// outlives even a disposed tensor until the buffer is collected; the finalizer runs on this thread.
struct ViewHold {
  std::shared_ptr<nd::Storage> storage;
  std::shared_ptr<Napi::Reference<Napi::Value>> keepAlive;
};

Napi::Value view(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    TensorHandle* h = TensorHandle::unwrap(info[0], "tensor");
    nd::Tensor t = h->tensor();
    ND_REQUIRE(t.device().isCpu(), Device, "view() needs a CPU tensor; this one is on " + t.device().str());
    ND_REQUIRE(!t.storage->readOnly(), Arg,
               "view() of a tensor that shares a read-only file mapping; use clone() for a writable copy");
    if (t.nbytes() == 0) return Napi::ArrayBuffer::New(info.Env(), 0);
    auto* hold = new ViewHold{t.storage, h->keepAlive()};
    try {
      return Napi::ArrayBuffer::New(
          info.Env(), t.data(), t.nbytes(), [](Napi::Env, void*, ViewHold* p) { delete p; }, hold);
    } catch (...) {
      delete hold;
      throw;
    }
  });
}

// randn(shape, dtype, device, seeds: BigUint64Array, stream: bigint, consecutive: boolean)
// consecutive: seeds holds one value s and sample i uses s + i (mod 2^64), expanded here so a
// large batch does not cost a JS loop.
Napi::Value randn(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    nd::Shape shape = argShape(info, 0, "shape");
    nd::DType dtype = argDType(info, 1, "dtype");
    nd::Device device = argDevice(info, 2, "device");
    if (info.Length() <= 3 || !info[3].IsTypedArray() ||
        info[3].As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array)
      nd::fail(nd::ErrorCode::Arg, "Expected BigUint64Array for seeds");
    auto seedsArr = info[3].As<Napi::BigUint64Array>();
    std::vector<uint64_t> seeds(seedsArr.Data(), seedsArr.Data() + seedsArr.ElementLength());
    bool consecutive = info.Length() > 5 && argBool(info, 5, "consecutive");
    ND_REQUIRE(!consecutive || seeds.size() == 1, Arg, "Expected one base seed with consecutive seeds");
    if (info.Length() <= 4 || !info[4].IsBigInt()) nd::fail(nd::ErrorCode::Arg, "Expected bigint for stream");
    bool lossless = false;
    uint64_t stream = info[4].As<Napi::BigInt>().Uint64Value(&lossless);
    ND_REQUIRE(lossless, Arg, "Expected stream in [0, 2^64)");
    return resultWorker(
        info,
        [=]() mutable {
          int64_t batch = shape.empty() ? 1 : shape[0];
          // An empty tensor needs no noise (and a huge empty batch must not allocate seeds).
          ND_REQUIRE(nd::isFloating(dtype), DType, std::string("randn produces floating-point tensors; received dtype ") + nd::dtypeName(dtype));
          if (nd::shapeNumel(shape) == 0) return nd::Tensor::empty(shape, dtype, device);
          if (consecutive) {  // expanded here, off the JS thread
            uint64_t base = seeds[0];
            seeds.resize(size_t(batch));
            for (int64_t i = 0; i < batch; ++i) seeds[size_t(i)] = base + uint64_t(i);
          }
          return nd::randn(shape, dtype, device, seeds, stream);
        },
        {});
  });
}

}  // namespace

void registerTensorOps(Napi::Env env, Napi::Object exports) {
  exports.Set("fromArray", Napi::Function::New(env, fromArray, "fromArray"));
  exports.Set("empty", Napi::Function::New(env, empty, "empty"));
  exports.Set("zeros", Napi::Function::New(env, zeros, "zeros"));
  exports.Set("toDevice", Napi::Function::New(env, toDevice, "toDevice"));
  exports.Set("cast", Napi::Function::New(env, cast, "cast"));
  exports.Set("read", Napi::Function::New(env, read, "read"));
  exports.Set("readSync", Napi::Function::New(env, readSync, "readSync"));
  exports.Set("view", Napi::Function::New(env, view, "view"));
  exports.Set("randn", Napi::Function::New(env, randn, "randn"));
}

}  // namespace ndjs
