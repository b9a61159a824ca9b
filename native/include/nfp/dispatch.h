// Runs a kernel on a chosen backend (see backend.h for the choice): the one place that maps a
// BackendKind to nfp::cpu or nfp::cuda, so callers such as the Node binding stay backend-blind.
#pragma once

#include <vector>

#include "nfp/backend.h"
#include "nfp/cuda.h"
#include "nfp/kernels.h"
#include "nfp/tap_binding.h"

namespace nfp {

inline Status subset_means(BackendKind kind, const Activations& acts, const Subsets& subsets, float* out) {
  return kind == BackendKind::kCuda ? cuda::subset_means(acts, subsets, out) : cpu::subset_means(acts, subsets, out);
}

inline Status detect_scores(BackendKind kind, const Activations& acts, const Bank& bank, const Draws& draws,
                            Combine combine, const DetectOutputs& out) {
  return kind == BackendKind::kCuda ? cuda::detect_scores(acts, bank, draws, combine, out)
                                    : cpu::detect_scores(acts, bank, draws, combine, out);
}

// Tap buffers read in place on the CPU; the CUDA backend uploads one matrix, so they are packed
// into one on the host first (what the copy in TypeScript did before).
inline Status detect_scores(BackendKind kind, const TapActivations& acts, const Bank& bank, const Draws& draws,
                            Combine combine, const DetectOutputs& out) {
  if (kind != BackendKind::kCuda) return cpu::detect_scores(acts, bank, draws, combine, out);
  std::vector<float> packed(acts.rows * acts.neurons());
  Status st = cpu::pack_taps(acts, packed.data());
  if (!st.ok()) return st;
  return cuda::detect_scores({packed.data(), acts.rows, acts.neurons()}, bank, draws, combine, out);
}

inline Status detect_scores(BackendKind kind, const TapBinding& binding, const float* const* data, std::size_t rows,
                            const Draws& draws, Combine combine, const DetectOutputs& out) {
  if (kind != BackendKind::kCuda) return cpu::detect_scores(binding, data, rows, draws, combine, out);
  return detect_scores(kind, binding.View(data, rows), binding.bank(), draws, combine, out);
}

inline Status score_gradient(BackendKind kind, const Activations& acts, const Bank& bank, const Draws& draws,
                             Combine combine, float* grad) {
  return kind == BackendKind::kCuda ? cuda::score_gradient(acts, bank, draws, combine, grad)
                                    : cpu::score_gradient(acts, bank, draws, combine, grad);
}

inline Status screen(BackendKind kind, const Activations& clean, const Activations& attacked, const Subsets& candidates,
                     stats::TTest test, const ScreenOutputs& out) {
  return kind == BackendKind::kCuda ? cuda::screen(clean, attacked, candidates, test, out)
                                    : cpu::screen(clean, attacked, candidates, test, out);
}

}  // namespace nfp
