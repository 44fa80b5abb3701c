#include "kernels/cuda/step_pass.cuh"

namespace nd {

void stepPassCuda(const StepPass<float>& p, int64_t n, void* stream) {
  ND_REQUIRE(n >= 0, Arg, "StepPass: negative size");
  ND_REQUIRE(p.x != nullptr, Internal, "StepPass: null x");
  ND_REQUIRE(p.m == nullptr || p.dStore != nullptr, Internal, "StepPass: model term without dStore");
  ND_REQUIRE(p.out != nullptr || p.m != nullptr, Internal, "StepPass: nothing to write");
  ND_REQUIRE(p.nTerms >= 0 && p.nTerms <= kMaxStepTerms, Internal, "StepPass: bad term count");
  kcuda::launchStepPass(p, n, stream);
}

}  // namespace nd
