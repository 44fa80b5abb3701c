// Typed errors of the native core. Every failure the core can report is an nd::Error with a code;
// bindings/ maps the code to a JS DiffusionError subclass. Nothing in native/ calls abort().
#pragma once
#include <stdexcept>
#include <cstdio>
#include <string>

namespace nd {

// A double as error messages print it: shortest-exact %.17g, so "received 0.1" shows what was passed.
inline std::string numberText(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

enum class ErrorCode {
  Arg,         // ERR_ND_ARG: an argument is out of its domain
  Shape,       // ERR_ND_SHAPE: shapes do not agree
  DType,       // ERR_ND_DTYPE: dtype unsupported or mismatched
  FileFormat,  // ERR_ND_FILE_FORMAT: a file's contents are malformed
  Io,          // ERR_ND_IO: open/read/write/mmap failed
  Device,      // ERR_ND_DEVICE: device missing, unavailable or failing
  Oom,         // ERR_ND_OOM: an allocation failed
  Model,       // ERR_ND_MODEL: weights missing, extra or mis-shaped
  Aborted,     // ERR_ND_ABORTED: cancelled by the caller
  Disposed,    // ERR_ND_DISPOSED: use after dispose()
  Internal,    // ERR_ND_INTERNAL: a broken invariant (a bug in node-diffusion)
};

const char* errorCodeName(ErrorCode code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] void fail(ErrorCode code, const std::string& message);

}  // namespace nd

// ND_REQUIRE(cond, code, message-expression): message is only built when the check fails.
#define ND_REQUIRE(cond, code, msg)                 \
  do {                                              \
    if (!(cond)) ::nd::fail(::nd::ErrorCode::code, (msg)); \
  } while (0)
