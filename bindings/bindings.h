// Each bindings/*.cpp file registers its exports through one of these.
#pragma once
#include <napi.h>

namespace ndjs {
void registerTensorOps(Napi::Env env, Napi::Object exports);
void registerRuntime(Napi::Env env, Napi::Object exports);
void registerSafetensors(Napi::Env env, Napi::Object exports);
void registerSolvers(Napi::Env env, Napi::Object exports);
void registerMoe(Napi::Env env, Napi::Object exports);
void registerModels(Napi::Env env, Napi::Object exports);
}  // namespace ndjs
