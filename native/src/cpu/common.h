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

#if defined(__GNUC__) || defined(__clang__)
#define NFP_PREFETCH(address) __builtin_prefetch(address)
#else
#define NFP_PREFETCH(address) ((void)(address))
#endif

// One image's activations as the kernels read them: a row of the matrix, or (TapRow) the same
// neurons across the tap buffers. Both give operator[](neuron).
struct MatrixRow {
  const float* values;
  float operator[](std::uint32_t n) const { return values[n]; }
  const float* address(std::uint32_t n) const { return values + n; }
};

// Image b's row across tap buffers, indexed by a bound layout's slots (TapBinding): the base
// pointer of image b in every tap, and each slot's column in it.
struct BoundRow {
  const float* const* bases;
  float operator[](const TapSlot& s) const { return bases[s.tap][s.column]; }
  const float* address(const TapSlot& s) const { return bases[s.tap] + s.column; }
};

// One row's drawn fingerprints: sums[a] = sum_i LLR_a(m_{S(ids[i])}(row)) for every family a, with
// each drawn mean in means[i] and, when `terms` is given, each term in terms[i * A + a]. Returns the
// first i whose mean is not finite, or m. The detector's score and its gradient both start here.
// `index_of(f)` gives fingerprint f's k indices into `row`: the bank's neurons for a matrix row, a
// TapBinding's slots for tap buffers. Each fingerprint's statistics are read from its one record.
template <class Row, class IndexOf>
std::size_t RowLlrSums(const Row& row, IndexOf index_of, const Bank& bank, const std::uint32_t* ids, std::size_t m,
                       double* sums, double* means, float* terms) {
  const std::size_t A = bank.families(), k = bank.k();
  std::size_t bad = m;
  std::fill(sums, sums + A, 0.0);
  // The drawn fingerprints' records and indices are scattered over the bank and, right after the
  // model ran, out of cache: ask for all of them first, so that the misses overlap instead of
  // each fingerprint waiting for its own.
  for (std::size_t i = 0; i < m; ++i) {
    NFP_PREFETCH(bank.record(ids[i]));
    NFP_PREFETCH(index_of(ids[i]));
  }
  // Then the activations they read (waiting only for the indices asked for above).
  for (std::size_t i = 0; i < m; ++i) {
    const auto* idx = index_of(ids[i]);
    for (std::size_t j = 0; j < k; ++j) NFP_PREFETCH(row.address(idx[j]));
  }
  for (std::size_t i = 0; i < m; ++i) {
    const std::uint32_t f = ids[i];
    const double* r = bank.record(f);
    const double mean = SubsetMean(row, index_of(f), k);
    if (!std::isfinite(mean) && bad == m) bad = i;
    means[i] = mean;
    const double z0 = (mean - r[0]) * r[1];
    for (std::size_t a = 0; a < A; ++a) {
      const double term = LlrTerm(mean, z0, r[2 + 3 * a], r[3 + 3 * a], r[4 + 3 * a]);
      sums[a] += term;
      if (terms != nullptr) terms[i * A + a] = static_cast<float>(term);
    }
  }
  return bad;
}

inline std::size_t RowLlrSums(const float* row, const Bank& bank, const std::uint32_t* ids, std::size_t m, double* sums,
                              double* means, float* terms) {
  return RowLlrSums(
      MatrixRow{row}, [&bank](std::uint32_t f) { return bank.indices(f); }, bank, ids, m, sums, means, terms);
}

}  // namespace cpu
}  // namespace nfp
