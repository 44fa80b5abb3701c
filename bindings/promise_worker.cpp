#include "promise_worker.h"

namespace ndjs {

PromiseWorker::PromiseWorker(Napi::Env env, Work work, Finish finish, std::vector<Napi::Value> pin)
    : Napi::AsyncWorker(env, "node-diffusion"),
      deferred_(Napi::Promise::Deferred::New(env)),
      work_(std::move(work)),
      finish_(std::move(finish)) {
  for (auto& v : pin) pinned_.push_back(Napi::Persistent(v));
}

Napi::Promise PromiseWorker::run(Napi::Env env, Work work, Finish finish, std::vector<Napi::Value> pin) {
  auto* w = new PromiseWorker(env, std::move(work), std::move(finish), std::move(pin));
  Napi::Promise p = w->deferred_.Promise();
  w->Queue();  // the worker deletes itself after OnOK/OnError
  return p;
}

void PromiseWorker::Execute() {
  try {
    work_();
  } catch (...) {
    failure_ = currentFailure();
    // AsyncWorker treats an empty message as success; a failure must never resolve.
    SetError(failure_.message.empty() ? "unknown failure" : failure_.message);
  }
}

// Settling can fail when the environment is shutting down (worker.terminate(), process.exit() in a
// worker): JS cannot run any more, so there is nobody to tell. Swallow it instead of letting an
// exception escape into N-API, which would terminate the whole process.
void PromiseWorker::OnOK() {
  try {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    try {
      deferred_.Resolve(finish_ ? finish_(env) : env.Undefined());
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      deferred_.Reject(makeError(env, currentFailure()).Value());
    }
  } catch (...) {
  }
}

void PromiseWorker::OnError(const Napi::Error&) {
  try {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    deferred_.Reject(makeError(env, failure_).Value());
  } catch (...) {
  }
}

}  // namespace ndjs
