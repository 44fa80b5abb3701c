// The CUDA runtime interface for builds without the CUDA backend: every entry point explains that
// this binary was compiled without CUDA, so asking for a GPU fails with a reason, never silently.
#include "core/cuda_backend.h"
#include "core/error.h"

namespace nd::cuda {

namespace {
[[noreturn]] void noCuda() {
  fail(ErrorCode::Device,
       "This build of node-diffusion has no CUDA backend (built with ND_CUDA=OFF or without nvcc); "
       "install the CUDA variant or rebuild with `npm run build -- --cuda`");
}
}  // namespace

bool compiled() noexcept { return false; }
void disable(const std::string&) noexcept {}

ProbeResult probe() noexcept {
  ProbeResult r;
  r.error = "this binary was built without the CUDA backend";
  return r;
}

DeviceProps deviceProps(int) { noCuda(); }
void* deviceMalloc(int, size_t) { noCuda(); }
void deviceFree(int, void*) noexcept {}
void memcpyHostToDevice(int, void*, const void*, size_t) { noCuda(); }
void memcpyDeviceToHost(int, void*, const void*, size_t) { noCuda(); }
void memcpyDeviceToDevice(int, void*, int, const void*, size_t) { noCuda(); }
void memsetZero(int, void*, size_t) { noCuda(); }
void synchronize(int) { noCuda(); }
void setDevice(int) { noCuda(); }
void* streamCreate(int) { noCuda(); }
void streamDestroy(int, void*) noexcept {}
void streamSynchronize(void*) { noCuda(); }
void memcpyAsync(void*, const void*, size_t, void*) { noCuda(); }
void memsetZeroAsync(void*, size_t, void*) { noCuda(); }
void* graphCapture(void*, const std::function<void()>&) { noCuda(); }
void graphLaunch(void*, void*) { noCuda(); }
void graphDestroy(void*) noexcept {}

}  // namespace nd::cuda
