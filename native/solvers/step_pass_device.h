// The solver step pass on a CUDA device, measured against a device-to-device copy on the same stream
// (bench/cuda.mjs: "solver step overhead >= 0.6 x copy bandwidth"). Builds without CUDA throw
// ERR_ND_DEVICE.
#pragma once
#include <cstdint>

namespace nd {

struct StepPassDeviceTiming {
  double stepSeconds = 0;  // median of one dpmpp-2m-shaped pass: reads x, m, one history term; writes d and out
  double copySeconds = 0;  // median of a device-to-device copy of n floats
  int64_t stepBytes = 0;   // bytes the pass moves (5 n floats)
  int64_t copyBytes = 0;   // bytes the copy moves (2 n floats)
};

StepPassDeviceTiming benchmarkStepPassCuda(int device, int64_t n, int reps);

}  // namespace nd
