// Per-environment state (one per Node main thread or worker_thread that loads the addon).
#pragma once
#include <napi.h>

namespace ndjs {

struct InstanceData {
  Napi::FunctionReference tensorHandleCtor;
  Napi::FunctionReference safetensorsHandleCtor;
  Napi::FunctionReference scheduleHandleCtor;
  Napi::FunctionReference denoiserHandleCtor;
  Napi::FunctionReference samplerHandleCtor;
  Napi::FunctionReference transportHandleCtor;
  Napi::FunctionReference modelHandleCtor;
  Napi::FunctionReference modelDenoiserHandleCtor;
};

InstanceData& instanceData(Napi::Env env);

}  // namespace ndjs
