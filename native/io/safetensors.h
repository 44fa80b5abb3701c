// Reading and writing the safetensors format: an 8-byte little-endian header length N, N bytes of
// JSON describing the tensors, then the raw data buffer. Files come from the internet, so the reader
// validates the whole header up front (bounds, sizes, exact coverage of the buffer) and then only
// hands out pointers that are known to lie inside the mapping; any defect is ERR_ND_FILE_FORMAT
// with a message naming the tensor and the problem.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/dtype.h"

namespace nd {
class ThreadPool;
}

namespace nd::io {

// The element types the format defines. Only some have an nd::DType; the others can still be read
// (converted on load) but not written.
enum class StDType : uint8_t {
  BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64, F8_E4M3, F8_E5M2
};

inline constexpr uint64_t kStMaxHeaderBytes = 100000000;  // the reference implementation's limit

const char* stDTypeName(StDType t) noexcept;                 // "F32", "F8_E4M3", ...
std::optional<StDType> parseStDType(std::string_view name) noexcept;
size_t stDTypeSize(StDType t) noexcept;
std::optional<DType> toDType(StDType t) noexcept;  // nullopt for I8, I16, U16, U32, U64, F8_*
StDType fromDType(DType t) noexcept;

struct StTensorInfo {
  std::string name;
  StDType dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte offsets relative to the start of the data buffer
  int64_t numel() const;
};

struct StHeader {
  std::vector<StTensorInfo> tensors;  // sorted by begin, i.e. in the order the data lies in the file
  std::vector<std::pair<std::string, std::string>> metadata;  // in header order
  uint64_t dataStart = 0;                                     // 8 + N: file offset of the data buffer
};

// Validates the complete file image (header and data-buffer extent) and returns the parsed header.
StHeader parseSafetensorsHeader(const uint8_t* file, size_t fileSize);

class SafetensorsFile {
 public:
  // Maps the file read-only. ERR_ND_IO (with the path and the OS reason) when it cannot be opened or
  // mapped, ERR_ND_FILE_FORMAT when the contents are not a valid safetensors file.
  static std::unique_ptr<SafetensorsFile> open(const std::string& path);

  // Reads a file image already in memory; the buffer is borrowed and must outlive this object.
  SafetensorsFile(const uint8_t* data, size_t size);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const StHeader& header() const { return header_; }
  const std::string& path() const { return path_; }  // empty for in-memory images
  size_t fileSize() const { return size_; }

  const StTensorInfo* find(std::string_view name) const;  // nullptr when absent
  bool mapped() const { return map_ != nullptr; }  // a private, writable (copy-on-write) file mapping
  // First byte of the tensor's data; not necessarily aligned for its element type.
  const uint8_t* rawData(const StTensorInfo& info) const;
  // Converts the tensor into dst, which must hold numel * dtypeSize(dstType) bytes (any alignment).
  // Conversion semantics are castCpu's; types without an nd::DType go through double (or int64 for
  // integer-to-integer, which keeps them exact). ERR_ND_DTYPE for a target that is not an nd::DType.
  void readInto(const StTensorInfo& info, void* dst, DType dstType, ThreadPool* pool = nullptr) const;

 private:
  SafetensorsFile() = default;
  void init();

  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  void* map_ = nullptr;  // non-null when we own an mmap of size_ bytes
  StHeader header_;
  std::unordered_map<std::string_view, size_t> byName_;  // views into header_.tensors[i].name
};

struct StWriteEntry {
  std::string name;
  DType dtype;
  Shape shape;
  const void* data;  // numel * dtypeSize(dtype) bytes; may be null when that is 0
};

// Writes a file the strict reader accepts: data 8-aligned after a space-padded header, tensors
// contiguous in the given order. Goes through path + ".tmp" and a rename, so a crash never leaves
// a half-written file under `path`. ERR_ND_ARG for bad names/metadata, ERR_ND_IO with the path.
void writeSafetensors(const std::string& path, const std::vector<StWriteEntry>& tensors,
                      const std::vector<std::pair<std::string, std::string>>& metadata = {});

}  // namespace nd::io
