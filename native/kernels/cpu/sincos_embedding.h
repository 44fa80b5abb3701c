// The two fixed sinusoidal embeddings of a DiT.
//  - sincosPosEmbed2d: the 2-D position table for a gh x gw token grid (MAE/DiT), computed in double
//    and rounded once: token (r, c) = [sin(c w) | cos(c w) | sin(r w) | cos(r w)], each dim/4 wide,
//    w_k = 10000^(-k / (dim/4)). The first half encodes the COLUMN, sin before cos. Any grid, not
//    only square ones (the square case equals the table DiT stores in its checkpoints).
//  - timestepEmbedding: GLIDE's frequency embedding of the (float) timestep, COS before SIN:
//    freq_k = exp(-ln(maxPeriod) * k / (half - freqShift)), k < half = dim/2; emb = [cos(t f) | sin(t f)].
//    freqShift 0 is the original DiT, 1 is diffusers' DiT (downscale_freq_shift = 1). Computed in
//    float32 like PyTorch does.
#pragma once
#include <cstdint>

namespace nd {

void sincosPosEmbed2d(int64_t gh, int64_t gw, int64_t dim, float* out);  // out: [gh*gw, dim]; dim % 4 == 0
void timestepEmbedding(const float* t, int64_t n, int64_t dim, double maxPeriod, int freqShift, float* out);

// Double-precision references of both (the tests' ground truth).
void sincosPosEmbed2dReference(int64_t gh, int64_t gw, int64_t dim, double* out);
void timestepEmbeddingReference(const double* t, int64_t n, int64_t dim, double maxPeriod, int freqShift,
                                double* out);

}  // namespace nd
