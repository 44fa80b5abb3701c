// DitDenoiser::denoiseOnDevice: the model denoiser for a sampling loop whose state is on the GPU.
#define ND_KERNEL_DECLARATIONS_ONLY  // host code: the kernel headers' entry points only
#include "core/cuda_backend.h"
#include "core/error.h"
#include "core/tensor.h"
#include "kernels/cuda/guidance.cuh"
#include "models/dit_on_device.h"
#include "models/model_denoiser.h"

namespace nd::models {

void DitDenoiser::denoiseOnDevice(const float* x, double t, double modelT, float* out,
                                  std::vector<RoutingRecord>* routing, void* stream) const {
  const int64_t e = expertAt(t);
  const std::shared_ptr<DitOnDevice>& dev = experts_[size_t(e)].onDevice;
  ND_REQUIRE(dev != nullptr, Device, "Timestep expert " + std::to_string(e) + " is not on a CUDA device");
  const DitConfig& c = dev->model().config();
  const int64_t n = batch(), per = dim(), hw = height_ * width_;
  const bool guided = guidedAt(t);
  const int64_t rows = guided ? 2 * n : n;
  cuda::setDevice(dev->device().index < 0 ? 0 : dev->device().index);
  // The conditional rows and (guided) the same latent again for the unconditional rows.
  Tensor xs = Tensor::empty({rows, channels_, height_, width_}, DType::F32, dev->device());
  std::vector<float> ts(static_cast<size_t>(rows), float(modelT));
  std::vector<int64_t> ys(static_cast<size_t>(rows), c.numClasses);
  for (int64_t i = 0; i < n; ++i) ys[size_t(i)] = labels_[size_t(i)];
  DitRouting layers;
  Tensor o;
  try {
    const size_t bytes = size_t(n * per) * sizeof(float);
    cuda::memcpyAsync(xs.data(), x, bytes, stream);
    if (guided) cuda::memcpyAsync(xs.ptr<float>() + n * per, x, bytes, stream);
    cuda::streamSynchronize(stream);  // the forward reads xs on the model's stream
    o = dev->forward(xs, ts.data(), ys.data(), routing ? &layers : nullptr);  // returns complete
    classifierFreeGuidanceCuda(o.ptr<float>(), n, c.outChannels, channels_, hw, guidedChannelsOf(c),
                               float(guidance_.scale), guided, out, stream);
    cuda::streamSynchronize(stream);  // `o` and `xs` go back to the allocator when this returns
  } catch (...) {
    try {
      cuda::streamSynchronize(stream);  // nothing may still write into xs or read o once they are freed
    } catch (...) {
    }
    throw;
  }
  if (routing) routing->push_back(RoutingRecord{int64_t(routing->size()), t, modelT, e, std::move(layers)});
}

}  // namespace nd::models
