// Model bindings: loading a DiT / DiT-MoE (off the main thread), its forward pass as a Promise, and
// the model denoiser handle sample() runs natively (CFG, timestep experts, routing records).
#include "models.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "bindings.h"
#include "convert.h"
#include "core/error.h"
#include "core/runtime.h"
#include "core/tensor.h"
#include "errors.h"
#include "instance.h"
#include "kernels/cpu/gemm.h"
#include "models/dit_on_device.h"
#include "solvers/step_pass_device.h"
#include "promise_worker.h"
#include "tensor_handle.h"

namespace ndjs {
namespace {

std::shared_ptr<nd::ThreadPool> modelPool() { return nd::Runtime::instance().context(nd::Device{})->pool(); }

Napi::Object configToJs(Napi::Env env, const nd::models::DitConfig& c, int64_t weightBytes) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("family", c.family);
  o.Set("layout", nd::models::ditLayoutName(c.layout));
  o.Set("variant", c.variant);
  o.Set("depth", double(c.depth));
  o.Set("hidden", double(c.hidden));
  o.Set("heads", double(c.heads));
  o.Set("headDim", double(c.hidden / c.heads));
  o.Set("patch", double(c.patch));
  o.Set("inChannels", double(c.inChannels));
  o.Set("outChannels", double(c.outChannels));
  o.Set("numClasses", double(c.numClasses));
  o.Set("nullClass", double(c.numClasses));
  o.Set("learnSigma", c.learnSigma);
  o.Set("freqDim", double(c.freqDim));
  o.Set("freqShift", c.freqShift);
  o.Set("normEps", double(c.normEps));
  o.Set("mlpNormEps", double(c.mlpNormEps));
  o.Set("guidedChannels", c.guidedChannels);
  o.Set("timeInput", c.timeInput);
  if (c.family == "dit-moe") {
    o.Set("experts", double(c.experts));
    o.Set("topK", double(c.topK));
    o.Set("expertHidden", double(c.expertHidden));
    o.Set("sharedHidden", double(c.sharedHidden));
    o.Set("qkNorm", c.qkNorm);
    o.Set("capacityFactor", c.capacityFactor);
  } else {
    o.Set("mlpHidden", double(c.mlpHidden));
  }
  if (c.trainedGrid > 0) o.Set("sampleSize", double(c.trainedGrid * c.patch));
  o.Set("weightDType", nd::dtypeName(c.weightDType));
  o.Set("parameters", double(c.parameters));
  o.Set("weightBytes", double(weightBytes));
  return o;
}

Napi::Array routingToJs(Napi::Env env, const nd::models::DitRouting& layers, bool withChoices) {
  Napi::Array arr = Napi::Array::New(env, layers.size());
  for (size_t l = 0; l < layers.size(); ++l) {
    const nd::moe::MoeLayerStats& s = layers[l];
    Napi::Object o = Napi::Object::New(env);
    o.Set("layer", double(l));
    Napi::Array tpe = Napi::Array::New(env, s.tokensPerExpert.size());
    for (size_t e = 0; e < s.tokensPerExpert.size(); ++e) tpe.Set(uint32_t(e), double(s.tokensPerExpert[e]));
    o.Set("tokensPerExpert", tpe);
    o.Set("dropped", double(s.dropped));
    o.Set("entropy", s.entropy);
    if (withChoices) {
      Napi::Int32Array ch = Napi::Int32Array::New(env, s.choices.size());
      std::memcpy(ch.Data(), s.choices.data(), s.choices.size() * sizeof(int32_t));
      o.Set("choices", ch);
      Napi::Uint8Array kept = Napi::Uint8Array::New(env, s.kept.size());
      std::memcpy(kept.Data(), s.kept.data(), s.kept.size());
      o.Set("kept", kept);
    }
    arr.Set(uint32_t(l), o);
  }
  return arr;
}

nd::models::DitOverrides readOverrides(Napi::Object o) {
  nd::models::DitOverrides ov;
  auto num = [&](const char* k) -> std::optional<double> {
    if (!o.Has(k) || o.Get(k).IsUndefined()) return std::nullopt;
    ND_REQUIRE(o.Get(k).IsNumber(), Arg, std::string("Expected a number for ") + k);
    return o.Get(k).As<Napi::Number>().DoubleValue();
  };
  auto str = [&](const char* k) -> std::optional<std::string> {
    if (!o.Has(k) || o.Get(k).IsUndefined()) return std::nullopt;
    ND_REQUIRE(o.Get(k).IsString(), Arg, std::string("Expected a string for ") + k);
    return o.Get(k).As<Napi::String>().Utf8Value();
  };
  if (auto v = num("heads")) ov.heads = int64_t(*v);
  if (auto v = num("topK")) ov.topK = int64_t(*v);
  if (auto v = num("capacityFactor")) ov.capacityFactor = *v;
  ov.variant = str("variant");
  ov.timeInput = str("timeInput");
  return ov;
}

class ModelHandle : public Napi::ObjectWrap<ModelHandle> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "ModelHandle",
                       {InstanceMethod<&ModelHandle::config>("config"),
                        InstanceMethod<&ModelHandle::forward>("forward"),
                        InstanceMethod<&ModelHandle::activationBytes>("activationBytes"),
                        InstanceMethod<&ModelHandle::toDevice>("toDevice"),
                        InstanceMethod<&ModelHandle::device>("device"),
                        InstanceMethod<&ModelHandle::dispose>("dispose")});
  }
  explicit ModelHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelHandle>(info) {}
  std::shared_ptr<const nd::models::DitModel> model;
  std::shared_ptr<nd::models::DitOnDevice> onDevice;  // set for a model uploaded to a CUDA device

  static ModelHandle* unwrap(Napi::Value v, const char* name) {
    ND_REQUIRE(v.IsObject() && v.As<Napi::Object>().InstanceOf(instanceData(v.Env()).modelHandleCtor.Value()), Arg,
               std::string("Expected a loaded model for ") + name);
    return Napi::ObjectWrap<ModelHandle>::Unwrap(v.As<Napi::Object>());
  }
  std::shared_ptr<const nd::models::DitModel> live() const {
    ND_REQUIRE(model != nullptr, Disposed, "The model was disposed");
    return model;
  }

 private:
  Napi::Value config(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto m = live();
      Napi::Object o = configToJs(info.Env(), m->config(), m->weightBytes());
      if (onDevice) o.Set("computeDType", nd::dtypeName(onDevice->computeType()));
      return o;
    });
  }
  Napi::Value device(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), onDevice ? onDevice->device().str() : std::string("cpu"));
  }
  // toDevice(device: string) -> Promise<ModelHandle>: the same weights uploaded to a CUDA device
  // (the upload runs off the main thread).
  Napi::Value toDevice(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto m = live();
      nd::Device dev = nd::Device::parse(argString(info, 0, "device"));
      auto result = std::make_shared<std::shared_ptr<nd::models::DitOnDevice>>();
      return PromiseWorker::run(
          info.Env(), [m, dev, result] { *result = nd::models::DitOnDevice::create(m, dev); },
          [m, result](Napi::Env env) -> Napi::Value {
            Napi::Object h = instanceData(env).modelHandleCtor.New({});
            ModelHandle* mh = Napi::ObjectWrap<ModelHandle>::Unwrap(h);
            mh->model = m;
            mh->onDevice = *result;
            return h;
          });
    });
  }
  Napi::Value activationBytes(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto m = live();
      int64_t n = argInt(info, 0, "batch", 1, int64_t(1) << 20), h = argInt(info, 1, "height", 1, 1 << 20),
              w = argInt(info, 2, "width", 1, 1 << 20);
      return Napi::Number::New(info.Env(), double(m->activationBytes(n, h, w)));
    });
  }
  // forward(x f32 [N,C,H,W], t f32|f64 [N], y i32|i64 [N], routing: 0 none | 1 stats | 2 stats + choices)
  //   -> Promise<{ out: TensorHandle, routing?: [...] }>
  Napi::Value forward(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto m = live();
      const nd::models::DitConfig& c = m->config();
      nd::Tensor x = TensorHandle::unwrap(info[0], "x")->tensor();
      nd::Tensor t = TensorHandle::unwrap(info[1], "t")->tensor();
      nd::Tensor y = TensorHandle::unwrap(info[2], "y")->tensor();
      int64_t mode = argInt(info, 3, "routing", 0, 2);
      ND_REQUIRE(t.device().isCpu() && y.device().isCpu(), Device, "forward() takes t and y as CPU tensors");
      ND_REQUIRE(x.device().isCpu() || (onDevice && x.device() == onDevice->device()), Device,
                 "x is on " + x.device().str() + "; the model runs on " + (onDevice ? onDevice->device().str() : std::string("cpu")));
      ND_REQUIRE(x.dtype == nd::DType::F32, DType, std::string("Expected f32 for x but received ") + nd::dtypeName(x.dtype));
      ND_REQUIRE(x.shape.size() == 4, Shape, "Expected x of shape [N, C, H, W]");
      const int64_t n = x.shape[0];
      ND_REQUIRE(x.shape[1] == c.inChannels, Shape,
                 "The model expects " + std::to_string(c.inChannels) + " channels; x has " + std::to_string(x.shape[1]));
      ND_REQUIRE(t.shape == nd::Shape{n}, Shape, "Expected t of shape [" + std::to_string(n) + "]");
      ND_REQUIRE(y.shape == nd::Shape{n}, Shape, "Expected y of shape [" + std::to_string(n) + "]");
      ND_REQUIRE(t.dtype == nd::DType::F32 || t.dtype == nd::DType::F64, DType, "Expected f32 or f64 for t");
      ND_REQUIRE(y.dtype == nd::DType::I32 || y.dtype == nd::DType::I64, DType, "Expected i32 or i64 class labels for y");
      auto ts = std::make_shared<std::vector<float>>(size_t(n));
      auto ys = std::make_shared<std::vector<int64_t>>(size_t(n));
      for (int64_t i = 0; i < n; ++i) {
        (*ts)[size_t(i)] = t.dtype == nd::DType::F32 ? t.ptr<float>()[i] : float(t.ptr<double>()[i]);
        (*ys)[size_t(i)] = y.dtype == nd::DType::I64 ? y.ptr<int64_t>()[i] : int64_t(y.ptr<int32_t>()[i]);
      }
      const int64_t h = x.shape[2], w = x.shape[3];
      // CPU models write into a tensor made here; device models return theirs from the forward.
      auto out = std::make_shared<nd::Tensor>(
          onDevice ? nd::Tensor() : nd::Tensor::empty({n, c.outChannels, h, w}, nd::DType::F32, nd::Device{}));
      auto routing = std::make_shared<nd::models::DitRouting>();
      auto pool = modelPool();
      auto dev = onDevice;
      return PromiseWorker::run(
          info.Env(),
          [m, dev, x, ts, ys, out, routing, mode, pool, n, h, w] {
            nd::models::DitRouting* r = mode > 0 ? routing.get() : nullptr;
            if (dev) *out = dev->forward(x, ts->data(), ys->data(), r);
            else m->forward(x.ptr<float>(), n, h, w, ts->data(), ys->data(), out->ptr<float>(), pool.get(), r);
          },
          [out, routing, mode](Napi::Env env) -> Napi::Value {
            Napi::Object r = Napi::Object::New(env);
            r.Set("out", TensorHandle::wrap(env, *out));
            if (mode > 0) r.Set("routing", routingToJs(env, *routing, mode > 1));
            return r;
          },
          {info[0], Value()});
    });
  }
  Napi::Value dispose(const Napi::CallbackInfo& info) {
    model.reset();
    onDevice.reset();
    return info.Env().Undefined();
  }
};

// loadModel(path, layout, overrides) -> Promise<ModelHandle>
Napi::Value loadModel(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    std::string path = argString(info, 0, "path");
    std::string layout = argString(info, 1, "layout");
    nd::models::DitOverrides ov = readOverrides(argObject(info, 2, "options"));
    auto result = std::make_shared<std::shared_ptr<nd::models::DitModel>>();
    return PromiseWorker::run(
        info.Env(), [path, layout, ov, result] { *result = nd::models::DitModel::load(path, layout, ov); },
        [result](Napi::Env env) -> Napi::Value {
          Napi::Object h = instanceData(env).modelHandleCtor.New({});
          Napi::ObjectWrap<ModelHandle>::Unwrap(h)->model = *result;
          return h;
        });
  });
}

class ModelDenoiserHandle : public Napi::ObjectWrap<ModelDenoiserHandle> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "ModelDenoiserHandle",
                       {InstanceMethod<&ModelDenoiserHandle::dim>("dim"),
                        InstanceMethod<&ModelDenoiserHandle::routing>("routing")});
  }
  explicit ModelDenoiserHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelDenoiserHandle>(info) {}
  ModelDenoiserRef ref;

 private:
  Napi::Value dim(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(ref.denoiser->dim())); }
  // The routing records of the last run: [{ evaluation, t, modelTimestep, expert, layers: [...] }].
  Napi::Value routing(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      const auto& recs = *ref.routing;
      Napi::Array arr = Napi::Array::New(env, recs.size());
      for (size_t i = 0; i < recs.size(); ++i) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("evaluation", double(recs[i].evaluation));
        o.Set("t", recs[i].t);
        o.Set("modelTimestep", recs[i].modelT);
        o.Set("expert", double(recs[i].expert));
        o.Set("layers", routingToJs(env, recs[i].layers, false));
        arr.Set(uint32_t(i), o);
      }
      return arr;
    });
  }
};

// createModelDenoiser(experts: [{ model, from, to }], labels: number[], guidance: { scale, guidedChannels,
//   intervalFrom, intervalTo }, latent: [C, H, W], recordRouting: boolean) -> ModelDenoiserHandle
Napi::Value createModelDenoiser(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    ND_REQUIRE(info.Length() > 0 && info[0].IsArray(), Arg, "Expected an array of experts");
    Napi::Array ex = info[0].As<Napi::Array>();
    std::vector<nd::models::TimestepExpert> experts;
    for (uint32_t i = 0; i < ex.Length(); ++i) {
      Napi::Object e = ex.Get(i).As<Napi::Object>();
      nd::models::TimestepExpert te;
      ModelHandle* mh = ModelHandle::unwrap(e.Get("model"), "model");
      te.model = mh->live();
      te.onDevice = mh->onDevice;
      te.from = e.Get("from").As<Napi::Number>().DoubleValue();
      te.to = e.Get("to").As<Napi::Number>().DoubleValue();
      experts.push_back(std::move(te));
    }
    ND_REQUIRE(info.Length() > 1 && info[1].IsArray(), Arg, "Expected an array of class labels");
    Napi::Array lab = info[1].As<Napi::Array>();
    std::vector<int64_t> labels;
    for (uint32_t i = 0; i < lab.Length(); ++i) labels.push_back(int64_t(lab.Get(i).As<Napi::Number>().DoubleValue()));
    Napi::Object g = argObject(info, 2, "guidance");
    nd::models::GuidanceOptions go;
    go.scale = g.Get("scale").As<Napi::Number>().DoubleValue();
    go.guidedChannels = int(g.Get("guidedChannels").As<Napi::Number>().Int32Value());
    go.intervalFrom = g.Get("intervalFrom").As<Napi::Number>().DoubleValue();
    go.intervalTo = g.Get("intervalTo").As<Napi::Number>().DoubleValue();
    nd::Shape lat = argShape(info, 3, "latent");
    ND_REQUIRE(lat.size() == 3, Shape, "Expected the latent shape [C, H, W]");
    bool record = argBool(info, 4, "recordRouting");
    ModelDenoiserRef ref;
    ref.denoiser = std::make_shared<nd::models::DitDenoiser>(std::move(experts), std::move(labels), go, lat[0], lat[1], lat[2]);
    ref.routing = std::make_shared<std::vector<nd::models::RoutingRecord>>();
    ref.record = record;
    Napi::Object h = instanceData(info.Env()).modelDenoiserHandleCtor.New({});
    Napi::ObjectWrap<ModelDenoiserHandle>::Unwrap(h)->ref = ref;
    return h;
  });
}

// gemmBenchmark(m, n, k, dtype, reps) -> Promise<number[]>: seconds of each of `reps` calls of the
// model GEMM (y = x Wᵀ, W in dtype) on the CPU pool: the machine's f32 GEMM rate, which model
// benchmarks report their FLOP rate against (measured in the same run).
Napi::Value gemmBenchmark(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    int64_t m = argInt(info, 0, "m", 1, 1 << 16), n = argInt(info, 1, "n", 1, 1 << 16), k = argInt(info, 2, "k", 1, 1 << 16);
    nd::DType dt = argDType(info, 3, "dtype");
    ND_REQUIRE(dt == nd::DType::F32 || dt == nd::DType::F16 || dt == nd::DType::BF16, DType, "Expected f32, f16 or bf16 weights");
    int64_t reps = argInt(info, 4, "reps", 1, 1000);
    auto times = std::make_shared<std::vector<double>>();
    auto pool = modelPool();
    return PromiseWorker::run(
        info.Env(),
        [m, n, k, dt, reps, times, pool] {
          std::vector<float> x(static_cast<size_t>(m * k)), y(static_cast<size_t>(m * n));
          std::vector<uint8_t> w(static_cast<size_t>(n * k) * nd::dtypeSize(dt));
          for (size_t i = 0; i < x.size(); ++i) x[i] = float((i * 7919) % 997) / 997.0f - 0.5f;
          for (size_t i = 0; i < w.size(); i += 2) w[i] = uint8_t(i * 31), w[i + 1] = dt == nd::DType::F32 ? uint8_t(i) : uint8_t(0x3c);
          if (dt == nd::DType::F32)
            for (size_t i = 0; i < size_t(n * k); ++i) reinterpret_cast<float*>(w.data())[i] = float((i * 104729) % 1009) / 1009.0f - 0.5f;
          nd::GemmWeight gw;
          gw.data = w.data();
          gw.dtype = dt;
          gw.n = n;
          gw.k = k;
          gw.ld = k;
          nd::linearCpu(x.data(), m, k, gw, nullptr, y.data(), n, false, nd::GemmEpilogue::None, pool.get());  // warm-up
          for (int64_t r = 0; r < reps; ++r) {
            auto t0 = std::chrono::steady_clock::now();
            nd::linearCpu(x.data(), m, k, gw, nullptr, y.data(), n, false, nd::GemmEpilogue::None, pool.get());
            times->push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
          }
        },
        [times](Napi::Env env) -> Napi::Value {
          Napi::Array a = Napi::Array::New(env, times->size());
          for (size_t i = 0; i < times->size(); ++i) a.Set(uint32_t(i), (*times)[i]);
          return a;
        });
  });
}

// cudaStepPassBenchmark(device, n, reps) -> Promise<{ stepSeconds, copySeconds, stepBytes, copyBytes }>:
// the fused solver step on a GPU against a device copy, timed side by side (bench/cuda.mjs).
Napi::Value cudaStepPassBenchmark(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const int device = int(argInt(info, 0, "device", 0, 1023));
    const int64_t n = argInt(info, 1, "n", 1, int64_t(1) << 32);
    const int reps = int(argInt(info, 2, "reps", 1, 1000));
    auto result = std::make_shared<nd::StepPassDeviceTiming>();
    return PromiseWorker::run(
        info.Env(), [device, n, reps, result] { *result = nd::benchmarkStepPassCuda(device, n, reps); },
        [result](Napi::Env env) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          o.Set("stepSeconds", result->stepSeconds);
          o.Set("copySeconds", result->copySeconds);
          o.Set("stepBytes", double(result->stepBytes));
          o.Set("copyBytes", double(result->copyBytes));
          return o;
        });
  });
}

}  // namespace

std::optional<ModelDenoiserRef> unwrapModelDenoiser(Napi::Value v) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(instanceData(v.Env()).modelDenoiserHandleCtor.Value()))
    return std::nullopt;
  return Napi::ObjectWrap<ModelDenoiserHandle>::Unwrap(v.As<Napi::Object>())->ref;
}

void registerModels(Napi::Env env, Napi::Object exports) {
  instanceData(env).modelHandleCtor = Napi::Persistent(ModelHandle::define(env));
  instanceData(env).modelDenoiserHandleCtor = Napi::Persistent(ModelDenoiserHandle::define(env));
  exports.Set("loadModel", Napi::Function::New(env, loadModel, "loadModel"));
  exports.Set("gemmBenchmark", Napi::Function::New(env, gemmBenchmark, "gemmBenchmark"));
  exports.Set("cudaStepPassBenchmark", Napi::Function::New(env, cudaStepPassBenchmark, "cudaStepPassBenchmark"));
  exports.Set("createModelDenoiser", Napi::Function::New(env, createModelDenoiser, "createModelDenoiser"));
}

}  // namespace ndjs
