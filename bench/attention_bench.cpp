// Microbenchmark of attentionCpu (AVX-512 and portable paths) against the machine's zmm FMA peak.
// Build and run from the repository root:
//   g++ -O3 -std=c++20 -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -mf16c -Inative
//       -c native/kernels/cpu/attention_avx512.cpp -o /tmp/attention_avx512.o &&
//   g++ -O3 -std=c++20 -Inative bench/attention_bench.cpp native/kernels/cpu/attention.cpp
//       /tmp/attention_avx512.o native/core/thread_pool.cpp native/core/cpu_features.cpp
//       native/core/error.cpp -lpthread -o /tmp/attention_bench && /tmp/attention_bench
// FLOPs counted: 4 * tokens^2 * headDim * heads * batch (q kᵀ and p v, 2 per multiply-add).
// Threads: 2 (env BENCH_THREADS overrides). Peak: independent zmm FMA chains on every thread.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/attention.h"

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// 16 independent zmm FMA chains in registers (written in asm so the compiler cannot spill or fold
// them): enough to cover FMA latency on two FMA ports. Inputs are 0, so no denormal slow path.
constexpr int kChains = 16;
__attribute__((target("avx512f"))) void fmaLoop(int64_t iters) {
  __asm__ volatile(
      "vpxord %%zmm0, %%zmm0, %%zmm0\n"
      "vpxord %%zmm1, %%zmm1, %%zmm1\n"
      "vpxord %%zmm2, %%zmm2, %%zmm2\n"
      "vpxord %%zmm3, %%zmm3, %%zmm3\n"
      "vpxord %%zmm4, %%zmm4, %%zmm4\n"
      "vpxord %%zmm5, %%zmm5, %%zmm5\n"
      "vpxord %%zmm6, %%zmm6, %%zmm6\n"
      "vpxord %%zmm7, %%zmm7, %%zmm7\n"
      "vpxord %%zmm8, %%zmm8, %%zmm8\n"
      "vpxord %%zmm9, %%zmm9, %%zmm9\n"
      "vpxord %%zmm10, %%zmm10, %%zmm10\n"
      "vpxord %%zmm11, %%zmm11, %%zmm11\n"
      "vpxord %%zmm12, %%zmm12, %%zmm12\n"
      "vpxord %%zmm13, %%zmm13, %%zmm13\n"
      "vpxord %%zmm14, %%zmm14, %%zmm14\n"
      "vpxord %%zmm15, %%zmm15, %%zmm15\n"
      "vpxord %%zmm16, %%zmm16, %%zmm16\n"
      "vpxord %%zmm17, %%zmm17, %%zmm17\n"
      "1:\n"
      "vfmadd231ps %%zmm17, %%zmm16, %%zmm0\n"
      "vfmadd231ps %%zmm17, %%zmm16, %%zmm1\n"
      "vfmadd231ps %%zmm17, %%zmm16, %%zmm2\n"
      "vfmadd231ps %%zmm17, %%zmm16, %%zmm3\n"
      "vfmadd231ps %%zmm17, %%zmm16, %%zmm4\n"
      "vfmadd231ps %%zmm17, %%zmm16, %%zmm5\n"
      "vfmadd231ps %%zmm17, %%zmm16, %%zmm6\n"
      "vfmadd231ps %%zmm17, %%zmm16, %%zmm7\n"
      "vfmadd231ps %%zmm17, %%zmm16, %%zmm8\n"
      "vfmadd231ps %%zmm17, %%zmm16, %%zmm9\n"
      "vfmadd231ps %%zmm17, %%zmm16, %%zmm10\n"
      "vfmadd231ps %%zmm17, %%zmm16, %%zmm11\n"
      "vfmadd231ps %%zmm17, %%zmm16, %%zmm12\n"
      "vfmadd231ps %%zmm17, %%zmm16, %%zmm13\n"
      "vfmadd231ps %%zmm17, %%zmm16, %%zmm14\n"
      "vfmadd231ps %%zmm17, %%zmm16, %%zmm15\n"
      "dec %0\n"
      "jnz 1b\n"
      "vzeroupper\n"
      : "+r"(iters)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "cc");
}

double peakGflops(int threads) {
  const int64_t iters = 50'000'000;
  std::vector<std::thread> ts;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    ts.clear();
    double t0 = now();
    for (int t = 0; t < threads; ++t) ts.emplace_back([&] { fmaLoop(iters); });
    for (auto& t : ts) t.join();
    double dt = now() - t0;
    best = std::max(best, double(threads) * double(iters) * kChains * 16 * 2 / dt * 1e-9);
  }
  return best;
}

using Fn = void (*)(const float*, int64_t, int64_t, int64_t, int64_t, float, float*, nd::ThreadPool*);

double measure(Fn fn, const std::vector<float>& qkv, int64_t tokens, int64_t heads, int64_t dim,
               std::vector<float>& out, nd::ThreadPool* pool, double minSeconds) {
  const double flops = 4.0 * double(tokens) * double(tokens) * double(dim) * double(heads);
  const float scale = float(1.0 / std::sqrt(double(dim)));
  fn(qkv.data(), 1, tokens, heads, dim, scale, out.data(), pool);  // warm-up
  double best = 1e30, total = 0;
  int reps = 0;
  while (total < minSeconds || reps < 2) {
    double t0 = now();
    fn(qkv.data(), 1, tokens, heads, dim, scale, out.data(), pool);
    double dt = now() - t0;
    best = std::min(best, dt);
    total += dt;
    ++reps;
  }
  return flops / best * 1e-9;
}

}  // namespace

int main() {
  int threads = 2;
  if (const char* e = std::getenv("BENCH_THREADS")) threads = std::max(1, std::atoi(e));
  nd::ThreadPool pool(threads);
  const bool fast = nd::detail::attentionAvx512Supported();
  const double peak = fast ? peakGflops(threads) : 0;
  std::printf("threads %d, zmm FMA peak %.1f GFLOP/s%s\n", threads, peak, fast ? "" : " (no AVX-512)");
  std::printf("%6s %5s %5s %14s %7s %14s\n", "tokens", "heads", "dim", "avx512 GFLOP/s", "of peak",
              "portable");
  const int64_t heads = 16;
  for (int64_t dim : {64, 72})
    for (int64_t tokens : {256, 1024, 4096}) {
      std::vector<float> qkv(size_t(tokens * 3 * heads * dim)), out(size_t(tokens * heads * dim));
      std::mt19937 rng(1);
      std::normal_distribution<float> nd(0.0f, 1.0f);
      for (float& v : qkv) v = nd(rng);
      double g = fast ? measure(&nd::detail::attentionAvx512, qkv, tokens, heads, dim, out, &pool, 1.0) : 0;
      double gp = tokens <= 1024 ? measure(&nd::detail::attentionPortable, qkv, tokens, heads, dim, out, &pool, 0.5)
                                 : 0;
      std::printf("%6lld %5lld %5lld %14.1f %6.1f%% %14.1f\n", (long long)tokens, (long long)heads,
                  (long long)dim, g, peak > 0 ? 100 * g / peak : 0.0, gp);
    }
  return 0;
}
