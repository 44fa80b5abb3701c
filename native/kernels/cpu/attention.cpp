#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>


#include "core/cpu_features.h"
#include "core/error.h"
#include "core/thread_pool.h"

namespace nd {

namespace {

// Sizes >= 0, batch*tokens*3*heads*headDim representable, pointers present when there is data.
// Returns false when there is nothing to do.
bool validate(const float* qkv, int64_t batch, int64_t tokens, int64_t heads, int64_t headDim,
              const float* out) {
  ND_REQUIRE(batch >= 0 && tokens >= 0 && heads >= 0 && headDim >= 0, Arg,
             "attention: sizes must be >= 0 (batch " + std::to_string(batch) + ", tokens " +
                 std::to_string(tokens) + ", heads " + std::to_string(heads) + ", headDim " +
                 std::to_string(headDim) + ")");
  if (batch == 0 || tokens == 0 || heads == 0 || headDim == 0) return false;
  const int64_t limit = std::numeric_limits<int64_t>::max();
  int64_t total = 3;
  for (int64_t f : {batch, tokens, heads, headDim}) {
    ND_REQUIRE(total <= limit / f, Arg, "attention: batch*tokens*3*heads*headDim overflows int64");
    total *= f;
  }
  ND_REQUIRE(qkv != nullptr, Arg, "attention: qkv is null");
  ND_REQUIRE(out != nullptr, Arg, "attention: out is null");
  return true;
}

void runTasks(ThreadPool* pool, int64_t tasks, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool) pool->parallelFor(tasks, 1, fn);
  else fn(0, tasks);
}

// ---- portable flash path: query blocks of kQB rows, key tiles of kKT, online softmax in f32 -------
constexpr int64_t kQB = 16, kKT = 64;

void portableTasks(const float* qkv, int64_t tokens, int64_t heads, int64_t d, float scale, float* out,
                   int64_t t0, int64_t t1) {
  const int64_t nQB = (tokens + kQB - 1) / kQB;
  const int64_t rowStride = 3 * heads * d, outStride = heads * d;
  std::vector<float> acc(static_cast<size_t>(kQB * d)), tileAcc(static_cast<size_t>(d)),
      srow(static_cast<size_t>(kKT));
  float m[kQB], l[kQB];
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t qb = t % nQB, h = (t / nQB) % heads, b = t / (nQB * heads);
    const int64_t q0 = qb * kQB, nq = std::min(kQB, tokens - q0);
    const float* base = qkv + b * tokens * rowStride + h * d;
    const float* kBase = base + heads * d;
    const float* vBase = base + 2 * heads * d;
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t i = 0; i < nq; ++i) {
      m[i] = -std::numeric_limits<float>::infinity();
      l[i] = 0.0f;
    }
    for (int64_t j0 = 0; j0 < tokens; j0 += kKT) {
      const int64_t nk = std::min(kKT, tokens - j0);
      for (int64_t i = 0; i < nq; ++i) {
        const float* q = base + (q0 + i) * rowStride;
        float mx = m[i];
        for (int64_t j = 0; j < nk; ++j) {
          const float* k = kBase + (j0 + j) * rowStride;
          float s = 0.0f;
          for (int64_t c = 0; c < d; ++c) s += q[c] * k[c];
          s *= scale;
          srow[size_t(j)] = s;
          mx = std::max(mx, s);
        }
        // The tile is summed apart (tileAcc) and then joins the running sums, rescaled by
        // exp(m_old - m_new) when the max grew: rounding grows with keyTile + tiles, not tokens.
        std::fill(tileAcc.begin(), tileAcc.end(), 0.0f);
        float sum = 0.0f;
        for (int64_t j = 0; j < nk; ++j) {
          const float p = std::exp(srow[size_t(j)] - mx);
          sum += p;
          const float* v = vBase + (j0 + j) * rowStride;
          for (int64_t c = 0; c < d; ++c) tileAcc[size_t(c)] += p * v[c];
        }
        float* a = acc.data() + i * d;
        const float alpha = mx > m[i] ? std::exp(m[i] - mx) : 1.0f;  // exp(-inf) = 0 on the first tile
        m[i] = mx;
        l[i] = l[i] * alpha + sum;
        for (int64_t c = 0; c < d; ++c) a[c] = a[c] * alpha + tileAcc[size_t(c)];
      }
    }
    for (int64_t i = 0; i < nq; ++i) {
      float* o = out + (b * tokens + q0 + i) * outStride + h * d;
      const float inv = 1.0f / l[i];
      const float* a = acc.data() + i * d;
      for (int64_t c = 0; c < d; ++c) o[c] = a[c] * inv;
    }
  }
}

}  // namespace

namespace detail {

void attentionPortable(const float* qkv, int64_t batch, int64_t tokens, int64_t heads, int64_t headDim,
                       float scale, float* out, ThreadPool* pool) {
  if (!validate(qkv, batch, tokens, heads, headDim, out)) return;
  const int64_t tasks = batch * heads * ((tokens + kQB - 1) / kQB);
  runTasks(pool, tasks, [&](int64_t t0, int64_t t1) {
    portableTasks(qkv, tokens, heads, headDim, scale, out, t0, t1);
  });
}

bool attentionAvx512Supported() {
  static const bool ok = [] {
    return attentionAvx512Compiled() && avx512KernelsSupported();
  }();
  return ok;
}

void attentionAvx512(const float* qkv, int64_t batch, int64_t tokens, int64_t heads, int64_t headDim,
                     float scale, float* out, ThreadPool* pool) {
  ND_REQUIRE(attentionAvx512Supported(), Device, "attention: the AVX-512 path cannot run on this CPU");
  if (!validate(qkv, batch, tokens, heads, headDim, out)) return;
  const int64_t tasks = attentionAvx512TaskCount(batch, tokens, heads);
  const int64_t scratchFloats = attentionAvx512ScratchFloats(headDim);
  runTasks(pool, tasks, [&](int64_t t0, int64_t t1) {
    std::vector<float> scratch(size_t(scratchFloats + 16));
    auto addr = reinterpret_cast<uintptr_t>(scratch.data());
    float* aligned = scratch.data() + ((64 - addr % 64) % 64) / sizeof(float);
    attentionAvx512Tasks(qkv, tokens, heads, headDim, scale, out, t0, t1, aligned);
  });
}

}  // namespace detail

void attentionCpu(const float* qkv, int64_t batch, int64_t tokens, int64_t heads, int64_t headDim,
                  float scale, float* out, ThreadPool* pool) {
  if (activeIsa() != CpuIsa::Baseline && detail::attentionAvx512Supported())
    detail::attentionAvx512(qkv, batch, tokens, heads, headDim, scale, out, pool);
  else
    detail::attentionPortable(qkv, batch, tokens, heads, headDim, scale, out, pool);
}

void attentionReference(const float* qkv, int64_t batch, int64_t tokens, int64_t heads, int64_t headDim,
                        float scale, float* out) {
  if (!validate(qkv, batch, tokens, heads, headDim, out)) return;
  const int64_t d = headDim, rowStride = 3 * heads * d, outStride = heads * d;
  std::vector<double> s(static_cast<size_t>(tokens)), acc(static_cast<size_t>(d));
  for (int64_t b = 0; b < batch; ++b) {
    const float* x = qkv + b * tokens * rowStride;
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < tokens; ++i) {
        const float* q = x + i * rowStride + h * d;
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < tokens; ++j) {
          const float* k = x + j * rowStride + heads * d + h * d;
          double dot = 0.0;
          for (int64_t c = 0; c < d; ++c) dot += double(q[c]) * double(k[c]);
          s[size_t(j)] = double(scale) * dot;
          mx = std::max(mx, s[size_t(j)]);
        }
        double sum = 0.0;
        for (int64_t j = 0; j < tokens; ++j) {
          s[size_t(j)] = std::exp(s[size_t(j)] - mx);
          sum += s[size_t(j)];
        }
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = 0; j < tokens; ++j) {
          const float* v = x + j * rowStride + 2 * heads * d + h * d;
          for (int64_t c = 0; c < d; ++c) acc[size_t(c)] += s[size_t(j)] * double(v[c]);
        }
        float* o = out + (b * tokens + i) * outStride + h * d;
        for (int64_t c = 0; c < d; ++c) o[c] = float(acc[size_t(c)] / sum);
      }
    }
  }
}

}  // namespace nd
