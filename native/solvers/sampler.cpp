#include "solvers/sampler.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/dtype.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/randn.h"
#include "solvers/sampler_registry.h"

namespace nd::solvers {

Prediction parsePrediction(std::string_view name) {
  if (name == "eps" || name == "epsilon") return Prediction::Eps;
  if (name == "x0" || name == "sample") return Prediction::X0;
  if (name == "v" || name == "v_prediction") return Prediction::V;
  if (name == "flow" || name == "velocity") return Prediction::Flow;
  if (name == "score") return Prediction::Score;
  fail(ErrorCode::Arg, "Expected one of eps, x0, v, flow, score for prediction but received " + std::string(name));
}

const char* predictionName(Prediction p) {
  switch (p) {
    case Prediction::Eps: return "eps";
    case Prediction::X0: return "x0";
    case Prediction::V: return "v";
    case Prediction::Flow: return "flow";
    case Prediction::Score: return "score";
  }
  return "?";
}

// ---- Sampler base ------------------------------------------------------------------------------------

template <class T>
Sampler<T>::Sampler(const SamplerSpec& spec, SamplerSetup setup)
    : spec_(&spec), setup_(std::move(setup)), effectivePrediction_(setup_.prediction) {
  if (setup_.thresholding) effectivePrediction_ = Prediction::X0;
  memory_ = std::make_shared<HostSamplerMemory<T>>(setup_.pool);
  buffers_.assign(kBufferCount, nullptr);
  if (!setup_.condition.empty()) condition_.assign(setup_.condition.begin(), setup_.condition.end());
}

template <class T>
void Sampler<T>::initialise() {
  const Schedule& s = schedule();
  double tStart = setup_.tStart.value_or(s.tMax());
  double tEnd = setup_.tEnd.value_or(s.tMin() > s.tClean() ? s.tMin() : s.tClean() + 1e-3 * (s.tMax() - s.tClean()));
  grid_ = selectTimesteps(s, setup_.steps, setup_.spacing, tStart, tEnd, setup_.spacingOptions);
  if (spec().needsCondition || s.conditioned()) {
    ND_REQUIRE(s.conditioned(), Arg,
               "Expected a conditioned schedule (meanReverting, resshift, brownianBridge) for sampler " + spec().name +
                   " but received " + s.name());
    ND_REQUIRE(int64_t(condition_.size()) == size(), Shape,
               "Expected a condition of " + std::to_string(size()) + " values (batch x dim) for schedule " + s.name() +
                   " but received " + std::to_string(condition_.size()));
  }
  plan_ = buildPlan();
  if (setup_.denoiseFinal && !adaptive()) plan_.push_back(grid_.back());
  done_ = !adaptive() && plan_.empty();
}

template <class T>
std::vector<double> Sampler<T>::buildPlan() {
  return std::vector<double>(grid_.begin(), grid_.end() - 1);
}

template <class T>
double Sampler<T>::nextTime() const {
  ND_REQUIRE(!done_, Arg, "Sampler " + spec().name + " has finished: no further model evaluation");
  if (finalDenoisePending_) return finalTime();
  if (adaptive()) return adaptiveNextTime();
  return plan_[evalIndex_];
}

template <class T>
double Sampler<T>::option(const std::string& name) const {
  auto it = setup_.options.find(name);
  ND_REQUIRE(it != setup_.options.end(), Internal, "sampler option " + name + " missing");
  if (auto* d = std::get_if<double>(&it->second)) return *d;
  if (auto* b = std::get_if<bool>(&it->second)) return *b ? 1.0 : 0.0;
  fail(ErrorCode::Internal, "sampler option " + name + " is not numeric");
}

template <class T>
const std::string& Sampler<T>::choice(const std::string& name) const {
  auto it = setup_.options.find(name);
  ND_REQUIRE(it != setup_.options.end() && std::holds_alternative<std::string>(it->second), Internal,
             "sampler option " + name + " missing");
  return std::get<std::string>(it->second);
}

template <class T>
T* Sampler<T>::buffer(int k) {
  T*& b = buffers_[size_t(k)];
  if (!b) b = memory_->allocate(size());
  return b;
}

template <class T>
void Sampler<T>::useMemory(std::shared_ptr<SamplerMemory<T>> memory) {
  ND_REQUIRE(memory != nullptr, Arg, "useMemory: no memory");
  if (memory == memory_) return;
  // A sampler that already drew noise or keeps history (heun's churn in start(), a run resumed on
  // another device) takes its buffers along, through host memory.
  std::vector<T> staging;
  for (T*& b : buffers_) {
    if (!b) continue;
    staging.resize(size_t(size()));
    memory_->toHost(staging.data(), b, size());
    T* moved = memory->allocate(size());
    memory->fromHost(moved, staging.data(), size());
    b = moved;
  }
  memory_ = std::move(memory);
}

template <class T>
const T* Sampler<T>::readOnHost(const T* v, int slot) {
  if (memory_->onHost()) return v;
  auto& h = hostScratch_[size_t(slot)];
  h.resize(size_t(size()));
  memory_->toHost(h.data(), v, size());
  return h.data();
}

template <class T>
T* Sampler<T>::writeOnHost(T* dst, int slot) {
  if (memory_->onHost()) return dst;
  auto& h = hostScratch_[size_t(slot)];
  h.resize(size_t(size()));
  return h.data();
}

template <class T>
void Sampler<T>::commitFromHost(T* dst, const T* written) {
  if (dst != written) memory_->fromHost(dst, written, size());
}

template <class T>
typename Sampler<T>::Lin Sampler<T>::x0Of(double t) const {
  double a = alpha(t), s = sigma(t);
  switch (effectivePrediction_) {
    case Prediction::X0: return {0.0, 1.0};
    case Prediction::Eps: return {1.0 / a, -s / a};
    case Prediction::V: { double n = a * a + s * s; return {a / n, -s / n}; }
    case Prediction::Flow: return {1.0 / (a + s), -s / (a + s)};
    case Prediction::Score: return {1.0 / a, s * s / a};
  }
  return {0, 0};
}

template <class T>
typename Sampler<T>::Lin Sampler<T>::epsOf(double t) const {
  double a = alpha(t), s = sigma(t);
  switch (effectivePrediction_) {
    case Prediction::Eps: return {0.0, 1.0};
    case Prediction::X0: return {1.0 / s, -a / s};
    case Prediction::V: { double n = a * a + s * s; return {s / n, a / n}; }
    case Prediction::Flow: return {1.0 / (a + s), a / (a + s)};
    case Prediction::Score: return {0.0, -s};
  }
  return {0, 0};
}

template <class T>
const T* Sampler<T>::noise(double s, double t) {
  ND_REQUIRE(int64_t(setup_.seeds.size()) == batch(), Arg,
             "Sampler " + spec().name + " is stochastic: it needs one seed per sample (seed or seeds)");
  T* z = buffer(kNoiseBuffer);
  if (setup_.brownianTree) {
    if (!tree_) {
      double lo = std::min(grid_.front(), grid_.back()), hi = std::max(grid_.front(), grid_.back());
      tree_ = std::make_unique<BrownianTree>(lo, hi, setup_.seeds, dim(), setup_.brownianTolerance);
    }
    T* zh = writeOnHost(z, 0);
    tree_->normalizedIncrement(s, t, zh, setup_.pool);
    commitFromHost(z, zh);
  } else {
    // Stream 0 is the initial noise (random.randn / sample({ seed })); step draws use 1, 2, ...
    ++noiseDraws_;
    memory_->randn(z, batch(), dim(), setup_.seeds.data(), noiseDraws_);
  }
  return z;
}

template <class T>
void Sampler<T>::prepareModelOutput(const T* x, const T* m, const T*& mOut) {
  mOut = m;
  if (!setup_.thresholding) return;
  // Imagen's dynamic thresholding on the x0 estimate, per sample.
  double t = nextTime();
  Prediction saved = effectivePrediction_;
  effectivePrediction_ = setup_.prediction;
  Lin c = x0Of(t);
  effectivePrediction_ = saved;
  T* dst = buffer(kThresholdBuffer);
  const T* xh = readOnHost(x, 0);
  const T* mh = readOnHost(m, 1);
  T* th = writeOnHost(dst, 2);
  std::vector<double> absRow(static_cast<size_t>(dim()));
  for (int64_t b = 0; b < batch(); ++b) {
    const T* xr = xh + b * dim();
    const T* mr = mh + b * dim();
    T* o = th + b * dim();
    for (int64_t j = 0; j < dim(); ++j) {
      o[j] = T(c.cx * double(xr[j]) + c.cm * double(mr[j]));
      absRow[size_t(j)] = std::fabs(double(o[j]));
    }
    // numpy/torch quantile with linear interpolation.
    double pos = setup_.thresholding->ratio * double(dim() - 1);
    auto lo = int64_t(std::floor(pos));
    std::nth_element(absRow.begin(), absRow.begin() + lo, absRow.end());
    double q = absRow[size_t(lo)];
    if (lo + 1 < dim()) {
      double next = *std::min_element(absRow.begin() + lo + 1, absRow.end());
      q += (pos - double(lo)) * (next - q);
    }
    double s = std::clamp(q, 1.0, setup_.thresholding->maxValue);
    for (int64_t j = 0; j < dim(); ++j) o[j] = T(std::clamp(double(o[j]), -s, s) / s);
  }
  commitFromHost(dst, th);
  mOut = dst;
}

template <class T>
void Sampler<T>::step(const T* x, const T* modelOut, T* xOut, const T* xShiftFree) {
  double tEval = nextTime();
  const bool conditioned = !condition_.empty();
  const T* xs = x;
  if (conditioned && xShiftFree != nullptr) {
    xs = xShiftFree;
  } else if (conditioned) {
    T* shifted = buffer(kShiftBuffer);
    shiftFree(x, tEval, shifted);
    xs = shifted;
  }
  const T* m = nullptr;
  prepareModelOutput(xs, modelOut, m);
  ++evaluations_;
  double tOut;
  if (setup_.denoiseFinal && ((!adaptive() && evalIndex_ + 1 == plan_.size()) || (adaptive() && finalDenoisePending_))) {
    // The extra evaluation: return the x0 estimate.
    Lin c = x0Of(tEval);
    StepPass<T> p;
    p.x = xs; p.m = m; p.cx = c.cx; p.cm = c.cm; p.dStore = xOut;
    run(p);
    done_ = true;
    ++evalIndex_;
    tOut = schedule().tClean();
  } else {
    update(xs, m, xOut);
    ++evalIndex_;
    if (!adaptive() && evalIndex_ >= plan_.size()) done_ = true;
    if (adaptive() && done_ && setup_.denoiseFinal) { done_ = false; finalDenoisePending_ = true; }
    tOut = done_ ? finalTime() : nextTime();
  }
  if (conditioned) {
    double k = 1.0 - alpha(tOut);
    const T* xh = readOnHost(xOut, 0);
    T* oh = writeOnHost(xOut, 0);  // the same scratch: updated in place
    for (int64_t i = 0; i < size(); ++i) oh[i] = T(double(xh[i]) + k * double(condition_[size_t(i)]));
    commitFromHost(xOut, oh);
  }
}

template <class T>
double Sampler<T>::finalTime() const { return grid_.back(); }

template <class T>
void Sampler<T>::initialState(const T* noise, T* x) {
  double s = sigma(grid_.front());
  const T* nh = readOnHost(noise, 0);
  T* xh = writeOnHost(x, 1);
  for (int64_t i = 0; i < size(); ++i) {
    double c = condition_.empty() ? 0.0 : double(condition_[size_t(i)]);
    xh[i] = T(c + s * double(nh[i]));
  }
  commitFromHost(x, xh);
  prepareStart(x);
}

template <class T>
void Sampler<T>::shiftFree(const T* x, double t, T* out) {
  if (condition_.empty()) { copy(out, x); return; }
  double k = 1.0 - alpha(t);
  const T* xh = readOnHost(x, 0);
  T* oh = writeOnHost(out, 1);
  for (int64_t i = 0; i < size(); ++i) oh[i] = T(double(xh[i]) - k * double(condition_[size_t(i)]));
  commitFromHost(out, oh);
}

template class Sampler<float>;
template class Sampler<double>;

// ---- registry and creation --------------------------------------------------------------------------

const std::vector<SamplerEntry>& samplerRegistry() {
  static const std::vector<SamplerEntry> registry = [] {
    std::vector<SamplerEntry> r;
    addClassicSamplers(r);
    addDpmSolverSamplers(r);
    addUniPcSamplers(r);
    addSeedPaperSamplers(r);
    return r;
  }();
  return registry;
}

const SamplerEntry& findSampler(std::string_view name) {
  for (const auto& e : samplerRegistry())
    if (e.spec.name == name) return e;
  std::string names;
  for (const auto& e : samplerRegistry()) names += (names.empty() ? "" : ", ") + e.spec.name;
  fail(ErrorCode::Arg, "Expected one of " + names + " for sampler but received " + std::string(name));
}

namespace {

void validateOptions(const SamplerSpec& spec, OptionMap& options) {
  for (const auto& entry : options) {
    // (not a structured binding: clang 14, which builds the fuzzers, cannot capture one in a lambda)
    const std::string& key = entry.first;
    bool known = std::any_of(spec.options.begin(), spec.options.end(), [&](const OptionSpec& o) { return o.name == key; });
    if (!known) {
      std::string names;
      for (const auto& o : spec.options) names += (names.empty() ? "" : ", ") + o.name;
      fail(ErrorCode::Arg, "Unknown option " + key + " for sampler " + spec.name +
                               (names.empty() ? " (it takes no options)" : " (valid: " + names + ")"));
    }
  }
  for (const auto& o : spec.options) {
    auto it = options.find(o.name);
    const std::string where = "options." + o.name + " of sampler " + spec.name;
    if (it == options.end()) {
      if (o.type == OptionSpec::Type::Enum) options[o.name] = o.defaultChoice;
      else if (o.type == OptionSpec::Type::Boolean) options[o.name] = o.defaultNumber != 0;
      else options[o.name] = o.defaultNumber;
      continue;
    }
    OptionValue& v = it->second;
    switch (o.type) {
      case OptionSpec::Type::Boolean:
        ND_REQUIRE(std::holds_alternative<bool>(v), Arg, "Expected a boolean for " + where);
        break;
      case OptionSpec::Type::Enum: {
        auto* s = std::get_if<std::string>(&v);
        std::string choices;
        for (const auto& c : o.choices) choices += (choices.empty() ? "" : ", ") + c;
        ND_REQUIRE(s && std::find(o.choices.begin(), o.choices.end(), *s) != o.choices.end(), Arg,
                   "Expected one of " + choices + " for " + where + " but received " +
                       (s ? *s : std::string("a non-string")));
        break;
      }
      case OptionSpec::Type::Number:
      case OptionSpec::Type::Integer: {
        auto* d = std::get_if<double>(&v);
        ND_REQUIRE(d != nullptr, Arg, "Expected a number for " + where);
        bool integral = o.type == OptionSpec::Type::Number || std::floor(*d) == *d;
        ND_REQUIRE(std::isfinite(*d) && integral && *d >= o.min && *d <= o.max, Arg,
                   "Expected " + std::string(o.type == OptionSpec::Type::Integer ? "an integer" : "a number") +
                       " in [" + numberText(o.min) + ", " + numberText(o.max) + "] for " + where + " but received " + numberText(*d));
        break;
      }
    }
  }
}

}  // namespace

template <class T>
std::unique_ptr<Sampler<T>> createSampler(std::string_view name, SamplerSetup setup) {
  const SamplerEntry& e = findSampler(name);
  ND_REQUIRE(setup.schedule != nullptr, Arg, "Expected a schedule for schedule but received nothing");
  ND_REQUIRE(setup.batch > 0 && setup.dim > 0, Shape, "Expected a non-empty latent (batch and dim > 0)");
  ND_REQUIRE(setup.seeds.empty() || int64_t(setup.seeds.size()) == setup.batch, Arg,
             "Expected one seed per sample (" + std::to_string(setup.batch) + ") for seeds but received " +
                 std::to_string(setup.seeds.size()));
  if (setup.thresholding) {
    ND_REQUIRE(setup.thresholding->ratio > 0 && setup.thresholding->ratio <= 1, Arg,
               "Expected a number in (0, 1] for thresholding.ratio but received " + numberText(setup.thresholding->ratio));
    ND_REQUIRE(setup.thresholding->maxValue >= 1, Arg,
               "Expected a number >= 1 for thresholding.maxValue but received " + numberText(setup.thresholding->maxValue));
  }
  validateOptions(e.spec, setup.options);
  std::unique_ptr<Sampler<T>> s;
  if constexpr (std::is_same_v<T, float>) s = e.makeFloat(e.spec, std::move(setup));
  else s = e.makeDouble(e.spec, std::move(setup));
  s->initialise();
  return s;
}

template std::unique_ptr<Sampler<float>> createSampler<float>(std::string_view, SamplerSetup);
template std::unique_ptr<Sampler<double>> createSampler<double>(std::string_view, SamplerSetup);

template <class T>
void runLoop(Sampler<T>& sampler, T* x, const NativeDenoiseFn<T>& denoise, const std::function<bool(int64_t)>& keepGoing) {
  const bool conditioned = !sampler.condition().empty();
  T* out = sampler.loopBuffer(0);
  T* xs = conditioned ? sampler.loopBuffer(1) : nullptr;
  while (!sampler.done()) {
    double t = sampler.nextTime();
    double a = sampler.schedule().alpha(t), s = sampler.schedule().sigma(t);
    const T* in = x;
    if (conditioned) {
      sampler.shiftFree(x, t, xs);
      in = xs;
    }
    sampler.memory().synchronize();
    denoise(in, t, a, s, out);
    sampler.step(x, out, x, xs);
    if (keepGoing && !keepGoing(sampler.evaluations())) fail(ErrorCode::Aborted, "sampling aborted");
  }
  sampler.memory().synchronize();
}

template void runLoop<float>(Sampler<float>&, float*, const NativeDenoiseFn<float>&, const std::function<bool(int64_t)>&);
template void runLoop<double>(Sampler<double>&, double*, const NativeDenoiseFn<double>&, const std::function<bool(int64_t)>&);

}  // namespace nd::solvers
