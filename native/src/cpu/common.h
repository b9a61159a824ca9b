// Pieces shared by the CPU kernels: index bound checks, first-failure tracking across threads,
// and the per-family combination of log-likelihood ratio sums.
#pragma once

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "nfp/kernels.h"

namespace nfp {
namespace cpu {

// Multiversioned hot loops: the same source compiled for AVX-512, AVX2 and baseline x86-64,
// chosen at load time, so one portable binary still uses the machine's vector width.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && !defined(NFP_NO_CLONES)
#define NFP_TARGET_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NFP_TARGET_CLONES
#endif

inline Status CheckIndices(const std::uint32_t* idx, std::size_t n, std::size_t bound, const char* argument) {
  for (std::size_t i = 0; i < n; ++i) {
    if (idx[i] >= bound) {
      return Error(Code::kOutOfRange, argument,
                   std::string("Expected values < ") + std::to_string(bound) + " for " + argument +
                       " but received " + std::to_string(idx[i]) + " at " + argument + "[" + std::to_string(i) + "]");
    }
  }
  return Status::Ok();
}

// Keeps the smallest flat position at which something failed, so the reported failure does
// not depend on thread timing.
class FirstFailure {
 public:
  void Record(std::size_t pos) {
    std::size_t cur = first_.load(std::memory_order_relaxed);
    while (pos < cur && !first_.compare_exchange_weak(cur, pos, std::memory_order_relaxed)) {
    }
  }
  bool found() const { return first_.load() != kNone; }
  std::size_t position() const { return first_.load(); }

 private:
  static constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();
  std::atomic<std::size_t> first_{kNone};
};

// Mean of the k activations of one subset in one row, accumulated in double. Four partial
// sums break the chain of dependent adds, which otherwise bounds this gather by add latency.
inline double SubsetMean(const float* row, const std::uint32_t* idx, std::size_t k) {
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

// Combines per-family sums; fills `weights` (may be null) with d combined / d sum_a.
inline double CombineFamilies(const double* sums, std::size_t families, Combine combine, double* weights) {
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
  for (std::size_t a = 0; a < families; ++a) total += std::exp(sums[a] - top);
  if (weights != nullptr) {
    for (std::size_t a = 0; a < families; ++a) weights[a] = std::exp(sums[a] - top) / total;
  }
  return top + std::log(total);
}

}  // namespace cpu
}  // namespace nfp
