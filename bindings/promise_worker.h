// PromiseWorker: runs a native job on the libuv thread pool and settles a Promise on the JS thread.
// The job never touches JS; inputs are plain C++ values captured on the main thread, and the JS
// objects whose memory the job reads or writes are pinned with references until it settles.
#pragma once
#include <napi.h>

#include <functional>
#include <vector>

#include "errors.h"

namespace ndjs {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Finish = std::function<Napi::Value(Napi::Env)>;

  // Queues the job and returns its promise. `pin` lists JS values to keep alive while it runs.
  static Napi::Promise run(Napi::Env env, Work work, Finish finish, std::vector<Napi::Value> pin = {});

 protected:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;

 private:
  PromiseWorker(Napi::Env env, Work work, Finish finish, std::vector<Napi::Value> pin);
  Napi::Promise::Deferred deferred_;
  Work work_;
  Finish finish_;
  NativeFailure failure_;
  std::vector<Napi::Reference<Napi::Value>> pinned_;
};

}  // namespace ndjs
