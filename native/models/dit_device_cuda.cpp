// Only the kernels' entry points: the device code is compiled once, in kernels/cuda/*.cu.
#define ND_KERNEL_DECLARATIONS_ONLY
#include "models/dit_device.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "core/half.h"
#include "kernels/cuda/activation.cuh"
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/gemm.cuh"
#include "kernels/cuda/head_layer_norm.cuh"
#include "kernels/cuda/gated_residual.cuh"
#include "kernels/cuda/layer_norm_modulate.cuh"
#include "kernels/cuda/moe_routing.cuh"
#include "kernels/cuda/patchify.cuh"

namespace nd::models {

DType ditDeviceComputeType(const DitConfig& c) {
  return c.weightDType == DType::BF16 || c.weightDType == DType::F16 ? c.weightDType : DType::F32;
}

namespace {

// One stored matrix (any of f32/f16/bf16, any row stride) as `rows` contiguous rows in `act`.
void appendConverted(const GemmWeight& g, DType act, std::vector<uint8_t>& out) {
  const size_t es = dtypeSize(act);
  const size_t start = out.size();
  out.resize(start + size_t(g.n * g.k) * es);
  uint8_t* dst = out.data() + start;
  const int64_t ld = g.ld ? g.ld : g.k;
  for (int64_t r = 0; r < g.n; ++r)
    for (int64_t c = 0; c < g.k; ++c) {
      const size_t at = size_t(r * ld + c);
      float v;
      if (g.dtype == DType::F32) {
        std::memcpy(&v, static_cast<const uint8_t*>(g.data) + at * 4, 4);
      } else {
        uint16_t u;
        std::memcpy(&u, static_cast<const uint8_t*>(g.data) + at * 2, 2);
        v = g.dtype == DType::F16 ? halfToFloat(u) : bf16ToFloat(u);
      }
      uint8_t* e = dst + size_t(r * g.k + c) * es;
      if (act == DType::F32) {
        std::memcpy(e, &v, 4);
      } else {
        // A value that was stored in act is reproduced exactly; an f32 one rounds once.
        const uint16_t u = act == DType::F16 ? floatToHalf(v) : floatToBf16(v);
        std::memcpy(e, &u, 2);
      }
    }
}

DeviceLinear uploadLinear(const LinearLayer& l, DType act, const DeviceUpload& upload) {
  DeviceLinear d;
  d.n = l.n;
  d.k = l.k;
  std::vector<uint8_t> host;
  for (const GemmWeight& g : l.parts) appendConverted(g, act, host);
  ND_REQUIRE(int64_t(host.size()) == l.n * l.k * int64_t(dtypeSize(act)), Internal, "uploadLinear: parts do not add up");
  d.w = upload(host.data(), host.size());
  if (!l.bias.empty()) d.bias = static_cast<const float*>(upload(l.bias.data(), l.bias.size() * sizeof(float)));
  return d;
}

// Several matrices of the same shape, converted and uploaded as one contiguous [count, n, k] block.
const void* uploadStacked(const std::vector<const GemmWeight*>& parts, DType act, const DeviceUpload& upload) {
  std::vector<uint8_t> host;
  for (const GemmWeight* g : parts) appendConverted(*g, act, host);
  return upload(host.data(), host.size());
}

const float* uploadFloats(const std::vector<float>& v, const DeviceUpload& upload) {
  return v.empty() ? nullptr : static_cast<const float*>(upload(v.data(), v.size() * sizeof(float)));
}

size_t alignUp(size_t v) { return (v + 255) & ~size_t(255); }

}  // namespace

DitDeviceWeights uploadDitWeights(const DitModel& m, const DeviceUpload& upload) {
  const DitConfig& c = m.config_;
  ND_REQUIRE(c.family == "dit" || c.topK <= 8, Device,
             "The CUDA MoE router takes top-k up to 8; this model uses " + std::to_string(c.topK));
  ND_REQUIRE(c.hidden / c.heads <= 128, Device,
             "The CUDA attention kernels take head sizes up to 128; this model's is " + std::to_string(c.hidden / c.heads));
  DitDeviceWeights w;
  w.act = ditDeviceComputeType(c);
  w.patchEmbed = uploadLinear(m.patchEmbed_, w.act, upload);
  w.tMlp0 = uploadLinear(m.tMlp0_, w.act, upload);
  w.tMlp2 = uploadLinear(m.tMlp2_, w.act, upload);
  w.finalAdaLN = uploadLinear(m.finalAdaLN_, w.act, upload);
  w.finalLinear = uploadLinear(m.finalLinear_, w.act, upload);
  w.classTable = upload(m.classTable_, size_t((c.numClasses + 1) * c.hidden) * dtypeSize(m.classTableDType_));
  w.classTableType = m.classTableDType_;
  {  // timestepEmbedding's frequencies, in the same f32 operations
    const int64_t half = c.freqDim / 2;
    std::vector<float> freqs(static_cast<size_t>(half));
    const float negLog = float(-std::log(10000.0));
    const float denom = float(half - c.freqShift);
    for (int64_t k = 0; k < half; ++k) freqs[size_t(k)] = std::exp(negLog * float(k) / denom);
    w.freqs = uploadFloats(freqs, upload);
  }
  for (const DitBlockWeights& b : m.blocks_) {
    DitDeviceWeights::Block d;
    d.qkv = uploadLinear(b.qkv, w.act, upload);
    d.proj = uploadLinear(b.proj, w.act, upload);
    d.adaLN = uploadLinear(b.adaLN, w.act, upload);
    if (c.family == "dit-moe") {
      const moe::MoeLayerWeights& mw = b.moe;
      LinearLayer router;
      router.n = c.experts;
      router.k = c.hidden;
      router.parts = {mw.router};
      d.router = uploadLinear(router, w.act, upload);
      std::vector<const GemmWeight*> gu, dn;
      for (const moe::SwiGluWeights& e : mw.experts) {
        gu.push_back(&e.gate);
        gu.push_back(&e.up);
        dn.push_back(&e.down);
      }
      d.expertsGateUp = uploadStacked(gu, w.act, upload);
      d.expertsDown = uploadStacked(dn, w.act, upload);
      if (mw.shared.hidden > 0) {
        LinearLayer sgu, sdn;
        sgu.n = 2 * mw.shared.hidden;
        sgu.k = c.hidden;
        sgu.parts = {mw.shared.gate, mw.shared.up};
        sdn.n = c.hidden;
        sdn.k = mw.shared.hidden;
        sdn.parts = {mw.shared.down};
        d.sharedGateUp = uploadLinear(sgu, w.act, upload);
        d.sharedDown = uploadLinear(sdn, w.act, upload);
      }
    } else {
      d.fc1 = uploadLinear(b.fc1, w.act, upload);
      d.fc2 = uploadLinear(b.fc2, w.act, upload);
    }
    d.qNormW = uploadFloats(b.qNormW, upload);
    d.qNormB = uploadFloats(b.qNormB, upload);
    d.kNormW = uploadFloats(b.kNormW, upload);
    d.kNormB = uploadFloats(b.kNormB, upload);
    w.blocks.push_back(d);
  }
  return w;
}

DitDeviceLayout ditDeviceLayout(const DitConfig& c, DType act, int64_t n, int64_t h, int64_t w) {
  const int64_t p = c.patch, D = c.hidden, T = (h / p) * (w / p), rows = n * T;
  const size_t a = dtypeSize(act), f = sizeof(float);
  const int64_t wide = std::max({3 * D, c.mlpHidden, c.inChannels * p * p});
  const size_t sizes[] = {
      size_t(n * c.inChannels * h * w) * f, size_t(n) * f, size_t(n) * sizeof(int64_t),
      size_t(n * c.outChannels * h * w) * f, size_t(T * D) * f, size_t(rows * D) * f, size_t(rows * D) * a,
      size_t(rows * wide) * a, size_t(rows * D) * a, size_t(rows * p * p * c.outChannels) * f,
      size_t(n * c.freqDim) * f, size_t(n * c.freqDim) * a, size_t(n * D) * f, size_t(n * D) * a,
      size_t(n * D) * f, size_t(n * D) * a, size_t(n * 6 * D) * f};
  DitDeviceLayout l;
  const bool moe = c.family == "dit-moe";
  const int64_t E = moe ? c.experts : 0, K = moe ? c.topK : 0, H = c.expertHidden, Hs = c.sharedHidden, L = c.depth;
  const size_t moeSizes[] = {
      size_t(rows * E) * f, size_t(L * rows * K) * 4, size_t(rows * K) * f, size_t(L * rows * K),
      size_t(rows * K) * 4, size_t(E + 1) * 4, size_t(L * E) * 4, size_t(L) * 4, size_t(L * rows) * f,
      size_t(rows * K * 2 * H) * a, size_t(rows * K * H) * a, size_t(rows * K * D) * f, size_t(rows * D) * f,
      size_t(rows * 2 * Hs) * a, size_t(rows * Hs) * a};
  for (size_t s : sizes) {
    l.offsets.push_back(l.bytes);
    l.bytes += alignUp(s);
  }
  for (size_t s : moeSizes) {
    l.offsets.push_back(moe ? l.bytes : SIZE_MAX);
    l.bytes += moe ? alignUp(s) : 0;
  }
  return l;
}

DitDeviceBuffers DitDeviceLayout::carve(void* base) const {
  auto at = [&](size_t i) {
    return offsets[i] == SIZE_MAX ? nullptr : static_cast<void*>(static_cast<uint8_t*>(base) + offsets[i]);
  };
  DitDeviceBuffers b;
  b.x = static_cast<float*>(at(0));
  b.t = static_cast<float*>(at(1));
  b.y = static_cast<int64_t*>(at(2));
  b.out = static_cast<float*>(at(3));
  b.pos = static_cast<float*>(at(4));
  b.hs = static_cast<float*>(at(5));
  b.z = at(6);
  b.wide = at(7);
  b.attn = at(8);
  b.tokensOut = static_cast<float*>(at(9));
  b.freqEmb = static_cast<float*>(at(10));
  b.freqAct = at(11);
  b.t1 = static_cast<float*>(at(12));
  b.t1Act = at(13);
  b.cond = static_cast<float*>(at(14));
  b.condAct = at(15);
  b.mods = static_cast<float*>(at(16));
  b.logits = static_cast<float*>(at(17));
  b.idx = static_cast<int32_t*>(at(18));
  b.val = static_cast<float*>(at(19));
  b.kept = static_cast<uint8_t*>(at(20));
  b.order = static_cast<int32_t*>(at(21));
  b.offsets = static_cast<int32_t*>(at(22));
  b.counts = static_cast<int32_t*>(at(23));
  b.dropped = static_cast<int32_t*>(at(24));
  b.entropy = static_cast<float*>(at(25));
  b.expertHidden = at(26);
  b.expertAct = at(27);
  b.routed = static_cast<float*>(at(28));
  b.moeOut = static_cast<float*>(at(29));
  b.sharedHidden = at(30);
  b.sharedAct = at(31);
  return b;
}

void ditDeviceForward(const DitConfig& c, const DitDeviceWeights& wt, const DitDeviceBuffers& b, int64_t n, int64_t h,
                      int64_t w, void* stream) {
  const DType act = wt.act;
  const int64_t p = c.patch, D = c.hidden, T = (h / p) * (w / p), rows = n * T, hd = D / c.heads;
  using Kind = LinearEpilogueCuda::Kind;
  auto linear = [&](const void* x, int64_t m, const DeviceLinear& l, void* y, DType yType, LinearEpilogueCuda epi) {
    linearCuda(x, m, l.k, l.w, act, l.n, l.k, l.k, l.bias, y, yType, l.n, epi, stream);
  };
  auto gated = [&](const float* gate, int64_t stride) {
    LinearEpilogueCuda e;
    e.kind = Kind::GatedAdd;
    e.gate = gate;
    e.gateStride = stride;
    e.rowsPerSample = T;
    return e;
  };
  const LinearEpilogueCuda store{};
  LinearEpilogueCuda gelu;
  gelu.kind = Kind::GeluTanh;

  // Tokens: patch embedding plus the position table.
  patchifyCuda(b.x, n, c.inChannels, h, w, p, b.wide, act, stream);
  linear(b.wide, rows, wt.patchEmbed, b.hs, DType::F32, store);
  addTokenTableCuda(b.hs, b.pos, n, T, D, stream);

  // Conditioning: t_emb + y_emb, and its silu for every adaLN Linear.
  timestepEmbeddingCuda(b.t, n, c.freqDim, wt.freqs, b.freqEmb, stream);
  activationCuda(ActivationKind::Identity, b.freqEmb, b.freqAct, act, n * c.freqDim, stream);
  linear(b.freqAct, n, wt.tMlp0, b.t1, DType::F32, store);
  activationCuda(ActivationKind::Silu, b.t1, b.t1Act, act, n * D, stream);
  linear(b.t1Act, n, wt.tMlp2, b.cond, DType::F32, store);
  addClassEmbeddingCuda(b.cond, b.y, n, D, wt.classTable, wt.classTableType, stream);
  activationCuda(ActivationKind::Silu, b.cond, b.condAct, act, n * D, stream);

  const float attnScale = float(1.0 / std::sqrt(double(hd)));
  const int64_t E = c.experts, K = c.topK, H = c.expertHidden, Hs = c.sharedHidden;
  moe::MoeOptions moeOpts;
  moeOpts.topK = K;
  moeOpts.capacityFactor = c.capacityFactor;
  const int64_t capacity = c.family == "dit-moe" ? moe::moeCapacity(moeOpts, T, E) : 0;
  int64_t layer = 0;
  for (const DitDeviceWeights::Block& blk : wt.blocks) {
    const float* md = b.mods;
    linear(b.condAct, n, blk.adaLN, b.mods, DType::F32, store);
    // h += gate_msa * proj(Attn(modulate(LN(h), shift_msa, scale_msa)))
    layerNormModulateCuda(b.hs, n, T, D, md, md + D, 6 * D, float(c.normEps), b.z, act, stream);
    linear(b.z, rows, blk.qkv, b.wide, act, store);
    if (c.qkNorm)
      headLayerNormCuda(b.wide, act, rows, c.heads, hd, blk.qNormW, blk.qNormB, blk.kNormW, blk.kNormB, 1e-6f, stream);
    attentionCuda(b.wide, act, n, T, c.heads, hd, attnScale, b.attn, stream);
    linear(b.attn, rows, blk.proj, b.hs, DType::F32, gated(md + 2 * D, 6 * D));
    // h += gate_mlp * fc2(gelu(fc1(modulate(LN(h), shift_mlp, scale_mlp))))
    layerNormModulateCuda(b.hs, n, T, D, md + 3 * D, md + 4 * D, 6 * D, float(c.mlpNormEps), b.z, act, stream);
    if (c.family == "dit-moe") {
      // Routed experts over the permutation the router made on the device, the shared expert over
      // every token, the weighted sum, then the gated residual.
      linear(b.z, rows, blk.router, b.logits, DType::F32, store);
      const MoeRoutingBuffers rb{b.idx + layer * rows * K, b.val, b.kept + layer * rows * K, b.order, b.offsets,
                                 b.counts + layer * E, b.dropped + layer, b.entropy + layer * rows};
      moeRouteCuda(b.logits, n, T, E, K, capacity, rb, stream);
      groupedLinearCuda(b.z, D, blk.expertsGateUp, act, E, 2 * H, D, b.order, b.offsets, rows * K, K, true, false,
                        b.expertHidden, act, 2 * H, stream);
      swigluCuda(b.expertHidden, act, rows * K, H, 2 * H, b.expertAct, act, H, stream);
      groupedLinearCuda(b.expertAct, H, blk.expertsDown, act, E, D, H, b.order, b.offsets, rows * K, K, false, true,
                        b.routed, DType::F32, D, stream);
      if (Hs > 0) {
        linear(b.z, rows, blk.sharedGateUp, b.sharedHidden, act, store);
        swigluCuda(b.sharedHidden, act, rows, Hs, 2 * Hs, b.sharedAct, act, Hs, stream);
        linear(b.sharedAct, rows, blk.sharedDown, b.moeOut, DType::F32, store);
      }
      moeCombineCuda(b.moeOut, b.routed, rb.val, rb.kept, rows, K, D, Hs > 0, stream);
      gatedResidualCuda(b.hs, b.moeOut, DType::F32, n, T, D, md + 5 * D, 6 * D, stream);
    } else {
      linear(b.z, rows, blk.fc1, b.wide, act, gelu);
      linear(b.wide, rows, blk.fc2, b.hs, DType::F32, gated(md + 5 * D, 6 * D));
    }
    ++layer;
  }

  // Final layer: modulate(LN(h), shift, scale) -> Linear -> unpatchify.
  linear(b.condAct, n, wt.finalAdaLN, b.mods, DType::F32, store);
  layerNormModulateCuda(b.hs, n, T, D, b.mods, b.mods + D, 2 * D, float(c.normEps), b.z, act, stream);
  linear(b.z, rows, wt.finalLinear, b.tokensOut, DType::F32, store);
  unpatchifyCuda(b.tokensOut, DType::F32, n, c.outChannels, h, w, p, b.out, stream);
}

DitRouting ditDeviceRouting(const DitConfig& c, int64_t rows, const int32_t* counts, const int32_t* dropped,
                            const float* entropy, const int32_t* idx, const uint8_t* kept) {
  DitRouting r;
  if (c.family != "dit-moe") return r;
  const int64_t E = c.experts, K = c.topK;
  for (int64_t l = 0; l < c.depth; ++l) {
    moe::MoeLayerStats s;
    s.tokensPerExpert.assign(counts + l * E, counts + (l + 1) * E);
    s.dropped = dropped[l];
    double ent = 0;
    for (int64_t i = 0; i < rows; ++i) ent += double(entropy[l * rows + i]);
    s.entropy = rows > 0 ? ent / double(rows) : 0.0;
    s.choices.assign(idx + l * rows * K, idx + (l + 1) * rows * K);
    s.kept.assign(kept + l * rows * K, kept + (l + 1) * rows * K);
    r.push_back(std::move(s));
  }
  return r;
}

}  // namespace nd::models
