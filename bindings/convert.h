// Argument conversion from JS values to core types. lib/ validates first with friendly messages;
// these checks are the second line, so a bypassed TS layer still gets ERR_ND_ARG, never a crash.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"

namespace ndjs {

std::string argString(const Napi::CallbackInfo& info, size_t i, const char* name);
double argNumber(const Napi::CallbackInfo& info, size_t i, const char* name);
int64_t argInt(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo, int64_t hi);
bool argBool(const Napi::CallbackInfo& info, size_t i, const char* name);
nd::Shape argShape(const Napi::CallbackInfo& info, size_t i, const char* name);
nd::DType argDType(const Napi::CallbackInfo& info, size_t i, const char* name);
nd::Device argDevice(const Napi::CallbackInfo& info, size_t i, const char* name);
Napi::Object argObject(const Napi::CallbackInfo& info, size_t i, const char* name);

Napi::Array shapeToJs(Napi::Env env, const nd::Shape& shape);

}  // namespace ndjs
