// Samplers with their state on a CUDA device (solvers/sampler_memory.h: DeviceSamplerMemory), run on
// the CPU by the kernel emulator: every registered sampler, f32, against the same sampler with its
// state in host memory. The device path runs the device step pass and the device Philox kernel,
// so the requirement is the same bits, not a tolerance. Host memory stands in for device memory
// behind the memory hooks. Also a sampler moved to the device mid-run, the device Philox draw, and
// the device classifier-free guidance kernel against the CPU one.
// Built only where the CUDA backend is not (the real entry points would collide with these).
#include "cuda_emu.h"

#include "kernels/cuda/guidance.cu"
#include "kernels/cuda/randn.cu"
#include "kernels/cuda/step_pass.cu"
#include "solvers/sampler_memory_cuda.cpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "check.h"
#include "kernels/cpu/guidance.h"
#include "kernels/cpu/randn.h"
#include "solvers/sampler.h"
#include "solvers/schedule.h"

using namespace nd;
using namespace nd::solvers;

namespace {

// Host memory behind the device hooks; every block is zeroed, as the device allocation is.
struct EmulatedDevice {
  std::list<std::vector<uint8_t>> blocks;
  std::shared_ptr<SamplerMemory<float>> memory() {
    DeviceMemoryHooks h;
    h.allocate = [this](size_t bytes) -> void* {
      blocks.emplace_back(bytes, uint8_t(0));
      return blocks.back().data();
    };
    h.copy = [](void* dst, const void* src, size_t bytes) { std::memmove(dst, src, bytes); };
    h.synchronize = [] {};
    return std::make_shared<DeviceSamplerMemory>(Device::parse("cuda:0"), std::move(h));
  }
};

// The exact x0 denoiser of Gaussian data N(mu_j, s0^2) per coordinate, at (x, alpha, sigma).
void gaussianX0(const float* x, double alpha, double sigma, int64_t batch, int64_t dim, float* out) {
  const double s0 = 0.7;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < dim; ++j) {
      double mu = 0.3 * std::sin(0.37 * double(j + 1));
      double k = alpha * s0 * s0 / (alpha * alpha * s0 * s0 + sigma * sigma);
      out[b * dim + j] = float(mu + k * (double(x[b * dim + j]) - alpha * mu));
    }
}

struct Run {
  std::vector<float> x;
  int64_t evaluations = 0;
};

struct Case {
  std::string sampler;
  std::shared_ptr<const Schedule> schedule;
  bool brownianTree = false, thresholding = false, denoiseFinal = false;
  OptionMap options;
  int steps = 7;
};

Run sample(const Case& c, std::shared_ptr<SamplerMemory<float>> memory) {
  const int64_t batch = 3, dim = 50;
  SamplerSetup s;
  s.schedule = c.schedule;
  s.steps = c.steps;
  s.batch = batch;
  s.dim = dim;
  s.prediction = Prediction::X0;
  s.seeds = {7, 1234567, 99};
  s.brownianTree = c.brownianTree;
  s.denoiseFinal = c.denoiseFinal;
  s.options = c.options;
  if (c.thresholding) s.thresholding = Thresholding{0.9, 1.5};
  if (c.schedule->conditioned()) {
    s.condition.resize(size_t(batch * dim));
    for (size_t i = 0; i < s.condition.size(); ++i) s.condition[i] = 0.5 * std::cos(0.11 * double(i));
  }
  auto smp = createSampler<float>(c.sampler, s);
  if (memory) smp->useMemory(memory);
  SamplerMemory<float>& mem = smp->memory();
  float* noise = mem.allocate(batch * dim);
  float* x = mem.allocate(batch * dim);
  mem.randn(noise, batch, dim, s.seeds.data(), 0);
  smp->initialState(noise, x);
  NativeDenoiseFn<float> fn = [&](const float* xi, double, double a, double sg, float* o) {
    gaussianX0(xi, a, sg, batch, dim, o);  // host memory in both runs (the emulated device is host memory)
  };
  runLoop(*smp, x, fn);
  Run r;
  r.x.resize(size_t(batch * dim));
  mem.toHost(r.x.data(), x, batch * dim);
  r.evaluations = smp->evaluations();
  return r;
}

bool sameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

ND_TEST(every_sampler_gives_the_same_bits_with_its_state_on_the_device) {
  std::shared_ptr<const Schedule> vp = makeVpLinear(), conditioned = makeMeanReverting(), pf = makePfgmpp(2048);
  int ran = 0;
  for (const SamplerEntry& e : samplerRegistry()) {
    Case c;
    c.sampler = e.spec.name;
    c.schedule = e.spec.needsCondition ? conditioned : e.spec.name == "pfgmpp" ? pf : vp;
    EmulatedDevice dev;
    Run host = sample(c, nullptr);
    Run device = sample(c, dev.memory());
    bool finite = true;
    for (float v : host.x) finite = finite && std::isfinite(v);
    if (!finite || !sameBits(host.x, device.x) || host.evaluations != device.evaluations)
      std::fprintf(stderr, "  sampler %s: device state differs from host state (or is not finite)\n", c.sampler.c_str());
    CHECK(finite);
    CHECK(sameBits(host.x, device.x));
    CHECK(host.evaluations == device.evaluations);
    ++ran;
  }
  CHECK(ran == int(samplerRegistry().size()));
  std::printf("  %d samplers: device state bit-identical to host state\n", ran);
}

ND_TEST(host_round_trips_give_the_same_bits_on_the_device) {
  // The paths that leave the step pass: the Brownian tree's increments, Imagen thresholding, the
  // conditioned schedules' shifts, the final denoise, the adaptive solver's error norm, pfgmpp's prior.
  std::shared_ptr<const Schedule> vp = makeVpLinear(), mr = makeMeanReverting(), ve = makeVe();
  std::shared_ptr<const Schedule> pf = makePfgmpp(2048);
  std::vector<Case> cases;
  Case a; a.sampler = "dpmpp-sde"; a.schedule = vp; a.brownianTree = true; cases.push_back(a);
  Case b; b.sampler = "dpmpp-2m"; b.schedule = vp; b.thresholding = true; b.denoiseFinal = true; cases.push_back(b);
  Case c; c.sampler = "euler-ancestral"; c.schedule = mr; cases.push_back(c);
  Case d; d.sampler = "dpm-adaptive"; d.schedule = vp; d.denoiseFinal = true; cases.push_back(d);
  Case f; f.sampler = "pfgmpp"; f.schedule = pf; cases.push_back(f);
  Case g; g.sampler = "heun"; g.schedule = ve; g.options["churn"] = 20.0; cases.push_back(g);
  Case h; h.sampler = "pfgmpp"; h.schedule = pf; h.options["churn"] = 10.0; cases.push_back(h);
  Case i; i.sampler = "mrs"; i.schedule = mr; i.options["solver"] = std::string("sde"); cases.push_back(i);
  for (const Case& k : cases) {
    EmulatedDevice dev;
    Run host = sample(k, nullptr);
    Run device = sample(k, dev.memory());
    if (!sameBits(host.x, device.x)) std::fprintf(stderr, "  case %s differs\n", k.sampler.c_str());
    CHECK(sameBits(host.x, device.x));
    CHECK(host.evaluations == device.evaluations);
    CHECK(host.evaluations > 0);
  }
}

ND_TEST(a_sampler_moves_to_the_device_mid_run_with_its_state) {
  // Three steps in host memory, then the history, the noise and the latent move to the device and
  // the run goes on there: the same bits as a run that never moved (and heun's churn, which draws
  // noise in start(), moves too).
  for (const char* name : {"dpmpp-3m-sde", "heun"}) {
    const int64_t batch = 2, dim = 40;
    auto run = [&](bool move) {
      SamplerSetup s;
      s.schedule = std::string(name) == "heun" ? makeVe() : makeVpLinear();
      s.steps = 8;
      s.batch = batch;
      s.dim = dim;
      s.prediction = Prediction::X0;
      s.seeds = {5, 6};
      if (std::string(name) == "heun") s.options["churn"] = 20.0;
      auto smp = createSampler<float>(name, s);
      std::vector<float> noise(size_t(batch * dim)), x(size_t(batch * dim)), m(size_t(batch * dim));
      randnCpu(noise.data(), DType::F32, batch, dim, s.seeds.data(), 0, nullptr);
      smp->initialState(noise.data(), x.data());
      EmulatedDevice dev;
      for (int k = 0; !smp->done(); ++k) {
        if (move && k == 3) smp->useMemory(dev.memory());  // host vectors pose as device memory here
        double t = smp->nextTime();
        gaussianX0(x.data(), smp->schedule().alpha(t), smp->schedule().sigma(t), batch, dim, m.data());
        smp->step(x.data(), m.data(), x.data());
      }
      CHECK(!move || smp->memory().device().isCuda());
      return x;
    };
    CHECK(sameBits(run(false), run(true)));
  }
}

ND_TEST(device_noise_is_randn_cpu) {
  EmulatedDevice dev;
  auto mem = dev.memory();
  const uint64_t seeds[] = {1, 2, 3, 0xffffffffffffULL};
  for (int64_t dim : {int64_t(1), int64_t(3), int64_t(4), int64_t(77)}) {
    float* z = mem->allocate(4 * dim);
    mem->randn(z, 4, dim, seeds, 5);
    std::vector<float> got(size_t(4 * dim)), want(size_t(4 * dim));
    mem->toHost(got.data(), z, 4 * dim);
    randnCpu(want.data(), DType::F32, 4, dim, seeds, 5, nullptr);
    CHECK(sameBits(got, want));
  }
}

ND_TEST(classifier_free_guidance_cuda_is_the_cpu_kernel) {
  for (bool guided : {false, true}) {
    const int64_t n = 3, oc = 8, ch = 4, hw = 37, g = 3;
    std::vector<float> out = ndtest::randomFloats(size_t(2 * n * oc * hw), 11), want(size_t(n * ch * hw)), got(size_t(n * ch * hw));
    classifierFreeGuidanceCpu(out.data(), n, oc, ch, hw, g, 4.25f, guided, want.data());
    classifierFreeGuidanceCuda(out.data(), n, oc, ch, hw, g, 4.25f, guided, got.data(), nullptr);
    CHECK(sameBits(want, got));
    if (guided) {  // spot check of the formula itself
      float cond = out[size_t((1 * oc + 2) * hw + 5)], unc = out[size_t(((n + 1) * oc + 2) * hw + 5)];
      CHECK(want[size_t((1 * ch + 2) * hw + 5)] == unc + 4.25f * (cond - unc));
      CHECK(want[size_t((1 * ch + 3) * hw + 5)] == out[size_t((1 * oc + 3) * hw + 5)]);
    }
  }
  std::vector<float> o(8);
  CHECK_THROWS_CODE(classifierFreeGuidanceCuda(o.data(), 1, 2, 2, 2, 3, 1.f, true, o.data(), nullptr), Arg);
}

ND_TEST_MAIN()
