#include "tensor_handle.h"

#include "core/error.h"
#include "convert.h"
#include "errors.h"
#include "instance.h"

namespace ndjs {

namespace {
// Direct N-API call: node-addon-api's wrapper aborts the process if the call fails, and a failed
// accounting update is not worth a crash.
void adjustExternalMemory(Napi::Env env, int64_t change) {
  int64_t total = 0;
  (void)napi_adjust_external_memory(env, change, &total);
}
}  // namespace

// The isolate's external-memory total as V8 accounts it (what the GC heuristics see).
Napi::Value externalMemory(const Napi::CallbackInfo& info) {
  int64_t total = 0;
  (void)napi_adjust_external_memory(info.Env(), 0, &total);
  return Napi::Number::New(info.Env(), double(total));
}

Napi::Function TensorHandle::define(Napi::Env env) {
  return DefineClass(env, "TensorHandle",
                     {
                         InstanceMethod<&TensorHandle::shape>("shape"),
                         InstanceMethod<&TensorHandle::dtype>("dtype"),
                         InstanceMethod<&TensorHandle::device>("device"),
                         InstanceMethod<&TensorHandle::nbytes>("nbytes"),
                         InstanceMethod<&TensorHandle::zeroCopy>("zeroCopy"),
                         InstanceMethod<&TensorHandle::dispose>("dispose"),
                     });
}

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {}

TensorHandle::~TensorHandle() {
  release();
  keepAlive_.reset();
}

void TensorHandle::release() {
  if (reportedBytes_) {
    adjustExternalMemory(Env(), -reportedBytes_);
    reportedBytes_ = 0;
  }
  // keepAlive_ stays until the destructor: a job still reading wrapped memory pins this handle,
  // and the JS memory must outlive that job even after dispose().
  tensor_ = nd::Tensor();
}

// Type tag: InstanceOf can be fooled (setPrototypeOf, Symbol.hasInstance); a tag cannot, so a
// foreign object is never reinterpreted as a TensorHandle.
static const napi_type_tag kTensorHandleTag = {0x6e642d74656e736fULL, 0x722d68616e646c65ULL};

Napi::Object TensorHandle::wrap(Napi::Env env, nd::Tensor t, std::shared_ptr<Napi::Reference<Napi::Value>> keepAlive) {
  Napi::Object obj = instanceData(env).tensorHandleCtor.New({});
  if (napi_type_tag_object(env, obj, &kTensorHandleTag) != napi_ok)
    nd::fail(nd::ErrorCode::Internal, "could not tag a tensor handle");
  TensorHandle* h = Unwrap(obj);
  h->tensor_ = std::move(t);
  h->keepAlive_ = std::move(keepAlive);
  if (h->tensor_.storage && h->tensor_.storage->ownsMemory()) {
    h->reportedBytes_ = int64_t(h->tensor_.storage->bytes());
    adjustExternalMemory(env, h->reportedBytes_);
  }
  return obj;
}

TensorHandle* TensorHandle::unwrap(Napi::Value v, const char* name) {
  Napi::Env env = v.Env();
  bool tagged = false;
  if (!v.IsObject() || napi_check_object_type_tag(env, v, &kTensorHandleTag, &tagged) != napi_ok || !tagged)
    nd::fail(nd::ErrorCode::Arg, std::string("Expected Tensor for ") + name);
  return Unwrap(v.As<Napi::Object>());
}

const nd::Tensor& TensorHandle::tensor() const {
  ND_REQUIRE(!disposed_, Disposed, "Tensor was disposed");
  ND_REQUIRE(tensor_.storage != nullptr, Arg, "Expected a Tensor created by node-diffusion");
  return tensor_;
}

Napi::Value TensorHandle::shape(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value { return shapeToJs(info.Env(), tensor().shape); });
}

Napi::Value TensorHandle::dtype(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), nd::dtypeName(tensor().dtype)); });
}

Napi::Value TensorHandle::device(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), tensor().device().str()); });
}

Napi::Value TensorHandle::nbytes(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), double(tensor().nbytes())); });
}

Napi::Value TensorHandle::zeroCopy(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !disposed_ && tensor_.storage && !tensor_.storage->ownsMemory());
}

Napi::Value TensorHandle::dispose(const Napi::CallbackInfo& info) {
  disposed_ = true;
  release();
  return info.Env().Undefined();
}

}  // namespace ndjs
