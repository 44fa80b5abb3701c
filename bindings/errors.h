// Conversion of native failures into JS errors with a `code` (lib/errors.ts turns them into the
// DiffusionError subclasses and grafts the JS call-site stack onto them).
#pragma once
#include <napi.h>

#include <string>

namespace ndjs {

struct NativeFailure {
  std::string code = "ERR_ND_INTERNAL";
  std::string message;
};

// Runs inside a catch block: classifies the in-flight exception.
NativeFailure currentFailure();
Napi::Error makeError(Napi::Env env, const NativeFailure& failure);
[[noreturn]] void throwFailure(Napi::Env env, const NativeFailure& failure);

// Wraps a synchronous binding body: nd::Error and std exceptions become JS errors with a code.
template <typename Fn>
auto guard(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error& e) {
    // A failed N-API call (a value of the wrong kind slipped past the checks) becomes ERR_ND_ARG.
    if (!e.Value().IsObject() || !e.Value().As<Napi::Object>().Has("code")) {
      Napi::Error copy = e;
      copy.Set("code", Napi::String::New(env, "ERR_ND_ARG"));
      throw copy;
    }
    throw;
  } catch (...) {
    throwFailure(env, currentFailure());
  }
}

}  // namespace ndjs
