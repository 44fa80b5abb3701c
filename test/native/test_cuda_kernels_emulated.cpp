// The CUDA kernels, run on the CPU by the emulator (cuda_emu.h), against the CPU backend's
// references. This is what CI (nvcc, no GPU) can say about the device code: every kernel's indexing,
// tiling, padding, barriers, warp exchanges and epilogues, and the host-side launch logic (tile and
// head-size choices, vector/scalar load paths). The same comparisons run on a real GPU in the
// gputest_* programs (`npm run test:gpu`).
#include "cuda_emu.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "check.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/gated_residual.h"
#include "kernels/cpu/gelu_tanh.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/head_layer_norm.h"
#include "kernels/cpu/layer_norm_modulate.h"
#include "kernels/cpu/patchify.h"
#include "kernels/cpu/silu.h"
#include "kernels/cpu/sincos_embedding.h"
#include "kernels/cpu/step_pass.h"
#include "kernels/cpu/swiglu.h"
#include "kernels/cuda/activation.cuh"
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/gated_residual.cuh"
#include "kernels/cuda/gemm.cuh"
#include "kernels/cuda/head_layer_norm.cuh"
#include "kernels/cuda/layer_norm_modulate.cuh"
#include "kernels/cuda/patchify.cuh"
#include "kernels/cuda/step_pass.cuh"
#include "kernels/cuda/moe_routing.cuh"
#include "kernels/cuda/activation.cu"
#include "kernels/cuda/gemm.cu"
#include "kernels/cuda/moe_routing.cu"
#include "moe/token_moe.h"

using namespace nd;
using kcuda::bf16;
using kcuda::f16;

namespace {

using ndtest::randomFloats;

template <class T>
std::vector<T> narrow(const std::vector<float>& v) {
  std::vector<T> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = kcuda::fromFloat<T>(v[i]);
  return out;
}
template <class T>
std::vector<float> widen(const std::vector<T>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = kcuda::toFloat(v[i]);
  return out;
}
template <class T>
std::vector<float> roundTrip(const std::vector<float>& v) {
  return widen(narrow<T>(v));
}

// The emulator itself: shuffles exchange lanes, barriers order shared memory, and a barrier that
// not every thread reaches is reported instead of hanging.
__global__ void emuProbeKernel(float* out, int divergent) {
  __shared__ float slot[64];
  const int t = int(threadIdx.x);
  slot[t] = float(t);
  if (divergent && t == 5) return;  // thread 5 never reaches the barrier below
  __syncthreads();
  out[t] = kcuda::warpSum(slot[63 - t]);
}

ND_TEST(emulator_shuffles_barriers_and_deadlocks) {
  std::vector<float> out(64, -1.0f);
  ndemu::launch(dim3(1), dim3(64), emuProbeKernel, out.data(), 0);
  // warp 0 holds slot[63..32], warp 1 slot[31..0]
  float w0 = 0, w1 = 0;
  for (int i = 32; i < 64; ++i) w0 += float(i);
  for (int i = 0; i < 32; ++i) w1 += float(i);
  for (int t = 0; t < 64; ++t) CHECK(out[size_t(t)] == (t < 32 ? w0 : w1));
  bool threw = false;
  try {
    ndemu::launch(dim3(1), dim3(64), emuProbeKernel, out.data(), 1);
  } catch (const std::runtime_error&) {
    threw = true;
  }
  CHECK(threw);
}

ND_TEST(layer_norm_modulate_matches_reference) {
  const int64_t B = 2, T = 5, D = 70, stride = 3 * D;
  auto x = randomFloats(size_t(B * T * D), 1);
  auto mod = randomFloats(size_t(B * stride), 2, -0.5f, 0.5f);
  std::vector<float> ref(x.size()), got(x.size());
  layerNormModulateReference(x.data(), B, T, D, mod.data(), mod.data() + D, stride, 1e-6f, ref.data());
  kcuda::launchLayerNormModulate(x.data(), B, T, D, mod.data(), mod.data() + D, stride, 1e-6f, got.data(), nullptr);
  CHECK_REL(got, ref, 1e-5);
  std::vector<bf16> gotB(x.size());
  kcuda::launchLayerNormModulate(x.data(), B, T, D, mod.data(), mod.data() + D, stride, 1e-6f, gotB.data(), nullptr);
  CHECK_REL(widen(gotB), ref, 1e-2);
  // No modulation: plain LayerNorm, in place.
  layerNormModulateReference(x.data(), B, T, D, nullptr, nullptr, 0, 1e-5f, ref.data());
  got = x;
  kcuda::launchLayerNormModulate(got.data(), B, T, D, static_cast<const float*>(nullptr), nullptr, 0, 1e-5f,
                                 got.data(), nullptr);
  CHECK_REL(got, ref, 1e-5);
}

ND_TEST(gated_residual_matches_reference) {
  const int64_t B = 3, T = 4, D = 33, stride = 2 * D;
  auto h = randomFloats(size_t(B * T * D), 3);
  auto y = randomFloats(size_t(B * T * D), 4);
  auto gate = randomFloats(size_t(B * stride), 5);
  auto ref = h, got = h;
  gatedResidualReference(ref.data(), y.data(), B, T, D, gate.data() + 1, stride);
  kcuda::launchGatedResidual(got.data(), y.data(), B, T, D, gate.data() + 1, stride, nullptr);
  CHECK_REL(got, ref, 1e-6);
  // The CPU kernel does one f32 multiply and one f32 add per element, in this order: the same bits.
  ref = h;
  gatedResidualCpu(ref.data(), y.data(), B, T, D, gate.data() + 1, stride, nullptr);
  CHECK(got == ref);
  auto yb = narrow<bf16>(y);
  auto yr = widen(yb);
  ref = h;
  got = h;
  gatedResidualReference(ref.data(), yr.data(), B, T, D, nullptr, 0);
  kcuda::launchGatedResidual(got.data(), yb.data(), B, T, D, nullptr, 0, nullptr);
  CHECK(got == ref);
}

ND_TEST(activations_match_reference) {
  const int64_t n = 1000;
  auto x = randomFloats(size_t(n), 6, -8.0f, 8.0f);
  std::vector<float> ref(x.size()), got(x.size());
  siluReference(x.data(), ref.data(), n);
  kcuda::launchActivation(ActivationKind::Silu, x.data(), got.data(), n, nullptr);
  CHECK_REL(got, ref, 1e-6);
  geluTanhReference(x.data(), ref.data(), n);
  kcuda::launchActivation(ActivationKind::GeluTanh, x.data(), got.data(), n, nullptr);
  CHECK_REL(got, ref, 1e-6);
  std::vector<f16> gotH(x.size());
  kcuda::launchActivation(ActivationKind::Identity, x.data(), gotH.data(), n, nullptr);
  CHECK(widen(gotH) == roundTrip<f16>(x));

  const int64_t rows = 7, hidden = 45, ldIn = 2 * hidden + 3, ldOut = hidden + 2;
  auto in = randomFloats(size_t(rows * ldIn), 7, -4.0f, 4.0f);
  std::vector<float> sref(size_t(rows * ldOut), 0.0f), sgot(size_t(rows * ldOut), 0.0f);
  swigluReference(in.data(), rows, hidden, ldIn, sref.data(), ldOut);
  kcuda::launchSwiglu(in.data(), rows, hidden, ldIn, sgot.data(), ldOut, nullptr);
  CHECK_REL(sgot, sref, 1e-6);
}

ND_TEST(patchify_round_trip_matches_reference) {
  const int64_t n = 2, c = 3, h = 8, w = 12, p = 2, T = (h / p) * (w / p);
  auto x = randomFloats(size_t(n * c * h * w), 8);
  std::vector<float> ref(size_t(n * T * c * p * p)), got(ref.size());
  patchifyReference(x.data(), n, c, h, w, p, ref.data());
  kcuda::launchPatchify(x.data(), n, c, h, w, p, got.data(), nullptr);
  CHECK(got == ref);
  auto tokens = randomFloats(ref.size(), 9);
  std::vector<float> uref(x.size()), ugot(x.size());
  unpatchifyReference(tokens.data(), n, c, h, w, p, uref.data());
  kcuda::launchUnpatchify(tokens.data(), n, c, h, w, p, ugot.data(), nullptr);
  CHECK(ugot == uref);
}

ND_TEST(embeddings_match_cpu) {
  const int64_t n = 3, dim = 16, half = dim / 2;
  std::vector<float> t = {0.0f, 17.5f, 999.0f};
  std::vector<float> ref(size_t(n * dim)), got(ref.size());
  timestepEmbedding(t.data(), n, dim, 10000.0, 0, ref.data());
  std::vector<float> freqs(static_cast<size_t>(half));  // what the model uploads: the CPU's own frequencies
  const float negLog = float(-std::log(10000.0)), denom = float(half);
  for (int64_t k = 0; k < half; ++k) freqs[size_t(k)] = std::exp(negLog * float(k) / denom);
  kcuda::launchTimestepEmbedding(t.data(), n, dim, freqs.data(), got.data(), nullptr);
  CHECK(got == ref);  // the emulator's cos/sin are the host's; a GPU differs by an ulp or two

  auto table = randomFloats(size_t(5 * dim), 10);
  std::vector<int64_t> labels = {4, 0, 2};
  auto cond = randomFloats(size_t(n * dim), 11);
  auto expect = cond;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d = 0; d < dim; ++d) expect[size_t(i * dim + d)] += table[size_t(labels[size_t(i)] * dim + d)];
  kcuda::launchAddClassEmbedding(cond.data(), labels.data(), n, dim, table.data(), nullptr);
  CHECK(cond == expect);

  const int64_t T = 6;
  auto x = randomFloats(size_t(n * T * dim), 12);
  auto rows = randomFloats(size_t(T * dim), 13);
  expect = x;
  for (int64_t i = 0; i < n * T * dim; ++i) expect[size_t(i)] += rows[size_t(i % (T * dim))];
  kcuda::launchAddTokenTable(x.data(), rows.data(), n, T, dim, nullptr);
  CHECK(x == expect);
}

ND_TEST(head_layer_norm_matches_reference) {
  const int64_t rows = 5, heads = 3, hd = 40;
  auto qkv = randomFloats(size_t(rows * 3 * heads * hd), 14);
  auto qw = randomFloats(size_t(hd), 15), qb = randomFloats(size_t(hd), 16), kw = randomFloats(size_t(hd), 17);
  auto ref = qkv, got = qkv;
  headLayerNormReference(ref.data(), rows, heads, hd, qw.data(), qb.data(), kw.data(), nullptr, 1e-6f);
  kcuda::launchHeadLayerNorm(got.data(), rows, heads, hd, qw.data(), qb.data(), kw.data(), nullptr, 1e-6f, nullptr);
  CHECK_REL(got, ref, 1e-5);
}

ND_TEST(step_pass_is_bit_identical_to_cpu) {
  const int64_t n = 777;
  auto x = randomFloats(size_t(n), 20), m = randomFloats(size_t(n), 21), z = randomFloats(size_t(n), 22);
  auto h0 = randomFloats(size_t(n), 23), h1 = randomFloats(size_t(n), 24);
  for (int variant = 0; variant < 4; ++variant) {
    std::vector<float> dC(static_cast<size_t>(n)), dG(dC), oC(dC), oG(dC);
    auto make = [&](std::vector<float>& d, std::vector<float>& o) {
      StepPass<float> p;
      p.x = x.data();
      p.a = 0.91;
      p.out = o.data();
      if (variant != 1) {
        p.m = m.data();
        p.cx = -0.37;
        p.cm = 1.7;
        p.b = 0.123456789;
        p.dStore = d.data();
      }
      if (variant >= 2) p.term(0.3, h0.data()).term(-1.1e-3, h1.data());
      if (variant == 3) {
        p.z = z.data();
        p.cz = 0.05;
      }
      return p;
    };
    stepPassCpu(make(dC, oC), n, nullptr);
    kcuda::launchStepPass(make(dG, oG), n, nullptr);
    CHECK(oC == oG);
    CHECK(dC == dG);
  }
}

// linearCuda's kernels against linearReference. Tensor-core operands are rounded to the 16-bit
// type first, so the reference sees exactly the values the kernel multiplies.
template <class T>
void checkTensorCoreGemm(int64_t m, int64_t n, int64_t k, int multiprocessors, uint32_t seed) {
  const int64_t ldx = k, ldw = k;
  auto xf = roundTrip<T>(randomFloats(size_t(m * ldx), seed));
  auto wf = roundTrip<T>(randomFloats(size_t(n * ldw), seed + 1, -0.5f, 0.5f));
  auto bias = randomFloats(size_t(n), seed + 2);
  auto xt = narrow<T>(xf), wt = narrow<T>(wf);
  GemmWeight gw;
  gw.data = wf.data();
  gw.dtype = DType::F32;
  gw.n = n;
  gw.k = k;
  gw.ld = ldw;
  std::vector<float> ref(size_t(m * n)), got(ref.size(), -7.0f);
  linearReference(xf.data(), m, ldx, gw, bias.data(), ref.data(), n, false, GemmEpilogue::None);
  kcuda::launchGemmTensorCore(xt.data(), m, ldx, wt.data(), n, k, ldw, bias.data(), got.data(), n,
                              kcuda::gemmEpi({}), multiprocessors, nullptr);
  CHECK_REL(got, ref, 1e-5);
  // GELU into a 16-bit output: the output rounding dominates.
  linearReference(xf.data(), m, ldx, gw, bias.data(), ref.data(), n, false, GemmEpilogue::GeluTanh);
  std::vector<T> gotT(ref.size());
  LinearEpilogueCuda gelu;
  gelu.kind = LinearEpilogueCuda::Kind::GeluTanh;
  kcuda::launchGemmTensorCore(xt.data(), m, ldx, wt.data(), n, k, ldw, bias.data(), gotT.data(), n, kcuda::gemmEpi(gelu),
                              multiprocessors, nullptr);
  CHECK_REL(widen(gotT), ref, 1e-2);
}

ND_TEST(gemm_tensor_core_matches_reference) {
  checkTensorCoreGemm<bf16>(70, 50, 48, 1000, 30);   // 64x64 tiles, 16-byte loads
  checkTensorCoreGemm<f16>(70, 50, 37, 1000, 31);    // 64x64 tiles, scalar loads (k % 8 != 0)
  checkTensorCoreGemm<bf16>(130, 140, 72, 1, 32);    // 128x128 tiles over partial edge tiles
  checkTensorCoreGemm<f16>(3, 20, 8, 1000, 33);      // a few rows (the conditioning GEMMs)
}

ND_TEST(gemm_simt_f32_and_gated_epilogue_match_reference) {
  const int64_t m = 70, n = 67, k = 45, ldx = 50, ldw = 47, ldy = 70, tokens = 10;
  auto x = randomFloats(size_t(m * ldx), 40), w = randomFloats(size_t(n * ldw), 41), bias = randomFloats(size_t(n), 42);
  GemmWeight gw;
  gw.data = w.data();
  gw.n = n;
  gw.k = k;
  gw.ld = ldw;
  std::vector<float> ref(size_t(m * ldy), 0.0f), got(ref.size(), 0.0f);
  linearReference(x.data(), m, ldx, gw, bias.data(), ref.data(), ldy, false, GemmEpilogue::None);
  kcuda::launchGemmSimt(x.data(), m, ldx, w.data(), n, k, ldw, bias.data(), got.data(), ldy, kcuda::gemmEpi({}), nullptr);
  CHECK_REL(got, ref, 1e-5);
  // h += gate[sample] * (x Wᵀ + b): the reference is the GEMM followed by gatedResidualReference.
  auto h = randomFloats(size_t(m * n), 43);
  auto gate = randomFloats(size_t((m / tokens) * 2 * n), 44);
  std::vector<float> y(size_t(m * n));
  linearReference(x.data(), m, ldx, gw, bias.data(), y.data(), n, false, GemmEpilogue::None);
  auto hr = h;
  gatedResidualReference(hr.data(), y.data(), m / tokens, tokens, n, gate.data() + n, 2 * n);
  LinearEpilogueCuda gated;
  gated.kind = LinearEpilogueCuda::Kind::GatedAdd;
  gated.gate = gate.data() + n;
  gated.gateStride = 2 * n;
  gated.rowsPerSample = tokens;
  kcuda::launchGemmSimt(x.data(), m, ldx, w.data(), n, k, ldw, bias.data(), h.data(), n, kcuda::gemmEpi(gated), nullptr);
  CHECK_REL(h, hr, 1e-5);
}

ND_TEST(attention_simt_f32_matches_reference) {
  for (int64_t hd : {72, 128, 5}) {
    const int64_t B = 2, T = 37, H = 2;
    auto qkv = randomFloats(size_t(B * T * 3 * H * hd), 50 + uint32_t(hd));
    std::vector<float> ref(size_t(B * T * H * hd)), got(ref.size(), -9.0f);
    const float scale = 1.0f / std::sqrt(float(hd));
    attentionReference(qkv.data(), B, T, H, hd, scale, ref.data());
    kcuda::launchAttentionSimt(qkv.data(), B, T, H, hd, scale, got.data(), nullptr);
    CHECK_REL(got, ref, 1e-5);
  }
}

template <class T>
void checkTensorCoreAttention(int64_t B, int64_t tokens, int64_t H, int64_t hd, uint32_t seed) {
  auto qkvf = roundTrip<T>(randomFloats(size_t(B * tokens * 3 * H * hd), seed));
  auto qkv = narrow<T>(qkvf);
  std::vector<float> ref(size_t(B * tokens * H * hd));
  std::vector<T> got(ref.size(), kcuda::fromFloat<T>(-9.0f));
  const float scale = 1.0f / std::sqrt(float(hd));
  attentionReference(qkvf.data(), B, tokens, H, hd, scale, ref.data());
  kcuda::launchAttentionTensorCore(qkv.data(), B, tokens, H, hd, scale, got.data(), nullptr);
  CHECK_REL(widen(got), ref, 2e-2);
  if (ndtest::maxRelError(widen(got), ref) > 2e-2) for (int i = 0; i < 8; ++i) std::fprintf(stderr, "   %d: %g vs %g\n", i, double(kcuda::toFloat(got[size_t(i)])), double(ref[size_t(i)]));
}

ND_TEST(attention_tensor_core_matches_reference) {
  checkTensorCoreAttention<bf16>(2, 40, 2, 72, 60);  // DiT-XL's head size, padded to 80; a partial key tile
  checkTensorCoreAttention<f16>(1, 33, 1, 64, 61);
  checkTensorCoreAttention<bf16>(1, 20, 3, 32, 62);  // fewer tokens than one tile
  checkTensorCoreAttention<f16>(1, 32, 1, 128, 63);
}

// The device MoE layer (router GEMM, moeRouteCuda, grouped gate|up GEMM, SwiGLU, grouped down GEMM
// with the scatter, shared expert, combine) against moeForwardCpu: outputs, choices, admissions and
// statistics, dropless and under a capacity that drops.
template <class T>
void checkMoeLayer(DType wt, double capacityFactor, double tol) {
  const int64_t batch = 2, tokens = 24, D = 32, E = 5, K = 2, H = 24, Hs = 16, rows = batch * tokens;
  auto rt = [&](std::vector<float> v) { return wt == DType::F32 ? v : (wt == DType::BF16 ? roundTrip<bf16>(v) : roundTrip<f16>(v)); };
  auto z = rt(randomFloats(size_t(rows * D), 70));
  auto router = rt(randomFloats(size_t(E * D), 71, -1.0f, 1.0f));
  std::vector<std::vector<float>> gate(E), up(E), down(E);
  for (int64_t e = 0; e < E; ++e) {
    gate[size_t(e)] = rt(randomFloats(size_t(H * D), 72 + uint32_t(e), -0.3f, 0.3f));
    up[size_t(e)] = rt(randomFloats(size_t(H * D), 80 + uint32_t(e), -0.3f, 0.3f));
    down[size_t(e)] = rt(randomFloats(size_t(D * H), 90 + uint32_t(e), -0.3f, 0.3f));
  }
  auto sGate = rt(randomFloats(size_t(Hs * D), 100, -0.3f, 0.3f)), sUp = rt(randomFloats(size_t(Hs * D), 101, -0.3f, 0.3f));
  auto sDown = rt(randomFloats(size_t(D * Hs), 102, -0.3f, 0.3f));
  auto gw = [](const std::vector<float>& v, int64_t n, int64_t k) {
    GemmWeight g;
    g.data = v.data();
    g.n = n;
    g.k = k;
    g.ld = k;
    return g;
  };
  moe::MoeLayerWeights mw;
  mw.dim = D;
  mw.router = gw(router, E, D);
  mw.experts.resize(size_t(E));
  for (int64_t e = 0; e < E; ++e)
    mw.experts[size_t(e)] = {gw(gate[size_t(e)], H, D), gw(up[size_t(e)], H, D), gw(down[size_t(e)], D, H), H};
  mw.shared = {gw(sGate, Hs, D), gw(sUp, Hs, D), gw(sDown, D, Hs), Hs};
  moe::MoeOptions opt;
  opt.topK = K;
  opt.capacityFactor = capacityFactor;
  std::vector<float> ref(size_t(rows * D));
  moe::MoeLayerStats stats;
  moe::moeForwardCpu(z.data(), batch, tokens, mw, opt, ref.data(), &stats, nullptr);

  // Device layout: experts' gate|up side by side [E, 2H, D], downs [E, D, H], shared gate|up [2Hs, D].
  std::vector<float> gu, dn, sgu;
  for (int64_t e = 0; e < E; ++e) {
    gu.insert(gu.end(), gate[size_t(e)].begin(), gate[size_t(e)].end());
    gu.insert(gu.end(), up[size_t(e)].begin(), up[size_t(e)].end());
    dn.insert(dn.end(), down[size_t(e)].begin(), down[size_t(e)].end());
  }
  sgu = sGate;
  sgu.insert(sgu.end(), sUp.begin(), sUp.end());
  auto zT = narrow<T>(z), routerT = narrow<T>(router), guT = narrow<T>(gu), dnT = narrow<T>(dn), sguT = narrow<T>(sgu),
       sdT = narrow<T>(sDown);
  std::vector<float> logits(static_cast<size_t>(rows * E)), val(static_cast<size_t>(rows * K)), entropy(static_cast<size_t>(rows)), routed(static_cast<size_t>(rows * K * D)),
      out(static_cast<size_t>(rows * D));
  std::vector<int32_t> idx(static_cast<size_t>(rows * K)), order(static_cast<size_t>(rows * K)), offsets(static_cast<size_t>(E + 1)), counts(static_cast<size_t>(E)), dropped(1);
  std::vector<uint8_t> kept(static_cast<size_t>(rows * K));
  std::vector<T> hid(static_cast<size_t>(rows * K * 2 * H)), act(static_cast<size_t>(rows * K * H)), shid(static_cast<size_t>(rows * 2 * Hs)), sact(static_cast<size_t>(rows * Hs));
  const DType tt = wt;
  linearCuda(zT.data(), rows, D, routerT.data(), tt, E, D, D, nullptr, logits.data(), DType::F32, E, {}, nullptr);
  MoeRoutingBuffers rb{idx.data(), val.data(), kept.data(), order.data(), offsets.data(), counts.data(), dropped.data(),
                       entropy.data()};
  moeRouteCuda(logits.data(), batch, tokens, E, K, moe::moeCapacity(opt, tokens, E), rb, nullptr);
  groupedLinearCuda(zT.data(), D, guT.data(), tt, E, 2 * H, D, order.data(), offsets.data(), rows * K, K, true, false,
                    hid.data(), tt, 2 * H, nullptr);
  swigluCuda(hid.data(), tt, rows * K, H, 2 * H, act.data(), tt, H, nullptr);
  groupedLinearCuda(act.data(), H, dnT.data(), tt, E, D, H, order.data(), offsets.data(), rows * K, K, false, true,
                    routed.data(), DType::F32, D, nullptr);
  linearCuda(zT.data(), rows, D, sguT.data(), tt, 2 * Hs, D, D, nullptr, shid.data(), tt, 2 * Hs, {}, nullptr);
  swigluCuda(shid.data(), tt, rows, Hs, 2 * Hs, sact.data(), tt, Hs, nullptr);
  linearCuda(sact.data(), rows, Hs, sdT.data(), tt, D, Hs, Hs, nullptr, out.data(), DType::F32, D, {}, nullptr);
  moeCombineCuda(out.data(), routed.data(), val.data(), kept.data(), rows, K, D, true, nullptr);

  CHECK_REL(out, ref, tol);
  CHECK(std::vector<int32_t>(idx.begin(), idx.end()) == stats.choices);
  CHECK(std::vector<uint8_t>(kept.begin(), kept.end()) == stats.kept);
  for (int64_t e = 0; e < E; ++e) CHECK(counts[size_t(e)] == stats.tokensPerExpert[size_t(e)]);
  CHECK(dropped[0] == stats.dropped);
  CHECK((capacityFactor > 0) == (stats.dropped > 0));  // the capacity case really drops
  double ent = 0;
  for (float v : entropy) ent += v;
  CHECK_NEAR(ent / double(rows), stats.entropy, 1e-5);
}

ND_TEST(moe_layer_matches_cpu) {
  checkMoeLayer<float>(DType::F32, 0.0, 1e-5);
  checkMoeLayer<float>(DType::F32, 0.75, 1e-5);
  checkMoeLayer<bf16>(DType::BF16, 0.0, 2e-2);
  checkMoeLayer<f16>(DType::F16, 1.0, 2e-2);
}

}  // namespace

ND_TEST_MAIN()
