#include "kernels/cpu/topk.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"

namespace nd {

namespace {

void checkSoftmax(const float* logits, int64_t rows, int64_t cols, const float* probs) {
  ND_REQUIRE(rows >= 0 && cols >= 0, Arg,
             "softmaxRows: sizes must be >= 0 (rows " + std::to_string(rows) + ", cols " + std::to_string(cols) + ")");
  int64_t total = 0;
  ND_REQUIRE(!__builtin_mul_overflow(rows, cols, &total), Arg, "softmaxRows: rows * cols overflows");
  if (total > 0) ND_REQUIRE(logits && probs, Arg, "softmaxRows: logits and probs must not be null");
}

void checkTopk(const float* scores, int64_t rows, int64_t cols, int64_t k, const int32_t* idx, const float* val) {
  ND_REQUIRE(rows >= 0 && cols >= 0, Arg,
             "topk: sizes must be >= 0 (rows " + std::to_string(rows) + ", cols " + std::to_string(cols) + ")");
  ND_REQUIRE(cols <= INT32_MAX, Arg, "topk: cols must fit an int32 index, received " + std::to_string(cols));
  ND_REQUIRE(k >= 1 && k <= cols, Arg,
             "topk: need 1 <= k <= cols (k " + std::to_string(k) + ", cols " + std::to_string(cols) + ")");
  int64_t total = 0;
  ND_REQUIRE(!__builtin_mul_overflow(rows, cols, &total), Arg, "topk: rows * cols overflows");
  if (rows > 0) ND_REQUIRE(scores && idx && val, Arg, "topk: scores, idx and val must not be null");
}

// Ranks a before b: larger value first (NaN counts as the largest, as in torch.topk), then the lower
// index. A strict total order on (value, index), whatever the values.
inline bool ranksBefore(float va, int64_t ia, float vb, int64_t ib) {
  bool na = va != va, nb = vb != vb;
  if (na || nb) return na && nb ? ia < ib : na;
  if (va != vb) return va > vb;
  return ia < ib;
}

}  // namespace

void softmaxRowsCpu(const float* logits, int64_t rows, int64_t cols, float* probs, ThreadPool* pool) {
  checkSoftmax(logits, rows, cols, probs);
  if (rows == 0 || cols == 0) return;
  auto body = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* in = logits + r * cols;
      float* o = probs + r * cols;
      float mx = in[0];
      for (int64_t j = 1; j < cols; ++j) mx = in[j] > mx ? in[j] : mx;
      float sum = 0.0f;
      for (int64_t j = 0; j < cols; ++j) {
        float e = std::exp(in[j] - mx);
        o[j] = e;
        sum += e;
      }
      for (int64_t j = 0; j < cols; ++j) o[j] = o[j] / sum;
    }
  };
  int64_t grain = std::max<int64_t>(1, 4096 / cols);
  parallelForOrInline(pool, rows, grain, body);
}

void softmaxRowsReference(const float* logits, int64_t rows, int64_t cols, float* probs) {
  checkSoftmax(logits, rows, cols, probs);
  std::vector<double> e(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < cols; ++j) mx = std::max(mx, double(logits[r * cols + j]));
    for (int64_t j = 0; j < cols; ++j) sum += e[size_t(j)] = std::exp(double(logits[r * cols + j]) - mx);
    for (int64_t j = 0; j < cols; ++j) probs[r * cols + j] = float(e[size_t(j)] / sum);
  }
}

void topkCpu(const float* scores, int64_t rows, int64_t cols, int64_t k, int32_t* idx, float* val,
             ThreadPool* pool) {
  checkTopk(scores, rows, cols, k, idx, val);
  if (rows == 0) return;
  auto body = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* s = scores + r * cols;
      int32_t* oi = idx + r * k;
      float* ov = val + r * k;
      // Insertion into the sorted list oi/ov[0, count): O(cols * k), k is small for routing.
      int64_t count = 0;
      for (int64_t j = 0; j < cols; ++j) {
        float v = s[j];
        if (count == k && !ranksBefore(v, j, ov[k - 1], oi[k - 1])) continue;
        int64_t pos = count < k ? count++ : k - 1;
        while (pos > 0 && ranksBefore(v, j, ov[pos - 1], oi[pos - 1])) {
          ov[pos] = ov[pos - 1];
          oi[pos] = oi[pos - 1];
          --pos;
        }
        ov[pos] = v;
        oi[pos] = int32_t(j);
      }
    }
  };
  int64_t grain = std::max<int64_t>(1, 4096 / (cols * std::min<int64_t>(k, 8)));
  parallelForOrInline(pool, rows, grain, body);
}

void topkReference(const float* scores, int64_t rows, int64_t cols, int64_t k, int32_t* idx, float* val) {
  checkTopk(scores, rows, cols, k, idx, val);
  std::vector<bool> taken(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    std::fill(taken.begin(), taken.end(), false);
    // k times: the first (lowest-index) maximum among the entries not yet taken.
    for (int64_t t = 0; t < k; ++t) {
      int64_t best = -1;
      for (int64_t j = 0; j < cols; ++j)
        if (!taken[size_t(j)] && (best < 0 || scores[r * cols + j] > scores[r * cols + best])) best = j;
      taken[size_t(best)] = true;
      idx[r * k + t] = int32_t(best);
      val[r * k + t] = scores[r * cols + best];
    }
  }
}

}  // namespace nd
