#include "models/model_denoiser.h"

#include "core/tensor.h"
#include "models/dit_on_device.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/guidance.h"

namespace nd::models {

DitDenoiser::DitDenoiser(std::vector<TimestepExpert> experts, std::vector<int64_t> labels, GuidanceOptions guidance,
                         int64_t channels, int64_t height, int64_t width)
    : experts_(std::move(experts)), labels_(std::move(labels)), guidance_(guidance), channels_(channels),
      height_(height), width_(width) {
  ND_REQUIRE(!experts_.empty(), Arg, "A model denoiser needs at least one model");
  ND_REQUIRE(!labels_.empty(), Arg, "A model denoiser needs at least one class label");
  ND_REQUIRE(std::isfinite(guidance_.scale), Arg, "guidanceScale must be finite");
  for (size_t i = 0; i < experts_.size(); ++i) {
    const TimestepExpert& e = experts_[i];
    ND_REQUIRE(e.model != nullptr, Disposed, "Timestep expert " + std::to_string(i) + " was disposed");
    const DitConfig& c = e.model->config();
    // +-infinity is allowed: a single model serves every time.
    ND_REQUIRE(!std::isnan(e.from) && !std::isnan(e.to) && e.from <= e.to, Arg,
               "Timestep expert " + std::to_string(i) + " needs from <= to");
    ND_REQUIRE(c.inChannels == channels_, Shape,
               "The model expects " + std::to_string(c.inChannels) + " latent channels; the latent has " + std::to_string(channels_));
    ND_REQUIRE(height_ % c.patch == 0 && width_ % c.patch == 0 && height_ > 0 && width_ > 0, Shape,
               "The latent's " + std::to_string(height_) + " x " + std::to_string(width_) +
                   " is not a positive multiple of the patch size " + std::to_string(c.patch));
    for (int64_t y : labels_)
      ND_REQUIRE(y >= 0 && y <= c.numClasses, Arg,
                 "Class label " + std::to_string(y) + " is outside [0, " + std::to_string(c.numClasses) + "]");
    int g = guidance_.guidedChannels < 0 ? c.guidedChannels : guidance_.guidedChannels;
    ND_REQUIRE(g >= 0 && g <= channels_, Arg, "guidedChannels must be in [0, " + std::to_string(channels_) + "]");
  }
}

int64_t DitDenoiser::expertAt(double t) const {
  for (size_t i = 0; i < experts_.size(); ++i)
    if (t >= experts_[i].from && t <= experts_[i].to) return int64_t(i);
  throw Error(ErrorCode::Arg, "No timestep expert covers t = " + numberText(t));
}

bool DitDenoiser::guidedAt(double t) const {
  const bool inInterval = (guidance_.intervalFrom < 0 && guidance_.intervalTo < 0) ||
                          (t >= guidance_.intervalFrom && t <= guidance_.intervalTo);
  return guidance_.scale != 1 && inInterval;
}

int64_t DitDenoiser::guidedChannelsOf(const DitConfig& c) const {
  return guidance_.guidedChannels < 0 ? c.guidedChannels : guidance_.guidedChannels;
}

std::optional<Device> DitDenoiser::commonDevice() const {
  std::optional<Device> d;
  for (const TimestepExpert& e : experts_) {
    if (!e.onDevice) return std::nullopt;
    if (d && *d != e.onDevice->device()) return std::nullopt;
    d = e.onDevice->device();
  }
  return d;
}

void DitDenoiser::denoise(const float* x, double t, double modelT, float* out, ThreadPool* pool,
                          std::vector<RoutingRecord>* routing) const {
  const int64_t e = expertAt(t);
  const DitModel& m = *experts_[size_t(e)].model;
  const DitConfig& c = m.config();
  const int64_t n = batch(), per = dim(), hw = height_ * width_, oc = c.outChannels;
  const bool guided = guidedAt(t);
  const int64_t rows = guided ? 2 * n : n;
  std::vector<float> xs(static_cast<size_t>(rows * per)), ts(static_cast<size_t>(rows), float(modelT)), o(static_cast<size_t>(rows * oc * hw));
  std::vector<int64_t> ys(static_cast<size_t>(rows));
  std::memcpy(xs.data(), x, size_t(n * per) * sizeof(float));
  for (int64_t i = 0; i < n; ++i) ys[size_t(i)] = labels_[size_t(i)];
  if (guided) {
    std::memcpy(xs.data() + n * per, x, size_t(n * per) * sizeof(float));
    for (int64_t i = 0; i < n; ++i) ys[size_t(n + i)] = c.numClasses;
  }
  DitRouting layers;
  if (const std::shared_ptr<DitOnDevice>& dev = experts_[size_t(e)].onDevice) {
    Tensor xh;
    xh.storage = Storage::wrapHost(xs.data(), xs.size() * sizeof(float), [] {});
    xh.shape = {rows, channels_, height_, width_};
    copyToHost(dev->forward(xh, ts.data(), ys.data(), routing ? &layers : nullptr), o.data());
  } else {
    m.forward(xs.data(), rows, height_, width_, ts.data(), ys.data(), o.data(), pool, routing ? &layers : nullptr);
  }
  classifierFreeGuidanceCpu(o.data(), n, oc, channels_, hw, guidedChannelsOf(c), float(guidance_.scale), guided, out);
  if (routing) routing->push_back(RoutingRecord{int64_t(routing->size()), t, modelT, e, std::move(layers)});
}

}  // namespace nd::models
