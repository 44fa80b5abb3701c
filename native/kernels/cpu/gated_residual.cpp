#include "kernels/cpu/gated_residual.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/model_kernels_avx512.h"
#include "kernels/cpu/model_kernels_impl.h"

namespace nd {

namespace {

void checkArgs(const float* h, const float* y, int64_t batch, int64_t tokens, int64_t dim, int64_t gateStride) {
  ND_REQUIRE(batch >= 0 && tokens >= 0 && dim >= 0, Arg,
             "gatedResidual: sizes must be >= 0 (batch " + std::to_string(batch) + ", tokens " +
                 std::to_string(tokens) + ", dim " + std::to_string(dim) + ")");
  int64_t rows = 0, total = 0;
  ND_REQUIRE(!__builtin_mul_overflow(batch, tokens, &rows) && !__builtin_mul_overflow(rows, dim, &total), Arg,
             "gatedResidual: batch * tokens * dim overflows");
  ND_REQUIRE(gateStride >= 0, Arg, "gatedResidual: gateStride must be >= 0, received " + std::to_string(gateStride));
  if (total > 0) ND_REQUIRE(h && y, Arg, "gatedResidual: h and y must not be null");
}

}  // namespace

void gatedResidualCpu(float* h, const float* y, int64_t batch, int64_t tokens, int64_t dim,
                      const float* gate, int64_t gateStride, ThreadPool* pool) {
  checkArgs(h, y, batch, tokens, dim, gateStride);
  int64_t rows = batch * tokens;
  if (rows == 0 || dim == 0) return;
  bool avx = mk::modelKernelsUseAvx512();
  auto body = [&](int64_t r0, int64_t r1) {
    if (avx)
      mk::gatedResidualRowsAvx512(h, y, r0, r1, tokens, dim, gate, gateStride);
    else
      mk::gatedResidualRows(h, y, r0, r1, tokens, dim, gate, gateStride);
  };
  int64_t grain = std::max<int64_t>(1, 32768 / dim);
  parallelForOrInline(pool, rows, grain, body);
}

void gatedResidualReference(float* h, const float* y, int64_t batch, int64_t tokens, int64_t dim,
                            const float* gate, int64_t gateStride) {
  checkArgs(h, y, batch, tokens, dim, gateStride);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t i = 0; i < dim; ++i) {
        int64_t at = (b * tokens + t) * dim + i;
        double g = gate ? double(gate[b * gateStride + i]) : 1.0;
        h[at] = float(double(h[at]) + g * double(y[at]));
      }
}

}  // namespace nd
