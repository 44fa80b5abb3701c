#include "kernels/cpu/step_pass.h"

#include "core/error.h"
#include "core/thread_pool.h"

namespace nd {

template <class T>
StepPass<T>& StepPass<T>::term(double coef, const T* data) {
  ND_REQUIRE(nTerms < kMaxStepTerms, Internal, "StepPass: too many terms");
  ND_REQUIRE(data != nullptr, Internal, "StepPass: null term");
  terms[nTerms++] = {coef, data};
  return *this;
}

namespace {

// K history terms, D: the model term is present, Z: noise present, O: out present. The template
// parameters turn every branch into straight-line code the compiler can vectorise.
template <class T, int K, bool D, bool Z, bool O>
void passRange(const StepPass<T>& p, int64_t begin, int64_t end) {
  const T cx = T(p.cx), cm = T(p.cm), a = T(p.a), b = T(p.b), cz = T(p.cz);
  T c[K > 0 ? K : 1];
  const T* h[K > 0 ? K : 1];
  for (int k = 0; k < K; ++k) {
    c[k] = T(p.terms[k].coef);
    h[k] = p.terms[k].data;
  }
  const T* __restrict x = p.x;
  const T* __restrict m = p.m;
  const T* __restrict z = p.z;
  T* dStore = p.dStore;
  T* out = p.out;
  for (int64_t i = begin; i < end; ++i) {
    T xi = x[i];
    T acc = a * xi;
    if constexpr (D) {
      T d = cx * xi + cm * m[i];
      acc += b * d;
      if constexpr (K > 0) {
        for (int k = 0; k < K; ++k) acc += c[k] * h[k][i];
      }
      if constexpr (Z) acc += cz * z[i];
      dStore[i] = d;
    } else {
      if constexpr (K > 0) {
        for (int k = 0; k < K; ++k) acc += c[k] * h[k][i];
      }
      if constexpr (Z) acc += cz * z[i];
    }
    if constexpr (O) out[i] = acc;
  }
}

template <class T, int K>
void dispatchFlags(const StepPass<T>& p, int64_t b, int64_t e) {
  bool d = p.m != nullptr, z = p.z != nullptr, o = p.out != nullptr;
  if (o) {
    if (d) z ? passRange<T, K, true, true, true>(p, b, e) : passRange<T, K, true, false, true>(p, b, e);
    else z ? passRange<T, K, false, true, true>(p, b, e) : passRange<T, K, false, false, true>(p, b, e);
  } else {
    z ? passRange<T, K, true, true, false>(p, b, e) : passRange<T, K, true, false, false>(p, b, e);
  }
}

template <class T>
void run(const StepPass<T>& p, int64_t n, ThreadPool* pool) {
  checkStepPass(p, n);
  auto body = [&p](int64_t b, int64_t e) {
    switch (p.nTerms) {
      case 0: dispatchFlags<T, 0>(p, b, e); break;
      case 1: dispatchFlags<T, 1>(p, b, e); break;
      case 2: dispatchFlags<T, 2>(p, b, e); break;
      case 3: dispatchFlags<T, 3>(p, b, e); break;
      case 4: dispatchFlags<T, 4>(p, b, e); break;
      default: dispatchFlags<T, 5>(p, b, e); break;
    }
  };
  // Small latents stay on the calling thread: waking the pool costs more than the pass.
  if (pool == nullptr || n < (int64_t(1) << 15)) {
    body(0, n);
  } else {
    pool->parallelFor(n, int64_t(1) << 14, body);
  }
}

}  // namespace

template <class T>
void checkStepPass(const StepPass<T>& p, int64_t n) {
  ND_REQUIRE(n >= 0, Arg, "StepPass: negative size");
  ND_REQUIRE(p.x != nullptr, Internal, "StepPass: null x");
  ND_REQUIRE(p.m == nullptr || p.dStore != nullptr, Internal, "StepPass: model term without dStore");
  ND_REQUIRE(p.out != nullptr || p.m != nullptr, Internal, "StepPass: nothing to write");
  ND_REQUIRE(p.nTerms >= 0 && p.nTerms <= kMaxStepTerms, Internal, "StepPass: bad term count");
}
template void checkStepPass<float>(const StepPass<float>&, int64_t);
template void checkStepPass<double>(const StepPass<double>&, int64_t);

void stepPassCpu(const StepPass<float>& pass, int64_t n, ThreadPool* pool) { run(pass, n, pool); }
void stepPassCpu(const StepPass<double>& pass, int64_t n, ThreadPool* pool) { run(pass, n, pool); }

template <class T>
void stepPassReference(const StepPass<T>& p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    double x = p.x[i];
    double d = 0;
    if (p.m) d = double(T(p.cx)) * x + double(T(p.cm)) * double(p.m[i]);
    double acc = double(T(p.a)) * x + (p.m ? double(T(p.b)) * d : 0.0);
    for (int k = 0; k < p.nTerms; ++k) acc += double(T(p.terms[k].coef)) * double(p.terms[k].data[i]);
    if (p.z) acc += double(T(p.cz)) * double(p.z[i]);
    if (p.m) p.dStore[i] = T(d);
    if (p.out) p.out[i] = T(acc);
  }
}

template struct StepPass<float>;
template struct StepPass<double>;
template void stepPassReference<float>(const StepPass<float>&, int64_t);
template void stepPassReference<double>(const StepPass<double>&, int64_t);

}  // namespace nd
