// Samplers with their state on the GPU (solvers/sampler_memory.h, makeCudaSamplerMemory) against the
// same samplers with their state in host memory: every registered sampler in f32 with the exact
// Gaussian denoiser, required to give the same bits (device step pass and Philox kernel are
// bit-identical to the CPU's); the paths that round-trip through the host (Brownian tree,
// thresholding, conditioned schedules, final denoise, the adaptive solver); and whole runs of the
// built-in DiT with classifier-free guidance, where a sampler with its state and guidance combine
// on the GPU must match, bit for bit, the same run with the state on the host and only the forward
// on the GPU, and the all-CPU run within the 16-bit model's tolerance.
// Exit status: 0 all passed, 1 a failure, 77 no CUDA device.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "check.h"
#include "gpu_buffer.cuh"
#include "core/thread_pool.h"
#include "models/dit.h"
#include "models/dit_on_device.h"
#include "models/model_denoiser.h"
#include "solvers/sampler.h"
#include "solvers/sampler_memory.h"
#include "solvers/schedule.h"

using namespace nd;
using namespace nd::solvers;
using namespace nd::models;

namespace {

const Device kGpu{DeviceType::Cuda, 0};
constexpr int64_t kBatch = 3, kDim = 1000;

void gaussianX0(const float* x, double alpha, double sigma, float* out) {
  const double s0 = 0.7;
  for (int64_t b = 0; b < kBatch; ++b)
    for (int64_t j = 0; j < kDim; ++j) {
      double mu = 0.3 * std::sin(0.37 * double(j + 1));
      double k = alpha * s0 * s0 / (alpha * alpha * s0 * s0 + sigma * sigma);
      out[b * kDim + j] = float(mu + k * (double(x[b * kDim + j]) - alpha * mu));
    }
}

struct Case {
  std::string sampler;
  std::shared_ptr<const Schedule> schedule;
  bool brownianTree = false, thresholding = false, denoiseFinal = false;
  OptionMap options;
};

std::vector<float> sample(const Case& c, bool onGpu, int64_t* evaluations) {
  SamplerSetup s;
  s.schedule = c.schedule;
  s.steps = 8;
  s.batch = kBatch;
  s.dim = kDim;
  s.prediction = Prediction::X0;
  s.seeds = {7, 1234567, 99};
  s.brownianTree = c.brownianTree;
  s.denoiseFinal = c.denoiseFinal;
  s.options = c.options;
  if (c.thresholding) s.thresholding = Thresholding{0.9, 1.5};
  if (c.schedule->conditioned()) {
    s.condition.resize(size_t(kBatch * kDim));
    for (size_t i = 0; i < s.condition.size(); ++i) s.condition[i] = 0.5 * std::cos(0.11 * double(i));
  }
  auto smp = createSampler<float>(c.sampler, s);
  if (onGpu) smp->useMemory(makeCudaSamplerMemory(kGpu));
  SamplerMemory<float>& mem = smp->memory();
  float* noise = mem.allocate(kBatch * kDim);
  float* x = mem.allocate(kBatch * kDim);
  mem.randn(noise, kBatch, kDim, s.seeds.data(), 0);
  smp->initialState(noise, x);
  std::vector<float> xh(size_t(kBatch * kDim)), oh(size_t(kBatch * kDim));
  NativeDenoiseFn<float> fn = [&](const float* xi, double, double a, double sg, float* o) {
    mem.toHost(xh.data(), xi, kBatch * kDim);  // the test's denoiser runs on the host
    gaussianX0(xh.data(), a, sg, oh.data());
    mem.fromHost(o, oh.data(), kBatch * kDim);
  };
  runLoop(*smp, x, fn);
  std::vector<float> r(size_t(kBatch * kDim));
  mem.toHost(r.data(), x, kBatch * kDim);
  *evaluations = smp->evaluations();
  return r;
}

bool sameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void compare(const Case& c) {
  int64_t eHost = 0, eGpu = 0;
  auto host = sample(c, false, &eHost);
  auto gpu = sample(c, true, &eGpu);
  size_t differ = 0;
  for (size_t i = 0; i < host.size(); ++i) differ += std::memcmp(&host[i], &gpu[i], sizeof(float)) != 0;
  if (differ) std::printf("    %-22s %zu of %zu values differ (max rel %.3g)\n", c.sampler.c_str(), differ, host.size(), ndtest::maxRelError(gpu, host));
  CHECK(differ == 0);
  CHECK(eHost == eGpu);
}

}  // namespace

ND_TEST(every_sampler_f32_on_the_gpu_is_the_cpu_bits) {
  std::shared_ptr<const Schedule> vp = makeVpLinear(), mr = makeMeanReverting(), pf = makePfgmpp(2048);
  int n = 0;
  for (const SamplerEntry& e : samplerRegistry()) {
    Case c;
    c.sampler = e.spec.name;
    c.schedule = e.spec.needsCondition ? mr : e.spec.name == "pfgmpp" ? pf : vp;
    compare(c);
    ++n;
  }
  std::printf("    %d samplers compared\n", n);
}

ND_TEST(host_round_trips_on_the_gpu_are_the_cpu_bits) {
  std::shared_ptr<const Schedule> vp = makeVpLinear(), mr = makeMeanReverting();
  Case a; a.sampler = "dpmpp-sde"; a.schedule = vp; a.brownianTree = true; compare(a);
  Case b; b.sampler = "dpmpp-2m"; b.schedule = vp; b.thresholding = true; b.denoiseFinal = true; compare(b);
  Case c; c.sampler = "euler-ancestral"; c.schedule = mr; compare(c);
  Case d; d.sampler = "dpm-adaptive"; d.schedule = vp; d.denoiseFinal = true; compare(d);
  Case g; g.sampler = "heun"; g.schedule = makeVe(); g.options["churn"] = 20.0; compare(g);
  Case h; h.sampler = "pfgmpp"; h.schedule = makePfgmpp(2048); h.options["churn"] = 10.0; compare(h);
  Case i; i.sampler = "mrs"; i.schedule = mr; i.options["solver"] = std::string("sde"); compare(i);
}

// The built-in DiT, 10 steps of dpmpp-2m with guidance 3: (a) all on the CPU; (b) state on the host,
// forward on the GPU; (c) state, forward and guidance on the GPU. (b) and (c) share every kernel
// result, so they must agree bit for bit; (c) against (a) within the f16 model's tolerance.
ND_TEST(builtin_model_sampling_with_state_on_the_gpu) {
  auto model = DitModel::load("models/shapes.safetensors", "auto", {});
  const DitConfig& cfg = model->config();
  const int64_t n = 4, C = cfg.inChannels, H = 32, W = 32, dim = C * H * W;
  std::shared_ptr<const Schedule> sch = makeDiscreteVp();
  GuidanceOptions g;
  g.scale = 3;
  std::vector<int64_t> labels = {0, 3, 5, 9 % cfg.numClasses};
  const double inf = std::numeric_limits<double>::infinity();
  auto gpuModel = DitOnDevice::create(model, kGpu);
  DitDenoiser cpuDen({TimestepExpert{model, nullptr, -inf, inf}}, labels, g, C, H, W);
  DitDenoiser gpuDen({TimestepExpert{model, gpuModel, -inf, inf}}, labels, g, C, H, W);
  CHECK(!cpuDen.commonDevice().has_value());
  CHECK(gpuDen.commonDevice().has_value() && *gpuDen.commonDevice() == kGpu);
  ThreadPool pool(4);
  auto run = [&](int mode) {
    SamplerSetup s;
    s.schedule = sch;
    s.steps = 10;
    s.batch = n;
    s.dim = dim;
    s.prediction = Prediction::Eps;
    s.seeds = {1, 2, 3, 4};
    auto smp = createSampler<float>("dpmpp-2m", s);
    if (mode == 2) smp->useMemory(makeCudaSamplerMemory(kGpu));
    SamplerMemory<float>& mem = smp->memory();
    float* noise = mem.allocate(n * dim);
    float* x = mem.allocate(n * dim);
    mem.randn(noise, n, dim, s.seeds.data(), 0);
    smp->initialState(noise, x);
    NativeDenoiseFn<float> fn = [&](const float* xi, double t, double, double, float* o) {
      if (mode == 0) cpuDen.denoise(xi, t, sch->modelTimestep(t), o, &pool, nullptr);
      else if (mode == 1) gpuDen.denoise(xi, t, sch->modelTimestep(t), o, &pool, nullptr);
      else gpuDen.denoiseOnDevice(xi, t, sch->modelTimestep(t), o, nullptr, mem.stream());
    };
    runLoop(*smp, x, fn);
    std::vector<float> r(size_t(n * dim));
    mem.toHost(r.data(), x, n * dim);
    return r;
  };
  auto cpu = run(0), hostState = run(1), deviceState = run(2);
  const double e = ndtest::maxRelError(deviceState, cpu);
  std::printf("    device state vs host state (both GPU forward): %s; vs all-CPU: rel %.3g (tol 5e-2)\n",
              sameBits(deviceState, hostState) ? "same bits" : "DIFFERENT", e);
  CHECK(sameBits(deviceState, hostState));
  CHECK(e <= 5e-2);
}

int main() { return ndtest::runGpuTests(); }
