// Seeded noise on a CUDA device, bit-identical to randnCpu / randUniformCpu (contract: core/philox.h).
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace nd {

// out: device pointer to batch * perSample elements of dtype (F32, F64, F16 or BF16, else
// ERR_ND_DTYPE) on `device`; sample i is drawn with seedsHost[i] (a host array, read before the
// call returns). The kernels are enqueued on the default stream and the call returns without
// waiting for them, like the other device kernels; execution errors surface at the next
// synchronising call (a device-to-host copy, cuda::synchronize).
void randnCuda(int device, void* out, DType dtype, int64_t batch, int64_t perSample,
               const uint64_t* seedsHost, uint64_t stream);
void randUniformCuda(int device, void* out, DType dtype, int64_t batch, int64_t perSample,
                     const uint64_t* seedsHost, uint64_t stream);

}  // namespace nd
