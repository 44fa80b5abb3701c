// The CUDA runtime behind core/cuda_backend.h. cudart is linked statically and loads the driver
// (libcuda.so.1) lazily, so this code is safe to load on machines without a GPU: probe() reports why.
#include <cuda_runtime.h>

#include <mutex>
#include <string>

#include "core/cuda_backend.h"
#include "kernels/cuda/cuda_check.cuh"

namespace nd::cuda {

bool compiled() noexcept { return true; }

namespace {
std::mutex gDisableMutex;
bool gDisabled = false;
std::string gDisabledReason;
}  // namespace

void disable(const std::string& reason) noexcept {
  std::lock_guard<std::mutex> lk(gDisableMutex);
  gDisabled = true;
  try {
    gDisabledReason = reason;
  } catch (...) {
  }
}

ProbeResult probe() noexcept {
  {
    std::lock_guard<std::mutex> lk(gDisableMutex);
    if (gDisabled) {
      ProbeResult r;
      r.compiled = true;
      try {
        r.error = "CUDA is not used in this process: " + gDisabledReason;
      } catch (...) {
      }
      return r;
    }
  }
  // The answer cannot change within a process (the driver does not appear later), so it is cached.
  static std::once_flag once;
  static ProbeResult result;
  std::call_once(once, [] {
    result.compiled = true;
    cudaRuntimeGetVersion(&result.runtimeVersion);
    cudaError_t e = cudaDriverGetVersion(&result.driverVersion);
    if (e != cudaSuccess || result.driverVersion == 0) {
      result.error = "no NVIDIA driver found (libcuda.so.1 could not be loaded)";
      (void)cudaGetLastError();
      return;
    }
    if (result.driverVersion < result.runtimeVersion / 1000 * 1000) {
      result.error = "the NVIDIA driver supports CUDA " + std::to_string(result.driverVersion / 1000) + "." +
                     std::to_string(result.driverVersion % 1000 / 10) + " but this binary needs CUDA " +
                     std::to_string(result.runtimeVersion / 1000) + ".x; upgrade the driver";
      return;
    }
    e = cudaGetDeviceCount(&result.deviceCount);
    if (e != cudaSuccess) {
      result.error = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(e) + ": " + cudaGetErrorString(e);
      result.deviceCount = 0;
      (void)cudaGetLastError();
      return;
    }
    if (result.deviceCount == 0) result.error = "the NVIDIA driver reports no CUDA devices";
  });
  return result;
}

DeviceProps deviceProps(int device) {
  cudaDeviceProp p{};
  ND_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  DeviceProps out;
  out.name = p.name;
  out.major = p.major;
  out.minor = p.minor;
  out.totalMemory = p.totalGlobalMem;
  out.multiProcessors = p.multiProcessorCount;
  return out;
}

void* deviceMalloc(int device, size_t bytes) {
  ND_CUDA_CHECK(cudaSetDevice(device));
  void* p = nullptr;
  ND_CUDA_CHECK(cudaMalloc(&p, bytes));
  return p;
}

void deviceFree(int device, void* ptr) noexcept {
  if (!ptr) return;
  if (cudaSetDevice(device) != cudaSuccess || cudaFree(ptr) != cudaSuccess) (void)cudaGetLastError();
}

void memcpyHostToDevice(int device, void* dst, const void* src, size_t bytes) {
  ND_CUDA_CHECK(cudaSetDevice(device));
  ND_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}

void memcpyDeviceToHost(int device, void* dst, const void* src, size_t bytes) {
  ND_CUDA_CHECK(cudaSetDevice(device));
  ND_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

void memcpyDeviceToDevice(int dstDevice, void* dst, int srcDevice, const void* src, size_t bytes) {
  ND_CUDA_CHECK(cudaSetDevice(dstDevice));
  if (dstDevice == srcDevice) ND_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
  else ND_CUDA_CHECK(cudaMemcpyPeer(dst, dstDevice, src, srcDevice, bytes));
}

void memsetZero(int device, void* dst, size_t bytes) {
  ND_CUDA_CHECK(cudaSetDevice(device));
  ND_CUDA_CHECK(cudaMemset(dst, 0, bytes));
}

void synchronize(int device) {
  ND_CUDA_CHECK(cudaSetDevice(device));
  ND_CUDA_CHECK(cudaDeviceSynchronize());
}

void setDevice(int device) { ND_CUDA_CHECK(cudaSetDevice(device)); }

void* streamCreate(int device) {
  ND_CUDA_CHECK(cudaSetDevice(device));
  cudaStream_t s = nullptr;
  ND_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}

void streamDestroy(int device, void* stream) noexcept {
  if (!stream) return;
  if (cudaSetDevice(device) != cudaSuccess || cudaStreamDestroy(static_cast<cudaStream_t>(stream)) != cudaSuccess)
    (void)cudaGetLastError();
}

void streamSynchronize(void* stream) { ND_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream))); }

void memcpyAsync(void* dst, const void* src, size_t bytes, void* stream) {
  if (bytes == 0) return;
  ND_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, static_cast<cudaStream_t>(stream)));
}

void memsetZeroAsync(void* dst, size_t bytes, void* stream) {
  ND_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, static_cast<cudaStream_t>(stream)));
}

void* graphCapture(void* stream, const std::function<void()>& record) {
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  // Thread-local mode: other threads may keep using the runtime (their own streams) meanwhile.
  ND_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  cudaGraph_t graph = nullptr;
  try {
    record();
  } catch (...) {
    if (cudaStreamEndCapture(s, &graph) == cudaSuccess && graph) cudaGraphDestroy(graph);
    (void)cudaGetLastError();
    throw;
  }
  ND_CUDA_CHECK(cudaStreamEndCapture(s, &graph));
  cudaGraphExec_t exec = nullptr;
  cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  ND_CUDA_CHECK(e);
  return exec;
}

void graphLaunch(void* graphExec, void* stream) {
  ND_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(graphExec), static_cast<cudaStream_t>(stream)));
}

void graphDestroy(void* graphExec) noexcept {
  if (graphExec && cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(graphExec)) != cudaSuccess) (void)cudaGetLastError();
}

}  // namespace nd::cuda
