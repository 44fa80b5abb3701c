// What the sampler bindings need from the model bindings: the native model denoiser behind a JS
// handle (sample() runs its whole loop natively with it).
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>
#include <optional>
#include <vector>

#include "models/model_denoiser.h"

namespace ndjs {

struct ModelDenoiserRef {
  std::shared_ptr<nd::models::DitDenoiser> denoiser;
  std::shared_ptr<std::vector<nd::models::RoutingRecord>> routing;  // the last run's records
  bool record = false;
  std::shared_ptr<std::atomic<bool>> busy = std::make_shared<std::atomic<bool>>(false);  // one run at a time
};

// The denoiser when v is a model denoiser handle, nullopt otherwise.
std::optional<ModelDenoiserRef> unwrapModelDenoiser(Napi::Value v);

}  // namespace ndjs
