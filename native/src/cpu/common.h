// Pieces shared by the CPU kernels: index bound checks, first-failure tracking across threads,
// and the score arithmetic shared with the CUDA backend (shared/score_math.h).
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "nfp/kernels.h"
#include "shared/score_math.h"

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
                   std::string("Expected values < ") + std::to_string(bound) + " for " + argument + " but received " +
                       std::to_string(idx[i]) + " at " + argument + "[" + std::to_string(i) + "]");
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

// Shape checks of screen, shared with the CUDA backend so both reject the same input alike.
inline Status CheckScreenShapes(const Activations& clean, const Activations& attacked, const Subsets& candidates) {
  if (clean.neurons != attacked.neurons) {
    return Error(Code::kInvalidArgument, "attacked",
                 "Expected rows of " + std::to_string(clean.neurons) +
                     " neurons (as clean) for attacked but received " + std::to_string(attacked.neurons));
  }
  if (clean.rows < 2) {
    return Error(Code::kInvalidArgument, "clean",
                 "Expected at least 2 rows for clean but received " + std::to_string(clean.rows));
  }
  if (attacked.rows < 2) {
    return Error(Code::kInvalidArgument, "attacked",
                 "Expected at least 2 rows for attacked but received " + std::to_string(attacked.rows));
  }
  if (candidates.k == 0) return Error(Code::kInvalidArgument, "k", "Expected a positive integer for k but received 0");
  return Status::Ok();
}

// Shape check of detect_scores and score_gradient, shared with the CUDA backend.
inline Status CheckScoreShapes(const Activations& acts, const Bank& bank) {
  if (acts.neurons != bank.neurons()) {
    return Error(Code::kInvalidArgument, "acts",
                 "Expected rows of " + std::to_string(bank.neurons()) + " neurons (the bank's) for acts but received " +
                     std::to_string(acts.neurons));
  }
  return Status::Ok();
}

// The error for a candidate whose statistics came out non-finite: names the first row of clean,
// then of attacked, holding a NaN or Inf among its neurons (shared with the CUDA backend, which
// finds the candidate on the device and the row here).
inline Status ScreenNonFiniteError(const Activations& clean, const Activations& attacked, const Subsets& candidates,
                                   std::size_t cand) {
  const std::uint32_t* idx = candidates.indices + cand * candidates.k;
  for (const Activations* acts : {&clean, &attacked}) {
    for (std::size_t r = 0; r < acts->rows; ++r) {
      const float* a = acts->data + r * acts->neurons;
      for (std::size_t j = 0; j < candidates.k; ++j) {
        if (!std::isfinite(a[idx[j]]))
          return NonFiniteError(acts == &clean ? "clean" : "attacked", r, "candidate", cand);
      }
    }
  }
  return Error(Code::kNonFinite, "clean",
               "Expected finite statistics but candidate " + std::to_string(cand) +
                   " overflowed (activations too large for float64 moments)");
}

using score::CombineFamilies;
using score::LlrTerm;
using score::SubsetMean;

// One image's activations as the kernels read them: a row of the matrix, or (TapRow) the same
// neurons across the tap buffers. Both give operator[](neuron).
struct MatrixRow {
  const float* values;
  float operator[](std::uint32_t n) const { return values[n]; }
};

// Where each neuron of tap buffers lies: its tap, and its column in that tap's per-image values
// (a sampled layer's column applied). Made once per call, so that a gather reads one table entry
// and the row's base pointer of that tap: a search of the taps per gather cost three times the
// gather of a matrix row.
struct TapSlot {
  std::uint32_t tap;
  std::uint32_t column;
};

// Image b's row across tap buffers, given its base pointer in every tap.
struct TapRow {
  const TapSlot* slots;
  const float* const* bases;
  float operator[](std::uint32_t n) const {
    const TapSlot s = slots[n];
    return bases[s.tap][s.column];
  }
};

// One row's drawn fingerprints: sums[a] = sum_i LLR_a(m_{S(ids[i])}(row)) for every family a, with
// each drawn mean in means[i] and, when `terms` is given, each term in terms[i * A + a]. Returns the
// first i whose mean is not finite, or m. The detector's score and its gradient both start here.
template <class Row>
std::size_t RowLlrSums(const Row& row, const Bank& bank, const std::uint32_t* ids, std::size_t m, double* sums,
                       double* means, float* terms) {
  const std::size_t A = bank.families(), k = bank.k();
  std::size_t bad = m;
  std::fill(sums, sums + A, 0.0);
  for (std::size_t i = 0; i < m; ++i) {
    const std::uint32_t f = ids[i];
    const double mean = SubsetMean(row, bank.indices(f), k);
    if (!std::isfinite(mean) && bad == m) bad = i;
    means[i] = mean;
    const double z0 = (mean - bank.mu0(f)) * bank.inv_sd0(f);
    for (std::size_t a = 0; a < A; ++a) {
      const double term = LlrTerm(mean, z0, bank.mu1(a, f), bank.inv_sd1(a, f), bank.log_sd_ratio(a, f));
      sums[a] += term;
      if (terms != nullptr) terms[i * A + a] = static_cast<float>(term);
    }
  }
  return bad;
}

inline std::size_t RowLlrSums(const float* row, const Bank& bank, const std::uint32_t* ids, std::size_t m, double* sums,
                              double* means, float* terms) {
  return RowLlrSums(MatrixRow{row}, bank, ids, m, sums, means, terms);
}

}  // namespace cpu
}  // namespace nfp
