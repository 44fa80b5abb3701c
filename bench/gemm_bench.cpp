// linearCpu throughput on the DiT shapes vs the machine's measured f32 FMA peak and OpenBLAS sgemm.
// Standalone (not part of CMake). Build from the repository root (OpenBLAS optional: without it drop
// -DND_BENCH_OPENBLAS and -lopenblas; apt-get install libopenblas-dev provides it):
//
//   B=/tmp/gemm_bench; mkdir -p $B; F="-O3 -std=c++20 -ffp-contract=off -Inative"
//   X="-mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -mf16c"
//   g++ $F -c native/kernels/cpu/gemm.cpp -o $B/gemm.o
//   g++ $F -mavx2 -mfma -mf16c -c native/kernels/cpu/gemm_avx2.cpp -o $B/gemm_avx2.o
//   g++ $F $X -c native/kernels/cpu/gemm_avx512.cpp -o $B/gemm_avx512.o
//   g++ $F -c native/kernels/cpu/gelu_tanh.cpp -o $B/gelu.o
//   g++ $F -c native/kernels/cpu/layer_norm_modulate.cpp -o $B/lnm.o
//   g++ $F $X -c native/kernels/cpu/model_kernels_avx512.cpp -o $B/mk.o
//   g++ $F $X -DND_BENCH_OPENBLAS -I/usr/include/x86_64-linux-gnu bench/gemm_bench.cpp
//       native/core/{thread_pool,cpu_features,error,dtype}.cpp $B/*.o -lopenblas -lpthread -o $B/gemm_bench
//   $B/gemm_bench [runs=7]                                  (OpenBLAS picks its kernel itself)
//   OPENBLAS_CORETYPE=SkylakeX $B/gemm_bench [runs=7]       (force its AVX-512 kernels)
//
// gelu_tanh.o (+ the files it needs) only resolves geluTanhScalar, named by the scalar epilogue.
// OpenBLAS 0.3.21 does not know this CPU model (Emerald Rapids) and falls back to its SSE3
// "Prescott" kernels; the second run shows what its AVX-512 kernels do. The bench prints the
// core OpenBLAS chose.
// 2 threads throughout (nd::ThreadPool(2), openblas_set_num_threads(2)).
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "core/half.h"
#include "core/thread_pool.h"
#include "kernels/cpu/gemm.h"

#ifdef ND_BENCH_OPENBLAS
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_corename(void);
#endif

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Peak: each thread runs 24 independent chains of zmm FMAs (covers latency 4 x 2 ports), in asm so
// that nothing but the FMAs and the loop branch issues. Operands are zero: no denormal assists.
void fmaLoop(int64_t iters) {
#define ND_Z(i) "vxorps %%zmm" #i ", %%zmm" #i ", %%zmm" #i "\n"
#define ND_F(i) "vfmadd231ps %%zmm30, %%zmm31, %%zmm" #i "\n"
  __asm__ volatile(
      ND_Z(30) ND_Z(31) ND_Z(0) ND_Z(1) ND_Z(2) ND_Z(3) ND_Z(4) ND_Z(5) ND_Z(6) ND_Z(7) ND_Z(8) ND_Z(9)
      ND_Z(10) ND_Z(11) ND_Z(12) ND_Z(13) ND_Z(14) ND_Z(15) ND_Z(16) ND_Z(17) ND_Z(18) ND_Z(19) ND_Z(20)
      ND_Z(21) ND_Z(22) ND_Z(23)
      "1:\n"
      ND_F(0) ND_F(1) ND_F(2) ND_F(3) ND_F(4) ND_F(5) ND_F(6) ND_F(7) ND_F(8) ND_F(9) ND_F(10) ND_F(11)
      ND_F(12) ND_F(13) ND_F(14) ND_F(15) ND_F(16) ND_F(17) ND_F(18) ND_F(19) ND_F(20) ND_F(21) ND_F(22)
      ND_F(23)
      "dec %0\n"
      "jnz 1b\n"
      : "+r"(iters)
      :
      : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
        "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22",
        "xmm23", "xmm30", "xmm31");
#undef ND_Z
#undef ND_F
}

double fmaPeakGflops(int threads, int64_t iters = 20'000'000) {
  std::atomic<int> ready{0};
  std::vector<std::thread> ts;
  auto body = [&] {
    ready.fetch_add(1);
    while (ready.load() < threads) {
    }
    fmaLoop(iters);
  };
  auto t0 = Clock::now();
  for (int i = 0; i < threads; ++i) ts.emplace_back(body);
  for (auto& t : ts) t.join();
  double sec = seconds(t0, Clock::now());
  return double(threads) * double(iters) * 24 * 16 * 2 / sec * 1e-9;
}

struct Shape { int64_t m, k, n; };

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::max(5, std::atoi(argv[1])) : 7;
  const int threads = 2;
  nd::ThreadPool pool(threads);
#ifdef ND_BENCH_OPENBLAS
  openblas_set_num_threads(threads);
#endif
  std::printf("gemm_bench: %d threads, path %s; per shape, `runs` rounds of {FMA peak, ours f32, ours f16,\n"
              "OpenBLAS f32} interleaved (the machine may be shared), median (and best) of the rounds\n",
              threads, nd::detail::gemmPathName(nd::detail::gemmDefaultPath()));
#ifdef ND_BENCH_OPENBLAS
  std::printf("OpenBLAS core: %s\n", openblas_get_corename());
#endif
  std::printf("zmm FMA peak, standalone: %.1f GFLOP/s 2 threads, %.1f 1 thread\n\n", fmaPeakGflops(threads),
              fmaPeakGflops(1));

  std::vector<Shape> shapes;
  const int64_t kn[][2] = {{1152, 3456}, {1152, 1152}, {1152, 4608}, {4608, 1152},
                           {384, 1152},  {384, 1536},  {1536, 384}};
  for (int64_t m : {256, 2048})
    for (auto& p : kn) shapes.push_back({m, p[0], p[1]});
  for (int64_t m : {1, 2, 4, 8, 16}) shapes.push_back({m, 1152, 6912});  // adaLN Linear

  std::printf("%5s %5s %5s | %6s | %14s %6s | %14s %6s | %14s %6s | %7s\n", "m", "k", "n", "peak", "f32 med (best)",
              "%peak", "f16 med (best)", "%peak", "oblas med(best)", "%peak", "f32/ob");
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uni(-1, 1);
  double sumOurs = 0, sumBlas = 0, sumPeakFrac = 0;
  int nLarge = 0;
  for (const Shape& s : shapes) {
    std::vector<float> x(size_t(s.m * s.k)), w(size_t(s.n * s.k)), bias(size_t(s.n)), y(size_t(s.m * s.n));
    std::vector<uint16_t> wh(w.size());
    for (float& v : x) v = uni(rng);
    for (size_t i = 0; i < w.size(); ++i) {
      w[i] = uni(rng) * 0.05f;
      wh[i] = nd::floatToHalf(w[i]);
    }
    for (float& v : bias) v = uni(rng);
    double flop = 2.0 * double(s.m) * double(s.n) * double(s.k);
    nd::GemmWeight gw;
    gw.data = w.data();
    gw.n = s.n;
    gw.k = s.k;
    nd::GemmWeight gh = gw;
    gh.data = wh.data();
    gh.dtype = nd::DType::F16;
    auto ours32 = [&] {
      nd::linearCpu(x.data(), s.m, s.k, gw, bias.data(), y.data(), s.n, false, nd::GemmEpilogue::None, &pool);
    };
    auto ours16 = [&] {
      nd::linearCpu(x.data(), s.m, s.k, gh, bias.data(), y.data(), s.n, false, nd::GemmEpilogue::None, &pool);
    };
    auto blas = [&] {
#ifdef ND_BENCH_OPENBLAS
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(s.m), int(s.n), int(s.k), 1.0f, x.data(), int(s.k),
                  w.data(), int(s.k), 0.0f, y.data(), int(s.n));
#endif
    };
    auto timeIt = [](auto& f) {
      auto a = Clock::now();
      f();
      return seconds(a, Clock::now());
    };
    ours32();  // warm-up: page faults, scratch, threads
    ours16();
    blas();
    // Repeat small calls so one sample lasts ~>= 20 ms.
    int reps = int(std::clamp(20e-3 / std::max(timeIt(ours32), 1e-6), 1.0, 2000.0));
    auto timed = [&](auto& f) {
      auto a = Clock::now();
      for (int r = 0; r < reps; ++r) f();
      return flop * reps / seconds(a, Clock::now()) * 1e-9;
    };
    std::vector<double> pk, g32, g16, gb;
    for (int r = 0; r < runs; ++r) {
      pk.push_back(fmaPeakGflops(threads, 2'000'000));
      g32.push_back(timed(ours32));
      g16.push_back(timed(ours16));
#ifdef ND_BENCH_OPENBLAS
      gb.push_back(timed(blas));
#else
      gb.push_back(0);
#endif
    }
    double P = median(pk), a32 = median(g32), a16 = median(g16), ab = median(gb);
    auto best = [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); };
    std::printf("%5lld %5lld %5lld | %6.1f | %6.1f (%5.1f) %5.1f%% | %6.1f (%5.1f) %5.1f%% | %6.1f (%5.1f) %5.1f%% | %6.2fx",
                (long long)s.m, (long long)s.k, (long long)s.n, P, a32, best(g32), 100 * a32 / P, a16, best(g16),
                100 * a16 / P, ab, best(gb), 100 * ab / P, ab > 0 ? a32 / ab : 0.0);
    if (s.m <= 16)
      std::printf("  W GB/s f32 %.1f f16 %.1f", a32 / flop * 1e9 * double(w.size()) * 4 * 1e-9,
                  a16 / flop * 1e9 * double(w.size()) * 2 * 1e-9);
    std::printf("\n");
    if (s.m >= 256) {
      sumOurs += flop / a32;
      sumBlas += ab > 0 ? flop / ab : 0;
      sumPeakFrac += a32 / P;
      ++nLarge;
    }
  }
  std::printf("\nlarge-m shapes: mean f32 %%peak %.1f%%; summed time ours %.3f s vs OpenBLAS %.3f s (one call each)\n",
              100 * sumPeakFrac / nLarge, sumOurs * 1e-9, sumBlas * 1e-9);
  return 0;
}
