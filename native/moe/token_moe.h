// Token-level mixture of experts (DiT-MoE's SparseMoeBlock): a softmax router over E experts, the
// top-k experts per token weighted by their raw router probabilities (no renormalisation, as the
// paper's code), SwiGLU experts, plus a shared SwiGLU expert every token goes through.
//
// Execution: tokens are permuted into per-expert groups (stable: by sample, then token), each group
// runs as two GEMMs (gate|up side by side, then down), and results are combined per token in slot
// order, so a token's output never depends on which other tokens share its batch, to the bit: every
// GEMM uses the tiled kernel whatever its row count.
//
// Capacity (optional, capacityFactor > 0): per sample and layer each expert takes at most
// C = ceil(capacityFactor * tokens * k / E) assignments. Assignments are admitted by priority: every
// token's first choice in token order, then every second choice, ...; one arriving at a full expert
// is dropped: it contributes nothing (the kept weights are not renormalised) and the token still gets
// the shared expert and its residual. Routing statistics count kept and dropped assignments.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/cpu/gemm.h"

namespace nd {
class ThreadPool;
}

namespace nd::moe {

struct SwiGluWeights {
  GemmWeight gate, up, down;  // gate, up: [hidden, dim]; down: [dim, hidden]; no biases
  int64_t hidden = 0;
};

struct MoeLayerWeights {
  GemmWeight router;  // [experts, dim]
  std::vector<SwiGluWeights> experts;
  SwiGluWeights shared;  // hidden 0: none
  int64_t dim = 0;
};

struct MoeOptions {
  int64_t topK = 2;
  double capacityFactor = 0;  // 0: dropless
};

struct MoeLayerStats {
  std::vector<int64_t> tokensPerExpert;  // kept assignments per expert, summed over the batch
  int64_t dropped = 0;                   // assignments dropped by the capacity limit
  double entropy = 0;                    // mean over tokens of -sum_e p_e ln p_e (nats)
  std::vector<int32_t> choices;          // [batch * tokens, k] chosen experts (descending probability)
  std::vector<uint8_t> kept;             // [batch * tokens, k] 1 kept, 0 dropped
};

// Per-sample capacity C for `tokens` tokens (0 when dropless).
int64_t moeCapacity(const MoeOptions& options, int64_t tokens, int64_t experts);

// out[batch * tokens, dim] = MoE(z). z and out must not overlap. stats may be null.
void moeForwardCpu(const float* z, int64_t batch, int64_t tokens, const MoeLayerWeights& weights,
                   const MoeOptions& options, float* out, MoeLayerStats* stats, ThreadPool* pool);

}  // namespace nd::moe
