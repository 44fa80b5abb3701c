#include "solvers/sampler_memory.h"

#include <algorithm>
#include <type_traits>

#include "kernels/cpu/randn.h"

namespace nd::solvers {

template <class T>
T* HostSamplerMemory<T>::allocate(int64_t n) {
  blocks_.emplace_back(static_cast<size_t>(n), T(0));
  return blocks_.back().data();
}

template <class T>
void HostSamplerMemory<T>::copy(T* dst, const T* src, int64_t n) {
  if (dst != src) std::copy(src, src + n, dst);
}

template <class T>
void HostSamplerMemory<T>::randn(T* out, int64_t batch, int64_t dim, const uint64_t* seeds, uint64_t stream) {
  randnCpu(out, std::is_same_v<T, float> ? DType::F32 : DType::F64, batch, dim, seeds, stream, pool_);
}

template class HostSamplerMemory<float>;
template class HostSamplerMemory<double>;

}  // namespace nd::solvers
