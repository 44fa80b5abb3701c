// attentionCpu: softmax(q kᵀ · scale) v for every (sample, head), the DiT self-attention, without
// materialising the tokens x tokens score matrix: keys/values are visited in tiles with an online
// (running max, running sum) softmax, so memory is O(tile) per thread for any sequence length.
// Any head size (64 for S/B/L, 72 for XL, 88 for G, ...).
#pragma once
#include <cstdint>

namespace nd {
class ThreadPool;

// qkv: [batch, tokens, 3, heads, headDim] (the output of the fused qkv Linear: columns [0, D) are q,
// [D, 2D) k, [2D, 3D) v, head h owning headDim consecutive columns of each), rows of 3*heads*headDim
// floats. out: [batch, tokens, heads * headDim]. scale: usually headDim^-0.5.
void attentionCpu(const float* qkv, int64_t batch, int64_t tokens, int64_t heads, int64_t headDim,
                  float scale, float* out, ThreadPool* pool);

// Plain reference: full score rows in double, one thread.
void attentionReference(const float* qkv, int64_t batch, int64_t tokens, int64_t heads, int64_t headDim,
                        float scale, float* out);

namespace detail {
// Test and benchmark hooks: each runs one path whatever activeIsa() says.
// The portable flash path (plain C++, any CPU).
void attentionPortable(const float* qkv, int64_t batch, int64_t tokens, int64_t heads, int64_t headDim,
                       float scale, float* out, ThreadPool* pool);
// True when the AVX-512 path was compiled in and this CPU and OS can run it (F/BW/DQ/VL, zmm state).
bool attentionAvx512Supported();
// The AVX-512 path; throws ERR_ND_DEVICE when attentionAvx512Supported() is false.
void attentionAvx512(const float* qkv, int64_t batch, int64_t tokens, int64_t heads, int64_t headDim,
                     float scale, float* out, ThreadPool* pool);

// Internals of the AVX-512 path (attention_avx512.cpp), driven by attention.cpp.
constexpr int64_t kAttnAvx512QueryBlock = 32;  // queries per task: two zmm of lanes
constexpr int64_t kAttnAvx512KeyTile = 64;     // keys per online-softmax step
constexpr int64_t kAttnAvx512Group = 4;        // query blocks per task, sharing each packed k/v tile
bool attentionAvx512Compiled();                // false where the file was built without AVX-512 flags
// Tasks of the (batch, head, group of query blocks) grid.
int64_t attentionAvx512TaskCount(int64_t batch, int64_t tokens, int64_t heads);
// Floats of 64-byte-aligned scratch one thread needs for attentionAvx512Tasks.
int64_t attentionAvx512ScratchFloats(int64_t headDim);
// Tasks [t0, t1) of the (batch, head, query group) grid, in that order (query groups fastest).
void attentionAvx512Tasks(const float* qkv, int64_t tokens, int64_t heads, int64_t headDim, float scale,
                          float* out, int64_t t0, int64_t t1, float* scratch);
}  // namespace detail

}  // namespace nd
