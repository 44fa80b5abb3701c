// A CPU emulator for our CUDA kernel sources, so the kernels' indexing, tiling, barriers and warp
// exchanges are tested on every machine (CI has nvcc but no GPU). It is not a general CUDA: it
// covers exactly the vocabulary the kernel headers (native/kernels/cuda/*_kernel.cuh) use.
//  - Each CUDA thread of a block is a fiber (ucontext) with its own stack; blocks run one after the
//    other on the calling thread, so `__shared__` (made `static`) is shared by the block's threads.
//  - __syncthreads / __syncwarp / warp shuffles are barriers: a fiber that arrives early yields to
//    the scheduler until every thread of its block (warp) has arrived. A round of the scheduler in
//    which nothing moves is a deadlock (a barrier in divergent code) and throws.
//  - WMMA fragments hold the whole tile in every lane (the hardware spreads it over the warp in an
//    unspecified layout that the kernels never look into), so load/mma/store mean what they mean on
//    the device. Each WMMA call is a warp barrier on both sides: on the device an mma needs every
//    lane's operands, so no lane stores a result before every lane has loaded (a kernel that reads
//    and writes the same shared tile relies on that). bf16/f16 round to nearest even, as on the device.
// What it cannot show: speed, memory coalescing, races between warps that the hardware would expose
// only under real concurrency, and the device's exact rounding of fast-math intrinsics.
#pragma once
#define ND_CUDA_EMULATION 1

#include <ucontext.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "core/half.h"

// Under AddressSanitizer every stack switch is announced, or ASan takes the fibers' stacks for
// overflows of the scheduler's.
#if defined(__SANITIZE_ADDRESS__)
#define ND_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ND_EMU_ASAN 1
#endif
#endif
#ifdef ND_EMU_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
using cudaStream_t = void*;

struct __nv_bfloat16 { uint16_t bits; };
struct __half { uint16_t bits; };
inline float __bfloat162float(__nv_bfloat16 v) { return nd::bf16ToFloat(v.bits); }
inline __nv_bfloat16 __float2bfloat16(float f) { return {nd::floatToBf16(f)}; }
inline float __half2float(__half v) { return nd::halfToFloat(v.bits); }
inline __half __float2half(float f) { return {nd::floatToHalf(f)}; }
inline float __expf(float x) { return std::exp(x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __fdividef(float a, float b) { return a / b; }

namespace ndemu {

constexpr size_t kStackBytes = 96 * 1024;

struct Fiber {
  ucontext_t ctx;
  std::vector<char> stack;
  dim3 tid;
  unsigned linear = 0;
  bool done = false;
};

struct State {
  dim3 blockIdx, blockDim, gridDim;
  std::vector<Fiber> fibers;
  int current = -1;
  ucontext_t sched;
  unsigned nthreads = 0;
  int arrived = 0;
  unsigned gen = 0;
  std::vector<int> warpArrived;
  std::vector<unsigned> warpGen;
  std::vector<uint64_t> warpSlots;
  uint64_t progress = 0;
  std::function<void()> body;
  const void* schedStack = nullptr;  // the scheduler's stack, for the ASan annotations
  size_t schedStackSize = 0;
};

inline State& st() {
  static State s;
  return s;
}
inline Fiber& self() { return st().fibers[size_t(st().current)]; }
inline void yield() {
#ifdef ND_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, st().schedStack, st().schedStackSize);
#endif
  swapcontext(&self().ctx, &st().sched);
#ifdef ND_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

inline void syncthreads() {
  State& s = st();
  const unsigned g = s.gen;
  if (unsigned(++s.arrived) == s.nthreads) {
    s.arrived = 0;
    ++s.gen;
    ++s.progress;
    return;
  }
  while (s.gen == g) yield();
}

inline unsigned warpSize(unsigned w) {
  const unsigned n = st().nthreads - w * 32;
  return n < 32 ? n : 32;
}

inline void warpBarrier() {
  State& s = st();
  const unsigned w = self().linear / 32;
  const unsigned g = s.warpGen[w];
  if (unsigned(++s.warpArrived[w]) == warpSize(w)) {
    s.warpArrived[w] = 0;
    ++s.warpGen[w];
    ++s.progress;
    return;
  }
  while (s.warpGen[w] == g) yield();
}

template <class T>
T shuffle(T v, unsigned srcLane) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
  State& s = st();
  const unsigned t = self().linear, w = t / 32;
  std::memcpy(&s.warpSlots[t], &v, sizeof(T));
  warpBarrier();
  T r;
  std::memcpy(&r, &s.warpSlots[w * 32 + (srcLane % warpSize(w))], sizeof(T));
  warpBarrier();
  return r;
}

inline void trampoline() {
#ifdef ND_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &st().schedStack, &st().schedStackSize);
#endif
  st().body();
  self().done = true;
#ifdef ND_EMU_ASAN
  __sanitizer_start_switch_fiber(nullptr, st().schedStack, st().schedStackSize);  // this fiber ends
#endif
}

// Runs kernel(args...) over the grid. Throws std::runtime_error on a barrier deadlock.
template <class Kernel, class... Args>
void launch(dim3 grid, dim3 block, Kernel kernel, Args... args) {
  State& s = st();
  s.gridDim = grid;
  s.blockDim = block;
  s.nthreads = block.x * block.y * block.z;
  if (s.nthreads == 0 || s.nthreads > 1024) throw std::runtime_error("emulated launch: bad block size");
  s.body = [&] { kernel(args...); };
  s.fibers.resize(s.nthreads);
  const unsigned warps = (s.nthreads + 31) / 32;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        s.blockIdx = dim3(bx, by, bz);
        s.arrived = 0;
        s.warpArrived.assign(warps, 0);
        s.warpGen.assign(warps, 0);
        s.warpSlots.assign(size_t(warps) * 32, 0);
        for (unsigned i = 0; i < s.nthreads; ++i) {
          Fiber& f = s.fibers[i];
          f.stack.resize(kStackBytes);
          f.done = false;
          f.linear = i;
          f.tid = dim3(i % block.x, (i / block.x) % block.y, i / (block.x * block.y));
          getcontext(&f.ctx);
          f.ctx.uc_stack.ss_sp = f.stack.data();
          f.ctx.uc_stack.ss_size = f.stack.size();
          f.ctx.uc_link = &s.sched;
          makecontext(&f.ctx, trampoline, 0);
        }
        for (;;) {
          bool alive = false;
          const uint64_t before = s.progress;
          for (unsigned i = 0; i < s.nthreads; ++i) {
            Fiber& f = s.fibers[i];
            if (f.done) continue;
            s.current = int(i);
#ifdef ND_EMU_ASAN
            void* fake = nullptr;
            __sanitizer_start_switch_fiber(&fake, f.stack.data(), f.stack.size());
#endif
            swapcontext(&s.sched, &f.ctx);
#ifdef ND_EMU_ASAN
            __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
            if (f.done) ++s.progress;
            else alive = true;
          }
          if (!alive) break;
          if (s.progress == before) throw std::runtime_error("emulated kernel deadlocked at a barrier");
        }
        if (s.arrived != 0) throw std::runtime_error("emulated kernel ended with threads waiting at __syncthreads");
      }
  s.current = -1;
  s.body = nullptr;
}

}  // namespace ndemu

// The few runtime calls the kernels' host-side dispatchers (kernels/cuda/*.cu) make.
using cudaError_t = int;
constexpr cudaError_t cudaSuccess = 0;
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount };
namespace ndemu {
inline int& multiprocessors() {  // what the emulated device reports (the GEMM picks its tiles by it)
  static int n = 132;
  return n;
}
}  // namespace ndemu
inline cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr, int) {
  *v = ndemu::multiprocessors();
  return cudaSuccess;
}
#define ND_CUDA_CHECK(call) (void)(call)

#define threadIdx (ndemu::self().tid)
#define blockIdx (ndemu::st().blockIdx)
#define blockDim (ndemu::st().blockDim)
#define gridDim (ndemu::st().gridDim)
inline void __syncthreads() { ndemu::syncthreads(); }
inline void __syncwarp(unsigned = 0xffffffffu) { ndemu::warpBarrier(); }
template <class T>
T __shfl_xor_sync(unsigned, T v, int laneMask, int = 32) {
  return ndemu::shuffle(v, (ndemu::self().linear % 32) ^ unsigned(laneMask));
}
template <class T>
T __shfl_sync(unsigned, T v, int srcLane, int = 32) {
  return ndemu::shuffle(v, unsigned(srcLane));
}
template <class T>
T atomicAdd(T* p, T v) {  // blocks run one at a time, fibers switch only at barriers
  T old = *p;
  *p = old + v;
  return old;
}

namespace nvcuda::wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  static constexpr int R = std::is_same_v<Use, matrix_b> ? K : M;
  static constexpr int C = std::is_same_v<Use, matrix_a> ? K : N;
  static constexpr int num_elements = R * C;
  T x[R * C];  // the logical tile, row-major
};

inline float wmmaToFloat(float v) { return v; }
inline float wmmaToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }
inline float wmmaToFloat(__half v) { return __half2float(v); }

struct WarpCollective {  // a warp barrier before and after the collective op
  WarpCollective() { ndemu::warpBarrier(); }
  ~WarpCollective() { ndemu::warpBarrier(); }
};

template <class Use, int M, int N, int K, class T, class Layout>
void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const T* p, unsigned ldm) {
  WarpCollective c;
  using F = fragment<Use, M, N, K, T, Layout>;
  for (int r = 0; r < F::R; ++r)
    for (int c = 0; c < F::C; ++c)
      f.x[r * F::C + c] = std::is_same_v<Layout, col_major> ? p[size_t(c) * ldm + r] : p[size_t(r) * ldm + c];
}
template <int M, int N, int K>
void load_matrix_sync(fragment<accumulator, M, N, K, float>& f, const float* p, unsigned ldm, layout_t l) {
  WarpCollective c;
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c) f.x[r * N + c] = l == mem_row_major ? p[size_t(r) * ldm + c] : p[size_t(c) * ldm + r];
}
template <int M, int N, int K>
void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, float>& f, unsigned ldm, layout_t l) {
  WarpCollective c;
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c) (l == mem_row_major ? p[size_t(r) * ldm + c] : p[size_t(c) * ldm + r]) = f.x[r * N + c];
}
template <class Use, int M, int N, int K, class T, class Layout>
void fill_fragment(fragment<Use, M, N, K, T, Layout>& f, T v) {
  for (auto& e : f.x) e = v;
}
template <int M, int N, int K, class T, class LA, class LB>
void mma_sync(fragment<accumulator, M, N, K, float>& d, const fragment<matrix_a, M, N, K, T, LA>& a,
              const fragment<matrix_b, M, N, K, T, LB>& b, const fragment<accumulator, M, N, K, float>& c) {
  WarpCollective sync;
  float out[M * N];
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      float acc = c.x[i * N + j];
      for (int k = 0; k < K; ++k) acc += wmmaToFloat(a.x[i * K + k]) * wmmaToFloat(b.x[k * N + j]);
      out[i * N + j] = acc;
    }
  std::memcpy(d.x, out, sizeof out);
}
}  // namespace nvcuda::wmma
