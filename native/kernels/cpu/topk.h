// Router primitives of the token-level MoE: a row-wise softmax over the experts' logits and the top-k
// of each row. Ties break toward the lower expert index, so routing is deterministic; the k picks of
// a row come out in descending score order.
#pragma once
#include <cstdint>

namespace nd {
class ThreadPool;

// logits, probs: rows x cols (probs may equal logits). Max-subtracted, f32 exp, f32 sum.
void softmaxRowsCpu(const float* logits, int64_t rows, int64_t cols, float* probs, ThreadPool* pool);
void softmaxRowsReference(const float* logits, int64_t rows, int64_t cols, float* probs);

// scores: rows x cols; idx/val: rows x k. 1 <= k <= cols.
void topkCpu(const float* scores, int64_t rows, int64_t cols, int64_t k, int32_t* idx, float* val,
             ThreadPool* pool);
void topkReference(const float* scores, int64_t rows, int64_t cols, int64_t k, int32_t* idx, float* val);

}  // namespace nd
