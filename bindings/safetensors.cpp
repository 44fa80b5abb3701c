// safetensors: an opened file is a SafetensorsHandle (the mmap lives as long as the handle or a
// read in flight); tensors are converted and copied out lazily, one per read() call.
#include <memory>

#include "bindings.h"
#include "convert.h"
#include "core/error.h"
#include "core/runtime.h"
#include "core/tensor.h"
#include "errors.h"
#include "instance.h"
#include "io/safetensors.h"
#include "promise_worker.h"
#include "tensor_handle.h"

namespace ndjs {

namespace {

class SafetensorsHandle : public Napi::ObjectWrap<SafetensorsHandle> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "SafetensorsHandle",
                       {
                           InstanceMethod<&SafetensorsHandle::header>("header"),
                           InstanceMethod<&SafetensorsHandle::read>("read"),
                           InstanceMethod<&SafetensorsHandle::close>("close"),
                       });
  }

  explicit SafetensorsHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SafetensorsHandle>(info) {}

  std::shared_ptr<nd::io::SafetensorsFile> file;

 private:
  std::shared_ptr<nd::io::SafetensorsFile> live() const {
    ND_REQUIRE(file != nullptr, Disposed, "safetensors file was closed");
    return file;
  }

  Napi::Value header(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      auto f = live();
      const auto& h = f->header();
      Napi::Array tensors = Napi::Array::New(env, h.tensors.size());
      for (size_t i = 0; i < h.tensors.size(); ++i) {
        const auto& t = h.tensors[i];
        Napi::Object o = Napi::Object::New(env);
        o.Set("name", t.name);
        o.Set("dtype", nd::io::stDTypeName(t.dtype));
        o.Set("shape", shapeToJs(env, t.shape));
        o.Set("begin", double(t.begin));
        o.Set("end", double(t.end));
        tensors.Set(uint32_t(i), o);
      }
      Napi::Array meta = Napi::Array::New(env, h.metadata.size());
      for (size_t i = 0; i < h.metadata.size(); ++i) {
        Napi::Array kv = Napi::Array::New(env, 2);
        kv.Set(0u, h.metadata[i].first);
        kv.Set(1u, h.metadata[i].second);
        meta.Set(uint32_t(i), kv);
      }
      Napi::Object out = Napi::Object::New(env);
      out.Set("tensors", tensors);
      out.Set("metadata", meta);
      return out;
    });
  }

  // read(name, dtype | null, device, shareMapping): null keeps the stored dtype (which must then be
  // one of ours). shareMapping: see the zero-copy branch below.
  Napi::Value read(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto f = live();
      std::string name = argString(info, 0, "name");
      const nd::io::StTensorInfo* t = f->find(name);
      ND_REQUIRE(t != nullptr, Arg, "safetensors file " + f->path() + " has no tensor '" + name + "'");
      nd::DType dtype;
      if (info.Length() > 1 && info[1].IsNull()) {
        auto own = nd::io::toDType(t->dtype);
        ND_REQUIRE(own.has_value(), DType,
                   "Tensor '" + name + "' is stored as " + nd::io::stDTypeName(t->dtype) +
                       ", which has no tensor dtype here; pass a dtype to convert it on load");
        dtype = *own;
      } else {
        dtype = argDType(info, 1, "dtype");
      }
      nd::Device device = argDevice(info, 2, "device");
      // Zero-copy on request: a tensor read in its stored dtype onto the plain CPU device shares the
      // file's copy-on-write mapping (the storage keeps the file mapped) when its data is aligned.
      // Opt-in because a file truncated by someone else while mapped makes reads fault (SIGBUS).
      bool shareMapping = info.Length() > 3 && argBool(info, 3, "shareMapping");
      if (shareMapping && f->mapped() && device == nd::Device{} && nd::io::toDType(t->dtype) == dtype &&
          reinterpret_cast<uintptr_t>(f->rawData(*t)) % nd::dtypeSize(dtype) == 0) {
        nd::Tensor shared;
        shared.shape = t->shape;
        shared.dtype = dtype;
        shared.storage = nd::Storage::wrapHost(const_cast<uint8_t*>(f->rawData(*t)), size_t(t->end - t->begin),
                                               [f] {}, /*readOnly=*/true);
        Napi::Env env = info.Env();
        auto deferred = Napi::Promise::Deferred::New(env);
        deferred.Resolve(TensorHandle::wrap(env, std::move(shared)));
        return deferred.Promise();
      }
      auto result = std::make_shared<nd::Tensor>();
      nd::io::StTensorInfo meta = *t;
      return PromiseWorker::run(
          info.Env(),
          [f, meta, dtype, device, result] {
            nd::Device host = device.isCpu() ? device : nd::Device{};
            nd::Tensor cpu = nd::Tensor::empty(meta.shape, dtype, host);
            auto pool = nd::Runtime::instance().context(host)->pool();
            f->readInto(meta, cpu.data(), dtype, pool.get());
            *result = device.isCpu() ? std::move(cpu) : nd::toDevice(cpu, device);
          },
          [result](Napi::Env env) -> Napi::Value { return TensorHandle::wrap(env, std::move(*result)); });
    });
  }

  Napi::Value close(const Napi::CallbackInfo& info) {
    file.reset();
    return info.Env().Undefined();
  }
};

Napi::Value safetensorsOpen(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    std::string path = argString(info, 0, "path");
    auto opened = std::make_shared<std::shared_ptr<nd::io::SafetensorsFile>>();
    return PromiseWorker::run(
        info.Env(), [path, opened] { *opened = nd::io::SafetensorsFile::open(path); },
        [opened](Napi::Env env) -> Napi::Value {
          Napi::Object obj = instanceData(env).safetensorsHandleCtor.New({});
          SafetensorsHandle::Unwrap(obj)->file = std::move(*opened);
          return obj;
        });
  });
}

// safetensorsWrite(path, [{ name, tensor }], [[key, value], ...])
Napi::Value safetensorsWrite(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    std::string path = argString(info, 0, "path");
    if (info.Length() < 3 || !info[1].IsArray() || !info[2].IsArray())
      nd::fail(nd::ErrorCode::Arg, "Expected (path, entries[], metadata[])");
    auto entries = info[1].As<Napi::Array>();
    std::vector<std::pair<std::string, nd::Tensor>> tensors;
    std::vector<Napi::Value> pin;
    for (uint32_t i = 0; i < entries.Length(); ++i) {
      Napi::Value e = entries.Get(i);
      if (!e.IsObject()) nd::fail(nd::ErrorCode::Arg, "Expected { name, tensor } entries");
      Napi::Object o = e.As<Napi::Object>();
      Napi::Value name = o.Get("name");
      if (!name.IsString()) nd::fail(nd::ErrorCode::Arg, "Expected string name for entry " + std::to_string(i));
      Napi::Value handle = o.Get("tensor");
      tensors.emplace_back(name.As<Napi::String>().Utf8Value(), TensorHandle::unwrap(handle, "tensor")->tensor());
      pin.push_back(handle);
    }
    std::vector<std::pair<std::string, std::string>> metadata;
    auto meta = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < meta.Length(); ++i) {
      Napi::Value kv = meta.Get(i);
      if (!kv.IsArray() || kv.As<Napi::Array>().Length() != 2 || !kv.As<Napi::Array>().Get(0u).IsString() ||
          !kv.As<Napi::Array>().Get(1u).IsString())
        nd::fail(nd::ErrorCode::Arg, "Expected metadata as [string, string] pairs");
      metadata.emplace_back(kv.As<Napi::Array>().Get(0u).As<Napi::String>().Utf8Value(),
                            kv.As<Napi::Array>().Get(1u).As<Napi::String>().Utf8Value());
    }
    return PromiseWorker::run(
        info.Env(),
        [path, tensors, metadata] {
          std::vector<nd::Tensor> host;  // device tensors are staged through host memory
          std::vector<nd::io::StWriteEntry> out;
          host.reserve(tensors.size());
          for (const auto& [name, t] : tensors) {
            host.push_back(t.device().isCpu() ? t : nd::toDevice(t, nd::Device{}));
            out.push_back({name, t.dtype, t.shape, host.back().data()});
          }
          nd::io::writeSafetensors(path, out, metadata);
        },
        nullptr, std::move(pin));
  });
}

}  // namespace

void registerSafetensors(Napi::Env env, Napi::Object exports) {
  instanceData(env).safetensorsHandleCtor = Napi::Persistent(SafetensorsHandle::define(env));
  exports.Set("safetensorsOpen", Napi::Function::New(env, safetensorsOpen, "safetensorsOpen"));
  exports.Set("safetensorsWrite", Napi::Function::New(env, safetensorsWrite, "safetensorsWrite"));
}

}  // namespace ndjs
