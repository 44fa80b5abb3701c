// A small strict JSON (RFC 8259) parser for file headers we do not trust (safetensors, configs).
// Strict on purpose: a header that two readers could interpret differently (duplicate keys, invalid
// UTF-8, lone surrogates, trailing bytes) is rejected instead of guessed at. Bounded on purpose: the
// nesting depth and the number of values are capped so a hostile header cannot exhaust the stack or
// memory. Every failure is nd::Error(ErrorCode::FileFormat) naming the byte offset in the text.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nd::io::json {

enum class Kind : uint8_t { Null, Bool, Number, String, Array, Object };

const char* kindName(Kind k) noexcept;

struct Value {
  Kind kind = Kind::Null;
  bool boolean = false;
  size_t pos = 0;            // byte offset of the value's first byte in the parsed text
  std::string text;          // String: decoded UTF-8; Number: the literal exactly as written
  std::vector<Value> items;  // Array elements, or Object member values (parallel to `keys`)
  std::vector<std::string> keys;    // Object member names in file order (unique)
  std::vector<size_t> keyPos;       // byte offset of each key, for error messages

  bool isObject() const { return kind == Kind::Object; }
  bool isArray() const { return kind == Kind::Array; }
  bool isString() const { return kind == Kind::String; }
  bool isNumber() const { return kind == Kind::Number; }
  // Object lookup; nullptr when absent. Linear: objects in headers are small or scanned once.
  const Value* get(std::string_view key) const;
};

// How a Number literal reads as an unsigned 64-bit integer. Shapes and offsets must be exact, so
// fractions and exponents ("1.0", "1e3") are not integers here even when their value is whole.
enum class UintParse : uint8_t { Ok, NotNumber, Negative, NotInteger, Overflow };
UintParse toUint64(const Value& v, uint64_t& out) noexcept;

struct ParseOptions {
  int maxDepth = 64;
  // About 120 bytes per value: 1<<22 values bound the tree near 500 MB whatever the input size.
  size_t maxValues = size_t(1) << 22;
};

// Parses exactly one JSON value; whitespace may surround it, anything else after it is an error.
Value parse(std::string_view text, const ParseOptions& options = {});

// True when s is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool isValidUtf8(std::string_view s) noexcept;

// Appends s as a JSON string literal (quotes included). s must be valid UTF-8.
void appendQuoted(std::string& out, std::string_view s);

}  // namespace nd::io::json
