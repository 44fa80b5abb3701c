// The DiT family as native denoisers: DiT (Peebles & Xie, adaLN-Zero blocks, tanh-GELU MLP) and
// DiT-MoE (Fei et al., each block's MLP replaced by routed SwiGLU experts plus a shared expert).
//
// Weights are loaded from safetensors in one of three layouts (facebookresearch/DiT's state_dict
// names, diffusers' DiTTransformer2DModel names, feizc/DiT-MoE's names) into one internal layout,
// kept in their stored dtype (f32/f16/bf16; biases and norm parameters widened to f32) and read in
// place from the file mapping; compute is f32. The config is inferred from the tensor shapes, with
// what shapes cannot say (heads, top-k, the diffusers numerics) from DitOverrides, a config JSON or
// known defaults. Every tensor is checked: a missing, extra or mis-shaped one is ERR_ND_MODEL naming
// it.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/gemm.h"
#include "moe/token_moe.h"

namespace nd {
class ThreadPool;
namespace io {
class SafetensorsFile;
}
}  // namespace nd

namespace nd::models {

enum class DitLayout { Original, Diffusers, DitMoe };
const char* ditLayoutName(DitLayout l) noexcept;

struct DitConfig {
  std::string family = "dit";  // "dit" | "dit-moe"
  DitLayout layout = DitLayout::Original;
  std::string variant = "original";  // numerics: "original" | "diffusers"
  int64_t depth = 0, hidden = 0, heads = 0, patch = 0;
  int64_t inChannels = 4, outChannels = 8;
  int64_t numClasses = 1000;  // the null (unconditional) class is numClasses
  bool learnSigma = true;
  int64_t freqDim = 256;     // timestep frequency embedding width
  int freqShift = 0;         // 0: exponent / half (original); 1: / (half - 1) (diffusers)
  double normEps = 1e-6;     // every LayerNorm ...
  double mlpNormEps = 1e-6;  // ... except the pre-MLP one of the diffusers variant (1e-5)
  int guidedChannels = 3;    // CFG channels of forward_with_cfg (original 3, diffusers 4)
  int64_t mlpHidden = 0;     // dense MLP width (4D)
  // DiT-MoE
  int64_t experts = 0, topK = 0, expertHidden = 0, sharedHidden = 0;
  bool qkNorm = false;
  double capacityFactor = 0;  // 0: dropless
  int64_t trainedGrid = 0;   // tokens per side of the stored pos_embed (0 when not stored)
  DType weightDType = DType::F32;
  int64_t parameters = 0;    // stored parameter count (duplicates and pos_embed included)
  std::string timeInput = "discrete";  // "discrete" (0..999) | "rectified-flow" (t in [0, 1])
};

// What the caller may set where shapes are silent (unset fields keep the inferred/default value).
struct DitOverrides {
  std::optional<int64_t> heads, topK;
  std::optional<std::string> variant;  // "original" | "diffusers"
  std::optional<double> capacityFactor;
  std::optional<std::string> timeInput;
};

// A Linear layer whose output columns may come from several stored tensors (diffusers' split q/k/v,
// DiT-MoE's gate and up projections written side by side).
struct LinearLayer {
  std::vector<GemmWeight> parts;  // concatenated along the output dimension
  std::vector<float> bias;        // n floats, or empty
  int64_t n = 0, k = 0;
  // y[m, n] (row stride ldy) = x[m, k] (row stride ldx) Wᵀ + bias. `rows` is never Auto in the
  // model: a fixed kernel keeps each row's bits independent of the batch (see linearCpu).
  void apply(const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy, GemmEpilogue epilogue,
             ThreadPool* pool, GemmRows rows) const;
};

struct DitBlockWeights {
  LinearLayer qkv, proj, adaLN;
  std::vector<float> qNormW, qNormB, kNormW, kNormB;  // qk-norm (DiT-MoE flash blocks)
  LinearLayer fc1, fc2;                               // dense MLP
  moe::MoeLayerWeights moe;                           // DiT-MoE
};

// Per-forward routing statistics of the MoE layers (empty for a dense DiT).
using DitRouting = std::vector<moe::MoeLayerStats>;

class DitModel;
struct DitDeviceWeights;
// Copies `bytes` of host memory to a device and returns the device copy (models/dit_device.h).
using DeviceUpload = std::function<const void*(const void* host, size_t bytes)>;
DitDeviceWeights uploadDitWeights(const DitModel& model, const DeviceUpload& upload);

class DitModel {
 public:
  // path: a .safetensors file; layout: "auto" | "original" | "diffusers" | "dit-moe". A config JSON
  // beside the file (<file>.json, or config.json in its directory) supplies heads etc. when present.
  static std::shared_ptr<DitModel> load(const std::string& path, const std::string& layout,
                                        const DitOverrides& overrides);
  // The same from an already opened file (tests).
  static std::shared_ptr<DitModel> fromFile(std::shared_ptr<io::SafetensorsFile> file, const std::string& layout,
                                            const DitOverrides& overrides, const std::string& configJson = "");

  const DitConfig& config() const { return config_; }
  int64_t weightBytes() const { return weightBytes_; }

  // x: [n, inChannels, h, w] (h, w multiples of the patch), t: n model timesteps, y: n class labels
  // in [0, numClasses] (numClasses = unconditional). out: [n, outChannels, h, w].
  void forward(const float* x, int64_t n, int64_t h, int64_t w, const float* t, const int64_t* y, float* out,
               ThreadPool* pool, DitRouting* routing = nullptr) const;

  // Bytes of activations a forward of this size allocates (the scratch of forward()).
  int64_t activationBytes(int64_t n, int64_t h, int64_t w) const;

 private:
  // The device upload reads the weights in place (models/dit_device_cuda.cpp).
  friend DitDeviceWeights uploadDitWeights(const DitModel& model, const DeviceUpload& upload);
  DitModel() = default;
  void checkInputs(int64_t n, int64_t h, int64_t w, const float* t, const int64_t* y) const;
  // The sin-cos position table of a gh x gw grid, kept for the last grid used (sampling reuses one).
  std::shared_ptr<const std::vector<float>> positionTable(int64_t gh, int64_t gw) const;

  DitConfig config_;
  std::shared_ptr<io::SafetensorsFile> file_;  // the mapping the weights point into
  std::vector<std::vector<uint8_t>> owned_;     // tensors that needed a copy (none for plain files)
  int64_t weightBytes_ = 0;

  LinearLayer patchEmbed_, tMlp0_, tMlp2_, finalAdaLN_, finalLinear_;
  const void* classTable_ = nullptr;
  DType classTableDType_ = DType::F32;
  std::vector<DitBlockWeights> blocks_;
  mutable std::mutex posMutex_;
  mutable std::shared_ptr<const std::vector<float>> pos_;
  mutable std::pair<int64_t, int64_t> posGrid_{0, 0};
};

}  // namespace nd::models
