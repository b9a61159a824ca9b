// The numeric kernels: batched random-subset neuron means, the fused Gaussian log-likelihood
// ratio score of the detector, its gradient, and candidate screening for bank building.
// Shapes are row-major; every pointer must hold the number of elements its shape says. The
// callers (binding, tests) validate shapes; the kernels still check index bounds.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nfp/bank.h"
#include "nfp/stats.h"
#include "nfp/status.h"

namespace nfp {

// A row-major matrix of activations: one row per image, one column per tapped neuron.
struct Activations {
  const float* data = nullptr;
  std::size_t rows = 0;
  std::size_t neurons = 0;
};

// `count` subsets of `k` neuron indices each, row-major [count x k].
struct Subsets {
  const std::uint32_t* indices = nullptr;
  std::size_t count = 0;
  std::size_t k = 0;
};

// How per-family log-likelihood ratio sums combine into one score.
enum class Combine {
  kMax,        // the most alarming family decides
  kLogSumExp,  // a soft maximum: log sum_a exp(S_a)
};

// A draw: for each activation row, `per_row` fingerprint ids into the bank, [rows x per_row].
struct Draws {
  const std::uint32_t* ids = nullptr;
  std::size_t per_row = 0;
};

struct DetectOutputs {
  float* score = nullptr;          // [rows], required
  float* family_scores = nullptr;  // [rows x families], optional
  float* means = nullptr;          // [rows x per_row], optional: m_S(x) per drawn fingerprint
  float* terms = nullptr;          // [rows x per_row x families], optional: each LLR term
};

// Per-candidate statistics of the subset mean over clean and attacked images (every backend's screen).
struct ScreenOutputs {
  double* mu0;
  double* sd0;
  double* mu1;
  double* sd1;
  double* t;
  double* p;
  double* d;
};

namespace cpu {

// out[b, f] = mean_{j < k} acts[b, subsets[f, j]]   (float64 accumulation)
Status subset_means(const Activations& acts, const Subsets& subsets, float* out);

// score[b] = combine_a sum_{i < per_row} LLR_a(m_{S(draws[b, i])}(acts[b]))
// where LLR_a(x) = log N(x; mu1_a, sd1_a) - log N(x; mu0, sd0).
Status detect_scores(const Activations& acts, const Bank& bank, const Draws& draws, Combine combine,
                     const DetectOutputs& out);

// grad[b, :] = d score[b] / d acts[b, :] (zero outside the drawn subsets), [rows x neurons].
Status score_gradient(const Activations& acts, const Bank& bank, const Draws& draws, Combine combine, float* grad);

Status screen(const Activations& clean, const Activations& attacked, const Subsets& candidates, stats::TTest test,
              const ScreenOutputs& out);

}  // namespace cpu
}  // namespace nfp
