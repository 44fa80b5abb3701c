// DitOnDevice in builds without the CUDA backend: create() says why there is no GPU model.
#include "core/error.h"
#include "models/dit_on_device.h"

namespace nd::models {

struct DitDeviceState {};

std::shared_ptr<DitOnDevice> DitOnDevice::create(std::shared_ptr<const DitModel>, Device device) {
  fail(ErrorCode::Device, "Cannot run a model on " + device.str() +
                              ": this build of node-diffusion has no CUDA backend (install the CUDA variant or "
                              "rebuild with `npm run build -- --cuda`)");
}
DitOnDevice::~DitOnDevice() = default;
DType DitOnDevice::computeType() const { return DType::F32; }
int64_t DitOnDevice::deviceWeightBytes() const { return 0; }
Tensor DitOnDevice::forward(const Tensor&, const float*, const int64_t*, DitRouting*) {
  fail(ErrorCode::Device, "This build of node-diffusion has no CUDA backend");
}
void DitOnDevice::setGraphs(bool) {}
void* DitOnDevice::stream() const { return nullptr; }

}  // namespace nd::models
