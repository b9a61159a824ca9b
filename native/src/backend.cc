// Run-time backend choice. Without NFP_WITH_CUDA the CUDA probe reports "not compiled".
#include "nfp/backend.h"

namespace nfp {

#ifndef NFP_WITH_CUDA
const CudaInfo& cuda_info() {
  static const CudaInfo info = [] {
    CudaInfo i;
    i.reason = "built without CUDA (nvcc was not found when the addon was compiled)";
    return i;
  }();
  return info;
}
#endif

const char* backend_name(BackendKind kind) { return kind == BackendKind::kCuda ? "cuda" : "cpu"; }

Status choose_backend(const std::string& name, BackendChoice* choice) {
  const CudaInfo& cuda = cuda_info();
  if (name == "cpu") {
    *choice = {BackendKind::kCpu, "cpu requested"};
    return Status::Ok();
  }
  if (name == "auto") {
    if (cuda.usable()) {
      *choice = {BackendKind::kCuda, "auto: using cuda (" + cuda.device_name + ")"};
    } else {
      *choice = {BackendKind::kCpu, "auto: using cpu because " + cuda.reason};
    }
    return Status::Ok();
  }
  if (name == "cuda") {
    if (!cuda.usable()) {
      return Error(Code::kUnavailable, "backend", "The cuda backend is unavailable: " + cuda.reason);
    }
    *choice = {BackendKind::kCuda, "cuda requested (" + cuda.device_name + ")"};
    return Status::Ok();
  }
  return Error(Code::kInvalidArgument, "backend",
               "Expected one of 'auto', 'cpu', 'cuda' for backend but received '" + name + "'");
}

}  // namespace nfp
