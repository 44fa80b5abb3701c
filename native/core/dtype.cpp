#include "core/dtype.h"

#include <limits>

#include "core/error.h"

namespace nd {

const char* dtypeName(DType t) noexcept {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::F64: return "f64";
    case DType::I32: return "i32";
    case DType::I64: return "i64";
    case DType::U8: return "u8";
    case DType::Bool: return "bool";
  }
  return "?";
}

DType parseDType(std::string_view name) {
  struct Alias { std::string_view name; DType t; };
  static constexpr Alias aliases[] = {
      {"f32", DType::F32},  {"float32", DType::F32}, {"f16", DType::F16},   {"float16", DType::F16},
      {"bf16", DType::BF16}, {"bfloat16", DType::BF16}, {"f64", DType::F64}, {"float64", DType::F64},
      {"i32", DType::I32},  {"int32", DType::I32},   {"i64", DType::I64},   {"int64", DType::I64},
      {"u8", DType::U8},    {"uint8", DType::U8},    {"bool", DType::Bool},
  };
  for (const auto& a : aliases)
    if (a.name == name) return a.t;
  fail(ErrorCode::DType, "Unknown dtype '" + std::string(name) +
                             "'; expected one of f32, f16, bf16, f64, i32, i64, u8, bool");
}

int64_t shapeNumel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    ND_REQUIRE(d >= 0, Shape, "Negative dimension in shape " + shapeToString(shape));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      fail(ErrorCode::Shape, "Shape " + shapeToString(shape) + " has too many elements");
    n *= d;
  }
  return n;
}

std::string shapeToString(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace nd
