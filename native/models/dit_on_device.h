// A DiT whose weights live on a CUDA device: the upload, the per-shape activation arena, one stream
// per model, and the per-step forward captured once as a CUDA graph and replayed (the kernel sequence
// itself is models/dit_device.h). Builds without the CUDA backend get the same interface, and
// create() explains that there is no CUDA.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>

#include "core/device.h"
#include "core/tensor.h"
#include "models/dit.h"

namespace nd::models {

struct DitDeviceState;  // device-only members (weights, arena, stream, graph)

class DitOnDevice {
 public:
  // Uploads every weight (converted once to the compute dtype: bf16/f16 as stored, else f32).
  // ERR_ND_DEVICE without CUDA or for an unsupported model, ERR_ND_OOM when the device is full.
  static std::shared_ptr<DitOnDevice> create(std::shared_ptr<const DitModel> model, Device device);
  ~DitOnDevice();
  DitOnDevice(const DitOnDevice&) = delete;
  DitOnDevice& operator=(const DitOnDevice&) = delete;

  const DitModel& model() const { return *model_; }
  Device device() const { return device_; }
  DType computeType() const;
  int64_t deviceWeightBytes() const;

  // x: [n, C, h, w] f32 on the host or on this device; t, y: n host values (checked here);
  // returns [n, outC, h, w] f32 on this device. Calls on one model are serialised (one arena).
  // routing (DiT-MoE): the per-layer statistics, read back after the forward.
  Tensor forward(const Tensor& x, const float* t, const int64_t* y, DitRouting* routing = nullptr);

  // The model's stream: a sampler keeping its state on this device queues its passes here, behind
  // the forward that produced their input.
  void* stream() const;

  // Graph replay is on unless ND_CUDA_GRAPHS=0; tests turn it off to compare the two.
  void setGraphs(bool on);

 private:
  DitOnDevice() = default;
  std::shared_ptr<const DitModel> model_;
  Device device_;
  std::unique_ptr<DitDeviceState> state_;
  std::mutex mutex_;
};

}  // namespace nd::models
