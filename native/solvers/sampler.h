// Samplers: one shared step signature for every solver of the library.
//
// A Sampler<T> is a state machine over one batch of latents (batch x dim, T = float or double):
//   while (!s.done()) { t = s.nextTime(); m = model(x, t); s.step(x, m, x); }
// nextTime() is the schedule time of the next model evaluation (multi-stage methods evaluate at
// intermediate times; the adaptive solver picks them on the fly). step() consumes the model output
// at the point x it was evaluated at and writes the next evaluation point (after the last one, the
// sample). The whole-loop API (runLoop with a native denoiser) and the step-wise API (JS drives the
// loop) therefore run the same code, which is why they give identical results.
//
// Internally each sampler is a short class: it keeps its multistep history explicitly (buffers it
// owns), computes its scalar coefficients in double from the schedule, and applies them with one
// StepPass (kernels/cpu/step_pass.h) per model evaluation. Its buffers come from a SamplerMemory
// (solvers/sampler_memory.h): host memory by default, a CUDA device after useMemory(), where every
// pointer step() and initialState() take is a pointer into that memory.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kernels/cpu/step_pass.h"
#include "solvers/brownian_tree.h"
#include "solvers/sampler_memory.h"
#include "solvers/schedule.h"
#include "solvers/timesteps.h"

namespace nd::solvers {

enum class Prediction { Eps, X0, V, Flow, Score };
Prediction parsePrediction(std::string_view name);
const char* predictionName(Prediction p);

// ---- options -----------------------------------------------------------------------------------
using OptionValue = std::variant<double, bool, std::string>;
using OptionMap = std::map<std::string, OptionValue>;

struct OptionSpec {
  enum class Type { Number, Integer, Boolean, Enum };
  std::string name;
  Type type = Type::Number;
  double defaultNumber = 0;    // Number / Integer / Boolean (0 or 1)
  std::string defaultChoice;   // Enum
  double min = -1e300, max = 1e300;
  std::vector<std::string> choices;
  std::string help;
};

struct SamplerSpec {
  std::string name;
  std::string family;        // "classic", "dpm-solver", "seed-paper", "inversion", "flow"
  bool stochastic = false;
  std::string order;         // theoretical (deterministic) order as text: "1", "2", "order", ...
  std::string nfePerStep;    // "1", "2", "2 (1 on the last)", ...
  std::string source;        // paper / anchor
  std::string notes;
  bool needsCondition = false;
  std::vector<OptionSpec> options;
};

struct Thresholding {
  double ratio = 0.995;     // quantile of |x0| per sample
  double maxValue = 1.0;    // the scale s is clamped to [1, maxValue]
};

struct SamplerSetup {
  std::shared_ptr<const Schedule> schedule;
  int steps = 10;
  StepSpacing spacing = StepSpacing::LogSNR;
  SpacingOptions spacingOptions;
  std::optional<double> tStart, tEnd;    // default: the schedule's tMax / tMin
  int64_t batch = 1, dim = 1;
  Prediction prediction = Prediction::X0;
  std::vector<uint64_t> seeds;           // per sample; stochastic samplers need them
  bool brownianTree = false;             // SDE noise from a Brownian tree (same path for any step count)
  double brownianTolerance = 1e-7;       // leaf width of the tree, relative to [tEnd, tStart]
  bool denoiseFinal = false;             // one extra evaluation at tEnd that returns the x0 estimate
  std::optional<Thresholding> thresholding;
  std::vector<double> condition;         // conditioned schedules: c, batch x dim
  OptionMap options;                     // sampler-specific, validated against SamplerSpec::options
  ThreadPool* pool = nullptr;
};

// ---- the sampler base ------------------------------------------------------------------------------
template <class T>
class Sampler {
 public:
  virtual ~Sampler() = default;
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  const SamplerSpec& spec() const { return *spec_; }
  const Schedule& schedule() const { return *setup_.schedule; }
  int64_t batch() const { return setup_.batch; }
  int64_t dim() const { return setup_.dim; }
  int64_t size() const { return setup_.batch * setup_.dim; }
  const std::vector<double>& grid() const { return grid_; }  // step boundaries, tStart .. tEnd

  bool done() const { return done_; }
  double nextTime() const;
  // The model evaluation times in order when they are known in advance (empty for dpm-adaptive).
  const std::vector<double>& plannedTimes() const { return plan_; }
  int64_t evaluations() const { return evaluations_; }

  // x and modelOut: the point the model was evaluated at (time nextTime()) and its output, size()
  // values each; writes the next evaluation point, or the sample after the last evaluation, to
  // xOut (may alias x or modelOut). Throws ERR_ND_ARG when done.
  // xShiftFree (optional): x - (1 - alpha) c at this time, when the caller already has it (the native
  // loop computes it for the denoiser); otherwise step() computes it for conditioned schedules.
  void step(const T* x, const T* modelOut, T* xOut, const T* xShiftFree = nullptr);

  // The start state from standard normal noise: x0 assumed to be the condition (0 if none), i.e.
  // x = c + sigma(tStart) noise; samplers with their own prior (pfgmpp) override it.
  virtual void initialState(const T* noise, T* x);
  // Adjusts a start state given directly (xStart): samplers that raise the noise level before their
  // first evaluation (heun with churn) add that noise here. initialState calls it too.
  virtual void prepareStart(T* x) {}
  // x~ = x - (1 - alpha(t)) c for conditioned schedules (a copy otherwise): what a denoiser of the
  // unconditioned data sees.
  void shiftFree(const T* x, double t, T* out);

  // Builds the grid and the plan; called once by createSampler after construction.
  void initialise();

  // The condition c (conditioned schedules), empty otherwise.
  const std::vector<T>& condition() const { return condition_; }

  // Where the state lives. useMemory() moves the sampler, with whatever state it already holds
  // (history, noise, scratch: copied over), to other memory.
  SamplerMemory<T>& memory() const { return *memory_; }
  void useMemory(std::shared_ptr<SamplerMemory<T>> memory);
  // Scratch vectors for the whole-loop driver (runLoop), k = 0, 1.
  T* loopBuffer(int k) { return buffer(kLoopBase + k); }

 protected:
  Sampler(const SamplerSpec& spec, SamplerSetup setup);

  // ---- for derived samplers ----
  // Builds the list of evaluation times from grid(); the default is one evaluation per step at
  // grid[i], i = 0..steps-1.
  virtual std::vector<double> buildPlan();
  // x: the evaluation point (shift-free coordinates x~ for conditioned schedules), m: the model
  // output (after thresholding, then always x0). Writes the next evaluation point (or the sample).
  virtual void update(const T* x, const T* m, T* out) = 0;
  // Adaptive samplers plan on the fly.
  virtual bool adaptive() const { return false; }
  virtual double adaptiveNextTime() const { return 0; }
  void finish() { done_ = true; }
  // Samplers that build their own outer grid (singlestep DPM-Solver) or walk it backwards
  // (inversion) replace it in buildPlan().
  void setGrid(std::vector<double> g) { grid_ = std::move(g); }
  // Time of the state returned after the last update (the end of the grid).
  virtual double finalTime() const;

  double t(int i) const { return grid_[size_t(i)]; }
  int steps() const { return int(grid_.size()) - 1; }
  double alpha(double t) const { return schedule().alpha(t); }
  double sigma(double t) const { return schedule().sigma(t); }
  double lambda(double t) const { return schedule().lambda(t); }
  // Effective prediction of the m passed to update().
  Prediction prediction() const { return effectivePrediction_; }

  struct Lin { double cx, cm; };  // value = cx * x + cm * m
  // The model output at (x, t) expressed as x0, eps, or the VE derivative (x/alpha - x0)/(sigma/alpha)
  // (which equals eps), each a linear function of (x, m).
  Lin x0Of(double t) const;
  Lin epsOf(double t) const;

  double option(const std::string& name) const;              // Number / Integer / Boolean
  const std::string& choice(const std::string& name) const;  // Enum
  bool flag(const std::string& name) const { return option(name) != 0.0; }
  bool hasOption(const std::string& name) const { return setup_.options.count(name) != 0; }

  // Buffer k (size() values), allocated on first use, kept for the sampler's life.
  T* buffer(int k);
  // A ring of history buffers: history(0) is the newest; pushHistory() rotates so that the oldest
  // becomes history(0) (to be overwritten).
  T* history(int k) { return buffer(kHistoryBase + ((historyHead_ + k) % kHistorySlots)); }
  void pushHistory() { historyHead_ = (historyHead_ + kHistorySlots - 1) % kHistorySlots; ++historyCount_; }
  int historyCount() const { return historyCount_; }

  // Standard normal noise for the transition s -> t (per-sample seeds; Brownian-tree increments
  // when enabled). Throws if the sampler was built without seeds.
  const T* noise(double s, double t);
  void run(const StepPass<T>& pass) { memory_->run(pass, size()); }
  void copy(T* dst, const T* src) { memory_->copy(dst, src, size()); }

  // Host code over sampler vectors (a quantile, a norm, a prior): readOnHost gives the vector itself
  // when the state is in host memory and a downloaded copy (host scratch `slot`, 0..2) otherwise;
  // writeOnHost gives where to write a vector that belongs at dst, and commitFromHost puts it there
  // (no copies at all on the host).
  const T* readOnHost(const T* v, int slot);
  T* writeOnHost(T* dst, int slot);
  void commitFromHost(T* dst, const T* written);

  const SamplerSetup& setup() const { return setup_; }

  static constexpr int kHistorySlots = 6;
  static constexpr int kHistoryBase = 8;
  static constexpr int kNoiseBuffer = 15;
  static constexpr int kShiftBuffer = 16;
  static constexpr int kThresholdBuffer = 17;
  static constexpr int kLoopBase = 18;
  static constexpr int kBufferCount = 20;

 private:
  void prepareModelOutput(const T* x, const T* m, const T*& mOut);
  double timeAfterCurrent() const;

  const SamplerSpec* spec_;
  SamplerSetup setup_;
  std::vector<double> grid_;
  std::vector<double> plan_;
  size_t evalIndex_ = 0;
  int64_t evaluations_ = 0;
  bool done_ = false;
  bool finalDenoisePending_ = false;
  Prediction effectivePrediction_;
  std::shared_ptr<SamplerMemory<T>> memory_;
  std::vector<T*> buffers_;  // null until first use
  std::vector<T> hostScratch_[3];
  int historyHead_ = 0, historyCount_ = 0;
  uint64_t noiseDraws_ = 0;
  std::unique_ptr<BrownianTree> tree_;
  std::vector<T> condition_;
};

// ---- registry -------------------------------------------------------------------------------------
struct SamplerEntry {
  SamplerSpec spec;
  std::function<std::unique_ptr<Sampler<float>>(const SamplerSpec&, SamplerSetup)> makeFloat;
  std::function<std::unique_ptr<Sampler<double>>(const SamplerSpec&, SamplerSetup)> makeDouble;
};

const std::vector<SamplerEntry>& samplerRegistry();
const SamplerEntry& findSampler(std::string_view name);  // ERR_ND_ARG listing the valid names

// Validates setup.options against the spec (unknown names, wrong types, out of range, unknown enum
// values → ERR_ND_ARG naming the option), fills defaults, builds the grid and the plan.
template <class T>
std::unique_ptr<Sampler<T>> createSampler(std::string_view name, SamplerSetup setup);

// Whole loop with a native denoiser that predicts `setup.prediction` at (x, alpha, sigma) per sample
// (conditioned schedules: the denoiser sees the shift-free x~). x: the start state, overwritten with
// the sample; x and the denoiser's pointers are in the sampler's memory (the loop synchronises that
// memory before each evaluation, so a denoiser on another stream or on the host sees finished data). onStep (optional) is called after each evaluation with the evaluation count.
template <class T>
using NativeDenoiseFn = std::function<void(const T* x, double t, double alpha, double sigma, T* out)>;
template <class T>
void runLoop(Sampler<T>& sampler, T* x, const NativeDenoiseFn<T>& denoise,
             const std::function<bool(int64_t)>& keepGoing = {});

}  // namespace nd::solvers
