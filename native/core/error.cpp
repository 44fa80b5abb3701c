#include "core/error.h"

namespace nd {

const char* errorCodeName(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::Arg: return "ERR_ND_ARG";
    case ErrorCode::Shape: return "ERR_ND_SHAPE";
    case ErrorCode::DType: return "ERR_ND_DTYPE";
    case ErrorCode::FileFormat: return "ERR_ND_FILE_FORMAT";
    case ErrorCode::Io: return "ERR_ND_IO";
    case ErrorCode::Device: return "ERR_ND_DEVICE";
    case ErrorCode::Oom: return "ERR_ND_OOM";
    case ErrorCode::Model: return "ERR_ND_MODEL";
    case ErrorCode::Aborted: return "ERR_ND_ABORTED";
    case ErrorCode::Disposed: return "ERR_ND_DISPOSED";
    case ErrorCode::Internal: return "ERR_ND_INTERNAL";
  }
  return "ERR_ND_INTERNAL";
}

void fail(ErrorCode code, const std::string& message) { throw Error(code, message); }

}  // namespace nd
