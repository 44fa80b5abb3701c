// MoE helpers: the ANT timestep partition (runs on the thread pool: O(k n^2)).
#include <memory>
#include <vector>

#include "bindings.h"
#include "convert.h"
#include "core/error.h"
#include "errors.h"
#include "moe/timestep_partition.h"
#include "promise_worker.h"

namespace ndjs {
namespace {

// partitionTimesteps(kind: 'values' | 'affinity' | 'matrix', data: Float64Array, n, k) -> Promise<{ intervals, cost }>
// 'matrix': a precomputed n x n cost table, cost(l, r) = data[l n + r] (l <= r).
Napi::Value partitionTimesteps(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    std::string kind = argString(info, 0, "kind");
    ND_REQUIRE(info.Length() > 1 && info[1].IsTypedArray() && info[1].As<Napi::TypedArray>().TypedArrayType() == napi_float64_array,
               Arg, "Expected a Float64Array for the cost data");
    auto a = info[1].As<Napi::Float64Array>();
    auto data = std::make_shared<std::vector<double>>(a.Data(), a.Data() + a.ElementLength());
    int64_t n = argInt(info, 2, "n", 1, 100000), k = argInt(info, 3, "k", 1, 100000);
    ND_REQUIRE(kind == "values" || kind == "affinity" || kind == "matrix", Arg, "Unknown partition objective " + kind);
    auto result = std::make_shared<nd::moe::Partition>();
    return PromiseWorker::run(
        info.Env(),
        [kind, data, n, k, result] {
          if (kind == "values") {
            ND_REQUIRE(int64_t(data->size()) == n, Shape, "Expected n values");
            *result = nd::moe::partitionByValues(*data, k);
          } else if (kind == "affinity") {
            *result = nd::moe::partitionByAffinity(*data, n, k);
          } else {
            ND_REQUIRE(int64_t(data->size()) == n * n, Shape, "Expected an n x n cost table");
            *result = nd::moe::partitionTimesteps(n, k, [&](int64_t l, int64_t r) { return (*data)[size_t(l * n + r)]; });
          }
        },
        [result](Napi::Env env) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          Napi::Array iv = Napi::Array::New(env, result->intervals.size());
          for (size_t i = 0; i < result->intervals.size(); ++i) {
            Napi::Array pair = Napi::Array::New(env, 2);
            pair.Set(0u, double(result->intervals[i].from));
            pair.Set(1u, double(result->intervals[i].to));
            iv.Set(uint32_t(i), pair);
          }
          o.Set("intervals", iv);
          o.Set("cost", result->cost);
          return o;
        },
        {info[1]});
  });
}

}  // namespace

void registerMoe(Napi::Env env, Napi::Object exports) {
  exports.Set("partitionTimesteps", Napi::Function::New(env, partitionTimesteps, "partitionTimesteps"));
}

}  // namespace ndjs
