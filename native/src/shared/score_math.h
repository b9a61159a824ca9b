// The detector's per-fingerprint arithmetic, written once for the CPU and CUDA backends: the
// subset mean, the Gaussian log-likelihood ratio term, and the combination of family sums.
#pragma once

#include <math.h>

#include <cstddef>
#include <cstdint>

#include "nfp/kernels.h"
#include "shared/hd.h"

namespace nfp {
namespace score {

// Mean of the k activations of one subset in one row, accumulated in double. Four partial
// sums break the chain of dependent adds, which otherwise bounds this gather by add latency.
// `row` is anything indexed by neuron: a pointer into the activation matrix, or a view of tap
// buffers (cpu::TapRow); the sums run in the same order, so both give the same bits.
// `idx` holds what `row` is indexed by: neuron numbers, or a bound layout's (tap, column) slots.
template <class Row, class Index>
NFP_HD double SubsetMean(const Row& row, const Index* idx, std::size_t k) {
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  std::size_t j = 0;
  for (; j + 4 <= k; j += 4) {
    s0 += row[idx[j]];
    s1 += row[idx[j + 1]];
    s2 += row[idx[j + 2]];
    s3 += row[idx[j + 3]];
  }
  for (; j < k; ++j) s0 += row[idx[j]];
  return ((s0 + s1) + (s2 + s3)) / static_cast<double>(k);
}

// log N(x; mu1, sd1) - log N(x; mu0, sd0) given z0 = (x - mu0) / sd0; the 2*pi terms cancel.
NFP_HD double LlrTerm(double mean, double z0, double mu1, double inv_sd1, double log_sd_ratio) {
  const double z1 = (mean - mu1) * inv_sd1;
  return 0.5 * (z0 * z0 - z1 * z1) + log_sd_ratio;
}

// Combines per-family sums; fills `weights` (may be null) with d combined / d sum_a.
NFP_HD double CombineFamilies(const double* sums, std::size_t families, Combine combine, double* weights) {
  std::size_t best = 0;
  for (std::size_t a = 1; a < families; ++a) {
    if (sums[a] > sums[best]) best = a;
  }
  if (combine == Combine::kMax || families == 1) {
    if (weights != nullptr) {
      for (std::size_t a = 0; a < families; ++a) weights[a] = a == best ? 1.0 : 0.0;
    }
    return sums[best];
  }
  const double top = sums[best];
  double total = 0.0;
  for (std::size_t a = 0; a < families; ++a) total += exp(sums[a] - top);
  if (weights != nullptr) {
    for (std::size_t a = 0; a < families; ++a) weights[a] = exp(sums[a] - top) / total;
  }
  return top + log(total);
}

}  // namespace score
}  // namespace nfp
