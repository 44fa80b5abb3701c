// Token-level MoE against a plain double-precision reference written from the definition: softmax
// router, top-k by probability (ties to the lower index), per-sample capacity with first-choices-
// first admission, raw (unrenormalised) weights, SwiGLU experts plus the shared expert.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "check.h"
#include "core/thread_pool.h"
#include "moe/token_moe.h"

namespace {

struct Mat {
  std::vector<float> v;
  int64_t n = 0, k = 0;
  nd::GemmWeight w() const {
    nd::GemmWeight g;
    g.data = v.data();
    g.n = n;
    g.k = k;
    g.ld = k;
    return g;
  }
};

Mat randomMat(std::mt19937& rng, int64_t n, int64_t k, float std) {
  std::normal_distribution<float> nd(0.0f, std);
  Mat m;
  m.n = n;
  m.k = k;
  m.v.resize(static_cast<size_t>(n * k));
  for (float& x : m.v) x = nd(rng);
  return m;
}

struct Layer {
  Mat router;
  std::vector<Mat> gate, up, down;
  Mat sGate, sUp, sDown;
  nd::moe::MoeLayerWeights weights;
};

Layer makeLayer(std::mt19937& rng, int64_t dim, int64_t experts, int64_t hidden, int64_t shared) {
  Layer L;
  L.router = randomMat(rng, experts, dim, 1.0f);
  for (int64_t e = 0; e < experts; ++e) {
    L.gate.push_back(randomMat(rng, hidden, dim, 0.2f));
    L.up.push_back(randomMat(rng, hidden, dim, 0.2f));
    L.down.push_back(randomMat(rng, dim, hidden, 0.2f));
  }
  if (shared > 0) {
    L.sGate = randomMat(rng, shared, dim, 0.2f);
    L.sUp = randomMat(rng, shared, dim, 0.2f);
    L.sDown = randomMat(rng, dim, shared, 0.2f);
  }
  L.weights.dim = dim;
  L.weights.router = L.router.w();
  for (int64_t e = 0; e < experts; ++e) {
    nd::moe::SwiGluWeights s;
    s.gate = L.gate[size_t(e)].w();
    s.up = L.up[size_t(e)].w();
    s.down = L.down[size_t(e)].w();
    s.hidden = hidden;
    L.weights.experts.push_back(s);
  }
  if (shared > 0) {
    L.weights.shared.gate = L.sGate.w();
    L.weights.shared.up = L.sUp.w();
    L.weights.shared.down = L.sDown.w();
    L.weights.shared.hidden = shared;
  }
  return L;
}

std::vector<double> swigluRef(const float* x, int64_t dim, const Mat& g, const Mat& u, const Mat& d) {
  std::vector<double> act(static_cast<size_t>(g.n)), out(static_cast<size_t>(dim), 0.0);
  for (int64_t j = 0; j < g.n; ++j) {
    double a = 0, b = 0;
    for (int64_t i = 0; i < dim; ++i) {
      a += double(g.v[size_t(j * dim + i)]) * x[i];
      b += double(u.v[size_t(j * dim + i)]) * x[i];
    }
    act[size_t(j)] = a / (1 + std::exp(-a)) * b;
  }
  for (int64_t o = 0; o < dim; ++o)
    for (int64_t j = 0; j < g.n; ++j) out[size_t(o)] += double(d.v[size_t(o * g.n + j)]) * act[size_t(j)];
  return out;
}

struct RefResult {
  std::vector<double> out;
  std::vector<int> choice;  // [rows, k]
  std::vector<int> kept;
  std::vector<int64_t> perExpert;
  int64_t dropped = 0;
};

RefResult reference(const std::vector<float>& z, int64_t batch, int64_t tokens, const Layer& L, int64_t k, double cf) {
  const int64_t dim = L.weights.dim, E = int64_t(L.gate.size()), rows = batch * tokens;
  RefResult r;
  r.out.assign(static_cast<size_t>(rows * dim), 0.0);
  r.choice.assign(static_cast<size_t>(rows * k), 0);
  r.kept.assign(static_cast<size_t>(rows * k), 1);
  r.perExpert.assign(static_cast<size_t>(E), 0);
  std::vector<double> prob(static_cast<size_t>(rows * E));
  for (int64_t t = 0; t < rows; ++t) {
    std::vector<double> lg(static_cast<size_t>(E));
    for (int64_t e = 0; e < E; ++e)
      for (int64_t i = 0; i < dim; ++i) lg[size_t(e)] += double(L.router.v[size_t(e * dim + i)]) * z[size_t(t * dim + i)];
    double mx = *std::max_element(lg.begin(), lg.end()), s = 0;
    for (double& v : lg) s += (v = std::exp(v - mx));
    for (int64_t e = 0; e < E; ++e) prob[size_t(t * E + e)] = lg[size_t(e)] / s;
    std::vector<int> order(static_cast<size_t>(E));
    for (int e = 0; e < E; ++e) order[size_t(e)] = e;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return prob[size_t(t * E + a)] > prob[size_t(t * E + b)]; });
    for (int64_t s2 = 0; s2 < k; ++s2) r.choice[size_t(t * k + s2)] = order[size_t(s2)];
  }
  if (cf > 0) {
    const int64_t cap = std::max<int64_t>(1, int64_t(std::ceil(cf * double(tokens) * double(k) / double(E))));
    for (int64_t b = 0; b < batch; ++b) {
      std::vector<int64_t> load(static_cast<size_t>(E), 0);
      for (int64_t s = 0; s < k; ++s)
        for (int64_t t = 0; t < tokens; ++t) {
          int64_t a = (b * tokens + t) * k + s;
          int e = r.choice[size_t(a)];
          if (load[size_t(e)] < cap) ++load[size_t(e)];
          else { r.kept[size_t(a)] = 0; ++r.dropped; }
        }
    }
  }
  for (int64_t t = 0; t < rows; ++t) {
    const float* x = z.data() + t * dim;
    if (!L.sGate.v.empty()) {
      auto s = swigluRef(x, dim, L.sGate, L.sUp, L.sDown);
      for (int64_t i = 0; i < dim; ++i) r.out[size_t(t * dim + i)] += s[size_t(i)];
    }
    for (int64_t s = 0; s < k; ++s) {
      if (!r.kept[size_t(t * k + s)]) continue;
      int e = r.choice[size_t(t * k + s)];
      ++r.perExpert[size_t(e)];
      auto y = swigluRef(x, dim, L.gate[size_t(e)], L.up[size_t(e)], L.down[size_t(e)]);
      for (int64_t i = 0; i < dim; ++i) r.out[size_t(t * dim + i)] += prob[size_t(t * E + e)] * y[size_t(i)];
    }
  }
  return r;
}

void compare(int64_t batch, int64_t tokens, int64_t dim, int64_t E, int64_t k, int64_t hidden, int64_t shared, double cf,
             nd::ThreadPool* pool, unsigned seed) {
  std::mt19937 rng(seed);
  Layer L = makeLayer(rng, dim, E, hidden, shared);
  std::vector<float> z(static_cast<size_t>(batch * tokens * dim));
  std::normal_distribution<float> nd01(0.0f, 1.0f);
  for (float& v : z) v = nd01(rng);
  std::vector<float> out(z.size());
  nd::moe::MoeOptions opt;
  opt.topK = k;
  opt.capacityFactor = cf;
  nd::moe::MoeLayerStats st;
  nd::moe::moeForwardCpu(z.data(), batch, tokens, L.weights, opt, out.data(), &st, pool);
  RefResult r = reference(z, batch, tokens, L, k, cf);
  double maxRef = 0, maxErr = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    maxRef = std::max(maxRef, std::abs(r.out[i]));
    maxErr = std::max(maxErr, std::abs(double(out[i]) - r.out[i]));
  }
  CHECK(maxErr <= 2e-6 * maxRef);
  for (size_t i = 0; i < r.choice.size(); ++i) {
    CHECK(st.choices[i] == r.choice[i]);
    CHECK(int(st.kept[i]) == r.kept[i]);
  }
  for (int64_t e = 0; e < E; ++e) CHECK(st.tokensPerExpert[size_t(e)] == r.perExpert[size_t(e)]);
  CHECK(st.dropped == r.dropped);
  if (cf > 0 && cf < 1) CHECK(st.dropped > 0);  // the limit bites in these cases
  CHECK(st.entropy > 0 && st.entropy <= std::log(double(E)) + 1e-12);
}

}  // namespace

ND_TEST(moe_dropless_matches_reference) {
  nd::ThreadPool pool(2);
  compare(1, 37, 24, 4, 2, 40, 16, 0, nullptr, 1);
  compare(3, 19, 32, 8, 2, 64, 32, 0, &pool, 2);
  compare(2, 64, 16, 16, 1, 32, 0, 0, &pool, 3);  // top-1, no shared expert
  compare(2, 5, 8, 4, 4, 8, 8, 0, &pool, 4);      // k = E: every expert
}

ND_TEST(moe_capacity_drops_by_priority) {
  nd::ThreadPool pool(2);
  compare(1, 64, 16, 4, 2, 24, 8, 0.5, &pool, 5);
  compare(3, 33, 16, 8, 2, 24, 8, 0.25, nullptr, 6);
  compare(2, 48, 16, 4, 2, 24, 8, 1.0, &pool, 7);
  compare(2, 48, 16, 4, 2, 24, 8, 4.0, &pool, 8);  // a generous limit drops nothing
}

ND_TEST(moe_capacity_formula) {
  nd::moe::MoeOptions o;
  o.topK = 2;
  CHECK(nd::moe::moeCapacity(o, 256, 8) == 0);
  o.capacityFactor = 1.0;
  CHECK(nd::moe::moeCapacity(o, 256, 8) == 64);
  o.capacityFactor = 1.25;
  CHECK(nd::moe::moeCapacity(o, 256, 8) == 80);
  o.capacityFactor = 0.01;
  CHECK(nd::moe::moeCapacity(o, 10, 8) == 1);
}

ND_TEST(moe_sample_does_not_depend_on_its_batch) {
  std::mt19937 rng(9);
  const int64_t dim = 32, E = 8, tokens = 21;
  Layer L = makeLayer(rng, dim, E, 48, 16);
  std::vector<float> z(static_cast<size_t>(3 * tokens * dim));
  std::normal_distribution<float> nd01(0.0f, 1.0f);
  for (float& v : z) v = nd01(rng);
  nd::moe::MoeOptions opt;
  opt.capacityFactor = 0.75;
  std::vector<float> all(z.size()), one(static_cast<size_t>(tokens * dim));
  nd::moe::moeForwardCpu(z.data(), 3, tokens, L.weights, opt, all.data(), nullptr, nullptr);
  nd::moe::moeForwardCpu(z.data() + tokens * dim, 1, tokens, L.weights, opt, one.data(), nullptr, nullptr);
  double err = 0, mx = 0;
  for (int64_t i = 0; i < tokens * dim; ++i) {
    err = std::max(err, std::abs(double(all[size_t(tokens * dim + i)]) - one[size_t(i)]));
    mx = std::max(mx, std::abs(double(one[size_t(i)])));
  }
  CHECK(err <= 1e-6 * mx);
}

ND_TEST(moe_rejects_bad_arguments) {
  std::mt19937 rng(10);
  Layer L = makeLayer(rng, 8, 4, 8, 0);
  std::vector<float> z(16), out(16);
  nd::moe::MoeOptions o;
  o.topK = 5;
  CHECK_THROWS_CODE(nd::moe::moeForwardCpu(z.data(), 1, 2, L.weights, o, out.data(), nullptr, nullptr), Arg);
  o.topK = 2;
  o.capacityFactor = -1;
  CHECK_THROWS_CODE(nd::moe::moeForwardCpu(z.data(), 1, 2, L.weights, o, out.data(), nullptr, nullptr), Arg);
}

ND_TEST_MAIN()
