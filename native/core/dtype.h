// Element types of tensors and their byte sizes. Names follow torch's short forms ("f32", "bf16").
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nd {

enum class DType : uint8_t { F32, F16, BF16, F64, I32, I64, U8, Bool };

inline constexpr DType kAllDTypes[] = {DType::F32, DType::F16, DType::BF16, DType::F64,
                                       DType::I32, DType::I64, DType::U8,   DType::Bool};

constexpr size_t dtypeSize(DType t) noexcept {
  switch (t) {
    case DType::F64:
    case DType::I64: return 8;
    case DType::F32:
    case DType::I32: return 4;
    case DType::F16:
    case DType::BF16: return 2;
    case DType::U8:
    case DType::Bool: return 1;
  }
  return 0;
}

constexpr bool isFloating(DType t) noexcept {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F64;
}

const char* dtypeName(DType t) noexcept;
// Parses "f32" / "float32" style names; throws ERR_ND_DTYPE naming the bad value.
DType parseDType(std::string_view name);

using Shape = std::vector<int64_t>;

// Number of elements; throws ERR_ND_SHAPE on a negative dim or on int64 overflow.
int64_t shapeNumel(const Shape& shape);
std::string shapeToString(const Shape& shape);

}  // namespace nd
