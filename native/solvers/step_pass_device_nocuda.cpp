#include "core/error.h"
#include "solvers/step_pass_device.h"

namespace nd {
StepPassDeviceTiming benchmarkStepPassCuda(int, int64_t, int) {
  fail(ErrorCode::Device, "This build of node-diffusion has no CUDA backend");
}
}  // namespace nd
