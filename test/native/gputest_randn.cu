// randnCuda / randUniformCuda must reproduce randnCpu / randUniformCpu bit for bit (core/philox.h).
// Exit status: 0 all passed, 1 a mismatch or error, 77 no CUDA device (ctest SKIP_RETURN_CODE).
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "kernels/cpu/randn.h"
#include "kernels/cuda/randn.cuh"

#include "gpu_buffer.cuh"

using namespace nd;

namespace {

using ndtest::DeviceBuffer;

const char* name(DType t) { return dtypeName(t); }

struct Case {
  int64_t batch, perSample;
  uint64_t stream;
};

int passed = 0, failed = 0;

void runCase(bool normal, DType t, const Case& c, const std::vector<uint64_t>& seeds) {
  const size_t es = dtypeSize(t), n = size_t(c.batch * c.perSample), bytes = n * es;
  char label[160];
  std::snprintf(label, sizeof label, "%s %s batch=%lld perSample=%lld stream=%llu seed0=%llx",
                normal ? "randn" : "uniform", name(t), (long long)c.batch, (long long)c.perSample,
                (unsigned long long)c.stream, (unsigned long long)seeds[0]);
  try {
    std::vector<uint8_t> cpu(bytes), gpu(bytes);
    DeviceBuffer d(bytes);
    if (normal) {
      randnCuda(0, d.p, t, c.batch, c.perSample, seeds.data(), c.stream);
      randnCpu(cpu.data(), t, c.batch, c.perSample, seeds.data(), c.stream, nullptr);
    } else {
      randUniformCuda(0, d.p, t, c.batch, c.perSample, seeds.data(), c.stream);
      randUniformCpu(cpu.data(), t, c.batch, c.perSample, seeds.data(), c.stream, nullptr);
    }
    cudaError_t e = cudaMemcpy(gpu.data(), d.p, bytes, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) fail(ErrorCode::Device, std::string("cudaMemcpy: ") + cudaGetErrorString(e));
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; ++i) {
      if (std::memcmp(&cpu[i * es], &gpu[i * es], es) != 0) {
        if (bad++ == 0) first = i;
      }
    }
    if (bad == 0) {
      ++passed;
      return;
    }
    ++failed;
    uint64_t a = 0, b = 0;
    std::memcpy(&a, &cpu[first * es], es);
    std::memcpy(&b, &gpu[first * es], es);
    std::printf("FAIL %s: %zu of %zu elements differ; first at %zu: cpu 0x%llx gpu 0x%llx\n", label, bad,
                n, first, (unsigned long long)a, (unsigned long long)b);
  } catch (const Error& e) {
    ++failed;
    std::printf("FAIL %s: %s: %s\n", label, errorCodeName(e.code()), e.what());
  }
}

}  // namespace

int main() {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    std::printf("no CUDA device (%s): skipped\n", e != cudaSuccess ? cudaGetErrorString(e) : "count 0");
    return 77;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
    std::printf("device 0: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);

  const std::vector<Case> cases = {
      {1, 1, 0},       {1, 3, 0},        {1, 4, 0},        {1, 5, 1},         {2, 7, 0},
      {3, 1001, 0},    {4, 16384, 0},    {2, 4099, 12345}, {130, 5, 0},       // > 64 seeds: 3 launches
      {1, (1 << 21) + 3, 0},             {1, 64, 0xfedcba9876543210ull},
  };
  const uint64_t seedBases[] = {0, 1, 42, 0xffffffffffffffffull, 0x0123456789abcdefull};
  for (uint64_t base : seedBases) {
    for (const Case& c : cases) {
      std::vector<uint64_t> seeds(size_t(c.batch));
      for (size_t i = 0; i < seeds.size(); ++i) seeds[i] = base + i * 0x9E3779B97F4A7C15ull;
      for (DType t : {DType::F32, DType::F64, DType::F16, DType::BF16}) {
        runCase(true, t, c, seeds);
        runCase(false, t, c, seeds);
      }
    }
  }
  // The argument rules are the CPU path's.
  try {
    uint64_t s = 1;
    randnCuda(0, nullptr, DType::I32, 1, 4, &s, 0);
    ++failed;
    std::printf("FAIL randnCuda accepted dtype i32\n");
  } catch (const Error& err) {
    if (err.code() == ErrorCode::DType) ++passed;
    else { ++failed; std::printf("FAIL randnCuda i32: wrong error %s\n", errorCodeName(err.code())); }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
