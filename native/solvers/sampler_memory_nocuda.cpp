#include "core/error.h"
#include "solvers/sampler_memory.h"

namespace nd::solvers {

std::shared_ptr<SamplerMemory<float>> makeCudaSamplerMemory(Device device, void*) {
  fail(ErrorCode::Device, "Sampler state on " + device.str() +
                              " needs the CUDA backend, and this build of node-diffusion has none");
}

}  // namespace nd::solvers
