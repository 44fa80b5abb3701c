// castCpu: converts n elements between any two dtypes.
// Semantics (shared with castCuda): float->float rounds to nearest even (f16/bf16 overflow -> inf,
// NaN stays NaN); float->integer truncates toward zero and saturates to the target range, NaN -> 0;
// integer->integer saturates; anything->bool is (x != 0); bool->anything is 0 or 1.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace nd {
class ThreadPool;

void castCpu(const void* src, DType srcType, void* dst, DType dstType, int64_t n, ThreadPool* pool);

}  // namespace nd
