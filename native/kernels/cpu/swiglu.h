// swigluCpu: silu(gate) * up, the gated activation of DiT-MoE's experts. The gate and up projections
// are computed into the two halves of one row ([gate | up], 2 * hidden floats), so one pass reads
// both and writes the hidden activation.
#pragma once
#include <cstdint>

namespace nd {
class ThreadPool;

// in: rows x (2 * hidden), row stride ldIn (>= 2 * hidden); out: rows x hidden, row stride ldOut.
void swigluCpu(const float* in, int64_t rows, int64_t hidden, int64_t ldIn, float* out, int64_t ldOut,
               ThreadPool* pool);
void swigluReference(const float* in, int64_t rows, int64_t hidden, int64_t ldIn, float* out,
                     int64_t ldOut);

}  // namespace nd
