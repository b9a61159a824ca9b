// The CUDA backend's entry points in a build without nvcc: each says why it cannot run.
#include "nfp/backend.h"
#include "nfp/cuda.h"

namespace nfp {
namespace cuda {
namespace {

Status Unavailable() {
  return Error(Code::kUnavailable, "backend", "The cuda backend is unavailable: " + cuda_info().reason);
}

}  // namespace

Status subset_means(const Activations&, const Subsets&, float*) { return Unavailable(); }
Status detect_scores(const Activations&, const Bank&, const Draws&, Combine, const DetectOutputs&) {
  return Unavailable();
}
Status score_gradient(const Activations&, const Bank&, const Draws&, Combine, float*) { return Unavailable(); }
Status screen(const Activations&, const Activations&, const Subsets&, stats::TTest, const ScreenOutputs&) {
  return Unavailable();
}
Status subset_means_on_device(const Activations&, const Subsets&, float*, void*) { return Unavailable(); }
Status detect_scores_on_device(const Activations&, const Bank&, const Draws&, Combine, const DetectOutputs&, void*) {
  return Unavailable();
}
Status score_gradient_on_device(const Activations&, const Bank&, const Draws&, Combine, float*, void*) {
  return Unavailable();
}
Status screen_on_device(const Activations&, const Activations&, const Subsets&, stats::TTest, const ScreenOutputs&,
                        void*) {
  return Unavailable();
}

}  // namespace cuda
}  // namespace nfp
