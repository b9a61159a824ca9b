// Bank: the fingerprints of a detector held in native memory, validated once when built so
// the hot path (detect_scores) only checks the per-call draws. Read-only after construction,
// hence safe to share between threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "nfp/status.h"

namespace nfp {

struct BankSpec {
  std::size_t neurons = 0;                 // N: length of an activation row
  std::size_t k = 0;                       // neurons per fingerprint
  std::size_t count = 0;                   // F: fingerprints
  std::size_t families = 0;                // A: attack families with their own attacked statistics
  const std::uint32_t* indices = nullptr;  // [F x k], each < N
  const float* mu0 = nullptr;              // [F]     clean mean of m_S
  const float* sd0 = nullptr;              // [F]     clean std, > 0
  const float* mu1 = nullptr;              // [A x F] attacked mean per family
  const float* sd1 = nullptr;              // [A x F] attacked std per family, > 0
};

class Bank {
 public:
  // Copies and validates the spec; on failure returns null and sets *status.
  static std::unique_ptr<Bank> Create(const BankSpec& spec, Status* status);

  std::size_t neurons() const { return neurons_; }
  std::size_t k() const { return k_; }
  std::size_t count() const { return count_; }
  std::size_t families() const { return families_; }

  const std::uint32_t* indices(std::size_t f) const { return indices_.data() + f * k_; }
  // The means as given (the records hold them exactly, as doubles of the floats).
  float mu0(std::size_t f) const { return static_cast<float>(record(f)[0]); }
  float mu1(std::size_t a, std::size_t f) const { return static_cast<float>(record(f)[2 + 3 * a]); }

  // One record per fingerprint, what the score reads of it in one place (a draw touches one cache
  // line per fingerprint instead of one per array): mu0, 1 / sd0, then per family a mu1_a, 1 / sd1_a
  // and log(sd0 / sd1_a), in double. Records are kRecordAlign-byte aligned, stride record_stride().
  static constexpr std::size_t kRecordAlign = 64;
  const double* record(std::size_t f) const { return records_ + f * stride_; }
  std::size_t record_stride() const { return stride_; }

  double inv_sd0(std::size_t f) const { return record(f)[1]; }
  double inv_sd1(std::size_t a, std::size_t f) const { return record(f)[3 + 3 * a]; }
  double log_sd_ratio(std::size_t a, std::size_t f) const { return record(f)[4 + 3 * a]; }

  const std::vector<std::uint32_t>& all_indices() const { return indices_; }
  // Copies of one column of the records, family-major [A x F] (or [F]), for a backend that uploads
  // arrays (the CUDA backend, once per bank).
  std::vector<float> all_mu0() const;
  std::vector<float> all_mu1() const;
  std::vector<double> all_inv_sd0() const;
  std::vector<double> all_inv_sd1() const;
  std::vector<double> all_log_sd_ratio() const;

  // A backend's own copy of this bank (the CUDA backend keeps one in device memory so that it
  // is uploaded once, not per call): made by `make` on first use, then shared by every caller
  // for the bank's lifetime. A null result is not kept, so a failed upload is retried.
  std::shared_ptr<void> attachment(const std::function<std::shared_ptr<void>()>& make) const;

 private:
  Bank() = default;
  template <class T>
  std::vector<T> Column(std::size_t field, bool per_family) const;
  std::size_t neurons_ = 0, k_ = 0, count_ = 0, families_ = 0;
  std::vector<std::uint32_t> indices_;
  // records_ points into it, aligned; freed by free() (posix_memalign).
  std::unique_ptr<double, void (*)(void*)> record_storage_{nullptr, std::free};
  double* records_ = nullptr;
  std::size_t stride_ = 0;
  mutable std::mutex attachment_mu_;
  mutable std::shared_ptr<void> attachment_;
};

}  // namespace nfp
