#include "kernels/cpu/randn.h"

#include "core/cpu_features.h"
#include "core/philox.h"
#include "core/thread_pool.h"
#include "kernels/cpu/randn_avx2.h"

namespace nd {

namespace {

// Work is split by Philox block (four elements) across all samples, so a batch of one large
// sample parallelises as well as a batch of many small ones.
template <bool Normal>
void fillRandom(const char* op, void* out, DType dtype, int64_t batch, int64_t perSample,
                const uint64_t* seeds, uint64_t stream, ThreadPool* pool) {
  int64_t n = checkRandomArgs(op, out, dtype, batch, perSample, seeds);
  if (n == 0) return;
  const int64_t blocksPerSample = (perSample + 3) / 4;
  const int64_t totalBlocks = batch * blocksPerSample;
  const bool vectorNormals = Normal && activeIsa() == CpuIsa::Avx2;
  auto body = [&](int64_t begin, int64_t end) {
    int64_t sample = begin / blocksPerSample;
    if (vectorNormals) {
      // Four full blocks (eight Box-Muller pairs) per AVX2 call; partial blocks and leftovers take the
      // scalar path. Same values either way (see randn_avx2.h).
      int64_t g = begin;
      int64_t block = begin - sample * blocksPerSample;
      while (g < end) {
        const int64_t fullInSample = perSample / 4;  // blocks of this sample with all four lanes
        if (g + 3 < end && block + 3 < fullInSample) {
          double v[16];
          avx2::normalsOf4Blocks(seeds[sample], stream, uint64_t(block), v);
          const int64_t base = sample * perSample + block * 4;
          for (int l = 0; l < 16; ++l) storeRandom(out, dtype, base + l, v[l]);
          g += 4;
          block += 4;
        } else {
          const int64_t j0 = block * 4;
          const int lanes = int(perSample - j0 < 4 ? perSample - j0 : 4);
          double v[4];
          normalsFromBlock(philoxBlock(seeds[sample], stream, uint64_t(block)), v, lanes);
          const int64_t base = sample * perSample + j0;
          for (int l = 0; l < lanes; ++l) storeRandom(out, dtype, base + l, v[l]);
          ++g;
          ++block;
        }
        if (block == blocksPerSample) {
          block = 0;
          ++sample;
        }
      }
      return;
    }
    int64_t block = begin - sample * blocksPerSample;
    for (int64_t g = begin; g < end; ++g) {
      const int64_t j0 = block * 4;
      const int lanes = int(perSample - j0 < 4 ? perSample - j0 : 4);
      const Philox4x32 w = philoxBlock(seeds[sample], stream, uint64_t(block));
      double v[4];
      if constexpr (Normal) {
        normalsFromBlock(w, v, lanes);
      } else {
        for (int l = 0; l < lanes; ++l) v[l] = uniformFromBits(w.v[l]);
      }
      const int64_t base = sample * perSample + j0;
      for (int l = 0; l < lanes; ++l) storeRandom(out, dtype, base + l, v[l]);
      if (++block == blocksPerSample) {
        block = 0;
        ++sample;
      }
    }
  };
  // ~1k blocks is a few hundred microseconds of double-precision math: enough to amortise a task.
  if (pool) pool->parallelFor(totalBlocks, 1024, body);
  else body(0, totalBlocks);
}

}  // namespace

void randnCpu(void* out, DType dtype, int64_t batch, int64_t perSample, const uint64_t* seeds,
              uint64_t stream, ThreadPool* pool) {
  fillRandom<true>("randn", out, dtype, batch, perSample, seeds, stream, pool);
}

void randUniformCpu(void* out, DType dtype, int64_t batch, int64_t perSample, const uint64_t* seeds,
                    uint64_t stream, ThreadPool* pool) {
  fillRandom<false>("randUniform", out, dtype, batch, perSample, seeds, stream, pool);
}

}  // namespace nd
