// Status: how every nfp entry point reports failure without exceptions, so that callers in
// other runtimes (N-API, CUDA hosts, tests) can map it to their own error types.
#pragma once

#include <cstddef>
#include <string>

namespace nfp {

enum class Code {
  kOk = 0,
  kInvalidArgument,  // wrong shape, zero size where one is required, bad option
  kOutOfRange,       // an index past its bound, a value outside its domain (sd <= 0)
  kNonFinite,        // NaN or Inf in an input that affects a result
  kUnavailable,      // backend not compiled in or no device
  kInternal,         // a failure of ours or of the runtime below (CUDA)
};

struct Status {
  Code code = Code::kOk;
  std::string argument;  // the parameter at fault, empty when none applies
  std::string message;   // a full sentence naming the argument and the value

  bool ok() const { return code == Code::kOk; }
  static Status Ok() { return Status{}; }
};

Status Error(Code code, std::string argument, std::string message);

// Describes where a non-finite value was met: the row of the activation matrix and the subset
// (fingerprint or candidate) whose mean it spoiled.
Status NonFiniteError(const char* argument, std::size_t row, const char* what, std::size_t item);

}  // namespace nfp
