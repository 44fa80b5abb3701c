// DitOnDevice (the DiT on a CUDA device: upload, arena, stream, CUDA graph replay) against
// DitModel::forward on the CPU: the built-in models (f16 weights), DiT-S/2 in f32, DiT-XL/2 in bf16 and
// a DiT-MoE-S/2 8E2A in f32 and bf16 (random weights, written by random_dit.h), at batch 1 and 4, with
// the MoE's expert choices and per-expert counts; and graph replay against eager runs, bit for bit. Tolerances: f32 1e-5, 16-bit 2e-2 relative (max |gpu - cpu| / max |cpu|).
// Exit status: 0 all passed, 1 a failure, 77 no CUDA device.
#include <cuda_runtime.h>

#include <cstdio>
#include <filesystem>
#include <vector>

#include "check.h"
#include "gpu_buffer.cuh"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "models/dit.h"
#include "models/dit_on_device.h"
#include "random_dit.h"

using namespace nd;
using namespace nd::models;

namespace {

const Device kGpu{DeviceType::Cuda, 0};

std::vector<float> onDevice(DitOnDevice& d, const std::vector<float>& x, int64_t n, int64_t h, int64_t w,
                            const std::vector<float>& t, const std::vector<int64_t>& y, DitRouting* routing = nullptr) {
  const DitConfig& c = d.model().config();
  Tensor xh = Tensor::empty({n, c.inChannels, h, w}, DType::F32, Device{});
  std::memcpy(xh.data(), x.data(), x.size() * sizeof(float));
  Tensor out = d.forward(xh, t.data(), y.data(), routing);
  std::vector<float> o(size_t(out.numel()));
  copyToHost(out, o.data());
  return o;
}

void parity(const char* label, std::shared_ptr<DitModel> m, int64_t n, int64_t h, int64_t w, double tol) {
  const DitConfig& c = m->config();
  std::mt19937 rng(7);
  std::normal_distribution<float> nd01;
  std::vector<float> x(size_t(n * c.inChannels * h * w));
  for (float& v : x) v = nd01(rng);
  std::vector<float> t(static_cast<size_t>(n)), ref(size_t(n * c.outChannels * h * w));
  std::vector<int64_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    t[size_t(i)] = float(999 - 250 * i % 1000);
    y[size_t(i)] = i % 2 ? c.numClasses : (3 * i) % c.numClasses;
  }
  ThreadPool pool(4);
  DitRouting cpuRouting;
  m->forward(x.data(), n, h, w, t.data(), y.data(), ref.data(), &pool, &cpuRouting);
  auto d = DitOnDevice::create(m, kGpu);
  d->setGraphs(false);
  DitRouting devRouting;
  auto eager = onDevice(*d, x, n, h, w, t, y, &devRouting);
  if (c.family == "dit-moe") {
    size_t differ = 0, total = 0;
    for (size_t l = 0; l < devRouting.size(); ++l)
      for (size_t i = 0; i < devRouting[l].choices.size(); ++i, ++total) differ += devRouting[l].choices[i] != cpuRouting[l].choices[i];
    std::printf("      expert choices differing from the CPU's: %zu of %zu\n", differ, total);
    CHECK(devRouting.size() == cpuRouting.size());
    CHECK(d->computeType() == DType::F32 ? differ == 0 : differ * 100 <= total);
  }
  d->setGraphs(true);
  onDevice(*d, x, n, h, w, t, y);                      // warm-up of this shape
  auto graphed = onDevice(*d, x, n, h, w, t, y);       // captured, then replayed
  auto replayed = onDevice(*d, x, n, h, w, t, y);
  const double e = ndtest::maxRelError(eager, ref);
  std::printf("    %-28s n=%lld %lldx%lld compute %s: rel %.3g (tol %g)\n", label, (long long)n, (long long)h,
              (long long)w, dtypeName(d->computeType()), e, tol);
  CHECK(e <= tol);
  CHECK(graphed == eager);
  CHECK(replayed == eager);
}

std::string tmpFile(const char* name) { return (std::filesystem::temp_directory_path() / name).string(); }

ND_TEST(builtin_shapes_f16) {
  auto m = DitModel::load("models/shapes.safetensors", "auto", {});
  parity("builtin:shapes", m, 1, 32, 32, 2e-2);
  parity("builtin:shapes", m, 8, 32, 32, 2e-2);
}

ND_TEST(dit_s2_f32) {
  ndtest::RandomDitSpec s;
  s.depth = 12; s.hidden = 384; s.heads = 6; s.classes = 1000; s.dtype = DType::F32;
  const std::string path = tmpFile("nd-gputest-dit-s2.safetensors");
  ndtest::writeRandomDit(path, s);
  DitOverrides ov;
  ov.heads = 6;
  auto m = DitModel::load(path, "original", ov);
  parity("DiT-S/2 f32", m, 1, 32, 32, 1e-5);
  parity("DiT-S/2 f32", m, 4, 24, 40, 1e-5);
  std::filesystem::remove(path);
}

ND_TEST(dit_xl2_bf16) {
  ndtest::RandomDitSpec s;
  s.depth = 28; s.hidden = 1152; s.heads = 16; s.classes = 1000; s.dtype = DType::BF16;
  const std::string path = tmpFile("nd-gputest-dit-xl2.safetensors");
  ndtest::writeRandomDit(path, s);
  DitOverrides ov;
  ov.heads = 16;
  auto m = DitModel::load(path, "original", ov);
  parity("DiT-XL/2 bf16", m, 1, 32, 32, 2e-2);
  parity("DiT-XL/2 bf16", m, 4, 32, 32, 2e-2);
  std::filesystem::remove(path);
}

ND_TEST(builtin_shapes_moe_f16) {
  auto m = DitModel::load("models/shapes-moe.safetensors", "auto", {});
  parity("builtin:shapes-moe", m, 1, 32, 32, 2e-2);
  parity("builtin:shapes-moe", m, 8, 32, 32, 2e-2);
}

ND_TEST(dit_moe_s2_8e2a) {
  for (DType dt : {DType::F32, DType::BF16}) {
    ndtest::RandomDitSpec s;
    s.depth = 12; s.hidden = 384; s.heads = 6; s.classes = 1000; s.dtype = dt;
    s.experts = 8; s.expertHidden = 768; s.sharedHidden = 384;
    const std::string path = tmpFile("nd-gputest-dit-moe-s2.safetensors");
    ndtest::writeRandomDit(path, s);
    DitOverrides ov;
    ov.heads = 6;
    ov.topK = 2;
    auto m = DitModel::load(path, "dit-moe", ov);
    parity(dt == DType::F32 ? "DiT-MoE-S/2 8E2A f32" : "DiT-MoE-S/2 8E2A bf16", m, 4, 32, 32, dt == DType::F32 ? 1e-5 : 2e-2);
    ov.capacityFactor = 0.75;  // some assignments dropped, the same ones as on the CPU
    parity("  ... capacity 0.75", DitModel::load(path, "dit-moe", ov), 2, 32, 32, dt == DType::F32 ? 1e-5 : 2e-2);
    std::filesystem::remove(path);
  }
}

}  // namespace

int main() { return ndtest::runGpuTests(); }
