// Safetensors reader/writer and the strict JSON parser under it. Malformed files are built in
// memory so each case shows exactly which byte pattern must be refused and with which message.
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "check.h"
#include "core/half.h"
#include "core/thread_pool.h"
#include "io/json.h"
#include "io/safetensors.h"

using nd::DType;
using namespace nd::io;
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> withLength(uint64_t n, std::string_view rest) {
  std::vector<uint8_t> f(8 + rest.size());
  for (int k = 0; k < 8; ++k) f[k] = uint8_t(n >> (8 * k));
  for (size_t i = 0; i < rest.size(); ++i) f[8 + i] = uint8_t(rest[i]);
  return f;
}

// A file whose length prefix matches `header`, followed by `dataBytes` bytes of a counting pattern.
std::vector<uint8_t> makeFile(std::string_view header, size_t dataBytes) {
  std::vector<uint8_t> f = withLength(header.size(), header);
  for (size_t i = 0; i < dataBytes; ++i) f.push_back(uint8_t(i * 7 + 1));
  return f;
}

std::vector<uint8_t> withData(std::string_view header, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> f = withLength(header.size(), header);
  f.insert(f.end(), data.begin(), data.end());
  return f;
}

std::string errorOf(const std::vector<uint8_t>& f) {
  try {
    SafetensorsFile sf(f.data(), f.size());
  } catch (const nd::Error& e) {
    return e.what();
  }
  return "(no error)";
}

fs::path tmpDir() {
  static fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("nd_test_safetensors_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

const char* kOne = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";

}  // namespace

// Refused with ERR_ND_FILE_FORMAT, and the message names the problem with `word`.
#define EXPECT_BAD(file, word)                                                                    \
  do {                                                                                            \
    std::vector<uint8_t> f_ = (file);                                                             \
    CHECK_THROWS_CODE(SafetensorsFile(f_.data(), f_.size()), FileFormat);                         \
    std::string m_ = errorOf(f_);                                                                 \
    if (m_.find(word) == std::string::npos) {                                                     \
      std::fprintf(stderr, "  %s:%d: message \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, m_.c_str(), word); \
      ++ndtest::failures();                                                                       \
    }                                                                                             \
  } while (0)

// ---- JSON parser ---------------------------------------------------------------------------------

ND_TEST(json_parses_strings_numbers_and_nesting) {
  auto v = json::parse(R"( {"a\u00e9\ud83d\ude00": [1, -2.5e3, true, null, "x\n\/"], "b": {}} )");
  CHECK(v.isObject() && v.keys.size() == 2);
  CHECK(v.keys[0] == "a\xC3\xA9\xF0\x9F\x98\x80");
  const json::Value& arr = v.items[0];
  CHECK(arr.items.size() == 5 && arr.items[1].text == "-2.5e3" && arr.items[2].boolean);
  CHECK(arr.items[3].kind == json::Kind::Null && arr.items[4].text == "x\n/");
  uint64_t u = 0;
  CHECK(json::toUint64(json::parse("18446744073709551615"), u) == json::UintParse::Ok && u == UINT64_MAX);
  CHECK(json::toUint64(json::parse("18446744073709551616"), u) == json::UintParse::Overflow);
  CHECK(json::toUint64(json::parse("1e3"), u) == json::UintParse::NotInteger);
  CHECK(json::toUint64(json::parse("-0"), u) == json::UintParse::Negative);
  CHECK(json::parse(std::string(64, '[') + std::string(64, ']')).isArray());
  CHECK_THROWS_CODE(json::parse(std::string(65, '[') + std::string(65, ']')), FileFormat);
  for (const char* bad : {"", "01", "1.", "-", "+1", ".5", "tru", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "\"\\u12\"",
                          "\"\\ud800\"", "\"\\udc00x\"", "\"a\tb\"", "\"\xC0\x80\"", "\"\xED\xA0\x80\"",
                          "\"\xF4\x90\x80\x80\"", "\"\xE2\x82\"", "{\"a\":1,\"a\":2}", "[] []", "\xEF\xBB\xBF{}", "nul"})
    CHECK_THROWS_CODE(json::parse(bad), FileFormat);
  json::ParseOptions few;
  few.maxValues = 3;
  CHECK_THROWS_CODE(json::parse("[1,2,3]", few), FileFormat);
  std::string q;
  json::appendQuoted(q, "a\"b\\c\x01\n");
  CHECK(q == "\"a\\\"b\\\\c\\u0001\\n\"");
  CHECK(json::parse(q).text == "a\"b\\c\x01\n");
}

// ---- round trips ---------------------------------------------------------------------------------

ND_TEST(roundtrip_every_dtype) {
  // One file holding every dtype, in an order that leaves later tensors misaligned in the buffer
  // (u8 and bool first), so the unaligned conversion path is exercised too.
  const DType order[] = {DType::U8, DType::Bool, DType::F16, DType::F32, DType::BF16,
                         DType::I32, DType::F64, DType::I64};
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<StWriteEntry> entries;
  const nd::Shape shape = {3, 5};
  for (DType t : order) {
    std::vector<uint8_t> b(15 * nd::dtypeSize(t));
    for (size_t i = 0; i < 15; ++i) {
      float v = float(i) * 0.75f - 4.0f;
      switch (t) {
        case DType::F32: std::memcpy(&b[4 * i], &v, 4); break;
        case DType::F64: { double d = v; std::memcpy(&b[8 * i], &d, 8); break; }
        case DType::F16: { uint16_t h = nd::floatToHalf(v); std::memcpy(&b[2 * i], &h, 2); break; }
        case DType::BF16: { uint16_t h = nd::floatToBf16(v); std::memcpy(&b[2 * i], &h, 2); break; }
        case DType::I32: { int32_t x = int32_t(i) * -1000003; std::memcpy(&b[4 * i], &x, 4); break; }
        case DType::I64: { int64_t x = int64_t(i) << 40; std::memcpy(&b[8 * i], &x, 8); break; }
        case DType::U8: b[i] = uint8_t(i * 17); break;
        case DType::Bool: b[i] = uint8_t(i % 3 == 0); break;
      }
    }
    bufs.push_back(std::move(b));
  }
  for (size_t k = 0; k < bufs.size(); ++k)
    entries.push_back({std::string("t_") + nd::dtypeName(order[k]), order[k], shape, bufs[k].data()});
  const std::string path = (tmpDir() / "all.safetensors").string();
  writeSafetensors(path, entries, {});
  CHECK(!fs::exists(path + ".tmp"));

  auto f = SafetensorsFile::open(path);
  CHECK(f->header().dataStart % 8 == 0);
  CHECK(f->header().tensors.size() == 8 && f->header().metadata.empty());
  CHECK(f->find("nope") == nullptr);
  for (size_t k = 0; k < bufs.size(); ++k) {
    const StTensorInfo* info = f->find(entries[k].name);
    CHECK(info != nullptr);
    if (!info) continue;
    CHECK(info->dtype == fromDType(order[k]) && info->shape == shape);
    CHECK(f->header().tensors[k].name == entries[k].name);  // file order == write order
    std::vector<uint8_t> back(bufs[k].size());
    f->readInto(*info, back.data(), order[k], nullptr);
    CHECK(back == bufs[k]);
    CHECK(std::memcmp(f->rawData(*info), bufs[k].data(), bufs[k].size()) == 0);
    // Any-to-f32 and f32-to-any through the (possibly unaligned) chunked path.
    std::vector<float> asF32(15);
    f->readInto(*info, asF32.data(), DType::F32, nullptr);
    for (size_t i = 0; i < 15; ++i) {
      double want = 0;
      const uint8_t* p = bufs[k].data();
      switch (order[k]) {
        case DType::F16: { uint16_t h; std::memcpy(&h, p + 2 * i, 2); want = nd::halfToFloat(h); break; }
        case DType::BF16: { uint16_t h; std::memcpy(&h, p + 2 * i, 2); want = nd::bf16ToFloat(h); break; }
        case DType::F32: { float x; std::memcpy(&x, p + 4 * i, 4); want = x; break; }
        case DType::F64: { double x; std::memcpy(&x, p + 8 * i, 8); want = x; break; }
        case DType::I32: { int32_t x; std::memcpy(&x, p + 4 * i, 4); want = float(x); break; }
        case DType::I64: { int64_t x; std::memcpy(&x, p + 8 * i, 8); want = float(x); break; }
        case DType::U8: case DType::Bool: want = p[i]; break;
      }
      CHECK(asF32[i] == float(want));
    }
  }
  fs::remove(path);
}

ND_TEST(roundtrip_metadata_zero_size_and_scalar) {
  const std::vector<std::pair<std::string, std::string>> meta = {
      {"format", "pt"}, {"quote\"back\\slash", "tab\tnl\nctl\x01"}, {"unicod\xC3\xA9", "\xF0\x9F\x98\x80"}, {"", ""}};
  float scalar = 3.5f;
  const std::vector<StWriteEntry> entries = {
      {"empty", DType::F32, {0}, nullptr},
      {"scalar", DType::F32, {}, &scalar},
      {"empty3d", DType::F16, {2, 0, 3}, nullptr},
      {"name with \"quotes\" and \xC3\xA9", DType::F32, {1}, &scalar},
  };
  const std::string path = (tmpDir() / "meta.safetensors").string();
  writeSafetensors(path, entries, meta);
  auto f = SafetensorsFile::open(path);
  CHECK(f->header().metadata == meta);
  const StTensorInfo* e = f->find("empty");
  const StTensorInfo* s = f->find("scalar");
  const StTensorInfo* e3 = f->find("empty3d");
  CHECK(e && s && e3 && f->find(entries[3].name));
  if (e && s && e3) {
    CHECK(e->numel() == 0 && e->begin == e->end && e3->shape == nd::Shape({2, 0, 3}));
    CHECK(s->shape.empty() && s->numel() == 1 && s->end - s->begin == 4);
    double d = 0;
    f->readInto(*s, &d, DType::F64, nullptr);
    CHECK(d == 3.5);
    f->readInto(*e, nullptr, DType::F32, nullptr);  // nothing to write, no destination needed
  }
  // An empty file list still makes a valid file.
  writeSafetensors(path, {}, {});
  CHECK(SafetensorsFile::open(path)->header().tensors.empty());
  fs::remove(path);
}

ND_TEST(reader_accepts_reference_layouts) {
  // JSON order differs from data order, padding spaces, zero-size tensors sharing an offset.
  std::string h = R"({"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]},"__metadata__":{"k":"v"},)"
                  R"("z1":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                  R"("z2":{"dtype":"I64","shape":[0,5],"data_offsets":[4,4]},)"
                  R"("a":{"dtype":"F8_E4M3","shape":[2,2],"data_offsets":[0,4]}}   )";
  auto file = makeFile(h, 8);
  SafetensorsFile f(file.data(), file.size());
  const auto& t = f.header().tensors;
  CHECK(t.size() == 4 && t[0].name == "a" && t[1].name == "z1" && t[2].name == "z2" && t[3].name == "b");
  CHECK(f.header().metadata.size() == 1 && f.header().dataStart == 8 + h.size());
  for (const char* dt : {"BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64",
                         "U64", "F8_E4M3", "F8_E5M2"}) {
    auto st = parseStDType(dt);
    CHECK(st && std::string(stDTypeName(*st)) == dt);
    if (!st) continue;
    size_t sz = stDTypeSize(*st);
    auto one = makeFile(std::string(R"({"x":{"dtype":")") + dt + R"(","shape":[1],"data_offsets":[0,)" +
                            std::to_string(sz) + "]}}",
                        sz);
    CHECK(SafetensorsFile(one.data(), one.size()).header().tensors[0].dtype == *st);
  }
}

// ---- conversions of types without an nd::DType ----------------------------------------------------

namespace {
std::vector<float> readAsF32(const char* dtype, const std::vector<uint8_t>& data, size_t n) {
  auto file = withData(std::string(R"({"x":{"dtype":")") + dtype + R"(","shape":[)" + std::to_string(n) +
                           R"(],"data_offsets":[0,)" + std::to_string(data.size()) + "]}}",
                       data);
  SafetensorsFile f(file.data(), file.size());
  std::vector<float> out(n);
  f.readInto(*f.find("x"), out.data(), DType::F32, nullptr);
  return out;
}
}  // namespace

ND_TEST(convert_f8_e4m3) {
  // S.EEEE.MMM, bias 7: 0x38 = 2^0, 0x3C = 1.5, 0x77 = 1.875*2^7, 0x7E = 1.75*2^8 (max), 0x01 = 2^-9
  // (smallest subnormal), 0x08 = 2^-6 (smallest normal); only 0x7F/0xFF are NaN.
  const std::vector<uint8_t> in = {0x00, 0x80, 0x38, 0xB8, 0x3C, 0x40, 0x77, 0x7E, 0x01, 0x08, 0x07, 0x7F, 0xFF, 0x78};
  const double want[] = {0, -0.0, 1, -1, 1.5, 2, 240, 448, 0.001953125, 0.015625, 0.013671875, NAN, NAN, 256};
  auto out = readAsF32("F8_E4M3", in, in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (std::isnan(want[i])) CHECK(std::isnan(out[i]));
    else CHECK(out[i] == float(want[i]));
  }
  CHECK(std::signbit(out[1]));
}

ND_TEST(convert_f8_e5m2) {
  // S.EEEEE.MM, bias 15: 0x3C = 1, 0x3E = 1.5, 0x7B = 1.75*2^15 (max), 0x04 = 2^-14, 0x01 = 2^-16.
  const std::vector<uint8_t> in = {0x3C, 0x3E, 0xC0, 0x7B, 0x04, 0x01, 0x7C, 0xFC, 0x7D, 0x00};
  const double inf = std::numeric_limits<double>::infinity();
  const double want[] = {1, 1.5, -2, 57344, 6.103515625e-05, 1.52587890625e-05, inf, -inf, NAN, 0};
  auto out = readAsF32("F8_E5M2", in, in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (std::isnan(want[i])) CHECK(std::isnan(out[i]));
    else CHECK(out[i] == float(want[i]));
  }
}

ND_TEST(convert_integer_types) {
  auto i8 = readAsF32("I8", {0x80, 0xFF, 0x7F, 0x00, 0x05}, 5);
  CHECK(i8 == std::vector<float>({-128, -1, 127, 0, 5}));
  auto i16 = readAsF32("I16", {0x00, 0x80, 0xFF, 0x7F, 0xFE, 0xFF, 0x34, 0x12}, 4);
  CHECK(i16 == std::vector<float>({-32768, 32767, -2, 4660}));
  auto u16 = readAsF32("U16", {0xFF, 0xFF, 0x01, 0x00}, 2);
  CHECK(u16 == std::vector<float>({65535, 1}));

  // Integer targets stay exact (through int64) and saturate like castCpu; odd offsets are unaligned.
  const std::vector<uint8_t> data = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF,                          // I8 -1, U32 max
                                     0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,        // U64 max
                                     0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00};       // U64 2^53+1
  auto file = withData(R"({"a":{"dtype":"I8","shape":[1],"data_offsets":[0,1]},)"
                       R"("b":{"dtype":"U32","shape":[1],"data_offsets":[1,5]},)"
                       R"("c":{"dtype":"U64","shape":[2],"data_offsets":[5,21]}})",
                       data);
  SafetensorsFile f(file.data(), file.size());
  uint8_t u8 = 7, b = 7;
  f.readInto(*f.find("a"), &u8, DType::U8, nullptr);
  f.readInto(*f.find("a"), &b, DType::Bool, nullptr);
  CHECK(u8 == 0 && b == 1);
  int32_t i32 = 0;
  int64_t i64 = 0;
  f.readInto(*f.find("b"), &i32, DType::I32, nullptr);
  f.readInto(*f.find("b"), &i64, DType::I64, nullptr);
  CHECK(i32 == INT32_MAX && i64 == 4294967295LL);
  int64_t c[2];
  double cd[2];
  f.readInto(*f.find("c"), c, DType::I64, nullptr);
  f.readInto(*f.find("c"), cd, DType::F64, nullptr);
  CHECK(c[0] == INT64_MAX && c[1] == 9007199254740993LL);
  CHECK(cd[0] == 18446744073709551615.0);
  uint16_t h = 0;
  f.readInto(*f.find("a"), &h, DType::F16, nullptr);
  CHECK(h == nd::floatToHalf(-1.0f));
  CHECK_THROWS_CODE(f.readInto(*f.find("a"), &h, DType(200), nullptr), DType);
}

ND_TEST(convert_large_chunked_with_pool_and_unaligned_dst) {
  // More elements than one scratch chunk, with and without a pool, into a misaligned destination.
  const size_t n = 300001;
  std::vector<uint8_t> data(n);
  for (size_t i = 0; i < n; ++i) data[i] = uint8_t((i * 131) & 0xFF);
  auto file = withData(R"({"x":{"dtype":"F8_E5M2","shape":[300001],"data_offsets":[0,300001]}})", data);
  SafetensorsFile f(file.data(), file.size());
  std::vector<float> serial(n);
  f.readInto(*f.find("x"), serial.data(), DType::F32, nullptr);
  nd::ThreadPool pool(2);
  std::vector<uint8_t> raw(n * 4 + 1);
  f.readInto(*f.find("x"), raw.data() + 1, DType::F32, &pool);
  CHECK(std::memcmp(raw.data() + 1, serial.data(), n * 4) == 0);
  for (size_t i = 0; i < n; i += 997) {
    float want = nd::halfToFloat(uint16_t(data[i] << 8));
    CHECK((std::isnan(want) && std::isnan(serial[i])) || serial[i] == want);
  }
}

// ---- malformed files ------------------------------------------------------------------------------

ND_TEST(malformed_framing) {
  EXPECT_BAD(std::vector<uint8_t>{}, "too short");
  EXPECT_BAD(std::vector<uint8_t>({1, 0, 0, 0, 0}), "too short");
  EXPECT_BAD(withLength(0, ""), "header length is 0");
  EXPECT_BAD(withLength(100000001, "{}"), "exceeds the limit");
  EXPECT_BAD(withLength(~uint64_t(0), "{}"), "exceeds the limit");
  EXPECT_BAD(withLength(200, "{}"), "truncated");                       // length > file
  std::string one = kOne;
  EXPECT_BAD(withLength(one.size(), one.substr(0, 30)), "truncated");   // header cut short
  EXPECT_BAD(makeFile(one.substr(0, 30), 0), "unterminated");            // JSON cut short
  EXPECT_BAD(makeFile(kOne, 12), "beyond");                              // data cut short
}

ND_TEST(malformed_json) {
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F32)", 0), "unterminated string");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16],}})", 16), "trailing comma");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F32","shape":[2,2,],"data_offsets":[0,16]}})", 16), "trailing comma");
  EXPECT_BAD(makeFile(R"({"w\x":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})", 4), "invalid escape");
  EXPECT_BAD(makeFile("{\"w\xC0\xAF\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}", 1), "UTF-8");
  EXPECT_BAD(makeFile("{\"w\xFF\":1}", 0), "UTF-8");
  EXPECT_BAD(makeFile(R"({"w\ud800":1})", 0), "surrogate");
  EXPECT_BAD(makeFile("{\"__metadata__\":" + std::string(80, '[') + std::string(80, ']') + "}", 0), "nesting");
  EXPECT_BAD(makeFile(std::string(kOne) + " x", 16), "trailing");
  EXPECT_BAD(makeFile(std::string(kOne) + std::string(3, '\0'), 16), "trailing");  // NUL is not padding
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F32","shape":[02],"data_offsets":[0,8]}})", 8), "leading zero");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F32","shape":[2] "data_offsets":[0,8]}})", 8), "expected ','");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]}})", 32),
             "duplicate key");
  EXPECT_BAD(makeFile("{\"a\":\"x\ty\"}", 0), "control");
}

ND_TEST(malformed_structure) {
  EXPECT_BAD(makeFile("[]", 0), "must be a JSON object");
  EXPECT_BAD(makeFile("\"w\"", 0), "must be a JSON object");
  EXPECT_BAD(makeFile(R"({"w":[0,4]})", 4), "tensor 'w' must be a JSON object");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F33","shape":[2,2],"data_offsets":[0,16]}})", 16), "unknown dtype 'F33'");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"f32","shape":[2,2],"data_offsets":[0,16]}})", 16), "unknown dtype");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":32,"shape":[2,2],"data_offsets":[0,16]}})", 16), "dtype must be a string");
  EXPECT_BAD(makeFile(R"({"w":{"shape":[2,2],"data_offsets":[0,16]}})", 16), "missing field 'dtype'");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F32","data_offsets":[0,16]}})", 16), "missing field 'shape'");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F32","shape":[2,2]}})", 16), "missing field 'data_offsets'");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16],"x":1}})", 16), "unexpected field 'x'");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F32","shape":[2,-2],"data_offsets":[0,16]}})", 16), "negative");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F32","shape":[2,2.0],"data_offsets":[0,16]}})", 16), "non-negative integers");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F32","shape":[2,"2"],"data_offsets":[0,16]}})", 16), "non-negative integers");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F32","shape":4,"data_offsets":[0,16]}})", 16), "shape must be an array");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0), "overflow");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,0]}})", 0), "overflow");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,0]}})", 0), "overflow");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}})", 0), "overflow");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0]}})", 16), "two non-negative integers");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16,32]}})", 16), "two non-negative");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[-1,15]}})", 16), "negative");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,18446744073709551616]}})", 16), "too large");
  EXPECT_BAD(makeFile(R"({"__metadata__":{"a":"b","n":1}})", 0), "metadata values must be strings");
  EXPECT_BAD(makeFile(R"({"__metadata__":["a"]})", 0), "__metadata__ must be an object");
  EXPECT_BAD(makeFile(R"({"__metadata__":null})", 0), "__metadata__ must be an object");
}

ND_TEST(malformed_offsets) {
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", 8), "begin > end");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", 12),
             "tensor 'w' data_offsets [0, 12] hold 12 bytes but shape [2, 2] x F32 needs 16");
  EXPECT_BAD(makeFile(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[4,20]}})", 16), "beyond");
  EXPECT_BAD(makeFile(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},)"
                      R"("b":{"dtype":"U8","shape":[8],"data_offsets":[4,12]}})", 12), "overlap");
  EXPECT_BAD(makeFile(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},)"
                      R"("b":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", 8), "overlap");
  EXPECT_BAD(makeFile(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},)"
                      R"("z":{"dtype":"U8","shape":[0],"data_offsets":[4,4]}})", 8), "overlap");
  EXPECT_BAD(makeFile(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                      R"("b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}})", 12), "gap of 4 bytes");
  EXPECT_BAD(makeFile(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})", 8), "gap");
  EXPECT_BAD(makeFile(std::string(kOne), 20), "4 trailing bytes");
  EXPECT_BAD(makeFile("{}", 1), "trailing bytes");
  EXPECT_BAD(makeFile(R"({"__metadata__":{}})", 3), "trailing bytes");
}

// ---- errors from the file system and the writer ---------------------------------------------------

ND_TEST(io_and_writer_errors) {
  const std::string missing = (tmpDir() / "does_not_exist.safetensors").string();
  CHECK_THROWS_CODE(SafetensorsFile::open(missing), Io);
  try {
    SafetensorsFile::open(missing);
  } catch (const nd::Error& e) {
    CHECK(std::string(e.what()).find(missing) != std::string::npos);
  }
  CHECK_THROWS_CODE(SafetensorsFile::open(tmpDir().string()), Io);
  const std::string empty = (tmpDir() / "empty.safetensors").string();
  std::ofstream(empty).close();
  CHECK_THROWS_CODE(SafetensorsFile::open(empty), FileFormat);
  try {
    SafetensorsFile::open(empty);
  } catch (const nd::Error& e) {
    CHECK(std::string(e.what()).find(empty) != std::string::npos);
  }
  fs::remove(empty);

  float x = 1;
  const std::string out = (tmpDir() / "w.safetensors").string();
  CHECK_THROWS_CODE(writeSafetensors(out, {{"", DType::F32, {1}, &x}}), Arg);
  CHECK_THROWS_CODE(writeSafetensors(out, {{"__metadata__", DType::F32, {1}, &x}}), Arg);
  CHECK_THROWS_CODE(writeSafetensors(out, {{"a", DType::F32, {1}, &x}, {"a", DType::F32, {1}, &x}}), Arg);
  CHECK_THROWS_CODE(writeSafetensors(out, {{"bad\xFF", DType::F32, {1}, &x}}), Arg);
  CHECK_THROWS_CODE(writeSafetensors(out, {{"a", DType::F32, {1}, nullptr}}), Arg);
  CHECK_THROWS_CODE(writeSafetensors(out, {{"a", DType::F32, {-1}, &x}}), Shape);
  CHECK_THROWS_CODE(writeSafetensors(out, {}, {{"k", "1"}, {"k", "2"}}), Arg);
  CHECK(!fs::exists(out) && !fs::exists(out + ".tmp"));
  const std::string noDir = (tmpDir() / "no" / "such" / "dir.safetensors").string();
  CHECK_THROWS_CODE(writeSafetensors(noDir, {{"a", DType::F32, {1}, &x}}), Io);
  try {
    writeSafetensors(noDir, {});
  } catch (const nd::Error& e) {
    CHECK(std::string(e.what()).find(noDir) != std::string::npos);
  }

  // A foreign StTensorInfo cannot be used to read outside the mapping.
  auto file = makeFile(kOne, 16);
  SafetensorsFile f(file.data(), file.size());
  StTensorInfo forged = *f.find("w");
  forged.begin = 0;
  forged.end = 1 << 20;
  forged.shape = {1 << 18};
  CHECK_THROWS_CODE(f.rawData(forged), Arg);
  std::vector<float> sink(1 << 18);
  CHECK_THROWS_CODE(f.readInto(forged, sink.data(), DType::F32, nullptr), Arg);
  fs::remove_all(tmpDir());
}

ND_TEST_MAIN()
