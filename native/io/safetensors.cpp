#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <system_error>
#include <unordered_set>

#include "core/error.h"
#include "core/half.h"
#include "core/thread_pool.h"
#include "io/json.h"
#include "kernels/cpu/cast.h"

// The format is little-endian and the loaders below read elements with plain memcpy.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace nd::io {

namespace {

struct DTypeRow { StDType st; const char* name; size_t size; };
constexpr DTypeRow kRows[] = {
    {StDType::BOOL, "BOOL", 1},       {StDType::U8, "U8", 1},           {StDType::I8, "I8", 1},
    {StDType::I16, "I16", 2},         {StDType::U16, "U16", 2},         {StDType::F16, "F16", 2},
    {StDType::BF16, "BF16", 2},       {StDType::I32, "I32", 4},         {StDType::U32, "U32", 4},
    {StDType::F32, "F32", 4},         {StDType::F64, "F64", 8},         {StDType::I64, "I64", 8},
    {StDType::U64, "U64", 8},         {StDType::F8_E4M3, "F8_E4M3", 1}, {StDType::F8_E5M2, "F8_E5M2", 1},
};

[[noreturn]] void bad(const std::string& msg) { fail(ErrorCode::FileFormat, "safetensors: " + msg); }

// Names come from untrusted files and may be huge or hold control bytes: show a bounded, printable
// prefix. Cuts fall on UTF-8 boundaries (the JSON layer guarantees the name is valid UTF-8).
std::string quote(std::string_view s) {
  constexpr size_t kMax = 120;
  size_t cut = std::min(s.size(), kMax);
  while (cut > 0 && cut < s.size() && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  std::string out = "'";
  for (size_t i = 0; i < cut; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) {
      static const char* hex = "0123456789ABCDEF";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += char(c);
    }
  }
  if (cut < s.size()) out += "...";
  return out + "'";
}

std::string tensorRef(std::string_view name) { return "tensor " + quote(name); }

// Echoes a JSON array of numbers the way the file wrote it, for messages about shapes and offsets.
std::string echoArray(const json::Value& v) {
  std::string s = "[";
  size_t shown = std::min<size_t>(v.items.size(), 16);
  for (size_t i = 0; i < shown; ++i) {
    if (i) s += ", ";
    const json::Value& e = v.items[i];
    s += e.isNumber() ? e.text.substr(0, 40) : std::string("<") + json::kindName(e.kind) + ">";
  }
  if (shown < v.items.size()) s += ", ...";
  return s + "]";
}

std::string offsetsStr(uint64_t b, uint64_t e) {
  std::string s = "[";
  s += std::to_string(b);
  s += ", ";
  s += std::to_string(e);
  s += ']';
  return s;
}

const char* article(json::Kind k) { return k == json::Kind::Array || k == json::Kind::Object ? "an" : "a"; }

void parseMetadata(const json::Value& v, StHeader& h) {
  if (!v.isObject())
    bad(std::string("__metadata__ must be an object of string values, got ") + article(v.kind) + " " +
        json::kindName(v.kind));
  for (size_t i = 0; i < v.keys.size(); ++i) {
    const json::Value& val = v.items[i];
    if (!val.isString())
      bad("__metadata__ key " + quote(v.keys[i]) + " holds " + article(val.kind) + " " +
          json::kindName(val.kind) + "; metadata values must be strings");
    h.metadata.emplace_back(v.keys[i], val.text);
  }
}

// One non-negative integer from a shape or data_offsets array, or a message saying why it is not.
uint64_t readUint(const json::Value& e, const std::string& what) {
  uint64_t u = 0;
  switch (json::toUint64(e, u)) {
    case json::UintParse::Ok: return u;
    case json::UintParse::Negative: bad(what + " has a negative value " + e.text.substr(0, 40));
    case json::UintParse::Overflow: bad(what + " has a value too large for 64 bits (overflow): " + e.text.substr(0, 40));
    case json::UintParse::NotInteger:
      bad(what + " must hold non-negative integers, not " + e.text.substr(0, 40));
    case json::UintParse::NotNumber:
      bad(what + " must hold non-negative integers, not " + article(e.kind) + " " + json::kindName(e.kind));
  }
  bad(what + " is invalid");
}

StTensorInfo parseTensor(const std::string& name, const json::Value& v, uint64_t bufLen) {
  const std::string who = tensorRef(name);
  if (!v.isObject())
    bad(who + " must be a JSON object, got " + article(v.kind) + " " + json::kindName(v.kind));
  for (const std::string& k : v.keys)
    if (k != "dtype" && k != "shape" && k != "data_offsets")
      bad(who + " has unexpected field " + quote(k) + " (allowed: dtype, shape, data_offsets)");
  const json::Value* dt = v.get("dtype");
  const json::Value* sh = v.get("shape");
  const json::Value* off = v.get("data_offsets");
  if (!dt) bad(who + " is missing field 'dtype'");
  if (!sh) bad(who + " is missing field 'shape'");
  if (!off) bad(who + " is missing field 'data_offsets'");

  StTensorInfo t;
  t.name = name;
  if (!dt->isString()) bad(who + " dtype must be a string, got " + article(dt->kind) + " " + json::kindName(dt->kind));
  auto st = parseStDType(dt->text);
  if (!st) bad(who + " has unknown dtype " + quote(dt->text));
  t.dtype = *st;

  if (!sh->isArray())
    bad(who + " shape must be an array of non-negative integers, got " + article(sh->kind) + " " +
        json::kindName(sh->kind));
  const std::string shapeWhat = who + " shape " + echoArray(*sh);
  uint64_t numel = 1;
  bool overflow = false;
  for (const json::Value& e : sh->items) {
    uint64_t d = readUint(e, shapeWhat);
    if (d > uint64_t(std::numeric_limits<int64_t>::max()))
      bad(shapeWhat + " has a dimension too large for int64 (overflow)");
    t.shape.push_back(int64_t(d));
    // Multiply left to right like nd::shapeNumel so every accepted shape is usable downstream.
    if (d != 0 && numel > uint64_t(std::numeric_limits<int64_t>::max()) / d) overflow = true;
    numel *= d;
  }
  if (overflow) bad(shapeWhat + " has more elements than fit in int64 (overflow)");
  const size_t esize = stDTypeSize(t.dtype);
  if (numel > std::numeric_limits<uint64_t>::max() / esize)
    bad(shapeWhat + " x " + stDTypeName(t.dtype) + " needs more bytes than fit in 64 bits (overflow)");
  const uint64_t need = numel * esize;

  if (!off->isArray() || off->items.size() != 2)
    bad(who + " data_offsets must be an array of two non-negative integers [begin, end]");
  const std::string offWhat = who + " data_offsets " + echoArray(*off);
  t.begin = readUint(off->items[0], offWhat);
  t.end = readUint(off->items[1], offWhat);
  const std::string offs = offsetsStr(t.begin, t.end);
  if (t.begin > t.end) bad(who + " data_offsets " + offs + " are reversed: begin > end");
  if (t.end - t.begin != need)
    bad(who + " data_offsets " + offs + " hold " + std::to_string(t.end - t.begin) + " bytes but shape " +
        shapeToString(t.shape) + " x " + stDTypeName(t.dtype) + " needs " + std::to_string(need));
  if (t.end > bufLen)
    bad(who + " data_offsets " + offs + " end beyond the " + std::to_string(bufLen) +
        "-byte data buffer (truncated file?)");
  return t;
}

// The reference reader demands that the tensors tile the buffer exactly; we do too, so that no byte
// of a file can hide data that one reader sees and another does not.
void checkCoverage(const StHeader& h, uint64_t bufLen) {
  uint64_t pos = 0;
  const StTensorInfo* prev = nullptr;
  for (const StTensorInfo& t : h.tensors) {
    if (t.begin < pos)
      bad(tensorRef(t.name) + " data_offsets " + offsetsStr(t.begin, t.end) + " overlap " +
          tensorRef(prev->name) + " data_offsets " + offsetsStr(prev->begin, prev->end));
    if (t.begin > pos) {
      if (prev)
        bad("gap of " + std::to_string(t.begin - pos) + " bytes in the data buffer between " +
            tensorRef(prev->name) + " (ends at " + std::to_string(pos) + ") and " + tensorRef(t.name) +
            " (begins at " + std::to_string(t.begin) + ")");
      bad("gap of " + std::to_string(t.begin) + " bytes at the start of the data buffer before " +
          tensorRef(t.name));
    }
    pos = t.end;
    prev = &t;
  }
  if (pos != bufLen)
    bad("data buffer has " + std::to_string(bufLen - pos) + " trailing bytes not covered by any tensor");
}

// ---- element decoding for the types castCpu does not know ---------------------------------------

template <typename T>
T loadLE(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

double f8e4m3ToDouble(uint8_t b) {
  // E4M3 "FN": bias 7, no infinities, only S.1111.111 is NaN; max finite 448.
  int e = (b >> 3) & 0xF, m = b & 7;
  if (e == 15 && m == 7) return std::numeric_limits<double>::quiet_NaN();
  double v = e == 0 ? std::ldexp(double(m), -9) : std::ldexp(double(8 + m), e - 10);
  return (b & 0x80) ? -v : v;
}

// E5M2 is binary16 with the low 8 mantissa bits dropped, so widening is exact.
double f8e5m2ToDouble(uint8_t b) { return double(halfToFloat(uint16_t(uint16_t(b) << 8))); }

bool isStInteger(StDType t) {
  return t == StDType::I8 || t == StDType::I16 || t == StDType::U16 || t == StDType::U32 || t == StDType::U64;
}

// Decodes m elements of an unmapped type into int64 (integer targets: exact, u64 saturates at the
// int64 max, which every integer target saturates below anyway) or double (everything else).
void decodeRange(StDType st, const uint8_t* s, DType via, void* out, int64_t b, int64_t e) {
  if (via == DType::I64) {
    auto* o = static_cast<int64_t*>(out);
    for (int64_t i = b; i < e; ++i) {
      switch (st) {
        case StDType::I8: o[i] = int8_t(s[i]); break;
        case StDType::I16: o[i] = loadLE<int16_t>(s + 2 * i); break;
        case StDType::U16: o[i] = loadLE<uint16_t>(s + 2 * i); break;
        case StDType::U32: o[i] = loadLE<uint32_t>(s + 4 * i); break;
        case StDType::U64: {
          uint64_t u = loadLE<uint64_t>(s + 8 * i);
          o[i] = u > uint64_t(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max() : int64_t(u);
          break;
        }
        default: o[i] = 0; break;
      }
    }
    return;
  }
  auto* o = static_cast<double*>(out);
  for (int64_t i = b; i < e; ++i) {
    switch (st) {
      case StDType::I8: o[i] = int8_t(s[i]); break;
      case StDType::I16: o[i] = loadLE<int16_t>(s + 2 * i); break;
      case StDType::U16: o[i] = loadLE<uint16_t>(s + 2 * i); break;
      case StDType::U32: o[i] = loadLE<uint32_t>(s + 4 * i); break;
      case StDType::U64: o[i] = double(loadLE<uint64_t>(s + 8 * i)); break;
      case StDType::F8_E4M3: o[i] = f8e4m3ToDouble(s[i]); break;
      case StDType::F8_E5M2: o[i] = f8e5m2ToDouble(s[i]); break;
      default: o[i] = 0; break;
    }
  }
}

bool aligned(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

bool isKnownDType(DType t) {
  for (DType k : kAllDTypes)
    if (k == t) return true;
  return false;
}

std::string osError(int err) { return std::system_category().message(err); }

}  // namespace

// ---- dtype table ---------------------------------------------------------------------------------

const char* stDTypeName(StDType t) noexcept {
  for (const auto& r : kRows)
    if (r.st == t) return r.name;
  return "?";
}

std::optional<StDType> parseStDType(std::string_view name) noexcept {
  for (const auto& r : kRows)
    if (name == r.name) return r.st;
  return std::nullopt;
}

size_t stDTypeSize(StDType t) noexcept {
  for (const auto& r : kRows)
    if (r.st == t) return r.size;
  return 0;
}

std::optional<DType> toDType(StDType t) noexcept {
  switch (t) {
    case StDType::BOOL: return DType::Bool;
    case StDType::U8: return DType::U8;
    case StDType::F16: return DType::F16;
    case StDType::BF16: return DType::BF16;
    case StDType::I32: return DType::I32;
    case StDType::F32: return DType::F32;
    case StDType::F64: return DType::F64;
    case StDType::I64: return DType::I64;
    default: return std::nullopt;
  }
}

StDType fromDType(DType t) noexcept {
  switch (t) {
    case DType::F32: return StDType::F32;
    case DType::F16: return StDType::F16;
    case DType::BF16: return StDType::BF16;
    case DType::F64: return StDType::F64;
    case DType::I32: return StDType::I32;
    case DType::I64: return StDType::I64;
    case DType::U8: return StDType::U8;
    case DType::Bool: return StDType::BOOL;
  }
  return StDType::U8;
}

int64_t StTensorInfo::numel() const { return shapeNumel(shape); }

// ---- header --------------------------------------------------------------------------------------

StHeader parseSafetensorsHeader(const uint8_t* file, size_t fileSize) {
  if (fileSize < 8)
    bad("file is " + std::to_string(fileSize) + " bytes, too short (truncated) to hold the 8-byte header length");
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | file[k];
  if (n == 0) bad("header length is 0; expected a JSON object");
  if (n > kStMaxHeaderBytes)
    bad("header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(kStMaxHeaderBytes) + " bytes");
  if (n > fileSize - 8)
    bad("header length " + std::to_string(n) + " exceeds the " + std::to_string(fileSize - 8) +
        " bytes after the length prefix (truncated file?)");

  json::Value root;
  try {
    root = json::parse(std::string_view(reinterpret_cast<const char*>(file + 8), size_t(n)));
  } catch (const Error& e) {
    bad(std::string("header: ") + e.what());
  }
  if (!root.isObject())
    bad(std::string("header must be a JSON object, got ") + article(root.kind) + " " + json::kindName(root.kind));

  StHeader h;
  h.dataStart = 8 + n;
  const uint64_t bufLen = fileSize - h.dataStart;
  h.tensors.reserve(root.keys.size());
  for (size_t i = 0; i < root.keys.size(); ++i) {
    if (root.keys[i] == "__metadata__") parseMetadata(root.items[i], h);
    else h.tensors.push_back(parseTensor(root.keys[i], root.items[i], bufLen));
  }
  std::stable_sort(h.tensors.begin(), h.tensors.end(), [](const StTensorInfo& a, const StTensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  checkCoverage(h, bufLen);
  return h;
}

// ---- reader --------------------------------------------------------------------------------------

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(ErrorCode::Io, "safetensors: cannot open '" + path + "': " + osError(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail(ErrorCode::Io, "safetensors: cannot stat '" + path + "': " + osError(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(ErrorCode::Io, "safetensors: '" + path + "' is not a regular file");
  }
  f->size_ = size_t(st.st_size);
  // mmap of length 0 is EINVAL; an empty file is simply too short, which init() reports.
  if (f->size_ > 0) {
    // Read-only: a writable private mapping counts against the kernel's commit limit (a file
    // larger than RAM would fail to open), and tensors sharing the mapping must not change it.
    void* m = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      fail(ErrorCode::Io, "safetensors: cannot mmap '" + path + "': " + osError(err));
    }
    f->map_ = m;
    f->data_ = static_cast<const uint8_t*>(m);
  }
  ::close(fd);  // the mapping keeps the file referenced
  f->init();
  return f;
}

SafetensorsFile::SafetensorsFile(const uint8_t* data, size_t size) : data_(data), size_(size) { init(); }

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, size_);
}

void SafetensorsFile::init() {
  try {
    header_ = parseSafetensorsHeader(data_, size_);
  } catch (const Error& e) {
    if (path_.empty() || e.code() != ErrorCode::FileFormat) throw;
    fail(ErrorCode::FileFormat, std::string(e.what()) + " (in '" + path_ + "')");
  }
  byName_.reserve(header_.tensors.size());
  for (size_t i = 0; i < header_.tensors.size(); ++i) byName_.emplace(header_.tensors[i].name, i);
}

const StTensorInfo* SafetensorsFile::find(std::string_view name) const {
  auto it = byName_.find(name);
  return it == byName_.end() ? nullptr : &header_.tensors[it->second];
}

const uint8_t* SafetensorsFile::rawData(const StTensorInfo& info) const {
  // Infos are plain structs a caller could build or alter; never hand out a pointer past the map.
  const uint64_t bufLen = size_ - header_.dataStart;
  ND_REQUIRE(info.begin <= info.end && info.end <= bufLen, Arg,
             "safetensors: " + tensorRef(info.name) + " data_offsets " + offsetsStr(info.begin, info.end) +
                 " lie outside this file's " + std::to_string(bufLen) + "-byte data buffer");
  return data_ + header_.dataStart + info.begin;
}

void SafetensorsFile::readInto(const StTensorInfo& info, void* dst, DType dstType, ThreadPool* pool) const {
  ND_REQUIRE(isKnownDType(dstType), DType,
             "safetensors: cannot convert " + tensorRef(info.name) + " (" + stDTypeName(info.dtype) +
                 ") to unsupported dtype #" + std::to_string(int(dstType)));
  const uint8_t* src = rawData(info);
  const int64_t n = info.numel();
  const size_t ssz = stDTypeSize(info.dtype), dsz = dtypeSize(dstType);
  ND_REQUIRE(uint64_t(n) * ssz == info.end - info.begin, Arg,
             "safetensors: " + tensorRef(info.name) + " shape does not match its data_offsets");
  if (n == 0) return;
  ND_REQUIRE(dst != nullptr, Arg, "safetensors: null destination for " + tensorRef(info.name));

  const std::optional<DType> mapped = toDType(info.dtype);
  if (mapped && *mapped == dstType) {
    // Page faults (file pages in, destination pages out) dominate; taking them on every core helps.
    auto body = [&](int64_t b, int64_t e) {
      std::memcpy(static_cast<uint8_t*>(dst) + b, src + b, size_t(e - b));
    };
    const int64_t bytes = n * int64_t(ssz);
    if (pool) pool->parallelFor(bytes, int64_t(1) << 20, body);
    else body(0, bytes);
    return;
  }
  const bool dstAligned = aligned(dst, dsz);
  if (mapped && aligned(src, ssz) && dstAligned) {
    castCpu(src, *mapped, dst, dstType, n, pool);
    return;
  }

  // castCpu indexes typed pointers, so misaligned sources/destinations and the types it does not
  // know go through aligned scratch buffers, a bounded chunk at a time.
  const DType via = mapped ? *mapped : (isStInteger(info.dtype) && !isFloating(dstType) ? DType::I64 : DType::F64);
  constexpr int64_t kChunk = int64_t(1) << 18;
  const int64_t cap = std::min(n, kChunk);
  std::vector<uint64_t> srcTmp, dstTmp;
  if (!mapped || !aligned(src, ssz)) srcTmp.resize(size_t(cap));  // 8 bytes >= any element
  if (!dstAligned) dstTmp.resize((size_t(cap) * dsz + 7) / 8);
  for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
    const int64_t m = std::min(kChunk, n - i0);
    const uint8_t* s = src + size_t(i0) * ssz;
    const void* castSrc = s;
    if (!mapped) {
      auto body = [&](int64_t b, int64_t e) { decodeRange(info.dtype, s, via, srcTmp.data(), b, e); };
      if (pool) pool->parallelFor(m, 1 << 15, body);
      else body(0, m);
      castSrc = srcTmp.data();
    } else if (!srcTmp.empty()) {
      std::memcpy(srcTmp.data(), s, size_t(m) * ssz);
      castSrc = srcTmp.data();
    }
    uint8_t* d = static_cast<uint8_t*>(dst) + size_t(i0) * dsz;
    if (dstAligned) {
      castCpu(castSrc, via, d, dstType, m, pool);
    } else {
      castCpu(castSrc, via, dstTmp.data(), dstType, m, pool);
      std::memcpy(d, dstTmp.data(), size_t(m) * dsz);
    }
  }
}

// ---- writer --------------------------------------------------------------------------------------

namespace {

// Owns the temporary file until it has been renamed into place; removes it on any failure.
struct TmpFile {
  std::string path;
  int fd = -1;
  bool committed = false;
  ~TmpFile() {
    if (fd >= 0) ::close(fd);
    if (!committed) ::unlink(path.c_str());
  }
  [[noreturn]] void ioFail(const char* what, int err) const {
    fail(ErrorCode::Io, std::string("safetensors: cannot ") + what + " '" + path + "': " + osError(err));
  }
  void writeAll(const void* buf, size_t len) {
    auto* p = static_cast<const uint8_t*>(buf);
    while (len > 0) {
      // Linux transfers at most ~2 GiB per write(); larger tensors take several calls.
      ssize_t w = ::write(fd, p, std::min<size_t>(len, size_t(1) << 30));
      if (w < 0) {
        if (errno == EINTR) continue;
        ioFail("write", errno);
      }
      p += w;
      len -= size_t(w);
    }
  }
};

void requireUtf8(std::string_view s, const char* what) {
  ND_REQUIRE(json::isValidUtf8(s), Arg, std::string("safetensors: ") + what + " " + quote(s) + " is not valid UTF-8");
}

}  // namespace

void writeSafetensors(const std::string& path, const std::vector<StWriteEntry>& tensors,
                      const std::vector<std::pair<std::string, std::string>>& metadata) {
  std::unordered_set<std::string_view> seen;
  std::vector<uint64_t> sizes;
  sizes.reserve(tensors.size());
  for (const StWriteEntry& t : tensors) {
    ND_REQUIRE(!t.name.empty(), Arg, "safetensors: tensor names must not be empty");
    ND_REQUIRE(t.name != "__metadata__", Arg, "safetensors: '__metadata__' is reserved and cannot name a tensor");
    requireUtf8(t.name, "tensor name");
    ND_REQUIRE(seen.insert(t.name).second, Arg, "safetensors: duplicate tensor name " + quote(t.name));
    ND_REQUIRE(isKnownDType(t.dtype), DType, "safetensors: " + tensorRef(t.name) + " has an unknown dtype");
    const uint64_t numel = uint64_t(shapeNumel(t.shape));
    const size_t esize = dtypeSize(t.dtype);
    ND_REQUIRE(numel <= std::numeric_limits<uint64_t>::max() / esize, Arg,
               "safetensors: " + tensorRef(t.name) + " is too large");
    sizes.push_back(numel * esize);
    ND_REQUIRE(t.data != nullptr || sizes.back() == 0, Arg, "safetensors: " + tensorRef(t.name) + " has no data");
  }
  std::unordered_set<std::string_view> metaSeen;
  for (const auto& [k, v] : metadata) {
    requireUtf8(k, "metadata key");
    requireUtf8(v, "metadata value");
    ND_REQUIRE(metaSeen.insert(k).second, Arg, "safetensors: duplicate metadata key " + quote(k));
  }

  std::string hdr = "{";
  if (!metadata.empty()) {
    hdr += "\"__metadata__\":{";
    for (size_t i = 0; i < metadata.size(); ++i) {
      if (i) hdr += ',';
      json::appendQuoted(hdr, metadata[i].first);
      hdr += ':';
      json::appendQuoted(hdr, metadata[i].second);
    }
    hdr += '}';
  }
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const StWriteEntry& t = tensors[i];
    if (i || !metadata.empty()) hdr += ',';
    json::appendQuoted(hdr, t.name);
    hdr += ":{\"dtype\":\"";
    hdr += stDTypeName(fromDType(t.dtype));
    hdr += "\",\"shape\":[";
    for (size_t d = 0; d < t.shape.size(); ++d) {
      if (d) hdr += ',';
      hdr += std::to_string(t.shape[d]);
    }
    ND_REQUIRE(offset <= std::numeric_limits<uint64_t>::max() - sizes[i], Arg, "safetensors: total data size overflows");
    hdr += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + sizes[i]) + "]}";
    offset += sizes[i];
  }
  hdr += '}';
  // Pad with spaces (valid JSON whitespace) so the data buffer starts 8-aligned in the file, which
  // keeps mmapped tensors aligned for every element type we write.
  hdr.append((8 - (8 + hdr.size()) % 8) % 8, ' ');
  ND_REQUIRE(hdr.size() <= kStMaxHeaderBytes, Arg,
             "safetensors: header of " + std::to_string(hdr.size()) + " bytes exceeds the format's limit");

  uint8_t prefix[8];
  for (int k = 0; k < 8; ++k) prefix[k] = uint8_t(uint64_t(hdr.size()) >> (8 * k));

  TmpFile tmp;
  // A name of our own (pid + counter) created exclusively: concurrent saves to one path never share
  // a temporary file, and an existing file or symlink under that name is never followed.
  static std::atomic<uint64_t> counter{0};
  tmp.path = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  tmp.fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (tmp.fd < 0) {
    tmp.committed = true;  // nothing was created, nothing to remove
    tmp.ioFail("create", errno);
  }
  tmp.writeAll(prefix, 8);
  tmp.writeAll(hdr.data(), hdr.size());
  for (size_t i = 0; i < tensors.size(); ++i)
    if (sizes[i]) tmp.writeAll(tensors[i].data, size_t(sizes[i]));
  // Flush before the rename so the new name never points at a file whose data is still in flight.
  if (::fsync(tmp.fd) != 0) tmp.ioFail("sync", errno);
  int fd = tmp.fd;
  tmp.fd = -1;
  if (::close(fd) != 0) tmp.ioFail("close", errno);
  if (::rename(tmp.path.c_str(), path.c_str()) != 0) {
    int err = errno;
    fail(ErrorCode::Io, "safetensors: cannot rename '" + tmp.path + "' to '" + path + "': " + osError(err));
  }
  tmp.committed = true;
}

}  // namespace nd::io
