// The DiT forward of the CUDA backend (models/dit_device_cuda.cpp: weight upload, buffer layout,
// kernel sequence, epilogue fusions) run on the CPU by the kernel emulator, against the CPU
// backend's DitModel::forward on the built-in model. Host memory stands in for device memory.
// Built only where the CUDA backend is not (the real entry points would collide with these).
#include "cuda_emu.h"

// The kernels' host-side dispatchers and the device forward, compiled here for the emulator.
#include "kernels/cuda/activation.cu"
#include "kernels/cuda/attention.cu"
#include "kernels/cuda/embedding.cu"
#include "kernels/cuda/gated_residual.cu"
#include "kernels/cuda/gemm.cu"
#include "kernels/cuda/head_layer_norm.cu"
#include "kernels/cuda/layer_norm_modulate.cu"
#include "kernels/cuda/moe_routing.cu"
#include "kernels/cuda/patchify.cu"
#include "models/dit_device_cuda.cpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <unistd.h>
#include <list>
#include <memory>
#include <vector>

#include "check.h"
#include "io/safetensors.h"
#include "kernels/cpu/sincos_embedding.h"
#include "models/dit.h"

using namespace nd;
using namespace nd::models;

namespace {

const char* kShapes = "models/shapes.safetensors";
const char* kShapesMoe = "models/shapes-moe.safetensors";

// Device memory as host memory: every upload is a host copy that lives as long as the arena.
struct FakeDevice {
  std::list<std::vector<uint8_t>> blocks;
  DeviceUpload upload() {
    return [this](const void* host, size_t bytes) -> const void* {
      blocks.emplace_back(bytes);
      std::memcpy(blocks.back().data(), host, bytes);
      return blocks.back().data();
    };
  }
};

std::vector<float> deviceForward(const DitModel& m, const std::vector<float>& x, int64_t n, int64_t h, int64_t w,
                                 const std::vector<float>& t, const std::vector<int64_t>& y, DitRouting* routing) {
  const DitConfig& c = m.config();
  FakeDevice dev;
  DitDeviceWeights wt = uploadDitWeights(m, dev.upload());
  DitDeviceLayout layout = ditDeviceLayout(c, wt.act, n, h, w);
  std::vector<uint8_t> arena(layout.bytes + 256);
  void* base = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(arena.data()) + 255) & ~uintptr_t(255));
  DitDeviceBuffers b = layout.carve(base);
  std::memcpy(b.x, x.data(), x.size() * sizeof(float));
  std::memcpy(b.t, t.data(), t.size() * sizeof(float));
  std::memcpy(b.y, y.data(), y.size() * sizeof(int64_t));
  sincosPosEmbed2d(h / c.patch, w / c.patch, c.hidden, b.pos);
  ditDeviceForward(c, wt, b, n, h, w, nullptr);
  if (routing) *routing = ditDeviceRouting(c, n * (h / c.patch) * (w / c.patch), b.counts, b.dropped, b.entropy, b.idx, b.kept);
  return std::vector<float>(b.out, b.out + n * c.outChannels * h * w);
}

void compareWithCpu(const DitModel& m, double tol, int64_t size = 24) {
  const DitConfig& c = m.config();
  const int64_t n = 2, h = size, w = size;  // 24: 36 tokens, a full and a partial attention tile
  std::vector<float> x(size_t(n * c.inChannels * h * w));
  uint32_t s = 12345;
  for (float& v : x) {
    s = s * 1664525u + 1013904223u;
    v = float(int32_t(s >> 8) % 20000) / 10000.0f;
  }
  const std::vector<float> t = {999.0f, 3.0f};
  const std::vector<int64_t> y = {7, c.numClasses};  // the second one unconditional
  std::vector<float> ref(size_t(n * c.outChannels * h * w));
  DitRouting cpuRouting, devRouting;
  m.forward(x.data(), n, h, w, t.data(), y.data(), ref.data(), nullptr, &cpuRouting);
  std::vector<float> got = deviceForward(m, x, n, h, w, t, y, &devRouting);
  const double e = ndtest::maxRelError(got, ref);
  std::printf("  %s %s weights: max |device - cpu| / max |cpu| = %.3g (tolerance %g)\n", c.family.c_str(),
              dtypeName(c.weightDType), e, tol);
  CHECK(e <= tol);
  CHECK(devRouting.size() == cpuRouting.size());
  size_t differentChoices = 0, total = 0;
  for (size_t l = 0; l < devRouting.size() && l < cpuRouting.size(); ++l) {
    CHECK(devRouting[l].choices.size() == cpuRouting[l].choices.size());
    for (size_t i = 0; i < devRouting[l].choices.size() && i < cpuRouting[l].choices.size(); ++i, ++total)
      differentChoices += devRouting[l].choices[i] != cpuRouting[l].choices[i];
    CHECK_NEAR(devRouting[l].entropy, cpuRouting[l].entropy, 1e-3);
  }
  if (total) {
    std::printf("    expert choices differing from the CPU's: %zu of %zu\n", differentChoices, total);
    // f32: the same choices; 16-bit activations may flip a near-tie now and then.
    CHECK(c.weightDType == DType::F32 ? differentChoices == 0 : differentChoices * 100 <= total);
  }
}

ND_TEST(dit_device_forward_f16_matches_cpu) {
  // f16 weights: GEMMs and attention in f16 with f32 accumulation against the CPU's f32 compute.
  auto m = DitModel::load(kShapes, "auto", {});
  CHECK(ditDeviceComputeType(m->config()) == DType::F16);
  compareWithCpu(*m, 2e-2);
}

// A built-in model with every tensor widened to f32 (heads 3, as the cards say).
std::shared_ptr<DitModel> widenedToF32(const char* source) {
  auto f16 = io::SafetensorsFile::open(source);
  std::list<std::vector<float>> store;
  std::vector<io::StWriteEntry> entries;
  for (const io::StTensorInfo& ti : f16->header().tensors) {
    store.emplace_back(size_t(ti.numel()));
    f16->readInto(ti, store.back().data(), DType::F32);
    entries.push_back({ti.name, DType::F32, ti.shape, store.back().data()});
  }
  const std::string path =
      (std::filesystem::temp_directory_path() / ("nd-emulated-dit-" + std::to_string(::getpid()) + ".safetensors")).string();
  io::writeSafetensors(path, entries);
  DitOverrides ov;
  ov.heads = 3;
  ov.topK = 2;
  auto m = DitModel::load(path, "auto", ov);
  std::remove(path.c_str());
  return m;
}

ND_TEST(dit_device_forward_f32_matches_cpu) {
  // The same model widened to f32: the SIMT kernels against the CPU's f32 kernels.
  auto m = widenedToF32(kShapes);
  CHECK(ditDeviceComputeType(m->config()) == DType::F32);
  compareWithCpu(*m, 1e-5);
}

ND_TEST(dit_moe_device_forward_matches_cpu) {
  // The DiT-MoE: routing, grouped expert GEMMs and the combine on the device, f16 and f32.
  auto m = DitModel::load(kShapesMoe, "auto", {});
  CHECK(m->config().family == "dit-moe");
  compareWithCpu(*m, 2e-2, 16);
  compareWithCpu(*widenedToF32(kShapesMoe), 1e-5, 16);
}

}  // namespace

ND_TEST_MAIN()
