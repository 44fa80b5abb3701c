#include "errors.h"

#include <new>
#include <stdexcept>

#include "core/error.h"

namespace ndjs {

NativeFailure currentFailure() {
  NativeFailure f;
  try {
    throw;
  } catch (const nd::Error& e) {
    f.code = nd::errorCodeName(e.code());
    f.message = e.what();
  } catch (const std::bad_alloc&) {
    f.code = "ERR_ND_OOM";
    f.message = "Out of host memory";
  } catch (const std::exception& e) {
    f.message = std::string("Internal error: ") + e.what();
  } catch (...) {
    f.message = "Internal error: unknown exception";
  }
  return f;
}

Napi::Error makeError(Napi::Env env, const NativeFailure& failure) {
  Napi::Error err = Napi::Error::New(env, failure.message);
  err.Set("code", Napi::String::New(env, failure.code));
  return err;
}

void throwFailure(Napi::Env env, const NativeFailure& failure) { throw makeError(env, failure); }

}  // namespace ndjs
