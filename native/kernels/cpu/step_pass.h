// The one memory pass every sampler step is made of. A step of any sampler in this library is a
// linear combination, with per-step scalar coefficients, of the current state x, the model output m
// at x, at most kMaxStepTerms stored vectors (history, the step's base point) and one noise vector:
//     d   = cx * x + cm * m                    (the model output in the form the sampler keeps:
//                                               x0, eps or a k-diffusion derivative), stored to dStore
//     out = a * x + b * d + sum_k c_k h_k + cz * z
// Evaluating both in one loop reads each input once and writes each output once, so a step costs
// one pass over the latent. Pointers may alias exactly (out == x, dStore == m or == some h_k): each
// element is read completely before it is written.
#pragma once
#include <cstdint>

namespace nd {
class ThreadPool;

constexpr int kMaxStepTerms = 5;

template <class T>
struct StepTerm {
  double coef = 0;
  const T* data = nullptr;
};

template <class T>
struct StepPass {
  const T* x = nullptr;
  const T* m = nullptr;  // null: no d (and b, dStore unused)
  double cx = 0, cm = 0;
  T* dStore = nullptr;   // required when m is set
  double a = 0, b = 0;
  StepTerm<T> terms[kMaxStepTerms];
  int nTerms = 0;
  const T* z = nullptr;
  double cz = 0;
  T* out = nullptr;      // null: only d is computed

  StepPass& term(double coef, const T* data);
};

// The argument checks every backend's step pass makes (ERR_ND_ARG / ERR_ND_INTERNAL).
template <class T>
void checkStepPass(const StepPass<T>& pass, int64_t n);

// Coefficients are rounded to T once; arithmetic is in T (double for the f64 path used by exact
// tests), so float and double paths differ only by rounding.
void stepPassCpu(const StepPass<float>& pass, int64_t n, ThreadPool* pool);
void stepPassCpu(const StepPass<double>& pass, int64_t n, ThreadPool* pool);

// Plain per-element reference (double accumulation, no templates, no threads): what the test
// compares stepPassCpu against.
template <class T>
void stepPassReference(const StepPass<T>& pass, int64_t n);

}  // namespace nd
