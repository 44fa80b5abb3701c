// Solvers: schedules, analytic denoisers and samplers as JS objects. lib/solvers.ts validates and
// normalises arguments first; the checks here are the second line (ERR_ND_ARG / ERR_ND_SHAPE).
// A sampler is single-threaded state: while an async call (stepAsync, run) is in flight it is
// marked busy and any other call on it throws instead of racing.
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <variant>

#include "bindings.h"
#include "models.h"
#include "convert.h"
#include "core/error.h"
#include "core/runtime.h"
#include "core/tensor.h"
#include "errors.h"
#include "instance.h"
#include "models/analytic_denoisers.h"
#include "models/gaussian_transport.h"
#include "promise_worker.h"
#include "solvers/reference_ode.h"
#include "solvers/sampler.h"
#include "solvers/schedule.h"
#include "solvers/timesteps.h"
#include "tensor_handle.h"

namespace ndjs {
namespace {

using nd::ErrorCode;
namespace sv = nd::solvers;
namespace md = nd::models;

// ---- property helpers --------------------------------------------------------------------------------
bool has(const Napi::Object& o, const char* key) {
  return o.Has(key) && !o.Get(key).IsUndefined() && !o.Get(key).IsNull();
}
double numberProp(const Napi::Object& o, const char* key, double def) {
  if (!has(o, key)) return def;
  Napi::Value v = o.Get(key);
  ND_REQUIRE(v.IsNumber(), Arg, std::string("Expected a number for ") + key);
  return v.As<Napi::Number>().DoubleValue();
}
std::vector<double> doublesProp(const Napi::Object& o, const char* key, bool required = true) {
  if (!has(o, key)) {
    ND_REQUIRE(!required, Arg, std::string("Expected a Float64Array for ") + key);
    return {};
  }
  Napi::Value v = o.Get(key);
  ND_REQUIRE(v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array, Arg,
             std::string("Expected a Float64Array for ") + key);
  auto a = v.As<Napi::Float64Array>();
  return std::vector<double>(a.Data(), a.Data() + a.ElementLength());
}
std::vector<double> doublesArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  ND_REQUIRE(info.Length() > i && info[i].IsTypedArray() &&
                 info[i].As<Napi::TypedArray>().TypedArrayType() == napi_float64_array,
             Arg, std::string("Expected a Float64Array for ") + name);
  auto a = info[i].As<Napi::Float64Array>();
  return std::vector<double>(a.Data(), a.Data() + a.ElementLength());
}
Napi::Float64Array toF64(Napi::Env env, const std::vector<double>& v) {
  auto a = Napi::Float64Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(double));
  return a;
}
std::shared_ptr<nd::ThreadPool> cpuPool() { return nd::Runtime::instance().context(nd::Device{})->pool(); }

// ---- schedules ---------------------------------------------------------------------------------------
class ScheduleHandle : public Napi::ObjectWrap<ScheduleHandle> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "ScheduleHandle",
                       {InstanceMethod<&ScheduleHandle::info>("info"),
                        InstanceMethod<&ScheduleHandle::evaluate>("evaluate"),
                        InstanceMethod<&ScheduleHandle::tFromLambda>("tFromLambda"),
                        InstanceMethod<&ScheduleHandle::timesteps>("timesteps")});
  }
  explicit ScheduleHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ScheduleHandle>(info) {}
  std::shared_ptr<const sv::Schedule> schedule;

  static ScheduleHandle* unwrap(Napi::Value v, const char* name) {
    Napi::Env env = v.Env();
    ND_REQUIRE(v.IsObject() && v.As<Napi::Object>().InstanceOf(instanceData(env).scheduleHandleCtor.Value()), Arg,
               std::string("Expected a schedule (from schedules.*) for ") + name);
    return Napi::ObjectWrap<ScheduleHandle>::Unwrap(v.As<Napi::Object>());
  }

 private:
  Napi::Value info(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("name", schedule->name());
      o.Set("tMin", schedule->tMin());
      o.Set("tMax", schedule->tMax());
      o.Set("tClean", schedule->tClean());
      o.Set("numTrainTimesteps", schedule->numTrainTimesteps());
      o.Set("conditioned", schedule->conditioned());
      return o;
    });
  }
  // evaluate(ts: Float64Array) -> { alpha, sigma, lambda, edmSigma, modelTimestep } (Float64Arrays)
  Napi::Value evaluate(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      std::vector<double> ts = doublesArg(info, 0, "t");
      std::vector<double> a(ts.size()), s(ts.size()), l(ts.size()), e(ts.size()), m(ts.size());
      for (size_t i = 0; i < ts.size(); ++i) {
        double t = ts[i];
        ND_REQUIRE(std::isfinite(t) && t >= schedule->tClean() && t <= schedule->tMax(), Arg,
                   "Expected a time in [" + std::to_string(schedule->tClean()) + ", " + std::to_string(schedule->tMax()) +
                       "] for t but received " + std::to_string(t));
        a[i] = schedule->alpha(t); s[i] = schedule->sigma(t); l[i] = schedule->lambda(t);
        e[i] = s[i] == 0 ? 0.0 : schedule->edmSigma(t); m[i] = schedule->modelTimestep(t);
      }
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("alpha", toF64(info.Env(), a));
      o.Set("sigma", toF64(info.Env(), s));
      o.Set("lambda", toF64(info.Env(), l));
      o.Set("edmSigma", toF64(info.Env(), e));
      o.Set("modelTimestep", toF64(info.Env(), m));
      return o;
    });
  }
  Napi::Value tFromLambda(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      std::vector<double> ls = doublesArg(info, 0, "lambda");
      for (double& l : ls) {
        ND_REQUIRE(!std::isnan(l), Arg, "Expected a number for lambda but received NaN");
        l = schedule->tFromLambda(l);
      }
      return toF64(info.Env(), ls);
    });
  }
  // timesteps(steps, spacing, tStart, tEnd, { rho, stepsOffset, times })
  Napi::Value timesteps(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      int steps = int(argInt(info, 0, "steps", 1, 1000000));
      sv::StepSpacing spacing = sv::parseStepSpacing(argString(info, 1, "skip"));
      double tStart = argNumber(info, 2, "tStart"), tEnd = argNumber(info, 3, "tEnd");
      Napi::Object opt = argObject(info, 4, "options");
      sv::SpacingOptions so;
      so.rho = numberProp(opt, "rho", 7.0);
      so.stepsOffset = int(numberProp(opt, "stepsOffset", 0));
      so.times = doublesProp(opt, "times", false);
      return toF64(info.Env(), sv::selectTimesteps(*schedule, steps, spacing, tStart, tEnd, so));
    });
  }
};

Napi::Value createSchedule(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    std::string kind = argString(info, 0, "kind");
    Napi::Object p = argObject(info, 1, "options");
    std::unique_ptr<sv::Schedule> s;
    if (kind == "vpDiscrete") {
      if (has(p, "betas")) {
        s = sv::makeDiscreteVpFromBetas(doublesProp(p, "betas"));
      } else {
        sv::DiscreteVpOptions o;
        std::string b = has(p, "betaSchedule") ? p.Get("betaSchedule").As<Napi::String>().Utf8Value() : "linear";
        if (b == "linear") o.betaSchedule = sv::BetaSchedule::Linear;
        else if (b == "scaled-linear") o.betaSchedule = sv::BetaSchedule::ScaledLinear;
        else if (b == "squaredcos_cap_v2") o.betaSchedule = sv::BetaSchedule::SquaredCosCapV2;
        else nd::fail(ErrorCode::Arg, "Expected one of linear, scaled-linear, squaredcos_cap_v2 for betaSchedule but received " + b);
        o.numTrainTimesteps = int(numberProp(p, "numTrainTimesteps", 1000));
        if (has(p, "betaStart")) o.betaStart = numberProp(p, "betaStart", 0);
        if (has(p, "betaEnd")) o.betaEnd = numberProp(p, "betaEnd", 0);
        s = sv::makeDiscreteVp(o);
      }
    } else if (kind == "vpLinear") {
      s = sv::makeVpLinear(numberProp(p, "beta0", 0.1), numberProp(p, "beta1", 20.0));
    } else if (kind == "vpCosine") {
      s = sv::makeVpCosine();
    } else if (kind == "ve") {
      s = sv::makeVe(numberProp(p, "sigmaMin", 0.002), numberProp(p, "sigmaMax", 80.0));
    } else if (kind == "pfgmpp") {
      s = sv::makePfgmpp(numberProp(p, "augmentedDim", 2048), numberProp(p, "sigmaMin", 0.002), numberProp(p, "sigmaMax", 80.0));
    } else if (kind == "flow") {
      s = sv::makeFlow(numberProp(p, "shift", 1.0));
    } else if (kind == "meanReverting") {
      s = sv::makeMeanReverting(numberProp(p, "theta0", 0.1), numberProp(p, "theta1", 20.0), numberProp(p, "stationaryStd", 1.0));
    } else if (kind == "resshift") {
      double steps = numberProp(p, "steps", 15);
      ND_REQUIRE(steps == std::floor(steps), Arg, "Expected an integer for steps of schedules.resshift");
      s = sv::makeResShift(numberProp(p, "kappa", 2.0), int(steps), numberProp(p, "minNoiseLevel", 0.04),
                           numberProp(p, "etasEnd", 0.99), numberProp(p, "power", 0.3));
    } else if (kind == "brownianBridge") {
      s = sv::makeBrownianBridge(numberProp(p, "maxVariance", 0.5), numberProp(p, "margin", 1e-3));
    } else {
      nd::fail(ErrorCode::Arg, "Unknown schedule kind " + kind);
    }
    Napi::Object h = instanceData(info.Env()).scheduleHandleCtor.New({});
    Napi::ObjectWrap<ScheduleHandle>::Unwrap(h)->schedule = std::move(s);
    return h;
  });
}

// ---- analytic denoisers ----------------------------------------------------------------------------------
class DenoiserHandle : public Napi::ObjectWrap<DenoiserHandle> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "DenoiserHandle",
                       {InstanceMethod<&DenoiserHandle::dim>("dim"),
                        InstanceMethod<&DenoiserHandle::denoise>("denoise"),
                        InstanceMethod<&DenoiserHandle::pfOdeSolution>("pfOdeSolution"),
                        InstanceMethod<&DenoiserHandle::solvePfOde>("solvePfOde"),
                        InstanceMethod<&DenoiserHandle::responsibilities>("responsibilities")});
  }
  explicit DenoiserHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DenoiserHandle>(info) {}
  std::shared_ptr<const md::AnalyticDenoiser> denoiser;
  std::shared_ptr<const md::GaussianDenoiser> gaussian;             // set for analytic.gaussian
  std::shared_ptr<const md::GaussianMixtureDenoiser> mixture;       // set for analytic.gaussianMixture

  static DenoiserHandle* unwrap(Napi::Value v, const char* name) {
    Napi::Env env = v.Env();
    ND_REQUIRE(v.IsObject() && v.As<Napi::Object>().InstanceOf(instanceData(env).denoiserHandleCtor.Value()), Arg,
               std::string("Expected a native denoiser (from analytic.*) for ") + name);
    return Napi::ObjectWrap<DenoiserHandle>::Unwrap(v.As<Napi::Object>());
  }

 private:
  Napi::Value dim(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(denoiser->dim())); }

  // A CPU f32/f64 tensor of batch x dim values; returns its batch.
  int64_t checkRows(const nd::Tensor& t, const char* name) const {
    ND_REQUIRE(t.device().isCpu(), Device, std::string(name) + " must be a CPU tensor");
    ND_REQUIRE(t.dtype == nd::DType::F32 || t.dtype == nd::DType::F64, DType, std::string(name) + " must be f32 or f64");
    ND_REQUIRE(t.numel() > 0 && t.numel() % denoiser->dim() == 0, Shape,
               std::string(name) + " must hold batch x " + std::to_string(denoiser->dim()) + " values");
    return t.numel() / denoiser->dim();
  }
  static nd::Tensor like(const nd::Tensor& t) { return nd::Tensor::empty(t.shape, t.dtype, nd::Device{}); }

  // denoise(x, alpha: Float64Array(batch), sigma: Float64Array(batch)) -> Promise<Tensor x0>
  Napi::Value denoise(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      nd::Tensor x = TensorHandle::unwrap(info[0], "x")->tensor();
      int64_t batch = checkRows(x, "x");
      auto alpha = doublesArg(info, 1, "alpha"), sigma = doublesArg(info, 2, "sigma");
      ND_REQUIRE(int64_t(alpha.size()) == batch && int64_t(sigma.size()) == batch, Shape,
                 "Expected one alpha and sigma per sample (" + std::to_string(batch) + ")");
      auto d = denoiser;
      auto out = std::make_shared<nd::Tensor>(like(x));
      auto pool = cpuPool();
      return PromiseWorker::run(
          info.Env(),
          [d, x, alpha, sigma, out, pool] {
            size_t n = size_t(x.numel());
            if (x.dtype == nd::DType::F32)
              d->denoise(std::span<const float>(x.ptr<float>(), n), alpha, sigma, std::span<float>(out->ptr<float>(), n), pool.get());
            else
              d->denoise(std::span<const double>(x.ptr<double>(), n), alpha, sigma, std::span<double>(out->ptr<double>(), n), pool.get());
          },
          [out](Napi::Env env) -> Napi::Value { return TensorHandle::wrap(env, *out); }, {info[0]});
    });
  }
  // pfOdeSolution(x, alphaS, sigmaS, alphaT, sigmaT) -> Promise<Tensor> (analytic.gaussian only)
  Napi::Value pfOdeSolution(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      ND_REQUIRE(gaussian != nullptr, Arg, "pfOdeSolution: only analytic.gaussian has a closed-form PF-ODE solution");
      nd::Tensor x = TensorHandle::unwrap(info[0], "x")->tensor();
      int64_t batch = checkRows(x, "x");
      auto aS = doublesArg(info, 1, "alphaFrom"), sS = doublesArg(info, 2, "sigmaFrom"), aT = doublesArg(info, 3, "alphaTo"),
           sT = doublesArg(info, 4, "sigmaTo");
      for (auto* v : {&aS, &sS, &aT, &sT})
        ND_REQUIRE(int64_t(v->size()) == batch, Shape, "Expected one noise level per sample");
      auto g = gaussian;
      auto out = std::make_shared<nd::Tensor>(like(x));
      auto pool = cpuPool();
      return PromiseWorker::run(
          info.Env(),
          [g, x, aS, sS, aT, sT, out, pool] {
            size_t n = size_t(x.numel());
            if (x.dtype == nd::DType::F32)
              md::gaussianPfOdeSolution(*g, std::span<const float>(x.ptr<float>(), n), aS, sS, aT, sT,
                                        std::span<float>(out->ptr<float>(), n), pool.get());
            else
              md::gaussianPfOdeSolution(*g, std::span<const double>(x.ptr<double>(), n), aS, sS, aT, sT,
                                        std::span<double>(out->ptr<double>(), n), pool.get());
          },
          [out](Napi::Env env) -> Napi::Value { return TensorHandle::wrap(env, *out); }, {info[0]});
    });
  }
  // solvePfOde(x (f64, EDM coordinates), edmSigmaFrom, edmSigmaTo, rtol) -> Promise<{ x, evaluations }>
  Napi::Value solvePfOde(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      nd::Tensor x = TensorHandle::unwrap(info[0], "x")->tensor();
      checkRows(x, "x");
      ND_REQUIRE(x.dtype == nd::DType::F64, DType, "solvePfOde works in f64");
      double from = argNumber(info, 1, "from"), to = argNumber(info, 2, "to"), rtol = argNumber(info, 3, "rtol");
      auto d = denoiser;
      auto out = std::make_shared<nd::Tensor>(like(x));
      auto stats = std::make_shared<sv::ReferenceOdeStats>();
      auto pool = cpuPool();
      return PromiseWorker::run(
          info.Env(),
          [d, x, out, from, to, rtol, stats, pool] {
            size_t n = size_t(x.numel());
            std::memcpy(out->data(), x.data(), n * sizeof(double));
            *stats = sv::solvePfOdeReference(*d, std::span<double>(out->ptr<double>(), n), from, to, rtol, pool.get());
          },
          [out, stats](Napi::Env env) -> Napi::Value {
            Napi::Object o = Napi::Object::New(env);
            o.Set("x", TensorHandle::wrap(env, *out));
            o.Set("evaluations", double(stats->evaluations));
            o.Set("accepted", double(stats->accepted));
            o.Set("rejected", double(stats->rejected));
            return o;
          },
          {info[0]});
    });
  }
  // responsibilities(x f64, alpha, sigma) -> Float64Array(batch x K) (analytic.gaussianMixture only; sync)
  Napi::Value responsibilities(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      ND_REQUIRE(mixture != nullptr, Arg, "responsibilities: only analytic.gaussianMixture has components");
      nd::Tensor x = TensorHandle::unwrap(info[0], "x")->tensor();
      int64_t batch = checkRows(x, "x");
      ND_REQUIRE(x.dtype == nd::DType::F64, DType, "responsibilities works in f64");
      auto alpha = doublesArg(info, 1, "alpha"), sigma = doublesArg(info, 2, "sigma");
      std::vector<double> out(size_t(batch * mixture->components()));
      mixture->responsibilities(std::span<const double>(x.ptr<double>(), size_t(x.numel())), alpha, sigma, out);
      return toF64(info.Env(), out);
    });
  }
};

Napi::Value createAnalytic(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    std::string kind = argString(info, 0, "kind");
    Napi::Object p = argObject(info, 1, "options");
    Napi::Object h = instanceData(info.Env()).denoiserHandleCtor.New({});
    DenoiserHandle* d = Napi::ObjectWrap<DenoiserHandle>::Unwrap(h);
    if (kind == "gaussian") {
      auto mean = doublesProp(p, "mean");
      std::shared_ptr<md::GaussianDenoiser> g;
      if (has(p, "covariance")) g = std::make_shared<md::GaussianDenoiser>(md::GaussianDenoiser::full(mean, doublesProp(p, "covariance")));
      else g = std::make_shared<md::GaussianDenoiser>(md::GaussianDenoiser::diagonal(mean, doublesProp(p, "variances")));
      d->gaussian = g;
      d->denoiser = g;
    } else if (kind == "gaussianMixture") {
      int64_t dim = int64_t(numberProp(p, "dim", 0));
      auto weights = doublesProp(p, "weights"), means = doublesProp(p, "means");
      std::shared_ptr<md::GaussianMixtureDenoiser> m;
      if (has(p, "covariances"))
        m = std::make_shared<md::GaussianMixtureDenoiser>(md::GaussianMixtureDenoiser::fromCovariances(dim, weights, means, doublesProp(p, "covariances")));
      else
        m = std::make_shared<md::GaussianMixtureDenoiser>(md::GaussianMixtureDenoiser::fromStds(dim, weights, means, doublesProp(p, "stds")));
      d->mixture = m;
      d->denoiser = m;
    } else if (kind == "lowRankMixture") {
      int64_t dim = int64_t(numberProp(p, "dim", 0));
      auto weights = doublesProp(p, "weights");
      ND_REQUIRE(has(p, "components") && p.Get("components").IsArray(), Arg, "Expected an array for components");
      auto arr = p.Get("components").As<Napi::Array>();
      std::vector<md::LowRankComponent> comps;
      for (uint32_t i = 0; i < arr.Length(); ++i) {
        ND_REQUIRE(arr.Get(i).IsObject(), Arg, "Expected { mean, basis, rank } components");
        Napi::Object c = arr.Get(i).As<Napi::Object>();
        md::LowRankComponent lc;
        lc.mean = doublesProp(c, "mean");
        lc.basis = doublesProp(c, "basis");
        lc.rank = int64_t(numberProp(c, "rank", 0));
        comps.push_back(std::move(lc));
      }
      d->denoiser = std::make_shared<md::LowRankMixtureDenoiser>(dim, weights, std::move(comps), numberProp(p, "delta", 0.0));
    } else if (kind == "empirical") {
      d->denoiser = std::make_shared<md::EmpiricalDenoiser>(int64_t(numberProp(p, "dim", 0)), doublesProp(p, "data"));
    } else {
      nd::fail(ErrorCode::Arg, "Unknown analytic denoiser kind " + kind);
    }
    return h;
  });
}

// ---- low-rank Gaussian transport (teleport for large latents) ----------------------------------------------
class TransportHandle : public Napi::ObjectWrap<TransportHandle> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "TransportHandle", {InstanceMethod<&TransportHandle::apply>("apply")});
  }
  explicit TransportHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TransportHandle>(info) {}
  std::shared_ptr<const md::LowRankGaussianTransport> transport;

 private:
  // apply(x, alphaS, sigmaS, alphaT, sigmaT) -> Promise<Tensor>
  Napi::Value apply(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      nd::Tensor x = TensorHandle::unwrap(info[0], "x")->tensor();
      ND_REQUIRE(x.device().isCpu(), Device, "x must be a CPU tensor");
      ND_REQUIRE(x.dtype == nd::DType::F32 || x.dtype == nd::DType::F64, DType, "x must be f32 or f64");
      auto aS = doublesArg(info, 1, "alphaFrom"), sS = doublesArg(info, 2, "sigmaFrom"), aT = doublesArg(info, 3, "alphaTo"),
           sT = doublesArg(info, 4, "sigmaTo");
      auto tr = transport;
      auto out = std::make_shared<nd::Tensor>(nd::Tensor::empty(x.shape, x.dtype, nd::Device{}));
      auto pool = cpuPool();
      return PromiseWorker::run(
          info.Env(),
          [tr, x, aS, sS, aT, sT, out, pool] {
            size_t n = size_t(x.numel());
            if (x.dtype == nd::DType::F32)
              tr->apply(std::span<const float>(x.ptr<float>(), n), aS, sS, aT, sT, std::span<float>(out->ptr<float>(), n), pool.get());
            else
              tr->apply(std::span<const double>(x.ptr<double>(), n), aS, sS, aT, sT, std::span<double>(out->ptr<double>(), n), pool.get());
          },
          [out](Napi::Env env) -> Napi::Value { return TensorHandle::wrap(env, *out); }, {info[0]});
    });
  }
};

// createTransport({ mean, basis (dim x rank), rank, eigenvalues, residualVariance })
Napi::Value createTransport(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    Napi::Object p = argObject(info, 0, "options");
    auto t = std::make_shared<md::LowRankGaussianTransport>(doublesProp(p, "mean"), doublesProp(p, "basis", false),
                                                            int64_t(numberProp(p, "rank", 0)), doublesProp(p, "eigenvalues", false),
                                                            numberProp(p, "residualVariance", 0));
    Napi::Object h = instanceData(info.Env()).transportHandleCtor.New({});
    Napi::ObjectWrap<TransportHandle>::Unwrap(h)->transport = std::move(t);
    return h;
  });
}

// ---- samplers ------------------------------------------------------------------------------------------
using AnySampler = std::variant<std::unique_ptr<sv::Sampler<float>>, std::unique_ptr<sv::Sampler<double>>>;

class SamplerHandle : public Napi::ObjectWrap<SamplerHandle> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "SamplerHandle",
                       {InstanceMethod<&SamplerHandle::state>("state"),
                        InstanceMethod<&SamplerHandle::grid>("grid"),
                        InstanceMethod<&SamplerHandle::planned>("planned"),
                        InstanceMethod<&SamplerHandle::initialState>("initialState"),
                        InstanceMethod<&SamplerHandle::start>("start"),
                        InstanceMethod<&SamplerHandle::step>("step"),
                        InstanceMethod<&SamplerHandle::stepAsync>("stepAsync"),
                        InstanceMethod<&SamplerHandle::run>("run"),
                        InstanceMethod<&SamplerHandle::abort>("abort"),
                        InstanceMethod<&SamplerHandle::dispose>("dispose")});
  }
  explicit SamplerHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SamplerHandle>(info) {}

  std::shared_ptr<AnySampler> sampler;
  std::shared_ptr<std::atomic<bool>> busy = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<std::atomic<bool>> aborted = std::make_shared<std::atomic<bool>>(false);
  nd::DType dtype = nd::DType::F32;
  int64_t size = 0;

 private:
  void idle() const {
    ND_REQUIRE(sampler != nullptr, Disposed, "The sampler was disposed");
    ND_REQUIRE(!busy->load(), Arg, "The sampler is busy with an async call; await it first");
  }
  template <class F>
  auto visit(F&& f) const {
    ND_REQUIRE(sampler != nullptr, Disposed, "The sampler was disposed");
    return std::visit([&](auto& s) { return f(*s); }, *sampler);
  }
  // Where the state lives: the host, or the GPU of a device-resident f32 sampler (read from the
  // sampler itself, which a model denoiser on a GPU moves there for its run).
  nd::Device stateDevice() const {
    ND_REQUIRE(sampler != nullptr, Disposed, "The sampler was disposed");
    return dtype == nd::DType::F32 ? std::get<0>(*sampler)->memory().device() : nd::Device{};
  }
  nd::Tensor checked(Napi::Value v, const char* name) const {
    nd::Tensor t = TensorHandle::unwrap(v, name)->tensor();
    const nd::Device device = stateDevice();
    ND_REQUIRE(device.isCpu() ? t.device().isCpu() : t.device() == device, Device,
               std::string(name) + " must be on " + device.str() + ", where this sampler keeps its state, but is on " +
                   t.device().str());
    ND_REQUIRE(t.dtype == dtype, DType, std::string("Expected ") + nd::dtypeName(dtype) + " for " + name + " but received " + nd::dtypeName(t.dtype));
    ND_REQUIRE(t.numel() == size, Shape,
               std::string("Expected ") + std::to_string(size) + " values (batch x dim) for " + name + " but received " + std::to_string(t.numel()));
    return t;
  }
  // A copy in the sampler's memory (stream-ordered with its passes on a device).
  static nd::Tensor copyOf(AnySampler& any, const nd::Tensor& t) {
    nd::Tensor o = nd::Tensor::empty(t.shape, t.dtype, t.device());
    if (t.device().isCpu()) std::memcpy(o.data(), t.data(), t.nbytes());
    else std::get<0>(any)->memory().copy(o.ptr<float>(), t.ptr<float>(), t.numel());
    return o;
  }
  static void finish(AnySampler& any, nd::DType dtype) {
    if (dtype == nd::DType::F32) std::get<0>(any)->memory().synchronize();
  }
  // On a throw, waits for the device work already enqueued before its tensors are released (the
  // caching allocator would hand their blocks out again while a copy still writes into them).
  struct SyncOnThrow {
    AnySampler& any;
    nd::DType dtype;
    int pending = std::uncaught_exceptions();
    ~SyncOnThrow() {
      if (std::uncaught_exceptions() > pending) {
        try {
          finish(any, dtype);
        } catch (...) {
        }
      }
    }
  };

  Napi::Value state(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      Napi::Object o = Napi::Object::New(info.Env());
      bool done = visit([](auto& s) { return s.done(); });
      o.Set("done", done);
      o.Set("nextTime", done ? Napi::Value(info.Env().Null()) : Napi::Number::New(info.Env(), visit([](auto& s) { return s.nextTime(); })));
      o.Set("evaluations", double(visit([](auto& s) { return s.evaluations(); })));
      o.Set("busy", busy->load());
      return o;
    });
  }
  Napi::Value grid(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return toF64(info.Env(), visit([](auto& s) { return s.grid(); })); });
  }
  Napi::Value planned(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return toF64(info.Env(), visit([](auto& s) { return s.plannedTimes(); })); });
  }
  Napi::Value initialState(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      idle();
      nd::Tensor noise = checked(info[0], "noise");
      nd::Tensor out = nd::Tensor::empty(noise.shape, noise.dtype, stateDevice());
      SyncOnThrow guard{*sampler, dtype};
      if (dtype == nd::DType::F32) std::get<0>(*sampler)->initialState(noise.ptr<float>(), out.ptr<float>());
      else std::get<1>(*sampler)->initialState(noise.ptr<double>(), out.ptr<double>());
      finish(*sampler, dtype);
      return TensorHandle::wrap(info.Env(), std::move(out));
    });
  }
  Napi::Value start(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      idle();
      nd::Tensor out = copyOf(*sampler, checked(info[0], "x"));
      SyncOnThrow guard{*sampler, dtype};
      if (dtype == nd::DType::F32) std::get<0>(*sampler)->prepareStart(out.ptr<float>());
      else std::get<1>(*sampler)->prepareStart(out.ptr<double>());
      finish(*sampler, dtype);
      return TensorHandle::wrap(info.Env(), std::move(out));
    });
  }
  static void stepInto(AnySampler& any, nd::DType dtype, const nd::Tensor& m, nd::Tensor& out) {
    if (dtype == nd::DType::F32) std::get<0>(any)->step(out.ptr<float>(), m.ptr<float>(), out.ptr<float>());
    else std::get<1>(any)->step(out.ptr<double>(), m.ptr<double>(), out.ptr<double>());
  }
  Napi::Value step(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      idle();
      nd::Tensor m = checked(info[1], "modelOutput");
      nd::Tensor out = copyOf(*sampler, checked(info[0], "x"));
      SyncOnThrow guard{*sampler, dtype};
      stepInto(*sampler, dtype, m, out);
      finish(*sampler, dtype);
      return TensorHandle::wrap(info.Env(), std::move(out));
    });
  }
  Napi::Value stepAsync(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      idle();
      nd::Tensor x = checked(info[0], "x");
      nd::Tensor m = checked(info[1], "modelOutput");
      visit([](auto& s) { return s.nextTime(); });  // throws now (not in the worker) when done
      auto out = std::make_shared<nd::Tensor>(nd::Tensor::empty(x.shape, x.dtype, stateDevice()));
      auto any = sampler;
      auto b = busy;
      auto dt = dtype;
      b->store(true);
      try {
        return PromiseWorker::run(
            info.Env(),
            [any, x, m, out, dt, b] {
              struct Release { std::shared_ptr<std::atomic<bool>> b; ~Release() { b->store(false); } } rel{b};
              SyncOnThrow guard{*any, dt};
              if (x.device().isCpu()) std::memcpy(out->data(), x.data(), x.nbytes());
              else std::get<0>(*any)->memory().copy(out->ptr<float>(), x.ptr<float>(), x.numel());
              stepInto(*any, dt, m, *out);
              finish(*any, dt);
            },
            [out](Napi::Env env) -> Napi::Value { return TensorHandle::wrap(env, *out); }, {info[0], info[1], Value()});
      } catch (...) {
        b->store(false);
        throw;
      }
    });
  }
  // run(x, denoiser: DenoiserHandle) -> Promise<Tensor>: the whole loop natively.
  Napi::Value run(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      idle();
      const nd::Device device = stateDevice();
      ND_REQUIRE(device.isCpu(), Device,
                 "run() drives the loop from host memory; a sampler created on " + device.str() +
                     " is stepped with step() (model denoisers on a GPU move a host sampler's state there themselves)");
      nd::Tensor x = checked(info[0], "x");
      if (auto md = unwrapModelDenoiser(info[1])) return runModel(info, x, *md);
      DenoiserHandle* dh = DenoiserHandle::unwrap(info[1], "denoiser");
      auto d = dh->denoiser;
      int64_t dim = visit([](auto& s) { return s.dim(); });
      int64_t batch = visit([](auto& s) { return s.batch(); });
      ND_REQUIRE(d->dim() == dim, Shape,
                 "The denoiser's dimension " + std::to_string(d->dim()) + " does not match the latent's " + std::to_string(dim));
      auto out = std::make_shared<nd::Tensor>(copyOf(*sampler, x));
      auto any = sampler;
      auto b = busy;
      auto ab = aborted;
      auto dt = dtype;
      auto pool = cpuPool();
      ab->store(false);
      b->store(true);
      try {
        return PromiseWorker::run(
            info.Env(),
            [any, d, out, dt, b, ab, batch, pool] {
              struct Release { std::shared_ptr<std::atomic<bool>> b; ~Release() { b->store(false); } } rel{b};
              std::vector<double> al(static_cast<size_t>(batch)), sg(static_cast<size_t>(batch));
              auto keepGoing = [ab](int64_t) { return !ab->load(); };
              auto go = [&](auto& s, auto* ptr) {
                using T = std::remove_pointer_t<decltype(ptr)>;
                size_t n = size_t(s.size());
                sv::NativeDenoiseFn<T> fn = [&](const T* xi, double, double a, double sgm, T* o) {
                  std::fill(al.begin(), al.end(), a);
                  std::fill(sg.begin(), sg.end(), sgm);
                  d->denoise(std::span<const T>(xi, n), al, sg, std::span<T>(o, n), pool.get());
                };
                sv::runLoop(s, ptr, fn, keepGoing);
              };
              if (dt == nd::DType::F32) go(*std::get<0>(*any), out->ptr<float>());
              else go(*std::get<1>(*any), out->ptr<double>());
            },
            [out](Napi::Env env) -> Napi::Value { return TensorHandle::wrap(env, *out); }, {info[0], info[1], Value()});
      } catch (...) {
        b->store(false);
        throw;
      }
    });
  }
  // The whole loop with a DiT denoiser (f32): the network sees the schedule's model timestep.
  Napi::Value runModel(const Napi::CallbackInfo& info, const nd::Tensor& x, const ModelDenoiserRef& md) {
    ND_REQUIRE(dtype == nd::DType::F32, DType, "Model denoisers run in f32; pass dtype: 'f32'");
    auto& s = *std::get<0>(*sampler);
    ND_REQUIRE(md.denoiser->dim() == s.dim() && md.denoiser->batch() == s.batch(), Shape,
               "The model denoiser's batch x dim (" + std::to_string(md.denoiser->batch()) + " x " + std::to_string(md.denoiser->dim()) +
                   ") does not match the latent's (" + std::to_string(s.batch()) + " x " + std::to_string(s.dim()) + ")");
    ND_REQUIRE(!md.busy->exchange(true), Arg, "The model denoiser is already running a sampling loop; await it first");
    auto out = std::make_shared<nd::Tensor>(copyOf(*sampler, x));
    auto any = sampler;
    auto b = busy;
    auto ab = aborted;
    auto pool = cpuPool();
    ab->store(false);
    b->store(true);
    md.routing->clear();
    try {
      return PromiseWorker::run(
          info.Env(),
          [any, md, out, b, ab, pool] {
            struct Release {
              std::shared_ptr<std::atomic<bool>> b, m;
              ~Release() { b->store(false); m->store(false); }
            } rel{b, md.busy};
            auto& smp = *std::get<0>(*any);
            const sv::Schedule& sch = smp.schedule();
            auto keepGoing = [ab](int64_t) { return !ab->load(); };
            auto* routing = md.record ? md.routing.get() : nullptr;
            if (std::optional<nd::Device> dev = md.denoiser->commonDevice()) {
              // Every expert is on one GPU: the sampler's state moves there too, so the latent
              // crosses the bus twice per run instead of twice per evaluation.
              smp.useMemory(sv::makeCudaSamplerMemory(*dev));
              sv::SamplerMemory<float>& mem = smp.memory();
              float* x = mem.allocate(smp.size());
              mem.fromHost(x, out->ptr<float>(), smp.size());
              sv::NativeDenoiseFn<float> fn = [&](const float* xi, double t, double, double, float* o) {
                md.denoiser->denoiseOnDevice(xi, t, sch.modelTimestep(t), o, routing, mem.stream());
              };
              sv::runLoop(smp, x, fn, keepGoing);
              mem.toHost(out->ptr<float>(), x, smp.size());
              return;
            }
            sv::NativeDenoiseFn<float> fn = [&](const float* xi, double t, double, double, float* o) {
              md.denoiser->denoise(xi, t, sch.modelTimestep(t), o, pool.get(), routing);
            };
            sv::runLoop(smp, out->ptr<float>(), fn, keepGoing);
          },
          [out](Napi::Env env) -> Napi::Value { return TensorHandle::wrap(env, *out); }, {info[0], info[1], Value()});
    } catch (...) {
      b->store(false);
      md.busy->store(false);
      throw;
    }
  }
  Napi::Value abort(const Napi::CallbackInfo& info) {
    aborted->store(true);
    return info.Env().Undefined();
  }
  // Frees the history and scratch buffers now (an async call in flight keeps its own reference).
  Napi::Value dispose(const Napi::CallbackInfo& info) {
    sampler.reset();
    return info.Env().Undefined();
  }
};

sv::OptionMap readOptions(const Napi::Object& o) {
  sv::OptionMap m;
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
    Napi::Value v = o.Get(k);
    if (v.IsUndefined()) continue;
    if (v.IsNumber()) m[k] = v.As<Napi::Number>().DoubleValue();
    else if (v.IsBoolean()) m[k] = v.As<Napi::Boolean>().Value();
    else if (v.IsString()) m[k] = v.As<Napi::String>().Utf8Value();
    else nd::fail(ErrorCode::Arg, "Expected a number, boolean or string for options." + k);
  }
  return m;
}

// createSampler(name, setup) with setup normalised by lib/solvers.ts.
Napi::Value createSampler(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    std::string name = argString(info, 0, "sampler");
    Napi::Object p = argObject(info, 1, "setup");
    sv::SamplerSetup s;
    s.schedule = ScheduleHandle::unwrap(p.Get("schedule"), "schedule")->schedule;
    double steps = numberProp(p, "steps", 10);
    ND_REQUIRE(steps >= 1 && steps <= 1e6 && steps == std::floor(steps), Arg, "Expected an integer >= 1 for steps");
    s.steps = int(steps);
    s.spacing = sv::parseStepSpacing(has(p, "skip") ? p.Get("skip").As<Napi::String>().Utf8Value() : "logSNR");
    s.spacingOptions.rho = numberProp(p, "rho", 7.0);
    s.spacingOptions.stepsOffset = int(numberProp(p, "stepsOffset", 0));
    s.spacingOptions.times = doublesProp(p, "times", false);
    if (has(p, "tStart")) s.tStart = numberProp(p, "tStart", 0);
    if (has(p, "tEnd")) s.tEnd = numberProp(p, "tEnd", 0);
    s.batch = int64_t(numberProp(p, "batch", 1));
    s.dim = int64_t(numberProp(p, "dim", 1));
    s.prediction = sv::parsePrediction(has(p, "prediction") ? p.Get("prediction").As<Napi::String>().Utf8Value() : "x0");
    if (has(p, "seeds")) {
      Napi::Value v = p.Get("seeds");
      ND_REQUIRE(v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_biguint64_array, Arg,
                 "Expected a BigUint64Array for seeds");
      auto a = v.As<Napi::TypedArray>();
      const uint64_t* data = reinterpret_cast<const uint64_t*>(static_cast<const uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
      s.seeds.assign(data, data + a.ElementLength());
    }
    s.brownianTree = has(p, "brownianTree") && p.Get("brownianTree").ToBoolean().Value();
    s.denoiseFinal = has(p, "denoiseFinal") && p.Get("denoiseFinal").ToBoolean().Value();
    if (has(p, "thresholding")) {
      Napi::Object th = p.Get("thresholding").As<Napi::Object>();
      s.thresholding = sv::Thresholding{numberProp(th, "ratio", 0.995), numberProp(th, "maxValue", 1.0)};
    }
    s.condition = doublesProp(p, "condition", false);
    if (has(p, "options")) s.options = readOptions(p.Get("options").As<Napi::Object>());
    std::string dt = has(p, "dtype") ? p.Get("dtype").As<Napi::String>().Utf8Value() : "f32";
    ND_REQUIRE(dt == "f32" || dt == "f64", DType, "Expected f32 or f64 for dtype but received " + dt);
    nd::Device device = has(p, "device") ? nd::Device::parse(p.Get("device").As<Napi::String>().Utf8Value()) : nd::Device{};
    ND_REQUIRE(device.isCpu() || dt == "f32", DType, "A sampler on " + device.str() + " runs in f32; pass dtype: 'f32'");
    s.pool = cpuPool().get();  // the process-wide CPU pool outlives every sampler
    int64_t size = s.batch * s.dim;
    auto any = std::make_shared<AnySampler>();
    if (dt == "f32") {
      auto smp = sv::createSampler<float>(name, std::move(s));
      // The step-wise API with its state on a GPU: step() takes and returns tensors on that device.
      if (device.isCuda()) smp->useMemory(sv::makeCudaSamplerMemory(device));
      *any = std::move(smp);
    } else {
      *any = sv::createSampler<double>(name, std::move(s));
    }
    Napi::Object h = instanceData(info.Env()).samplerHandleCtor.New({});
    SamplerHandle* sh = Napi::ObjectWrap<SamplerHandle>::Unwrap(h);
    sh->sampler = any;
    sh->dtype = dt == "f32" ? nd::DType::F32 : nd::DType::F64;
    sh->size = size;
    return h;
  });
}

Napi::Object optionToJs(Napi::Env env, const sv::OptionSpec& o) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("name", o.name);
  const char* types[] = {"number", "integer", "boolean", "enum"};
  r.Set("type", types[int(o.type)]);
  if (o.type == sv::OptionSpec::Type::Enum) {
    r.Set("default", o.defaultChoice);
    Napi::Array c = Napi::Array::New(env, o.choices.size());
    for (size_t i = 0; i < o.choices.size(); ++i) c.Set(uint32_t(i), o.choices[i]);
    r.Set("choices", c);
  } else if (o.type == sv::OptionSpec::Type::Boolean) {
    r.Set("default", o.defaultNumber != 0);
  } else {
    r.Set("default", o.defaultNumber);
    r.Set("min", o.min);
    r.Set("max", o.max);
  }
  r.Set("description", o.help);
  return r;
}

Napi::Value listSamplers(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const auto& reg = sv::samplerRegistry();
    Napi::Array out = Napi::Array::New(env, reg.size());
    for (size_t i = 0; i < reg.size(); ++i) {
      const auto& s = reg[i].spec;
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", s.name);
      o.Set("family", s.family);
      o.Set("stochastic", s.stochastic);
      o.Set("order", s.order);
      o.Set("evaluationsPerStep", s.nfePerStep);
      o.Set("source", s.source);
      o.Set("notes", s.notes);
      o.Set("needsCondition", s.needsCondition);
      Napi::Array opts = Napi::Array::New(env, s.options.size());
      for (size_t k = 0; k < s.options.size(); ++k) opts.Set(uint32_t(k), optionToJs(env, s.options[k]));
      o.Set("options", opts);
      out.Set(uint32_t(i), o);
    }
    return out;
  });
}

}  // namespace

void registerSolvers(Napi::Env env, Napi::Object exports) {
  instanceData(env).scheduleHandleCtor = Napi::Persistent(ScheduleHandle::define(env));
  instanceData(env).denoiserHandleCtor = Napi::Persistent(DenoiserHandle::define(env));
  instanceData(env).samplerHandleCtor = Napi::Persistent(SamplerHandle::define(env));
  instanceData(env).transportHandleCtor = Napi::Persistent(TransportHandle::define(env));
  exports.Set("createTransport", Napi::Function::New(env, createTransport, "createTransport"));
  exports.Set("createSchedule", Napi::Function::New(env, createSchedule, "createSchedule"));
  exports.Set("createAnalytic", Napi::Function::New(env, createAnalytic, "createAnalytic"));
  exports.Set("createSampler", Napi::Function::New(env, createSampler, "createSampler"));
  exports.Set("listSamplers", Napi::Function::New(env, listSamplers, "listSamplers"));
}

}  // namespace ndjs
