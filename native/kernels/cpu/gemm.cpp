// linearCpu: argument checks, path choice, threading and scratch memory; the portable scalar path and
// the double-accumulating reference. The vector kernels live in gemm_avx512.cpp / gemm_avx2.cpp.
#include "kernels/cpu/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/error.h"
#include "core/half.h"
#include "core/thread_pool.h"
#include "kernels/cpu/gelu_tanh.h"


namespace nd {

namespace {

using detail::GemmArgs;
using detail::GemmKernels;
using detail::GemmPath;

bool avx512Usable() {
  static const bool ok = [] {
    return avx512KernelsSupported();
  }();
  return ok;
}

// Weight element j, kk as f32.
inline float weightAt(const GemmArgs& a, int64_t j, int64_t kk) {
  int64_t idx = j * a.ldw + kk;
  switch (a.wtype) {
    case DType::F16: return halfToFloat(static_cast<const uint16_t*>(a.w)[idx]);
    case DType::BF16: return bf16ToFloat(static_cast<const uint16_t*>(a.w)[idx]);
    default: return static_cast<const float*>(a.w)[idx];
  }
}

inline float finishValue(const GemmArgs& a, int64_t i, int64_t j, float dot) {
  float v = dot;
  if (a.accumulate) v += a.y[i * a.ldy + j];
  if (a.bias) v += a.bias[j];
  return a.gelu ? geluTanhScalar(v) : v;
}

// Scalar path: columns [j0, j1); each weight row is widened once into `row`, then dotted with every
// x row (four partial sums so the loop is not one serial dependency chain).
void scalarColumns(const GemmArgs& a, int64_t j0, int64_t j1) {
  std::vector<float> row(size_t(a.k));
  for (int64_t j = j0; j < j1; ++j) {
    for (int64_t kk = 0; kk < a.k; ++kk) row[size_t(kk)] = weightAt(a, j, kk);
    for (int64_t i = 0; i < a.m; ++i) {
      const float* xr = a.x + i * a.ldx;
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      int64_t kk = 0;
      for (; kk + 4 <= a.k; kk += 4) {
        s0 += xr[kk] * row[size_t(kk)];
        s1 += xr[kk + 1] * row[size_t(kk + 1)];
        s2 += xr[kk + 2] * row[size_t(kk + 2)];
        s3 += xr[kk + 3] * row[size_t(kk + 3)];
      }
      for (; kk < a.k; ++kk) s0 += xr[kk] * row[size_t(kk)];
      a.y[i * a.ldy + j] = finishValue(a, i, j, (s0 + s1) + (s2 + s3));
    }
  }
}

// Per-thread packing scratch, 64-byte aligned, grown on demand and kept for the thread's life.
struct FreeDeleter {
  void operator()(float* p) const noexcept { std::free(p); }
};

float* packScratch(int64_t floats) {
  thread_local std::unique_ptr<float, FreeDeleter> buf;
  thread_local int64_t have = 0;
  if (have < floats) {
    buf.reset();
    have = 0;
    size_t bytes = (size_t(floats) * sizeof(float) + 63) & ~size_t(63);
    float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
    ND_REQUIRE(p, Oom, "linearCpu: could not allocate " + std::to_string(bytes) + " bytes of packing scratch");
    buf.reset(p);
    have = floats;
  }
  return buf.get();
}

void runVector(const GemmKernels& K, const GemmArgs& a, ThreadPool* pool, GemmRows rows) {
  // Below ~64k multiply-adds a fork/join costs more than it saves.
  double work = double(a.m) * double(a.n) * double(a.k);
  if (work < 65536.0) pool = nullptr;
  int threads = pool ? pool->threads() : 1;

  if (rows == GemmRows::Streamed || (rows == GemmRows::Auto && a.m <= K.smallM)) {
    // Weight-streaming kernel: each W row is read once per group of x rows; split n. Many rows
    // (Streamed) go in groups of `group` within each unit of columns, so that the unit's W rows and
    // the group's x rows both stay in cache; the kernel does the same arithmetic for a row in any
    // group, so the grouping changes no bits.
    const int64_t unit = 16, group = 64;
    int64_t units = (a.n + unit - 1) / unit;
    auto body = [&](int64_t b, int64_t e) {
      if (a.m <= group) return K.smallBlock(a, b * unit, std::min(a.n, e * unit));
      for (int64_t u = b; u < e; ++u)
        for (int64_t i0 = 0; i0 < a.m; i0 += group) {
          GemmArgs g = a;
          g.x = a.x + i0 * a.ldx;
          g.y = a.y + i0 * a.ldy;
          g.m = std::min(group, a.m - i0);
          K.smallBlock(g, u * unit, std::min(a.n, (u + 1) * unit));
        }
    };
    if (pool)
      pool->parallelFor(units, 1, body);
    else
      body(0, units);
    return;
  }

  int64_t panels = (a.n + K.nr - 1) / K.nr;
  // Split n across tasks (no packing is duplicated: each task packs only its own W columns); when
  // there are too few panels for the threads, split m as well (each m-part packs its W again).
  int64_t rowTiles = (a.m + K.mr - 1) / K.mr;
  int64_t mt = 1;
  if (threads > 1 && panels < int64_t(threads))
    mt = std::min<int64_t>((2 * threads + panels - 1) / panels, std::max<int64_t>(1, rowTiles / 4));
  auto rowsOf = [&](int64_t part, int64_t& i0, int64_t& i1) {
    i0 = rowTiles * part / mt * K.mr;
    i1 = std::min(a.m, rowTiles * (part + 1) / mt * K.mr);
  };
  if (mt == 1) {
    // A task packs each 8-row slice of x once per depth block and reuses it across all its panels:
    // one task per thread, n split evenly in whole panels, keeps that reuse high.
    int64_t tasks = std::min<int64_t>(threads, panels);
    auto body = [&](int64_t b, int64_t e) {
      float* pack = packScratch(K.packFloats);
      for (int64_t t = b; t < e; ++t) {
        int64_t p0 = panels * t / tasks, p1 = panels * (t + 1) / tasks;
        if (p0 < p1) K.block(a, 0, a.m, p0 * K.nr, std::min(a.n, p1 * K.nr), pack);
      }
    };
    if (pool && tasks > 1)
      pool->parallelFor(tasks, 1, body);
    else
      body(0, tasks);
    return;
  }
  auto body = [&](int64_t b, int64_t e) {
    float* pack = packScratch(K.packFloats);
    for (int64_t t = b; t < e; ++t) {
      int64_t p = t / mt, i0, i1;
      rowsOf(t % mt, i0, i1);
      if (i0 < i1) K.block(a, i0, i1, p * K.nr, std::min(a.n, (p + 1) * K.nr), pack);
    }
  };
  pool->parallelFor(panels * mt, 1, body);
}

void scalarRun(const GemmArgs& a, ThreadPool* pool) {
  double work = double(a.m) * double(a.n) * double(a.k);
  auto body = [&](int64_t b, int64_t e) { scalarColumns(a, b, e); };
  if (pool && work >= 65536.0)
    pool->parallelFor(a.n, 4, body);
  else
    body(0, a.n);
}

// Checks the arguments; false when there is nothing to compute (m == 0 or n == 0).
bool prepare(const float* x, int64_t m, int64_t ldx, const GemmWeight& w, const float* bias, float* y,
             int64_t ldy, bool accumulate, GemmEpilogue epilogue, GemmRows rows, GemmArgs& out) {
  ND_REQUIRE(w.dtype == DType::F32 || w.dtype == DType::F16 || w.dtype == DType::BF16, DType,
             std::string("linearCpu: weight dtype must be f32, f16 or bf16, received ") + dtypeName(w.dtype));
  ND_REQUIRE(m >= 0, Arg, "linearCpu: m must be >= 0, received " + std::to_string(m));
  ND_REQUIRE(w.n >= 0 && w.k >= 0, Arg,
             "linearCpu: weight shape must be non-negative, received [" + std::to_string(w.n) + ", " +
                 std::to_string(w.k) + "]");
  ND_REQUIRE(epilogue == GemmEpilogue::None || epilogue == GemmEpilogue::GeluTanh, Arg,
             "linearCpu: unknown epilogue " + std::to_string(int(epilogue)));
  ND_REQUIRE(rows == GemmRows::Auto || rows == GemmRows::Tiled || rows == GemmRows::Streamed, Arg,
             "linearCpu: unknown row mode " + std::to_string(int(rows)));
  ND_REQUIRE(!(accumulate && epilogue == GemmEpilogue::GeluTanh), Arg,
             "linearCpu: the GeluTanh epilogue cannot be combined with accumulate");
  int64_t ldw = w.ld == 0 ? w.k : w.ld;
  ND_REQUIRE(ldw >= w.k, Arg,
             "linearCpu: weight row stride " + std::to_string(w.ld) + " is smaller than k = " + std::to_string(w.k));
  if (m == 0 || w.n == 0) return false;
  ND_REQUIRE(ldx >= w.k, Arg,
             "linearCpu: x row stride " + std::to_string(ldx) + " is smaller than k = " + std::to_string(w.k));
  ND_REQUIRE(ldy >= w.n, Arg,
             "linearCpu: y row stride " + std::to_string(ldy) + " is smaller than n = " + std::to_string(w.n));
  ND_REQUIRE(y, Arg, "linearCpu: y must not be null");
  ND_REQUIRE(w.k == 0 || (x && w.data), Arg, "linearCpu: x and the weight data must not be null");
  out = GemmArgs{x, m, ldx, w.data, w.dtype, w.n, w.k, ldw, bias, y, ldy, accumulate,
                 epilogue == GemmEpilogue::GeluTanh};
  return true;
}

// k == 0: the product is empty, y = bias (+ y when accumulating), then the epilogue.
void emptyProduct(const GemmArgs& a) {
  for (int64_t i = 0; i < a.m; ++i)
    for (int64_t j = 0; j < a.n; ++j) a.y[i * a.ldy + j] = finishValue(a, i, j, 0.0f);
}

// The scalar path has one kernel, with one summation order for every row whatever m is: it has no
// use for the row mode.
void run(GemmPath path, const GemmArgs& a, ThreadPool* pool, GemmRows rows) {
  if (a.k == 0) return emptyProduct(a);
  switch (path) {
    case GemmPath::Avx512: return runVector(detail::gemmKernelsAvx512(), a, pool, rows);
    case GemmPath::Avx2: return runVector(detail::gemmKernelsAvx2(), a, pool, rows);
    case GemmPath::Scalar: return scalarRun(a, pool);
  }
}

}  // namespace

namespace detail {

bool gemmPathSupported(GemmPath path) {
  switch (path) {
    case GemmPath::Scalar: return true;
    case GemmPath::Avx2: return isaSupported(CpuIsa::Avx2);
    case GemmPath::Avx512: return isaSupported(CpuIsa::Avx2) && avx512Usable();
  }
  return false;
}

GemmPath gemmDefaultPath() {
  if (activeIsa() != CpuIsa::Avx2) return GemmPath::Scalar;
  return avx512Usable() ? GemmPath::Avx512 : GemmPath::Avx2;
}

const char* gemmPathName(GemmPath path) {
  switch (path) {
    case GemmPath::Scalar: return "scalar";
    case GemmPath::Avx2: return "avx2";
    case GemmPath::Avx512: return "avx512";
  }
  return "?";
}

void linearCpuPath(GemmPath path, const float* x, int64_t m, int64_t ldx, const GemmWeight& w,
                   const float* bias, float* y, int64_t ldy, bool accumulate, GemmEpilogue epilogue,
                   ThreadPool* pool, GemmRows rows) {
  ND_REQUIRE(gemmPathSupported(path), Device,
             std::string("linearCpu: this CPU cannot run the ") + gemmPathName(path) + " path");
  GemmArgs a;
  if (!prepare(x, m, ldx, w, bias, y, ldy, accumulate, epilogue, rows, a)) return;
  run(path, a, pool, rows);
}

}  // namespace detail

void linearCpu(const float* x, int64_t m, int64_t ldx, const GemmWeight& w, const float* bias, float* y,
               int64_t ldy, bool accumulate, GemmEpilogue epilogue, ThreadPool* pool, GemmRows rows) {
  GemmArgs a;
  if (!prepare(x, m, ldx, w, bias, y, ldy, accumulate, epilogue, rows, a)) return;
  run(detail::gemmDefaultPath(), a, pool, rows);
}

void linearReference(const float* x, int64_t m, int64_t ldx, const GemmWeight& w, const float* bias,
                     float* y, int64_t ldy, bool accumulate, GemmEpilogue epilogue) {
  GemmArgs a;
  if (!prepare(x, m, ldx, w, bias, y, ldy, accumulate, epilogue, GemmRows::Auto, a)) return;
  for (int64_t i = 0; i < a.m; ++i) {
    for (int64_t j = 0; j < a.n; ++j) {
      double s = 0;
      for (int64_t kk = 0; kk < a.k; ++kk) s += double(a.x[i * a.ldx + kk]) * double(weightAt(a, j, kk));
      if (a.accumulate) s += double(a.y[i * a.ldy + j]);
      if (a.bias) s += double(a.bias[j]);
      float v = float(s);
      a.y[i * a.ldy + j] = a.gelu ? geluTanhScalar(v) : v;
    }
  }
}

}  // namespace nd
