// Devices: the machine's CPU ("cpu"), N virtual CPU devices ("cpu:0".."cpu:N-1", each a thread subset with
// its own memory accounting, so multi-device code paths run on one machine) and CUDA GPUs ("cuda:0"..).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace nd {

enum class DeviceType : uint8_t { Cpu, Cuda };

struct Device {
  DeviceType type = DeviceType::Cpu;
  int index = -1;  // -1: the whole-machine "cpu"; >= 0: virtual cpu:k or cuda:k

  bool isCpu() const { return type == DeviceType::Cpu; }
  bool isCuda() const { return type == DeviceType::Cuda; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;
  // "cpu", "cpu:3", "cuda", "cuda:1" ("cuda" means cuda:0). Throws ERR_ND_DEVICE on anything else.
  static Device parse(std::string_view text);
};

}  // namespace nd
