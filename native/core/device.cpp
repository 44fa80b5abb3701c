#include "core/device.h"

#include <charconv>

#include "core/error.h"

namespace nd {

std::string Device::str() const {
  std::string base = type == DeviceType::Cpu ? "cpu" : "cuda";
  return index < 0 ? base : base + ":" + std::to_string(index);
}

Device Device::parse(std::string_view text) {
  auto bad = [&]() -> Device {
    fail(ErrorCode::Device, "Invalid device '" + std::string(text) +
                                "'; expected 'cpu', 'cpu:N', 'cuda' or 'cuda:N'");
  };
  std::string_view kind = text, idx;
  if (auto colon = text.find(':'); colon != std::string_view::npos) {
    kind = text.substr(0, colon);
    idx = text.substr(colon + 1);
    if (idx.empty()) return bad();
  }
  Device d;
  if (kind == "cpu") d.type = DeviceType::Cpu;
  else if (kind == "cuda") d.type = DeviceType::Cuda;
  else return bad();
  if (!idx.empty()) {
    int v = -1;
    auto [p, ec] = std::from_chars(idx.data(), idx.data() + idx.size(), v);
    if (ec != std::errc() || p != idx.data() + idx.size() || v < 0 || v > 1023) return bad();
    d.index = v;
  } else if (d.type == DeviceType::Cuda) {
    d.index = 0;
  }
  return d;
}

}  // namespace nd
