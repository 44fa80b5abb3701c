// The CUDA runtime as the core sees it. Implemented in cuda_backend.cu when the backend is compiled,
// and in cuda_backend_nocuda.cpp (every call reports why there is no CUDA) when it is not.
// All device pointers are plain void*; every call is checked and throws nd::Error (ERR_ND_DEVICE,
// ERR_ND_OOM for allocation failures).
#pragma once
#include <cstddef>
#include <functional>
#include <string>

namespace nd::cuda {

struct DeviceProps {
  std::string name;
  int major = 0, minor = 0;
  size_t totalMemory = 0;
  int multiProcessors = 0;
};

struct ProbeResult {
  bool compiled = false;      // this binary has the CUDA backend
  int runtimeVersion = 0;     // e.g. 13000
  int driverVersion = 0;      // 0 when no driver was found
  int deviceCount = 0;
  std::string error;          // why CUDA is unusable, empty when usable
};

bool compiled() noexcept;
// Keeps this process away from the CUDA driver: afterwards probe() reports `reason` without
// loading the driver. The loader calls it when it chose the CPU backend for a binary that has CUDA
// (e.g. because the child-process check found the driver broken). Call before any CUDA use.
void disable(const std::string& reason) noexcept;
// Never throws: reports the driver/runtime state (used by the loader's child-process check).
ProbeResult probe() noexcept;
DeviceProps deviceProps(int device);

void* deviceMalloc(int device, size_t bytes);  // throws ERR_ND_OOM when the device is full
void deviceFree(int device, void* ptr) noexcept;
void memcpyHostToDevice(int device, void* dst, const void* src, size_t bytes);
void memcpyDeviceToHost(int device, void* dst, const void* src, size_t bytes);
void memcpyDeviceToDevice(int dstDevice, void* dst, int srcDevice, const void* src, size_t bytes);
void memsetZero(int device, void* dst, size_t bytes);
void synchronize(int device);

// Makes `device` current on the calling thread (kernel launches go to the current device).
void setDevice(int device);
// Streams: a non-blocking stream per pipeline/model, so independent work overlaps.
void* streamCreate(int device);
void streamDestroy(int device, void* stream) noexcept;
void streamSynchronize(void* stream);
// Stream-ordered copy of `bytes` (any direction the runtime can infer: unified addressing).
void memcpyAsync(void* dst, const void* src, size_t bytes, void* stream);
// Stream-ordered zero fill of device memory.
void memsetZeroAsync(void* dst, size_t bytes, void* stream);
// CUDA graphs: everything `record` enqueues on `stream` is captured (not run) and instantiated.
// A failure inside `record` ends the capture before it propagates, so the stream stays usable.
void* graphCapture(void* stream, const std::function<void()>& record);
void graphLaunch(void* graphExec, void* stream);
void graphDestroy(void* graphExec) noexcept;

}  // namespace nd::cuda
