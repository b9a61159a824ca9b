// CUDA device probe for run-time backend choice. Compiled only when nvcc is found. A machine
// without a driver or a device gets a reason string, never a failure at load time.
#include <cuda_runtime.h>

#include <string>

#include "nfp/backend.h"

namespace nfp {

const CudaInfo& cuda_info() {
  static const CudaInfo info = [] {
    CudaInfo i;
    i.compiled = true;
    int runtime = 0;
    if (cudaRuntimeGetVersion(&runtime) == cudaSuccess) {
      i.runtime = std::to_string(runtime / 1000) + "." + std::to_string((runtime % 1000) / 10);
    }
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      i.reason = std::string("no usable CUDA device (") + cudaGetErrorString(err) + ")";
      cudaGetLastError();  // clear the sticky error so later probes start clean
      return i;
    }
    i.devices = count;
    if (count == 0) {
      i.reason = "no CUDA device is present";
      return i;
    }
    cudaDeviceProp prop{};
    err = cudaGetDeviceProperties(&prop, 0);
    if (err != cudaSuccess) {
      i.reason = std::string("the first CUDA device cannot be queried (") + cudaGetErrorString(err) + ")";
      cudaGetLastError();
      return i;
    }
    i.device_name = prop.name;
    // The kernels are built for sm_80 and sm_90 (plus PTX): older devices cannot run them.
    if (prop.major < 8) {
      i.reason = "the CUDA device " + i.device_name + " has compute capability " + std::to_string(prop.major) + "." +
                 std::to_string(prop.minor) + "; the kernels need 8.0 or newer";
      return i;
    }
    i.kernels = true;
    return i;
  }();
  return info;
}

}  // namespace nfp
