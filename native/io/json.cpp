#include "io/json.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "core/error.h"

namespace nd::io::json {

namespace {

// Length of the well-formed UTF-8 sequence starting at p (at most `avail` bytes), 0 if malformed.
// The ranges are those of the Unicode standard's table 3-7, which excludes overlongs and surrogates.
size_t utf8SeqLen(const unsigned char* p, size_t avail) noexcept {
  unsigned char b0 = p[0];
  if (b0 < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (avail < len) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (size_t k = 2; k < len; ++k)
    if ((p[k] & 0xC0) != 0x80) return 0;
  return len;
}

void appendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

int hexDigit(unsigned char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool isDigit(unsigned char c) noexcept { return c >= '0' && c <= '9'; }

// Printable description of the byte at a position, for "unexpected ..." messages.
std::string describeByte(unsigned char c) {
  char buf[32];
  if (c >= 0x21 && c < 0x7F) std::snprintf(buf, sizeof buf, "character '%c'", c);
  else std::snprintf(buf, sizeof buf, "byte 0x%02X", unsigned(c));
  return buf;
}

class Parser {
 public:
  Parser(std::string_view text, const ParseOptions& opts)
      : s_(reinterpret_cast<const unsigned char*>(text.data())), n_(text.size()), opts_(opts) {}

  Value run() {
    Value root;
    skipWs();
    if (i_ == n_) err(i_, "empty text, expected a value");
    parseValue(root, 0);
    skipWs();
    if (i_ != n_) err(i_, "trailing " + describeByte(s_[i_]) + " after the value");
    return root;
  }

 private:
  [[noreturn]] void err(size_t at, const std::string& what) const {
    fail(ErrorCode::FileFormat, "invalid JSON at byte " + std::to_string(at) + ": " + what);
  }

  void skipWs() {
    while (i_ < n_ && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }

  void expectLiteral(std::string_view lit) {
    if (n_ - i_ < lit.size() || std::string_view(reinterpret_cast<const char*>(s_ + i_), lit.size()) != lit)
      err(i_, "invalid literal, expected '" + std::string(lit) + "'");
    i_ += lit.size();
  }

  void parseValue(Value& out, int depth) {
    if (++values_ > opts_.maxValues)
      err(i_, "more than " + std::to_string(opts_.maxValues) + " values");
    out.pos = i_;
    if (i_ == n_) err(i_, "unexpected end of text, expected a value");
    unsigned char c = s_[i_];
    switch (c) {
      case '{': parseObject(out, depth + 1); return;
      case '[': parseArray(out, depth + 1); return;
      case '"': out.kind = Kind::String; parseString(out.text); return;
      case 't': out.kind = Kind::Bool; out.boolean = true; expectLiteral("true"); return;
      case 'f': out.kind = Kind::Bool; out.boolean = false; expectLiteral("false"); return;
      case 'n': out.kind = Kind::Null; expectLiteral("null"); return;
      default:
        if (c == '-' || isDigit(c)) {
          parseNumber(out);
          return;
        }
        err(i_, "unexpected " + describeByte(c) + ", expected a value");
    }
  }

  void enter(int depth) const {
    if (depth > opts_.maxDepth)
      err(i_, "nesting deeper than " + std::to_string(opts_.maxDepth) + " levels");
  }

  void parseArray(Value& out, int depth) {
    enter(depth);
    out.kind = Kind::Array;
    ++i_;  // '['
    skipWs();
    if (i_ < n_ && s_[i_] == ']') {
      ++i_;
      return;
    }
    for (;;) {
      skipWs();
      out.items.emplace_back();
      parseValue(out.items.back(), depth);
      skipWs();
      if (i_ == n_) err(out.pos, "unterminated array");
      if (s_[i_] == ',') {
        ++i_;
        skipWs();
        if (i_ < n_ && s_[i_] == ']') err(i_, "trailing comma in array");
        continue;
      }
      if (s_[i_] == ']') {
        ++i_;
        return;
      }
      err(i_, "unexpected " + describeByte(s_[i_]) + " in array, expected ',' or ']'");
    }
  }

  void parseObject(Value& out, int depth) {
    enter(depth);
    out.kind = Kind::Object;
    ++i_;  // '{'
    skipWs();
    if (i_ < n_ && s_[i_] == '}') {
      ++i_;
      return;
    }
    for (;;) {
      skipWs();
      if (i_ == n_) err(out.pos, "unterminated object");
      if (s_[i_] != '"') err(i_, "unexpected " + describeByte(s_[i_]) + ", expected a string key");
      out.keyPos.push_back(i_);
      out.keys.emplace_back();
      parseString(out.keys.back());
      skipWs();
      if (i_ == n_) err(out.pos, "unterminated object");
      if (s_[i_] != ':') err(i_, "unexpected " + describeByte(s_[i_]) + ", expected ':' after key");
      ++i_;
      skipWs();
      out.items.emplace_back();
      parseValue(out.items.back(), depth);
      skipWs();
      if (i_ == n_) err(out.pos, "unterminated object");
      if (s_[i_] == ',') {
        ++i_;
        skipWs();
        if (i_ < n_ && s_[i_] == '}') err(i_, "trailing comma in object");
        continue;
      }
      if (s_[i_] == '}') {
        ++i_;
        break;
      }
      err(i_, "unexpected " + describeByte(s_[i_]) + " in object, expected ',' or '}'");
    }
    checkDuplicateKeys(out);
  }

  // Readers disagree on which of two equal keys wins, so a file relying on either is ambiguous.
  void checkDuplicateKeys(const Value& obj) const {
    if (obj.keys.size() < 2) return;
    std::vector<size_t> idx(obj.keys.size());
    std::iota(idx.begin(), idx.end(), size_t(0));
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
      int c = obj.keys[a].compare(obj.keys[b]);
      return c != 0 ? c < 0 : a < b;
    });
    for (size_t k = 1; k < idx.size(); ++k) {
      if (obj.keys[idx[k]] == obj.keys[idx[k - 1]]) {
        const std::string& key = obj.keys[idx[k]];
        size_t cut = std::min<size_t>(key.size(), 80);
        while (cut < key.size() && cut > 0 && (static_cast<unsigned char>(key[cut]) & 0xC0) == 0x80) --cut;
        std::string shown;
        appendQuoted(shown, std::string_view(key).substr(0, cut));
        err(obj.keyPos[idx[k]], "duplicate key " + shown + (cut < key.size() ? "..." : "") + " in object");
      }
    }
  }

  uint32_t readHex4(size_t at) const {
    if (n_ - i_ < 4) err(at, "truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      int d = hexDigit(s_[i_ + k]);
      if (d < 0) err(at, "invalid hex digit in \\u escape");
      v = (v << 4) | uint32_t(d);
    }
    return v;
  }

  void parseString(std::string& out) {
    size_t start = i_;
    ++i_;  // opening quote
    for (;;) {
      // Copy the longest run of bytes that need no decoding in one go.
      size_t run = i_;
      while (run < n_ && s_[run] >= 0x20 && s_[run] < 0x80 && s_[run] != '"' && s_[run] != '\\') ++run;
      out.append(reinterpret_cast<const char*>(s_ + i_), run - i_);
      i_ = run;
      if (i_ == n_) err(start, "unterminated string");
      unsigned char c = s_[i_];
      if (c == '"') {
        ++i_;
        return;
      }
      if (c < 0x20) err(i_, "unescaped control " + describeByte(c) + " in string");
      if (c >= 0x80) {
        size_t len = utf8SeqLen(s_ + i_, n_ - i_);
        if (len == 0) err(i_, "invalid UTF-8 " + describeByte(c) + " in string");
        out.append(reinterpret_cast<const char*>(s_ + i_), len);
        i_ += len;
        continue;
      }
      parseEscape(out);
    }
  }

  void parseEscape(std::string& out) {
    size_t at = i_;
    ++i_;  // backslash
    if (i_ == n_) err(at, "unterminated escape");
    unsigned char e = s_[i_++];
    switch (e) {
      case '"': out += '"'; return;
      case '\\': out += '\\'; return;
      case '/': out += '/'; return;
      case 'b': out += '\b'; return;
      case 'f': out += '\f'; return;
      case 'n': out += '\n'; return;
      case 'r': out += '\r'; return;
      case 't': out += '\t'; return;
      case 'u': break;
      default: err(at, "invalid escape '\\" + std::string(1, char(e < 0x20 || e >= 0x7F ? '?' : e)) + "'");
    }
    uint32_t cp = readHex4(at);
    i_ += 4;
    if (cp >= 0xDC00 && cp <= 0xDFFF) err(at, "unpaired low surrogate in \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (n_ - i_ < 2 || s_[i_] != '\\' || s_[i_ + 1] != 'u')
        err(at, "high surrogate in \\u escape not followed by a low surrogate");
      i_ += 2;
      uint32_t lo = readHex4(at);
      if (lo < 0xDC00 || lo > 0xDFFF) err(at, "high surrogate in \\u escape not followed by a low surrogate");
      i_ += 4;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    appendUtf8(out, cp);
  }

  void parseNumber(Value& out) {
    size_t start = i_;
    out.kind = Kind::Number;
    if (s_[i_] == '-') ++i_;
    if (i_ == n_ || !isDigit(s_[i_])) err(start, "invalid number, expected a digit");
    if (s_[i_] == '0') {
      ++i_;
      if (i_ < n_ && isDigit(s_[i_])) err(start, "invalid number, leading zero");
    } else {
      while (i_ < n_ && isDigit(s_[i_])) ++i_;
    }
    if (i_ < n_ && s_[i_] == '.') {
      ++i_;
      if (i_ == n_ || !isDigit(s_[i_])) err(start, "invalid number, expected a digit after '.'");
      while (i_ < n_ && isDigit(s_[i_])) ++i_;
    }
    if (i_ < n_ && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < n_ && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (i_ == n_ || !isDigit(s_[i_])) err(start, "invalid number, expected a digit in the exponent");
      while (i_ < n_ && isDigit(s_[i_])) ++i_;
    }
    out.text.assign(reinterpret_cast<const char*>(s_ + start), i_ - start);
  }

  const unsigned char* s_;
  size_t n_;
  size_t i_ = 0;
  size_t values_ = 0;
  ParseOptions opts_;
};

}  // namespace

const char* kindName(Kind k) noexcept {
  switch (k) {
    case Kind::Null: return "null";
    case Kind::Bool: return "boolean";
    case Kind::Number: return "number";
    case Kind::String: return "string";
    case Kind::Array: return "array";
    case Kind::Object: return "object";
  }
  return "?";
}

const Value* Value::get(std::string_view key) const {
  if (kind != Kind::Object) return nullptr;
  for (size_t k = 0; k < keys.size(); ++k)
    if (keys[k] == key) return &items[k];
  return nullptr;
}

UintParse toUint64(const Value& v, uint64_t& out) noexcept {
  if (v.kind != Kind::Number || v.text.empty()) return UintParse::NotNumber;
  // The literal has already passed the grammar, so it is [-]digits[.digits][e[+-]digits].
  if (v.text[0] == '-') return UintParse::Negative;
  if (v.text.find_first_of(".eE") != std::string::npos) return UintParse::NotInteger;
  uint64_t r = 0;
  for (char c : v.text) {
    uint64_t d = uint64_t(c - '0');
    if (r > (UINT64_MAX - d) / 10) return UintParse::Overflow;
    r = r * 10 + d;
  }
  out = r;
  return UintParse::Ok;
}

Value parse(std::string_view text, const ParseOptions& options) {
  return Parser(text, options).run();
}

bool isValidUtf8(std::string_view s) noexcept {
  auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t len = utf8SeqLen(p + i, n - i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

void appendQuoted(std::string& out, std::string_view s) {
  out += '"';
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04X", unsigned(c));
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

}  // namespace nd::io::json
