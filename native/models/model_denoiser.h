// A DiT (or several DiTs, each owning an interval of the noise schedule: eDiff-I style timestep
// experts) as the denoiser of a sampling loop: the class labels fixed for the run, classifier-free
// guidance with the conditional and unconditional halves batched into one forward, the guided
// channels of the model's convention, and the learned-sigma channels dropped. Its output is what the
// model predicts for the latent channels (eps for DiT, the velocity for rectified-flow DiT-MoE).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "core/device.h"
#include "models/dit.h"

namespace nd {
class ThreadPool;
}

namespace nd::models {

class DitOnDevice;

struct TimestepExpert {
  std::shared_ptr<const DitModel> model;
  // Set when the model runs on a CUDA device: the forward goes there (the latent stays on the host).
  std::shared_ptr<DitOnDevice> onDevice;
  double from = 0, to = 0;  // schedule times: the expert serves from <= t <= to
};

struct RoutingRecord {
  int64_t evaluation = 0;  // index of the model evaluation in the run
  double t = 0, modelT = 0;
  int64_t expert = 0;      // which timestep expert ran
  DitRouting layers;       // per MoE layer (empty for a dense model)
};

struct GuidanceOptions {
  double scale = 1;         // 1: no guidance (one forward of the conditional batch)
  int guidedChannels = -1;  // -1: the model's convention (3 original, all for diffusers)
  double intervalFrom = -1, intervalTo = -1;  // guidance only for t in [from, to] (both < 0: always)
};

class DitDenoiser {
 public:
  // labels: one class per sample (numClasses = unconditional); channels/height/width: the latent.
  DitDenoiser(std::vector<TimestepExpert> experts, std::vector<int64_t> labels, GuidanceOptions guidance,
              int64_t channels, int64_t height, int64_t width);

  int64_t batch() const { return int64_t(labels_.size()); }
  int64_t dim() const { return channels_ * height_ * width_; }
  // The expert serving schedule time t (throws ERR_ND_ARG when none does).
  int64_t expertAt(double t) const;
  // x, out: batch x dim. modelT: the timestep the network sees (schedule.modelTimestep(t)).
  void denoise(const float* x, double t, double modelT, float* out, ThreadPool* pool,
               std::vector<RoutingRecord>* routing) const;

  // The CUDA device every expert runs on when they all run on one (nullopt otherwise): a sampling
  // loop can then keep its state there and call denoiseOnDevice.
  std::optional<Device> commonDevice() const;
  // denoise() with x and out (batch x dim f32) on commonDevice(): the CFG batch is assembled and
  // combined on the device (classifierFreeGuidanceCuda) on `stream` (the sampler's: the model's own
  // stream belongs to its forward, under its lock); nothing crosses to the host but the routing
  // statistics. x must be complete when called; returns when out is.
  void denoiseOnDevice(const float* x, double t, double modelT, float* out, std::vector<RoutingRecord>* routing,
                       void* stream) const;

 private:
  bool guidedAt(double t) const;
  int64_t guidedChannelsOf(const DitConfig& c) const;

  std::vector<TimestepExpert> experts_;
  std::vector<int64_t> labels_;
  GuidanceOptions guidance_;
  int64_t channels_, height_, width_;
};

}  // namespace nd::models
