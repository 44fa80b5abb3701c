// castCuda: the CUDA twin of castCpu (kernels/cpu/cast.h), same signature and same bits; the
// per-element rules live in core/cast_value.h.
#pragma once
#include <cstdint>

#include "core/cast_value.h"
#include "core/dtype.h"

namespace nd {

// Converts n elements of device memory on `device`, asynchronously on that device's default stream
// (same-type casts are a device-to-device copy). Throws ERR_ND_ARG for n < 0, ERR_ND_DEVICE on a
// CUDA failure. Only defined in builds with the CUDA backend.
void castCuda(int device, const void* src, DType srcType, void* dst, DType dstType, int64_t n);

}  // namespace nd
