// Seeded noise on the CPU. Values follow the contract in core/philox.h and are bit-identical to
// randnCuda / randUniformCuda: element j of sample i depends only on (seeds[i], stream, j).
#pragma once
#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "core/error.h"

namespace nd {
class ThreadPool;

// out: batch * perSample elements of dtype (F32, F64, F16 or BF16, else ERR_ND_DTYPE), sample i
// (row-major, contiguous) drawn with seeds[i]. pool may be nullptr (runs on the calling thread).
void randnCpu(void* out, DType dtype, int64_t batch, int64_t perSample, const uint64_t* seeds,
              uint64_t stream, ThreadPool* pool);
// Same layout; element j is lane j % 4's uniform u = (x + 0.5) * 2^-32 in (0, 1), then rounded to
// dtype (f32/f16/bf16 can round up to exactly 1.0).
void randUniformCpu(void* out, DType dtype, int64_t batch, int64_t perSample, const uint64_t* seeds,
                    uint64_t stream, ThreadPool* pool);

// Argument checks shared with the CUDA entry points so both reject the same inputs the same way.
// Returns batch * perSample.
inline int64_t checkRandomArgs(const char* op, const void* out, DType dtype, int64_t batch,
                               int64_t perSample, const uint64_t* seeds) {
  ND_REQUIRE(dtype == DType::F32 || dtype == DType::F64 || dtype == DType::F16 || dtype == DType::BF16,
             DType, std::string(op) + ": output dtype must be f32, f64, f16 or bf16");
  ND_REQUIRE(batch >= 0 && perSample >= 0, Arg,
             std::string(op) + ": negative size (batch " + std::to_string(batch) + ", perSample " +
                 std::to_string(perSample) + ")");
  ND_REQUIRE(perSample == 0 || batch <= INT64_MAX / perSample, Arg,
             std::string(op) + ": batch * perSample overflows int64");
  int64_t n = batch * perSample;
  ND_REQUIRE(n == 0 || (out != nullptr && seeds != nullptr), Arg,
             std::string(op) + ": null output or seed pointer");
  return n;
}

}  // namespace nd
