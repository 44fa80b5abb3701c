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
  auto ta = info[i].As<Napi::TypedArray>();
  Napi::ArrayBuffer ab = ta.ArrayBuffer();
  ViewBytes v;
  v.data = static_cast<uint8_t*>(ab.Data()) + ta.ByteOffset();
  v.bytes = ta.ByteLength();
  return v;
}

// fromArray(view, shape, dtype, copy): a CPU tensor over the view's bytes. Zero-copy unless `copy`
// (lib/ decides when adoption is safe: natural dtype, aligned, not shared); the handle pins the view.
Napi::Value fromArray(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    ViewBytes v = viewBytes(info, 0, "data");
    nd::Shape shape = argShape(info, 1, "shape");
    nd::DType dtype = argDType(info, 2, "dtype");
    bool copy = argBool(info, 3, "copy");
    size_t need = size_t(nd::shapeNumel(shape)) * nd::dtypeSize(dtype);
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

// view(handle): an ArrayBuffer over a CPU tensor's own memory (no copy). The buffer holds a
// reference to the storage, so the memory outlives even a disposed tensor until the buffer is GC'd.
Napi::Value view(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    nd::Tensor t = TensorHandle::unwrap(info[0], "tensor")->tensor();
    ND_REQUIRE(t.device().isCpu(), Device, "view() needs a CPU tensor; this one is on " + t.device().str());
    if (!t.storage || t.nbytes() == 0) return Napi::ArrayBuffer::New(info.Env(), 0);
    auto* hold = new std::shared_ptr<nd::Storage>(t.storage);
    try {
      return Napi::ArrayBuffer::New(
          info.Env(), t.data(), t.nbytes(),
          [](Napi::Env, void*, std::shared_ptr<nd::Storage>* h) { delete h; }, hold);
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
    if (info.Length() > 5 && argBool(info, 5, "consecutive")) {
      ND_REQUIRE(seeds.size() == 1, Arg, "Expected one base seed with consecutive seeds");
      int64_t batch = shape.empty() ? 1 : shape[0];
      uint64_t base = seeds[0];
      seeds.resize(size_t(batch));
      for (int64_t i = 0; i < batch; ++i) seeds[size_t(i)] = base + uint64_t(i);
    }
    if (info.Length() <= 4 || !info[4].IsBigInt()) nd::fail(nd::ErrorCode::Arg, "Expected bigint for stream");
    bool lossless = false;
    uint64_t stream = info[4].As<Napi::BigInt>().Uint64Value(&lossless);
    ND_REQUIRE(lossless, Arg, "Expected stream in [0, 2^64)");
    return resultWorker(info, [=] { return nd::randn(shape, dtype, device, seeds, stream); }, {});
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
