// The DiT forward on a CUDA device, as plain C++ over the device kernels' entry points
// (kernels/cuda/*.cuh): which buffers, which kernels, in which order. Memory and streams are the
// caller's (models/dit_cuda.cpp on a GPU; the kernel emulator of the native tests on the CPU, which
// is how CI checks this sequence against DitModel::forward without a GPU).
//
// Numerics: activations between blocks (the residual stream, the conditioning, the adaLN
// modulations) stay f32; the GEMM operands and attention run in the weights' dtype (bf16/f16 on
// tensor cores with f32 accumulation, or f32 throughout for f32 weights, the parity path).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "core/dtype.h"
#include "models/dit.h"
#include "moe/token_moe.h"

namespace nd::models {

struct DeviceLinear {
  const void* w = nullptr;  // [n, k] contiguous, in the model's compute dtype
  const float* bias = nullptr;
  int64_t n = 0, k = 0;
};

struct DitDeviceWeights {
  DType act = DType::F32;  // compute dtype of the GEMMs and attention
  DeviceLinear patchEmbed, tMlp0, tMlp2, finalAdaLN, finalLinear;
  const void* classTable = nullptr;
  DType classTableType = DType::F32;
  const float* freqs = nullptr;  // the timestep embedding's frequencies, computed as the CPU does
  struct Block {
    DeviceLinear qkv, proj, adaLN, fc1, fc2;
    const float *qNormW = nullptr, *qNormB = nullptr, *kNormW = nullptr, *kNormB = nullptr;
    // DiT-MoE: the router, every expert's gate|up side by side ([E, 2H, D]) and downs ([E, D, H]),
    // the shared expert's gate|up ([2Hs, D]) and down ([D, Hs]).
    DeviceLinear router, sharedGateUp, sharedDown;
    const void* expertsGateUp = nullptr;
    const void* expertsDown = nullptr;
  };
  std::vector<Block> blocks;
};

// The model's compute dtype on a device: bf16/f16 when its matrices are stored so, else f32.
DType ditDeviceComputeType(const DitConfig& c);
// Every matrix converted to the compute dtype (once, on the host) and uploaded; biases and norm
// parameters as f32.
DitDeviceWeights uploadDitWeights(const DitModel& model, const DeviceUpload& upload);

// Every activation buffer of one forward of n samples at h x w, carved from one allocation.
struct DitDeviceBuffers {
  float* x = nullptr;      // [n, C, h, w] input (the caller copies it here)
  float* t = nullptr;      // [n] model timesteps
  int64_t* y = nullptr;    // [n] class labels
  float* out = nullptr;    // [n, outC, h, w]
  float* pos = nullptr;    // [T, D] position table (the caller uploads it for the grid)
  float* hs = nullptr;     // [rows, D] residual stream
  void* z = nullptr;       // [rows, D] normalised + modulated tokens (act)
  void* wide = nullptr;    // [rows, max(3D, mlpHidden, C p p)] (act): patches, qkv, MLP hidden
  void* attn = nullptr;    // [rows, D] attention output (act)
  float* tokensOut = nullptr;  // [rows, p p outC]
  float* freqEmb = nullptr;    // [n, F]
  void* freqAct = nullptr;     // [n, F] (act)
  float* t1 = nullptr;         // [n, D]
  void* t1Act = nullptr;       // [n, D] (act)
  float* cond = nullptr;       // [n, D]
  void* condAct = nullptr;     // [n, D] silu(cond) (act)
  float* mods = nullptr;       // [n, 6D]
  // DiT-MoE (null for a dense DiT). Routing results are kept per layer for the statistics.
  float* logits = nullptr;     // [rows, E]
  int32_t* idx = nullptr;      // [depth, rows * K]
  float* val = nullptr;        // [rows * K]
  uint8_t* kept = nullptr;     // [depth, rows * K]
  int32_t* order = nullptr;    // [rows * K]
  int32_t* offsets = nullptr;  // [E + 1]
  int32_t* counts = nullptr;   // [depth, E]
  int32_t* dropped = nullptr;  // [depth]
  float* entropy = nullptr;    // [depth, rows]
  void* expertHidden = nullptr;  // [rows * K, 2H] (act)
  void* expertAct = nullptr;     // [rows * K, H] (act)
  float* routed = nullptr;       // [rows * K, D]
  float* moeOut = nullptr;       // [rows, D]
  void* sharedHidden = nullptr;  // [rows, 2Hs] (act)
  void* sharedAct = nullptr;     // [rows, Hs] (act)
};

struct DitDeviceLayout {
  size_t bytes = 0;
  DitDeviceBuffers carve(void* base) const;
  std::vector<size_t> offsets;  // of the fields above, in declaration order
};
DitDeviceLayout ditDeviceLayout(const DitConfig& c, DType act, int64_t n, int64_t h, int64_t w);

// One forward on `stream` (asynchronous). Inputs must already be in b.x, b.t, b.y, b.pos. A DiT-MoE
// routes on the device with no host synchronisation; the per-layer statistics stay in b.
void ditDeviceForward(const DitConfig& c, const DitDeviceWeights& wt, const DitDeviceBuffers& b, int64_t n, int64_t h,
                      int64_t w, void* stream);

// The per-layer routing statistics of the last forward, read from the (host copies of the) buffers:
// counts [depth, E], dropped [depth], entropy [depth, rows], idx/kept [depth, rows * K].
DitRouting ditDeviceRouting(const DitConfig& c, int64_t rows, const int32_t* counts, const int32_t* dropped,
                            const float* entropy, const int32_t* idx, const uint8_t* kept);

}  // namespace nd::models
