// Every CUDA kernel, through its public entry point and in device memory, against the CPU backend
// (the same comparisons test_cuda_kernels_emulated.cpp makes on the emulator, here on the real
// device and at DiT sizes). Tolerances: f32 1e-5 relative (max |gpu - ref| / max |ref|), 16-bit
// 2e-2; the step pass, patchify and the gated residual bit for bit. Also: ERR_ND_OOM with the
// process alive. Exit status: 0 all passed, 1 a failure, 77 no CUDA device (ctest SKIP_RETURN_CODE).
// compute-sanitizer --tool memcheck runs this program in `npm run test:gpu`.
#include <cuda_runtime.h>

// The entry points only: the kernels themselves live in the library.
#define ND_KERNEL_DECLARATIONS_ONLY

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "check.h"
#include "gpu_buffer.cuh"
#include "core/half.h"
#include "core/tensor.h"
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

using namespace nd;

namespace {

void ck(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail(ErrorCode::Device, std::string(what) + ": " + cudaGetErrorString(e));
}

// A device copy of a host vector (any trivially copyable element type).
template <class T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(const std::vector<T>& h) : n(h.size()) {
    ck(cudaMalloc(&p, std::max<size_t>(1, n * sizeof(T))), "cudaMalloc");
    ck(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice), "upload");
  }
  explicit Dev(size_t count) : n(count) { ck(cudaMalloc(&p, std::max<size_t>(1, n * sizeof(T))), "cudaMalloc"); }
  ~Dev() { cudaFree(p); }
  std::vector<T> get() const {
    ck(cudaDeviceSynchronize(), "kernel");
    std::vector<T> h(n);
    ck(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost), "download");
    return h;
  }
};

using ndtest::randomFloats;

// 16-bit values as raw bits (the device types are opaque to host code here).
std::vector<uint16_t> narrowBits(const std::vector<float>& v, DType t) {
  std::vector<uint16_t> o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = t == DType::BF16 ? floatToBf16(v[i]) : floatToHalf(v[i]);
  return o;
}
std::vector<float> widenBits(const std::vector<uint16_t>& v, DType t) {
  std::vector<float> o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = t == DType::BF16 ? bf16ToFloat(v[i]) : halfToFloat(v[i]);
  return o;
}
std::vector<float> roundTrip(const std::vector<float>& v, DType t) { return widenBits(narrowBits(v, t), t); }

// The shared CHECK_REL, printing each measured error (the run's output is the record).
#undef CHECK_REL
#define CHECK_REL(a, b, tol)                                                                           \
  do {                                                                                                 \
    const double e_ = ndtest::maxRelError(a, b);                                                       \
    std::printf("    %-44s rel %.3g (tol %g)\n", #a, e_, double(tol));                                 \
    if (!(e_ <= (tol))) ++ndtest::failures();                                                          \
  } while (0)

ND_TEST(layer_norm_modulate) {
  const int64_t B = 4, T = 256, D = 1152, stride = 6 * D;
  auto x = randomFloats(size_t(B * T * D), 1);
  auto mod = randomFloats(size_t(B * stride), 2, -0.5f, 0.5f);
  std::vector<float> ref(x.size());
  layerNormModulateReference(x.data(), B, T, D, mod.data(), mod.data() + D, stride, 1e-6f, ref.data());
  Dev<float> dx(x), dm(mod), out(x.size());
  Dev<uint16_t> outB(x.size());
  layerNormModulateCuda(dx.p, B, T, D, dm.p, dm.p + D, stride, 1e-6f, out.p, DType::F32, nullptr);
  CHECK_REL(out.get(), ref, 1e-5);
  layerNormModulateCuda(dx.p, B, T, D, dm.p, dm.p + D, stride, 1e-6f, outB.p, DType::BF16, nullptr);
  CHECK_REL(widenBits(outB.get(), DType::BF16), ref, 2e-2);
}

ND_TEST(gated_residual_and_activations) {
  const int64_t B = 3, T = 256, D = 384, stride = 6 * D;
  auto h = randomFloats(size_t(B * T * D), 3), y = randomFloats(size_t(B * T * D), 4), gate = randomFloats(size_t(B * stride), 5);
  auto ref = h;
  gatedResidualCpu(ref.data(), y.data(), B, T, D, gate.data() + 2 * D, stride, nullptr);
  Dev<float> dh(h), dy(y), dg(gate);
  gatedResidualCuda(dh.p, dy.p, DType::F32, B, T, D, dg.p + 2 * D, stride, nullptr);
  CHECK(dh.get() == ref);

  auto x = randomFloats(100000, 6, -8.0f, 8.0f);
  std::vector<float> r(x.size());
  Dev<float> dx(x), o(x.size());
  siluReference(x.data(), r.data(), int64_t(x.size()));
  activationCuda(ActivationKind::Silu, dx.p, o.p, DType::F32, int64_t(x.size()), nullptr);
  CHECK_REL(o.get(), r, 1e-5);
  geluTanhReference(x.data(), r.data(), int64_t(x.size()));
  activationCuda(ActivationKind::GeluTanh, dx.p, o.p, DType::F32, int64_t(x.size()), nullptr);
  CHECK_REL(o.get(), r, 1e-5);

  const int64_t rows = 300, hidden = 1024;
  auto in = randomFloats(size_t(rows * 2 * hidden), 7, -4.0f, 4.0f);
  std::vector<float> sref(size_t(rows * hidden));
  swigluReference(in.data(), rows, hidden, 2 * hidden, sref.data(), hidden);
  Dev<float> din(in), sout(sref.size());
  swigluCuda(din.p, DType::F32, rows, hidden, 2 * hidden, sout.p, DType::F32, hidden, nullptr);
  CHECK_REL(sout.get(), sref, 1e-5);
}

ND_TEST(patchify_embeddings_head_norm) {
  const int64_t n = 4, c = 4, hh = 32, ww = 32, p = 2, T = (hh / p) * (ww / p);
  auto x = randomFloats(size_t(n * c * hh * ww), 8);
  std::vector<float> ref(size_t(n * T * c * p * p));
  patchifyReference(x.data(), n, c, hh, ww, p, ref.data());
  Dev<float> dx(x), dt(ref.size());
  patchifyCuda(dx.p, n, c, hh, ww, p, dt.p, DType::F32, nullptr);
  CHECK(dt.get() == ref);
  std::vector<float> uref(x.size());
  unpatchifyReference(ref.data(), n, c, hh, ww, p, uref.data());
  Dev<float> ux(x.size());
  unpatchifyCuda(dt.p, DType::F32, n, c, hh, ww, p, ux.p, nullptr);
  CHECK(ux.get() == uref);

  const int64_t dim = 256, half = dim / 2;
  std::vector<float> t = {0.0f, 1.5f, 250.0f, 999.0f};
  std::vector<float> eref(size_t(4 * dim));
  timestepEmbedding(t.data(), 4, dim, 10000.0, 0, eref.data());
  std::vector<float> freqs(static_cast<size_t>(half));
  for (int64_t k = 0; k < half; ++k) freqs[size_t(k)] = std::exp(float(-std::log(10000.0)) * float(k) / float(half));
  Dev<float> dtt(t), df(freqs), de(eref.size());
  timestepEmbeddingCuda(dtt.p, 4, dim, df.p, de.p, nullptr);
  CHECK_REL(de.get(), eref, 1e-5);

  const int64_t rows = 512, heads = 16, hd = 72;
  auto qkv = randomFloats(size_t(rows * 3 * heads * hd), 9);
  auto qw = randomFloats(size_t(hd), 10), qb = randomFloats(size_t(hd), 11), kw = randomFloats(size_t(hd), 12), kb = randomFloats(size_t(hd), 13);
  auto href = qkv;
  headLayerNormReference(href.data(), rows, heads, hd, qw.data(), qb.data(), kw.data(), kb.data(), 1e-6f);
  Dev<float> dq(qkv), dqw(qw), dqb(qb), dkw(kw), dkb(kb);
  headLayerNormCuda(dq.p, DType::F32, rows, heads, hd, dqw.p, dqb.p, dkw.p, dkb.p, 1e-6f, nullptr);
  CHECK_REL(dq.get(), href, 1e-5);
}

ND_TEST(step_pass_bits) {
  const int64_t n = 4 * 4 * 64 * 64 + 3;
  auto x = randomFloats(size_t(n), 20), m = randomFloats(size_t(n), 21), z = randomFloats(size_t(n), 22), h0 = randomFloats(size_t(n), 23);
  Dev<float> dx(x), dm(m), dz(z), dh(h0), dd(static_cast<size_t>(n)), dout(static_cast<size_t>(n));
  std::vector<float> d(static_cast<size_t>(n)), out(static_cast<size_t>(n));
  StepPass<float> c, g;
  c.x = x.data(); c.m = m.data(); c.cx = -0.37; c.cm = 1.7; c.dStore = d.data(); c.a = 0.91; c.b = 0.123456789;
  c.term(-1.1e-3, h0.data()); c.z = z.data(); c.cz = 0.05; c.out = out.data();
  g = c;
  g.x = dx.p; g.m = dm.p; g.dStore = dd.p; g.terms[0].data = dh.p; g.z = dz.p; g.out = dout.p;
  stepPassCpu(c, n, nullptr);
  stepPassCuda(g, n, nullptr);
  CHECK(dout.get() == out);
  CHECK(dd.get() == d);
}

void gemmCase(DType wt, int64_t m, int64_t n, int64_t k, uint32_t seed) {
  auto xf = randomFloats(size_t(m * k), seed), wf = randomFloats(size_t(n * k), seed + 1, -0.1f, 0.1f), bias = randomFloats(size_t(n), seed + 2);
  if (wt != DType::F32) {
    xf = roundTrip(xf, wt);
    wf = roundTrip(wf, wt);
  }
  GemmWeight gw;
  gw.data = wf.data();
  gw.n = n;
  gw.k = k;
  gw.ld = k;
  std::vector<float> ref(size_t(m * n));
  linearReference(xf.data(), m, k, gw, bias.data(), ref.data(), n, false, GemmEpilogue::None);
  Dev<float> db(bias), y(ref.size());
  std::printf("   gemm %s m=%lld n=%lld k=%lld\n", dtypeName(wt), (long long)m, (long long)n, (long long)k);
  if (wt == DType::F32) {
    Dev<float> dx(xf), dw(wf);
    linearCuda(dx.p, m, k, dw.p, wt, n, k, k, db.p, y.p, DType::F32, n, {}, nullptr);
    CHECK_REL(y.get(), ref, 1e-5);
  } else {
    Dev<uint16_t> dx(narrowBits(xf, wt)), dw(narrowBits(wf, wt)), y16(ref.size());
    linearCuda(dx.p, m, k, dw.p, wt, n, k, k, db.p, y.p, DType::F32, n, {}, nullptr);
    CHECK_REL(y.get(), ref, 1e-5);  // the operands are exact in f32: only the summation order differs
    LinearEpilogueCuda gelu;
    gelu.kind = LinearEpilogueCuda::Kind::GeluTanh;
    linearReference(xf.data(), m, k, gw, bias.data(), ref.data(), n, false, GemmEpilogue::GeluTanh);
    linearCuda(dx.p, m, k, dw.p, wt, n, k, k, db.p, y16.p, wt, n, gelu, nullptr);
    CHECK_REL(widenBits(y16.get(), wt), ref, 2e-2);
  }
}

ND_TEST(gemm_against_reference) {
  gemmCase(DType::F32, 256, 1152, 1152, 30);
  gemmCase(DType::F32, 5, 6912, 1152, 31);  // adaLN of a DiT-XL block at batch 5
  gemmCase(DType::BF16, 256, 3456, 1152, 32);  // DiT-XL qkv at batch 1 (64x64 tiles)
  gemmCase(DType::BF16, 4096, 1152, 4608, 33);  // fc2 at batch 16 (128x128 tiles)
  gemmCase(DType::F16, 1000, 770, 37, 34);  // k % 8 != 0: the scalar loads
  gemmCase(DType::F16, 3, 1152, 256, 35);
}

void attentionCase(DType t, int64_t B, int64_t T, int64_t H, int64_t hd, uint32_t seed) {
  auto qkv = randomFloats(size_t(B * T * 3 * H * hd), seed);
  if (t != DType::F32) qkv = roundTrip(qkv, t);
  std::vector<float> ref(size_t(B * T * H * hd));
  const float scale = 1.0f / std::sqrt(float(hd));
  attentionReference(qkv.data(), B, T, H, hd, scale, ref.data());
  std::printf("   attention %s B=%lld T=%lld H=%lld hd=%lld\n", dtypeName(t), (long long)B, (long long)T, (long long)H, (long long)hd);
  if (t == DType::F32) {
    Dev<float> dq(qkv), o(ref.size());
    attentionCuda(dq.p, t, B, T, H, hd, scale, o.p, nullptr);
    CHECK_REL(o.get(), ref, 1e-5);
  } else {
    Dev<uint16_t> dq(narrowBits(qkv, t)), o(ref.size());
    attentionCuda(dq.p, t, B, T, H, hd, scale, o.p, nullptr);
    CHECK_REL(widenBits(o.get(), t), ref, 2e-2);
  }
}

ND_TEST(attention_against_reference) {
  attentionCase(DType::F32, 2, 256, 6, 64, 40);
  attentionCase(DType::F32, 1, 300, 2, 72, 41);
  attentionCase(DType::BF16, 2, 256, 16, 72, 42);
  attentionCase(DType::F16, 1, 1024, 4, 128, 43);
  attentionCase(DType::BF16, 3, 77, 2, 64, 44);
}

ND_TEST(out_of_memory_is_an_error_and_the_device_stays_usable) {
  size_t freeB = 0, totalB = 0;
  ck(cudaMemGetInfo(&freeB, &totalB), "cudaMemGetInfo");
  CHECK_THROWS_CODE(Tensor::empty({int64_t(totalB) * 2}, DType::U8, Device{DeviceType::Cuda, 0}), Oom);
  Tensor ok = Tensor::empty({1 << 20}, DType::F32, Device{DeviceType::Cuda, 0});
  CHECK(ok.data() != nullptr);
  std::vector<float> x = randomFloats(1000, 50), r(1000);
  Dev<float> dx(x), o(1000);
  siluReference(x.data(), r.data(), 1000);
  activationCuda(ActivationKind::Silu, dx.p, o.p, DType::F32, 1000, nullptr);
  CHECK_REL(o.get(), r, 1e-5);
}

}  // namespace

int main() { return ndtest::runGpuTests(); }
