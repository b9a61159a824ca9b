// Backend selection: the CPU backend always exists; the CUDA backend is compiled in when nvcc
// was found at build time and usable when a device is present at run time.
#pragma once

#include <string>

#include "nfp/status.h"

namespace nfp {

enum class BackendKind { kCpu, kCuda };

struct CudaInfo {
  bool compiled = false;    // built with NFP_WITH_CUDA
  int devices = 0;          // devices visible at run time
  std::string device_name;  // first device, when any
  std::string runtime;      // CUDA runtime version, when compiled
  std::string reason;       // why CUDA is unusable, empty when usable
  bool kernels = false;     // whether the device can run the kernels (compute capability >= 8.0)
  bool usable() const { return compiled && devices > 0 && kernels; }
};

// Probes once (cached): cudaGetDeviceCount and the first device's name.
const CudaInfo& cuda_info();

struct BackendChoice {
  BackendKind kind = BackendKind::kCpu;
  std::string message;  // why this backend, e.g. "cuda requested but no device: using cpu"
};

// Resolves "auto", "cpu" or "cuda". "auto" picks CUDA when usable, else CPU. "cuda" when CUDA
// is unusable is an error (kUnavailable) so that a demand for a GPU is never silently dropped;
// an unknown name is kInvalidArgument.
Status choose_backend(const std::string& name, BackendChoice* choice);

const char* backend_name(BackendKind kind);

}  // namespace nfp
