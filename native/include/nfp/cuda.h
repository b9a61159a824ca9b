// The CUDA backend: the kernels of nfp/kernels.h on an NVIDIA GPU, with the same contracts and
// results as nfp::cpu (to floating-point rounding; tests compare them with tolerances).
//
// Two forms of each kernel:
//  - host form (same signature as nfp::cpu::*): the inputs are in host memory; they are staged
//    through pinned buffers and uploaded on a per-thread stream, the results copied back. A
//    Bank is uploaded once, on first use, and stays resident on the device.
//  - device form (*_on_device): every pointer is device memory (e.g. a framework's activation
//    buffer), work is queued on `stream` (a cudaStream_t; null means the legacy default stream)
//    and the call returns once it is done. Indices and non-finite values are checked on the
//    device and reported with the same Status as the host form where the position is known.
//
// When the library is built without CUDA, or no device is present, every function returns
// Code::kUnavailable with the reason of cuda_info(). Device 0 is used.
#pragma once

#include "nfp/kernels.h"

namespace nfp {
namespace cuda {

Status subset_means(const Activations& acts, const Subsets& subsets, float* out);
Status detect_scores(const Activations& acts, const Bank& bank, const Draws& draws, Combine combine,
                     const DetectOutputs& out);
Status score_gradient(const Activations& acts, const Bank& bank, const Draws& draws, Combine combine, float* grad);
Status screen(const Activations& clean, const Activations& attacked, const Subsets& candidates, stats::TTest test,
              const ScreenOutputs& out);

Status subset_means_on_device(const Activations& acts, const Subsets& subsets, float* out, void* stream);
Status detect_scores_on_device(const Activations& acts, const Bank& bank, const Draws& draws, Combine combine,
                               const DetectOutputs& out, void* stream);
Status score_gradient_on_device(const Activations& acts, const Bank& bank, const Draws& draws, Combine combine,
                                float* grad, void* stream);
Status screen_on_device(const Activations& clean, const Activations& attacked, const Subsets& candidates,
                        stats::TTest test, const ScreenOutputs& out, void* stream);

}  // namespace cuda
}  // namespace nfp
