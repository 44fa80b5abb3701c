// Module registration only: each bindings/ file adds its functions.
#include <napi.h>

#include "bindings.h"
#include "instance.h"
#include "tensor_handle.h"

namespace ndjs {

InstanceData& instanceData(Napi::Env env) { return *env.GetInstanceData<InstanceData>(); }

Napi::Object init(Napi::Env env, Napi::Object exports) {
  auto* data = new InstanceData();
  env.SetInstanceData<InstanceData>(data);  // deleted by node-addon-api at env teardown
  data->tensorHandleCtor = Napi::Persistent(TensorHandle::define(env));
  exports.Set("externalMemory", Napi::Function::New(env, externalMemory, "externalMemory"));
  registerTensorOps(env, exports);
  registerRuntime(env, exports);
  registerSafetensors(env, exports);
  registerSolvers(env, exports);
  registerMoe(env, exports);
  registerModels(env, exports);
  exports.Set("cudaCompiled", Napi::Boolean::New(env,
#ifdef ND_WITH_CUDA
                                                  true
#else
                                                  false
#endif
                                                  ));
  return exports;
}

}  // namespace ndjs

static Napi::Object initNodeDiffusion(Napi::Env env, Napi::Object exports) { return ndjs::init(env, exports); }

NODE_API_MODULE(node_diffusion, initNodeDiffusion)
