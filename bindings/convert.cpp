#include "convert.h"

#include <cmath>

#include "core/error.h"

namespace ndjs {

namespace {
[[noreturn]] void badArg(const char* name, const std::string& expected, size_t i) {
  nd::fail(nd::ErrorCode::Arg, "Expected " + expected + " for " + name + " (argument " + std::to_string(i) + ")");
}
}  // namespace

std::string argString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString()) badArg(name, "string", i);
  return info[i].As<Napi::String>().Utf8Value();
}

double argNumber(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber()) badArg(name, "number", i);
  return info[i].As<Napi::Number>().DoubleValue();
}

int64_t argInt(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo, int64_t hi) {
  double v = argNumber(info, i, name);
  if (!std::isfinite(v) || v != std::floor(v) || v < double(lo) || v > double(hi))
    badArg(name, "integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", i);
  return int64_t(v);
}

bool argBool(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsBoolean()) badArg(name, "boolean", i);
  return info[i].As<Napi::Boolean>().Value();
}

nd::Shape argShape(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsArray()) badArg(name, "array of non-negative integers", i);
  auto arr = info[i].As<Napi::Array>();
  if (arr.Length() > 16) badArg(name, "at most 16 dimensions", i);
  nd::Shape shape;
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value v = arr.Get(k);
    if (!v.IsNumber()) badArg(name, "array of non-negative integers", i);
    double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d < 0 || d != std::floor(d) || d > 9007199254740991.0)
      badArg(name, "array of non-negative integers", i);
    shape.push_back(int64_t(d));
  }
  (void)nd::shapeNumel(shape);  // overflow check
  return shape;
}

nd::DType argDType(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return nd::parseDType(argString(info, i, name));
}

nd::Device argDevice(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return nd::Device::parse(argString(info, i, name));
}

Napi::Object argObject(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsObject()) badArg(name, "object", i);
  return info[i].As<Napi::Object>();
}

Napi::Array shapeToJs(Napi::Env env, const nd::Shape& shape) {
  Napi::Array a = Napi::Array::New(env, shape.size());
  for (size_t k = 0; k < shape.size(); ++k) a.Set(uint32_t(k), Napi::Number::New(env, double(shape[k])));
  return a;
}

}  // namespace ndjs
