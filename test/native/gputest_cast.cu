// castCuda must reproduce castCpu bit for bit for all 64 dtype pairs, on inputs chosen to hit every
// rounding and saturation edge (all f16/bf16 patterns, NaN payloads, subnormals, ties, int extremes).
// Exit status: 0 all passed, 1 a mismatch or error, 77 no CUDA device (ctest SKIP_RETURN_CODE).
// Build (after `cmake --build build-cast-cu --target nd_core` with -DND_CUDA=ON):
//   nvcc -std=c++20 -O2 -I native test/native/gputest_cast.cu build-cast-cu/libnd_core.a \
//        build-cast-cu/libnd_cuda.a -o build-cast-cu/gputest_cast
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/dtype.h"
#include "core/error.h"
#include "kernels/cpu/cast.h"
#include "kernels/cuda/cast.cuh"

#include "gpu_buffer.cuh"

using namespace nd;

namespace {

using ndtest::DeviceBuffer;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail(ErrorCode::Device, std::string(what) + ": " + cudaGetErrorString(e));
}

template <typename T, typename U>
T bitsAs(U u) {
  static_assert(sizeof(T) == sizeof(U));
  T t;
  std::memcpy(&t, &u, sizeof t);
  return t;
}

template <typename T>
std::vector<uint8_t> bytesOf(const std::vector<T>& v) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(v.data());
  return std::vector<uint8_t>(p, p + v.size() * sizeof(T));
}

// Source values for each dtype, as raw bytes.
std::vector<uint8_t> inputs(DType t) {
  std::mt19937_64 rng(0xca570000u + unsigned(t));
  switch (t) {
    case DType::F16:
    case DType::BF16: {
      std::vector<uint16_t> v(65536);
      for (uint32_t i = 0; i < 65536; ++i) v[i] = uint16_t(i);
      return bytesOf(v);
    }
    case DType::F32: {
      std::vector<float> v;
      for (int i = 0; i < (1 << 20); ++i) v.push_back(bitsAs<float>(uint32_t(rng())));
      const uint32_t special[] = {0x7f800001u, 0x7fa00000u, 0xffc00001u, 0x7fffffffu, 0x7f800000u,
                                  0xff800000u, 0x00000001u, 0x807fffffu, 0x33000000u, 0x33000001u,
                                  0x33800000u, 0x387fe000u, 0x38800000u, 0x477fefffu, 0x477ff000u,
                                  0x7f7fffffu, 0x3f808000u, 0x3f818000u, 0x4f000000u, 0xdf000000u,
                                  0x5f000000u, 0x80000000u, 0xbf7fffffu, 0x437f8000u};
      for (uint32_t u : special) v.push_back(bitsAs<float>(u));
      for (int i = 0; i < 100000; ++i) {  // near f16/bf16 ties
        uint32_t u = (uint32_t(rng()) & ~0x1fffu) | 0x1000u;
        v.push_back(bitsAs<float>(u + uint32_t(int(rng() % 3) - 1)));
        v.push_back(bitsAs<float>(((uint32_t(rng()) & ~0xffffu) | 0x8000u) + uint32_t(int(rng() % 3) - 1)));
      }
      return bytesOf(v);
    }
    case DType::F64: {
      std::vector<double> v;
      for (int i = 0; i < (1 << 19); ++i) v.push_back(bitsAs<double>(uint64_t(rng())));
      for (int i = 0; i < (1 << 18); ++i) v.push_back(double(bitsAs<float>(uint32_t(rng()))));
      for (int i = 0; i < (1 << 18); ++i) {  // f16/bf16/f32 ties nudged far below an f32 ulp
        uint64_t u = (uint64_t(rng()) & ~((uint64_t(1) << 42) - 1)) | (uint64_t(1) << 41);
        if (rng() & 1) u = (uint64_t(rng()) & ~((uint64_t(1) << 45) - 1)) | (uint64_t(1) << 44);
        v.push_back(bitsAs<double>(u + uint64_t(int64_t(rng() % 2001) - 1000)));
      }
      const uint64_t special[] = {0x7ff0000000000001ull, 0xfff4000000000000ull, 0x7ff0000000000000ull,
                                  0x0000000000000001ull, 0x8010000000000000ull, 0x43e0000000000000ull,
                                  0xc3e0000000000000ull, 0x43dfffffffffffffull, 0x41dfffffffe00000ull,
                                  0xc1e0000000200000ull, 0x406fe00000000000ull, 0x7fefffffffffffffull};
      for (uint64_t u : special) v.push_back(bitsAs<double>(u));
      return bytesOf(v);
    }
    case DType::I32: {
      std::vector<int32_t> v = {0, 1, -1, 255, 256, 2049, 2051, 65504, 65519, 65520, 16777217, INT32_MAX, INT32_MIN};
      for (int i = 0; i < (1 << 18); ++i) v.push_back(int32_t(uint32_t(rng()) >> (rng() % 32)));
      return bytesOf(v);
    }
    case DType::I64: {
      std::vector<int64_t> v = {0, 1, -1, 255, 256, INT64_MAX, INT64_MIN, 4629700416936869889ll,
                                -4629700416936869889ll, 1152921573326323713ll, 9007199254740993ll};
      for (int i = 0; i < (1 << 18); ++i) v.push_back(int64_t(uint64_t(rng()) >> (rng() % 64)));
      for (int i = 0; i < (1 << 16); ++i) {  // 8/11/24-bit ties with a sticky bit below double precision
        const int bits[] = {8, 11, 24};
        int p = bits[rng() % 3], top = 54 + int(rng() % 9);
        uint64_t u = (uint64_t(1) << top) | ((rng() & ((uint64_t(1) << (p - 1)) - 1)) << (top - p + 1)) |
                     (uint64_t(1) << (top - p)) | 1;
        v.push_back(rng() & 1 ? int64_t(u) : -int64_t(u));
      }
      return bytesOf(v);
    }
    case DType::U8: {
      std::vector<uint8_t> v(256);
      for (int i = 0; i < 256; ++i) v[i] = uint8_t(i);
      return v;
    }
    case DType::Bool: return {0, 1, 2, 255, 1, 0, 128};
  }
  return {};
}

}  // namespace

int main() {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    std::printf("no CUDA device (%s): skipped\n", err != cudaSuccess ? cudaGetErrorString(err) : "0 devices");
    return 77;
  }
  int passed = 0, failed = 0;
  try {
    std::printf("cpu reference isa: %s\n", isaName(activeIsa()));
    for (DType st : kAllDTypes) {
      std::vector<uint8_t> src = inputs(st);
      int64_t n = int64_t(src.size() / dtypeSize(st));
      DeviceBuffer dsrc(src.size());
      check(cudaMemcpy(dsrc.p, src.data(), src.size(), cudaMemcpyHostToDevice), "cudaMemcpy H2D");
      for (DType dt : kAllDTypes) {
        size_t outBytes = size_t(n) * dtypeSize(dt);
        std::vector<uint8_t> want(outBytes), got(outBytes, 0xee);
        castCpu(src.data(), st, want.data(), dt, n, nullptr);
        DeviceBuffer ddst(outBytes);
        check(cudaMemset(ddst.p, 0xee, outBytes), "cudaMemset");
        castCuda(0, dsrc.p, st, ddst.p, dt, n);
        check(cudaDeviceSynchronize(), "kernel");
        check(cudaMemcpy(got.data(), ddst.p, outBytes, cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
        int64_t firstBad = -1, bad = 0;
        size_t es = dtypeSize(dt);
        for (int64_t i = 0; i < n; ++i)
          if (std::memcmp(want.data() + i * es, got.data() + i * es, es) != 0) {
            if (firstBad < 0) firstBad = i;
            ++bad;
          }
        if (bad == 0) {
          ++passed;
          continue;
        }
        ++failed;
        uint64_t in = 0, w = 0, g = 0;
        std::memcpy(&in, src.data() + firstBad * dtypeSize(st), dtypeSize(st));
        std::memcpy(&w, want.data() + firstBad * es, es);
        std::memcpy(&g, got.data() + firstBad * es, es);
        std::printf("FAIL %s -> %s: %lld of %lld differ; first at %lld: input 0x%llx cpu 0x%llx gpu 0x%llx\n",
                    dtypeName(st), dtypeName(dt), (long long)bad, (long long)n, (long long)firstBad,
                    (unsigned long long)in, (unsigned long long)w, (unsigned long long)g);
      }
    }
    // Argument handling matches castCpu.
    bool threw = false;
    try {
      castCuda(0, nullptr, DType::F32, nullptr, DType::F16, -1);
    } catch (const Error& e) {
      threw = e.code() == ErrorCode::Arg;
    }
    castCuda(0, nullptr, DType::F32, nullptr, DType::F16, 0);
    if (threw) ++passed; else { ++failed; std::printf("FAIL castCuda(n=-1) did not throw ERR_ND_ARG\n"); }
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    ++failed;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
