// Writes a DiT checkpoint in the original (facebookresearch/DiT) layout with random weights, at any
// size (DiT-S/2, DiT-XL/2, ...), for parity tests that must not depend on downloaded files. The
// adaLN projections are random rather than zero (as trained ones are), so every block matters.
#pragma once
#include <cmath>
#include <cstring>
#include <list>
#include <random>
#include <string>
#include <vector>

#include "core/half.h"
#include "io/safetensors.h"

namespace ndtest {

struct RandomDitSpec {
  int64_t depth = 2, hidden = 64, heads = 2, patch = 2, inChannels = 4, classes = 10, freqDim = 256;
  nd::DType dtype = nd::DType::F32;  // matrices' dtype; biases f32
  uint32_t seed = 1;
  // DiT-MoE (feizc/DiT-MoE layout) when experts > 0: SwiGLU experts of expertHidden, a shared expert
  // of sharedHidden (0: none), the router drawn with std 1 so that choices are well separated.
  int64_t experts = 0, expertHidden = 0, sharedHidden = 0;
};

inline void writeRandomDit(const std::string& path, const RandomDitSpec& s) {
  std::mt19937 rng(s.seed);
  std::list<std::vector<uint8_t>> store;
  std::vector<nd::io::StWriteEntry> entries;
  auto add = [&](const std::string& name, nd::Shape shape, float scale, bool matrix) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::normal_distribution<float> dist(0.0f, scale);
    const nd::DType t = matrix ? s.dtype : nd::DType::F32;
    store.emplace_back(size_t(n) * nd::dtypeSize(t));
    uint8_t* p = store.back().data();
    for (int64_t i = 0; i < n; ++i) {
      const float v = dist(rng);
      if (t == nd::DType::F32) std::memcpy(p + i * 4, &v, 4);
      else {
        const uint16_t u = t == nd::DType::BF16 ? nd::floatToBf16(v) : nd::floatToHalf(v);
        std::memcpy(p + i * 2, &u, 2);
      }
    }
    entries.push_back({name, t, shape, p});
  };
  const int64_t D = s.hidden, p = s.patch, C = s.inChannels;
  const float inv = 1.0f / std::sqrt(float(D));
  add("x_embedder.proj.weight", {D, C, p, p}, 1.0f / std::sqrt(float(C * p * p)), true);
  add("x_embedder.proj.bias", {D}, 0.02f, false);
  add("t_embedder.mlp.0.weight", {D, s.freqDim}, 1.0f / std::sqrt(float(s.freqDim)), true);
  add("t_embedder.mlp.0.bias", {D}, 0.02f, false);
  add("t_embedder.mlp.2.weight", {D, D}, inv, true);
  add("t_embedder.mlp.2.bias", {D}, 0.02f, false);
  add("y_embedder.embedding_table.weight", {s.classes + 1, D}, 1.0f, true);
  for (int64_t i = 0; i < s.depth; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    add(b + "attn.qkv.weight", {3 * D, D}, inv, true);
    add(b + "attn.qkv.bias", {3 * D}, 0.02f, false);
    add(b + "attn.proj.weight", {D, D}, inv, true);
    add(b + "attn.proj.bias", {D}, 0.02f, false);
    if (s.experts > 0) {
      add(b + "moe.gate.weight", {s.experts, D}, 1.0f, true);
      for (int64_t e = 0; e < s.experts; ++e) {
        const std::string ep = b + "moe.experts." + std::to_string(e) + ".";
        add(ep + "gate_proj.weight", {s.expertHidden, D}, inv, true);
        add(ep + "up_proj.weight", {s.expertHidden, D}, inv, true);
        add(ep + "down_proj.weight", {D, s.expertHidden}, 0.5f / std::sqrt(float(s.expertHidden)), true);
      }
      if (s.sharedHidden > 0) {
        add(b + "moe.shared_experts.gate_proj.weight", {s.sharedHidden, D}, inv, true);
        add(b + "moe.shared_experts.up_proj.weight", {s.sharedHidden, D}, inv, true);
        add(b + "moe.shared_experts.down_proj.weight", {D, s.sharedHidden}, 0.5f / std::sqrt(float(s.sharedHidden)), true);
      }
    } else {
      add(b + "mlp.fc1.weight", {4 * D, D}, inv, true);
      add(b + "mlp.fc1.bias", {4 * D}, 0.02f, false);
      add(b + "mlp.fc2.weight", {D, 4 * D}, 0.5f * inv, true);
      add(b + "mlp.fc2.bias", {D}, 0.02f, false);
    }
    add(b + "adaLN_modulation.1.weight", {6 * D, D}, 0.5f * inv, true);
    add(b + "adaLN_modulation.1.bias", {6 * D}, 0.1f, false);
  }
  add("final_layer.adaLN_modulation.1.weight", {2 * D, D}, 0.5f * inv, true);
  add("final_layer.adaLN_modulation.1.bias", {2 * D}, 0.1f, false);
  add("final_layer.linear.weight", {p * p * 2 * C, D}, inv, true);
  add("final_layer.linear.bias", {p * p * 2 * C}, 0.02f, false);
  nd::io::writeSafetensors(path, entries);
}

}  // namespace ndtest
