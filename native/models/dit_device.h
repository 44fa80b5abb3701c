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
  };
  std::vector<Block> blocks;
};

// The model's compute dtype on a device: bf16/f16 when its matrices are stored so, else f32.
DType ditDeviceComputeType(const DitConfig& c);
// Every matrix converted to the compute dtype (once, on the host) and uploaded; biases and norm
// parameters as f32. DiT-MoE is refused (ERR_ND_DEVICE): its device routing is not built yet.
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
};

struct DitDeviceLayout {
  size_t bytes = 0;
  DitDeviceBuffers carve(void* base) const;
  std::vector<size_t> offsets;  // of the fields above, in declaration order
};
DitDeviceLayout ditDeviceLayout(const DitConfig& c, DType act, int64_t n, int64_t h, int64_t w);

// One forward on `stream` (asynchronous). Inputs must already be in b.x, b.t, b.y, b.pos.
void ditDeviceForward(const DitConfig& c, const DitDeviceWeights& wt, const DitDeviceBuffers& b, int64_t n, int64_t h,
                      int64_t w, void* stream);

}  // namespace nd::models
