#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/cuda_backend.h"
#include "core/error.h"
#include "kernels/cpu/sincos_embedding.h"
#include "models/dit_device.h"
#include "models/dit_on_device.h"

namespace nd::models {

struct DitDeviceState {
  std::vector<Tensor> uploads;  // keep the device copies of the weights alive
  int64_t weightBytes = 0;
  DitDeviceWeights weights;
  void* stream = nullptr;
  int device = 0;
  bool graphs = true;
  // The arena of the last shape, and its captured forward.
  int64_t n = 0, h = 0, w = 0;
  Tensor arena;
  DitDeviceBuffers bufs;
  void* graph = nullptr;
  bool warmedUp = false;
  ~DitDeviceState() {
    cuda::graphDestroy(graph);
    cuda::streamDestroy(device, stream);
  }
};

std::shared_ptr<DitOnDevice> DitOnDevice::create(std::shared_ptr<const DitModel> model, Device device) {
  ND_REQUIRE(model != nullptr, Arg, "DitOnDevice: no model");
  ND_REQUIRE(device.isCuda(), Device, "DitOnDevice needs a CUDA device, got " + device.str());
  std::shared_ptr<DitOnDevice> d(new DitOnDevice());
  d->model_ = model;
  d->device_ = device;
  d->state_ = std::make_unique<DitDeviceState>();
  DitDeviceState& s = *d->state_;
  s.device = device.index < 0 ? 0 : device.index;
  const char* env = std::getenv("ND_CUDA_GRAPHS");
  s.graphs = !(env && std::strcmp(env, "0") == 0);
  DeviceUpload upload = [&s, device](const void* host, size_t bytes) -> const void* {
    Tensor t = Tensor::empty({int64_t(bytes)}, DType::U8, device);
    cuda::memcpyHostToDevice(s.device, t.data(), host, bytes);
    s.weightBytes += int64_t(bytes);
    s.uploads.push_back(t);
    return t.data();
  };
  s.weights = uploadDitWeights(*model, upload);
  s.stream = cuda::streamCreate(s.device);
  return d;
}

DitOnDevice::~DitOnDevice() = default;

DType DitOnDevice::computeType() const { return state_->weights.act; }
int64_t DitOnDevice::deviceWeightBytes() const { return state_->weightBytes; }

void* DitOnDevice::stream() const { return state_->stream; }

void DitOnDevice::setGraphs(bool on) {
  std::lock_guard<std::mutex> lk(mutex_);
  state_->graphs = on;
}

Tensor DitOnDevice::forward(const Tensor& x, const float* t, const int64_t* y, DitRouting* routing) {
  const DitConfig& c = model_->config();
  ND_REQUIRE(x.dtype == DType::F32 && x.shape.size() == 4 && x.shape[1] == c.inChannels, Shape,
             "Expected x of shape [N, " + std::to_string(c.inChannels) + ", H, W] in f32");
  ND_REQUIRE(x.device().isCpu() || x.device() == device_, Device,
             "x is on " + x.device().str() + "; the model is on " + device_.str());
  const int64_t n = x.shape[0], h = x.shape[2], w = x.shape[3];
  ND_REQUIRE(n >= 1, Shape, "forward() needs a batch of at least one sample");
  ND_REQUIRE(h >= c.patch && w >= c.patch && h % c.patch == 0 && w % c.patch == 0, Shape,
             "The latent's height and width must be positive multiples of the patch size " + std::to_string(c.patch));
  for (int64_t i = 0; i < n; ++i) {
    ND_REQUIRE(std::isfinite(t[i]), Arg, "t[" + std::to_string(i) + "] is not finite");
    ND_REQUIRE(y[i] >= 0 && y[i] <= c.numClasses, Arg,
               "y[" + std::to_string(i) + "] = " + std::to_string(y[i]) + " is not a class label in [0, " +
                   std::to_string(c.numClasses) + "]");
  }
  std::lock_guard<std::mutex> lk(mutex_);
  DitDeviceState& s = *state_;
  cuda::setDevice(s.device);
  if (n != s.n || h != s.h || w != s.w) {
    cuda::graphDestroy(s.graph);
    s.graph = nullptr;
    s.warmedUp = false;
    s.arena = Tensor();
    s.n = s.h = s.w = 0;
    DitDeviceLayout layout = ditDeviceLayout(c, s.weights.act, n, h, w);
    s.arena = Tensor::empty({int64_t(layout.bytes)}, DType::U8, device_);
    s.bufs = layout.carve(s.arena.data());
    std::vector<float> pos(static_cast<size_t>((h / c.patch) * (w / c.patch) * c.hidden));
    sincosPosEmbed2d(h / c.patch, w / c.patch, c.hidden, pos.data());
    cuda::memcpyHostToDevice(s.device, s.bufs.pos, pos.data(), pos.size() * sizeof(float));
    s.n = n;
    s.h = h;
    s.w = w;
  }
  cuda::memcpyAsync(s.bufs.t, t, size_t(n) * sizeof(float), s.stream);
  cuda::memcpyAsync(s.bufs.y, y, size_t(n) * sizeof(int64_t), s.stream);
  cuda::memcpyAsync(s.bufs.x, x.data(), x.nbytes(), s.stream);
  auto run = [&] { ditDeviceForward(c, s.weights, s.bufs, n, h, w, s.stream); };
  if (!s.graphs || !s.warmedUp) {
    run();  // the first call of a shape runs eagerly (it also settles the kernels' lazy setup)
    s.warmedUp = true;
  } else {
    if (!s.graph) s.graph = cuda::graphCapture(s.stream, run);
    cuda::graphLaunch(s.graph, s.stream);
  }
  Tensor out = Tensor::empty({n, c.outChannels, h, w}, DType::F32, device_);
  cuda::memcpyAsync(out.data(), s.bufs.out, out.nbytes(), s.stream);
  cuda::streamSynchronize(s.stream);  // t and y are the caller's host memory
  if (routing && c.family == "dit-moe") {
    const int64_t rows = n * (h / c.patch) * (w / c.patch), L = c.depth, E = c.experts, K = c.topK;
    std::vector<int32_t> counts(static_cast<size_t>(L * E)), dropped(static_cast<size_t>(L)), idx(static_cast<size_t>(L * rows * K));
    std::vector<float> entropy(static_cast<size_t>(L * rows));
    std::vector<uint8_t> kept(static_cast<size_t>(L * rows * K));
    cuda::memcpyDeviceToHost(s.device, counts.data(), s.bufs.counts, counts.size() * 4);
    cuda::memcpyDeviceToHost(s.device, dropped.data(), s.bufs.dropped, dropped.size() * 4);
    cuda::memcpyDeviceToHost(s.device, idx.data(), s.bufs.idx, idx.size() * 4);
    cuda::memcpyDeviceToHost(s.device, entropy.data(), s.bufs.entropy, entropy.size() * 4);
    cuda::memcpyDeviceToHost(s.device, kept.data(), s.bufs.kept, kept.size());
    *routing = ditDeviceRouting(c, rows, counts.data(), dropped.data(), entropy.data(), idx.data(), kept.data());
  }
  return out;
}

}  // namespace nd::models
