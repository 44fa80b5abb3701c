// TensorHandle: the JS object that owns one nd::Tensor. Its native memory is reported to V8 so the
// garbage collector sees the real cost of a forgotten tensor; dispose() frees it deterministically.
#pragma once
#include <napi.h>

#include <memory>

#include "core/tensor.h"

namespace ndjs {

Napi::Value externalMemory(const Napi::CallbackInfo& info);

class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static Napi::Function define(Napi::Env env);
  // Wraps `t`; `keepAlive` pins the JS memory a wrapped (zero-copy) storage points into.
  static Napi::Object wrap(Napi::Env env, nd::Tensor t,
                           std::shared_ptr<Napi::Reference<Napi::Value>> keepAlive = nullptr);
  static TensorHandle* unwrap(Napi::Value v, const char* name);

  explicit TensorHandle(const Napi::CallbackInfo& info);
  ~TensorHandle() override;

  // Throws ERR_ND_DISPOSED after dispose().
  const nd::Tensor& tensor() const;
  const std::shared_ptr<Napi::Reference<Napi::Value>>& keepAlive() const { return keepAlive_; }

 private:
  Napi::Value shape(const Napi::CallbackInfo& info);
  Napi::Value dtype(const Napi::CallbackInfo& info);
  Napi::Value device(const Napi::CallbackInfo& info);
  Napi::Value nbytes(const Napi::CallbackInfo& info);
  Napi::Value zeroCopy(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);
  void release();

  nd::Tensor tensor_;
  bool disposed_ = false;
  int64_t reportedBytes_ = 0;
  std::shared_ptr<Napi::Reference<Napi::Value>> keepAlive_;
};

}  // namespace ndjs
