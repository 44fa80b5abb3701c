#include "core/error.h"
#include "models/model_denoiser.h"

namespace nd::models {

void DitDenoiser::denoiseOnDevice(const float*, double, double, float*, std::vector<RoutingRecord>*, void*) const {
  fail(ErrorCode::Device, "This build of node-diffusion has no CUDA backend");
}

}  // namespace nd::models
