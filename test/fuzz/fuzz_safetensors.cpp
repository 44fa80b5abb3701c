// libFuzzer target for the safetensors reader. A malformed input must end in nd::Error and nothing
// else: any other exception, a crash, or a sanitizer report (the fuzz build has ASan+UBSan) is a bug.
// Valid inputs are also converted, so the decoding paths see arbitrary bytes, offsets and alignment.
//
// Run: ./build-fuzz/fuzz_safetensors -max_total_time=60 <scratch copy of test/fuzz/corpus>
// (libFuzzer writes new inputs into the first corpus directory it is given.)
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"

namespace {

// Inputs are small, so tensors are too; the cap only keeps a pathological header from asking for a
// large destination should libFuzzer be run with a big -max_len.
constexpr int64_t kMaxElements = int64_t(1) << 20;

void exercise(const nd::io::SafetensorsFile& f) {
  std::vector<float> f32;
  std::vector<uint8_t> other;
  for (const nd::io::StTensorInfo& t : f.header().tensors) {
    if (f.find(t.name) != &t) __builtin_trap();  // the name index must agree with the tensor list
    const int64_t n = t.numel();
    if (n > kMaxElements) continue;
    f32.resize(size_t(n));
    f.readInto(t, f32.data(), nd::DType::F32, nullptr);
    // A second target picked by the input itself, written at an odd address: covers the integer
    // and narrowing paths and the misaligned-destination scratch buffer.
    const nd::DType target = nd::kAllDTypes[(t.begin + size_t(t.dtype)) % 8];
    other.resize(size_t(n) * nd::dtypeSize(target) + 1);
    f.readInto(t, other.data() + 1, target, nullptr);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Copy so the image starts at an address we control: offset 1 makes every tensor's alignment
  // differ from what the header padding intended, which the reader must tolerate.
  std::vector<uint8_t> buf(size + 1);
  if (size) std::memcpy(buf.data() + 1, data, size);
  try {
    nd::io::SafetensorsFile f(buf.data() + 1, size);
    exercise(f);
  } catch (const nd::Error&) {
    // Expected for malformed input.
  }
  return 0;
}
