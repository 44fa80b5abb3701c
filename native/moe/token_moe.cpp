#include "moe/token_moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/swiglu.h"
#include "kernels/cpu/topk.h"

namespace nd::moe {

int64_t moeCapacity(const MoeOptions& options, int64_t tokens, int64_t experts) {
  if (!(options.capacityFactor > 0)) return 0;
  double c = std::ceil(options.capacityFactor * double(tokens) * double(options.topK) / double(experts));
  return std::max<int64_t>(1, int64_t(c));
}

namespace {

// out[m, dim] = down(silu(gate x) * up x); scratch holds m * 3 * hidden floats. m is the number of
// tokens routed to the expert, which changes with the batch: the tiled kernel at every m keeps a
// token's bits independent of it (GemmRows::Auto would switch kernels at small m).
void swigluExpert(const float* x, int64_t m, int64_t dim, const SwiGluWeights& w, float* out, bool accumulate,
                  std::vector<float>& scratch, ThreadPool* pool) {
  const int64_t h = w.hidden;
  scratch.resize(static_cast<size_t>(m * 3 * h));
  float* gu = scratch.data();          // [m, 2h]: gate | up
  float* act = gu + m * 2 * h;         // [m, h]
  linearCpu(x, m, dim, w.gate, nullptr, gu, 2 * h, false, GemmEpilogue::None, pool, GemmRows::Tiled);
  linearCpu(x, m, dim, w.up, nullptr, gu + h, 2 * h, false, GemmEpilogue::None, pool, GemmRows::Tiled);
  swigluCpu(gu, m, h, 2 * h, act, h, pool);
  linearCpu(act, m, h, w.down, nullptr, out, dim, accumulate, GemmEpilogue::None, pool, GemmRows::Tiled);
}

}  // namespace

void moeForwardCpu(const float* z, int64_t batch, int64_t tokens, const MoeLayerWeights& weights,
                   const MoeOptions& options, float* out, MoeLayerStats* stats, ThreadPool* pool) {
  const int64_t E = int64_t(weights.experts.size());
  const int64_t D = weights.dim;
  const int64_t K = options.topK;
  ND_REQUIRE(E >= 1, Arg, "An MoE layer needs at least one expert");
  ND_REQUIRE(K >= 1 && K <= E, Arg, "top-k must be in [1, " + std::to_string(E) + "], got " + std::to_string(K));
  ND_REQUIRE(batch >= 0 && tokens >= 0, Arg, "negative MoE batch or token count");
  ND_REQUIRE(std::isfinite(options.capacityFactor) && options.capacityFactor >= 0, Arg,
             "capacityFactor must be a finite number >= 0");
  const int64_t rows = batch * tokens;
  if (stats) {
    stats->tokensPerExpert.assign(static_cast<size_t>(E), 0);
    stats->dropped = 0;
    stats->entropy = 0;
    stats->choices.assign(static_cast<size_t>(rows * K), 0);
    stats->kept.assign(static_cast<size_t>(rows * K), 0);
  }
  if (rows == 0) return;

  // Router: probabilities and the top-k per token (tiled GEMM, as the experts': one flipped bit can
  // flip a near-tie in the top-k).
  std::vector<float> probs(static_cast<size_t>(rows * E));
  linearCpu(z, rows, D, weights.router, nullptr, probs.data(), E, false, GemmEpilogue::None, pool, GemmRows::Tiled);
  softmaxRowsCpu(probs.data(), rows, E, probs.data(), pool);
  std::vector<int32_t> idx(static_cast<size_t>(rows * K));
  std::vector<float> val(static_cast<size_t>(rows * K));
  topkCpu(probs.data(), rows, E, K, idx.data(), val.data(), pool);

  // Admission under the capacity limit, in priority order (slot, then token), per sample.
  std::vector<uint8_t> kept(static_cast<size_t>(rows * K), 1);
  const int64_t cap = moeCapacity(options, tokens, E);
  int64_t dropped = 0;
  if (cap > 0) {
    std::vector<int64_t> load(static_cast<size_t>(E));
    for (int64_t b = 0; b < batch; ++b) {
      std::fill(load.begin(), load.end(), 0);
      for (int64_t s = 0; s < K; ++s) {
        for (int64_t t = 0; t < tokens; ++t) {
          int64_t a = (b * tokens + t) * K + s;
          int32_t e = idx[size_t(a)];
          if (load[size_t(e)] < cap) {
            ++load[size_t(e)];
          } else {
            kept[size_t(a)] = 0;
            ++dropped;
          }
        }
      }
    }
  }

  // Permutation: kept assignments grouped by expert, stable in (token, slot) order.
  std::vector<int64_t> count(static_cast<size_t>(E) + 1, 0);
  for (int64_t a = 0; a < rows * K; ++a)
    if (kept[size_t(a)]) ++count[size_t(idx[size_t(a)]) + 1];
  std::vector<int64_t> offset(static_cast<size_t>(E) + 1, 0);
  for (int64_t e = 0; e < E; ++e) offset[size_t(e) + 1] = offset[size_t(e)] + count[size_t(e) + 1];
  std::vector<int64_t> order(static_cast<size_t>(offset[size_t(E)]));
  {
    std::vector<int64_t> fill(offset.begin(), offset.end() - 1);
    for (int64_t a = 0; a < rows * K; ++a)
      if (kept[size_t(a)]) order[size_t(fill[size_t(idx[size_t(a)])]++)] = a;
  }

  // Routed experts: gather, two GEMMs, SwiGLU, one GEMM, store per assignment.
  std::vector<float> routed(static_cast<size_t>(rows * K * D), 0.0f);
  std::vector<float> gathered, result, scratch;
  for (int64_t e = 0; e < E; ++e) {
    const int64_t n = offset[size_t(e) + 1] - offset[size_t(e)];
    if (n == 0) continue;
    const int64_t* asg = order.data() + offset[size_t(e)];
    gathered.resize(static_cast<size_t>(n * D));
    result.resize(static_cast<size_t>(n * D));
    parallelForOrInline(pool, n, 64, [&](int64_t b, int64_t en) {
      for (int64_t i = b; i < en; ++i)
        std::memcpy(gathered.data() + i * D, z + (asg[i] / K) * D, size_t(D) * sizeof(float));
    });
    swigluExpert(gathered.data(), n, D, weights.experts[size_t(e)], result.data(), false, scratch, pool);
    parallelForOrInline(pool, n, 64, [&](int64_t b, int64_t en) {
      for (int64_t i = b; i < en; ++i)
        std::memcpy(routed.data() + asg[i] * D, result.data() + i * D, size_t(D) * sizeof(float));
    });
  }

  // Shared expert over every token, then the weighted routed outputs in slot order.
  if (weights.shared.hidden > 0) {
    swigluExpert(z, rows, D, weights.shared, out, false, scratch, pool);
  } else {
    std::memset(out, 0, size_t(rows * D) * sizeof(float));
  }
  parallelForOrInline(pool, rows, 16, [&](int64_t b, int64_t en) {
    for (int64_t r = b; r < en; ++r) {
      float* o = out + r * D;
      for (int64_t s = 0; s < K; ++s) {
        int64_t a = r * K + s;
        if (!kept[size_t(a)]) continue;
        const float wgt = val[size_t(a)];
        const float* y = routed.data() + a * D;
        for (int64_t d = 0; d < D; ++d) o[d] += wgt * y[d];
      }
    }
  });

  if (stats) {
    for (int64_t e = 0; e < E; ++e) stats->tokensPerExpert[size_t(e)] = count[size_t(e) + 1];
    stats->dropped = dropped;
    double ent = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const float* p = probs.data() + r * E;
      for (int64_t e = 0; e < E; ++e)
        if (p[e] > 0) ent -= double(p[e]) * std::log(double(p[e]));
    }
    stats->entropy = ent / double(rows);
    std::copy(idx.begin(), idx.end(), stats->choices.begin());
    std::copy(kept.begin(), kept.end(), stats->kept.begin());
  }
}

}  // namespace nd::moe
