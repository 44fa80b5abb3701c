// patchifyCpu / unpatchifyCpu: between images [N, C, H, W] and token rows. The two directions use
// different in-row orders, as the DiT does: a patch is flattened (channel, row-in-patch, col-in-patch)
// on the way in (the Conv2d(kernel = stride = p) weight order), and the final layer's output row is
// read (row-in-patch, col-in-patch, channel) on the way out. Tokens are row-major over the patch grid
// (token = r * (W/p) + c).
#pragma once
#include <cstdint>

namespace nd {
class ThreadPool;

// x: [n, c, h, w] with h, w multiples of p. out: [n, (h/p)*(w/p), c*p*p].
void patchifyCpu(const float* x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, float* out,
                 ThreadPool* pool);
// tokens: [n, (h/p)*(w/p), p*p*c] with the row in (pi, qj, ch) order. out: [n, c, h, w].
void unpatchifyCpu(const float* tokens, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, float* out,
                   ThreadPool* pool);

void patchifyReference(const float* x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, float* out);
void unpatchifyReference(const float* tokens, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p,
                         float* out);

}  // namespace nd
