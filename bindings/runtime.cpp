// Threads, devices, memory statistics and the backend report.
#include "bindings.h"
#include "convert.h"
#include "core/cpu_features.h"
#include "core/cuda_backend.h"
#include "core/error.h"
#include "core/runtime.h"
#include "errors.h"

#ifndef ND_VERSION
#define ND_VERSION "0.0.0"
#endif

namespace ndjs {

namespace {

Napi::Object statsToJs(Napi::Env env, const nd::AllocatorStats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("bytesInUse", double(s.bytesInUse));
  o.Set("peakBytesInUse", double(s.peakBytesInUse));
  o.Set("bytesCached", double(s.bytesCached));
  o.Set("allocations", double(s.allocations));
  o.Set("frees", double(s.frees));
  o.Set("cacheHits", double(s.cacheHits));
  o.Set("systemAllocations", double(s.systemAllocations));
  o.Set("memoryLimit", double(s.memoryLimit));
  return o;
}

Napi::Value setThreads(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    nd::Runtime::instance().setThreads(int(argInt(info, 0, "threads", 1, 1024)));
    return info.Env().Undefined();
  });
}

Napi::Value getThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), nd::Runtime::instance().threads());
}

// configureVirtualCpus(count, threadsPerDevice, memoryLimitBytes)
Napi::Value configureVirtualCpus(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    nd::VirtualCpuConfig c;
    c.count = int(argInt(info, 0, "virtualCpus", 0, 256));
    c.threadsPerDevice = int(argInt(info, 1, "threadsPerDevice", 0, 1024));
    c.memoryLimit = uint64_t(argInt(info, 2, "memoryLimit", 0, int64_t(1) << 53));
    nd::Runtime::instance().configureVirtualCpus(c);
    return info.Env().Undefined();
  });
}

Napi::Value listDevices(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    auto devices = nd::Runtime::instance().listDevices();
    Napi::Array out = Napi::Array::New(env, devices.size());
    for (size_t i = 0; i < devices.size(); ++i) {
      const auto& d = devices[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("id", d.device.str());
      o.Set("type", d.device.isCpu() ? "cpu" : "cuda");
      o.Set("name", d.name);
      o.Set("threads", d.threads);
      Napi::Array cpus = Napi::Array::New(env, d.cpuSet.size());
      for (size_t k = 0; k < d.cpuSet.size(); ++k) cpus.Set(uint32_t(k), d.cpuSet[k]);
      o.Set("cpuSet", cpus);
      o.Set("totalMemory", double(d.totalMemory));
      o.Set("memory", statsToJs(env, d.memory));
      out.Set(uint32_t(i), o);
    }
    return out;
  });
}

Napi::Value memoryStats(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    auto ctx = nd::Runtime::instance().context(argDevice(info, 0, "device"));
    return statsToJs(info.Env(), ctx->allocator().stats());
  });
}

Napi::Value emptyCache(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    nd::Runtime::instance().context(argDevice(info, 0, "device"))->allocator().emptyCache();
    return info.Env().Undefined();
  });
}

Napi::Value setMemoryLimit(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    auto ctx = nd::Runtime::instance().context(argDevice(info, 0, "device"));
    ctx->allocator().setMemoryLimit(uint64_t(argInt(info, 1, "memoryLimit", 0, int64_t(1) << 53)));
    return info.Env().Undefined();
  });
}

Napi::Value setCpuIsa(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    std::string name = argString(info, 0, "isa");
    if (name == "baseline") nd::setActiveIsa(nd::CpuIsa::Baseline);
    else if (name == "avx2") nd::setActiveIsa(nd::CpuIsa::Avx2);
    else nd::fail(nd::ErrorCode::Arg, "Expected 'baseline' or 'avx2' for isa but received '" + name + "'");
    return info.Env().Undefined();
  });
}

Napi::Object probeToJs(Napi::Env env, const nd::cuda::ProbeResult& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("compiled", p.compiled);
  o.Set("runtimeVersion", p.runtimeVersion);
  o.Set("driverVersion", p.driverVersion);
  o.Set("deviceCount", p.deviceCount);
  o.Set("error", p.error);
  return o;
}

Napi::Value disableCuda(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    nd::cuda::disable(argString(info, 0, "reason"));
    return info.Env().Undefined();
  });
}

// The CUDA state alone, for the loader's child-process check.
Napi::Value probeCuda(const Napi::CallbackInfo& info) { return probeToJs(info.Env(), nd::cuda::probe()); }

Napi::Value nativeInfo(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const auto& f = nd::cpuFeatures();
    Napi::Object cpu = Napi::Object::New(env);
    cpu.Set("vendor", f.vendor);
    cpu.Set("brand", f.brand);
    Napi::Object feats = Napi::Object::New(env);
    feats.Set("sse2", f.sse2);
    feats.Set("sse4.1", f.sse41);
    feats.Set("sse4.2", f.sse42);
    feats.Set("avx", f.avx && f.osAvx);
    feats.Set("avx2", f.avx2 && f.osAvx);
    feats.Set("fma", f.fma && f.osAvx);
    feats.Set("f16c", f.f16c && f.osAvx);
    feats.Set("avx512f", f.avx512f);
    feats.Set("avx512bw", f.avx512bw);
    feats.Set("avx512bf16", f.avx512bf16);
    cpu.Set("features", feats);
    cpu.Set("isa", nd::isaName(nd::activeIsa()));
    cpu.Set("logicalCpus", nd::availableCpus());
    Napi::Object o = Napi::Object::New(env);
    o.Set("version", ND_VERSION);
    o.Set("cpu", cpu);
    o.Set("cuda", probeToJs(env, nd::cuda::probe()));
    o.Set("threads", nd::Runtime::instance().threads());
    return o;
  });
}

}  // namespace

void registerRuntime(Napi::Env env, Napi::Object exports) {
  exports.Set("setThreads", Napi::Function::New(env, setThreads, "setThreads"));
  exports.Set("getThreads", Napi::Function::New(env, getThreads, "getThreads"));
  exports.Set("configureVirtualCpus", Napi::Function::New(env, configureVirtualCpus, "configureVirtualCpus"));
  exports.Set("listDevices", Napi::Function::New(env, listDevices, "listDevices"));
  exports.Set("memoryStats", Napi::Function::New(env, memoryStats, "memoryStats"));
  exports.Set("emptyCache", Napi::Function::New(env, emptyCache, "emptyCache"));
  exports.Set("setMemoryLimit", Napi::Function::New(env, setMemoryLimit, "setMemoryLimit"));
  exports.Set("setCpuIsa", Napi::Function::New(env, setCpuIsa, "setCpuIsa"));
  exports.Set("probeCuda", Napi::Function::New(env, probeCuda, "probeCuda"));
  exports.Set("disableCuda", Napi::Function::New(env, disableCuda, "disableCuda"));
  exports.Set("nativeInfo", Napi::Function::New(env, nativeInfo, "nativeInfo"));
}

}  // namespace ndjs
