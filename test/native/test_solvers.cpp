// Native tests of the solver core: the fused step pass against its plain reference (every term
// count, aliasing, f32 and f64, threaded), the Brownian tree's defining properties, and the sampler
// state machine's contract (option validation, evaluation plans, finished samplers).
#include <cmath>
#include <random>
#include <vector>

#include "check.h"
#include "core/thread_pool.h"
#include "kernels/cpu/step_pass.h"
#include "solvers/brownian_tree.h"
#include "solvers/sampler.h"

using namespace nd;
using namespace nd::solvers;

namespace {

template <class T>
void stepPassMatchesReference(int terms, bool model, bool noise, bool alias, int64_t n, ThreadPool* pool) {
  std::mt19937_64 rng(uint64_t(terms * 131 + model * 7 + noise * 3 + alias));
  std::normal_distribution<double> N;
  auto vec = [&] { std::vector<T> v(static_cast<size_t>(n)); for (auto& x : v) x = T(N(rng)); return v; };
  std::vector<T> x = vec(), m = vec(), z = vec();
  std::vector<std::vector<T>> h;
  for (int k = 0; k < terms; ++k) h.push_back(vec());
  const size_t un = static_cast<size_t>(n);
  std::vector<T> xRef = x, dRef(un), outRef(un), d(un), out(un);
  auto build = [&](StepPass<T>& p, std::vector<T>& xs, std::vector<T>& ds, std::vector<T>& os) {
    p.x = xs.data();
    if (model) { p.m = m.data(); p.cx = 0.3; p.cm = -1.7; p.dStore = ds.data(); p.b = 0.9; }
    p.a = 1.1;
    for (int k = 0; k < terms; ++k) p.term(0.1 * (k + 1) - 0.25, h[size_t(k)].data());
    if (noise) { p.z = z.data(); p.cz = 0.05; }
    p.out = alias ? xs.data() : os.data();
  };
  StepPass<T> ref, fast;
  build(ref, xRef, dRef, outRef);
  stepPassReference(ref, n);
  std::vector<T> xFast = x;
  build(fast, xFast, d, out);
  stepPassCpu(fast, n, pool);
  const std::vector<T>& a = alias ? xFast : out;
  const std::vector<T>& b = alias ? xRef : outRef;
  double tol = std::is_same_v<T, float> ? 2e-6 : 1e-14;
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    worst = std::max(worst, std::fabs(double(a[size_t(i)]) - double(b[size_t(i)])) / (1 + std::fabs(double(b[size_t(i)]))));
    if (model) worst = std::max(worst, std::fabs(double(d[size_t(i)]) - double(dRef[size_t(i)])) / (1 + std::fabs(double(dRef[size_t(i)]))));
  }
  CHECK(worst <= tol);
}

}  // namespace

ND_TEST(step_pass_matches_reference_every_configuration) {
  ThreadPool pool(2);
  for (int terms = 0; terms <= kMaxStepTerms; ++terms)
    for (int model = 0; model < 2; ++model)
      for (int noise = 0; noise < 2; ++noise)
        for (int alias = 0; alias < 2; ++alias)
          for (int64_t n : {int64_t(1), int64_t(37), int64_t(1) << 17}) {
            stepPassMatchesReference<float>(terms, model, noise, alias, n, &pool);
            stepPassMatchesReference<double>(terms, model, noise, alias, n, &pool);
          }
}

ND_TEST(step_pass_rejects_bad_passes) {
  std::vector<float> x(4), m(4);
  StepPass<float> p;
  p.x = x.data();
  CHECK_THROWS_CODE(stepPassCpu(p, 4, nullptr), Internal);  // nothing to write
  p.m = m.data();
  CHECK_THROWS_CODE(stepPassCpu(p, 4, nullptr), Internal);  // model term without a store
  StepPass<float> q;
  for (int k = 0; k < kMaxStepTerms; ++k) q.term(1.0, x.data());
  CHECK_THROWS_CODE(q.term(1.0, x.data()), Internal);
}

ND_TEST(brownian_tree_increments_add_and_have_the_right_variance) {
  const int64_t batch = 4000, dim = 2;
  std::vector<uint64_t> seeds(static_cast<size_t>(batch));
  for (int64_t i = 0; i < batch; ++i) seeds[size_t(i)] = uint64_t(1000 + i);
  BrownianTree tree(0.0, 2.0, seeds, dim, 1e-6);
  std::vector<double> wa(static_cast<size_t>(batch * dim)), wm(wa.size()), wb(wa.size());
  tree.value(0.3, wa.data(), nullptr);
  tree.value(0.77, wm.data(), nullptr);
  tree.value(1.6, wb.data(), nullptr);
  // W is a function of (seeds, t): a fresh tree, queried in another order, gives the same values (so
  // increments over [a, m] + [m, b] = [a, b] exactly), and so does the cached answer.
  BrownianTree fresh(0.0, 2.0, seeds, dim, 1e-6);
  std::vector<double> w2(wa.size()), w3(wa.size());
  fresh.value(1.6, w2.data(), nullptr);
  fresh.value(0.3, w3.data(), nullptr);
  CHECK(w2 == wb);
  CHECK(w3 == wa);
  tree.value(1.6, w2.data(), nullptr);
  CHECK(w2 == wb);
  // Var(W(b) - W(a)) = b - a and disjoint increments are uncorrelated.
  double var = 0, cov = 0;
  for (size_t i = 0; i < wa.size(); ++i) {
    var += (wb[i] - wa[i]) * (wb[i] - wa[i]);
    cov += (wm[i] - wa[i]) * (wb[i] - wm[i]);
  }
  var /= double(wa.size());
  cov /= double(wa.size());
  // Relative standard error of a variance estimate from n normal draws: sqrt(2/n).
  CHECK(std::fabs(var / 1.3 - 1) < 5 * std::sqrt(2.0 / double(wa.size())));
  CHECK(std::fabs(cov) < 5 * std::sqrt(0.47 * 0.83 / double(wa.size())));
  // Normalised increments are standard normal, either direction, same magnitude.
  std::vector<double> up(wa.size()), down(wa.size());
  tree.normalizedIncrement(0.3, 1.6, up.data(), nullptr);
  tree.normalizedIncrement(1.6, 0.3, down.data(), nullptr);
  for (size_t i = 0; i < up.size(); ++i) CHECK_NEAR(up[i], down[i], 1e-12);
}

ND_TEST(sampler_contract) {
  std::shared_ptr<const Schedule> vp = makeVpLinear();
  SamplerSetup s;
  s.schedule = vp;
  s.steps = 4;
  s.batch = 2;
  s.dim = 3;
  s.tEnd = 1e-3;
  // Unknown sampler and option names.
  CHECK_THROWS_CODE(createSampler<double>("dpmpp-9m", s), Arg);
  SamplerSetup bad = s;
  bad.options["ordr"] = 2.0;
  CHECK_THROWS_CODE(createSampler<double>("dpm-solver", bad), Arg);
  bad = s;
  bad.options["order"] = 2.5;
  CHECK_THROWS_CODE(createSampler<double>("dpm-solver", bad), Arg);
  // Plans: multistep = steps evaluations; heun = 2 per step; singlestep = steps evaluations.
  CHECK(createSampler<double>("dpmpp-2m", s)->plannedTimes().size() == 4);
  CHECK(createSampler<double>("heun", s)->plannedTimes().size() == 8);
  SamplerSetup ss = s;
  ss.steps = 7;
  ss.options["method"] = std::string("singlestep");
  ss.options["order"] = 3.0;
  CHECK(createSampler<double>("dpm-solver", ss)->plannedTimes().size() == 7);
  // A finished sampler refuses further steps.
  auto d = createSampler<float>("ddim", s);
  std::vector<float> x(6, 0.5f), m(6, 0.1f);
  while (!d->done()) d->step(x.data(), m.data(), x.data());
  CHECK(d->evaluations() == 4);
  CHECK_THROWS_CODE(d->step(x.data(), m.data(), x.data()), Arg);
  CHECK_THROWS_CODE(d->nextTime(), Arg);
  // Stochastic samplers without seeds fail when they first need noise, naming the remedy.
  auto a = createSampler<float>("euler-ancestral", s);
  CHECK_THROWS_CODE(a->step(x.data(), m.data(), x.data()), Arg);
}

ND_TEST_MAIN()
