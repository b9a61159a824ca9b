// Bank construction: copy, validate (indices < N, finite means, positive finite stds) and
// precompute the reciprocals and log ratios the score uses.
#include "nfp/bank.h"

#include "nfp/thread_pool.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace nfp {
namespace {

std::string At(std::size_t i) { return "[" + std::to_string(i) + "]"; }

std::string Number(float v) {
  std::ostringstream out;
  out.precision(9);
  out << v;
  return out.str();
}

}  // namespace

std::unique_ptr<Bank> Bank::Create(const BankSpec& spec, Status* status) {
  *status = Status::Ok();
  if (spec.neurons == 0 || spec.neurons > 0xFFFFFFFFull) {
    *status = Error(Code::kInvalidArgument, "neurons",
                    "Expected an integer in [1, 4294967295] for neurons but received " + std::to_string(spec.neurons));
    return nullptr;
  }
  if (spec.k == 0) {
    *status = Error(Code::kInvalidArgument, "k", "Expected a positive integer for k but received 0");
    return nullptr;
  }
  if (spec.families == 0) {
    *status =
        Error(Code::kInvalidArgument, "families", "Expected at least one attack family for families but received 0");
    return nullptr;
  }
  std::unique_ptr<Bank> bank(new Bank());
  bank->neurons_ = spec.neurons;
  bank->k_ = spec.k;
  bank->count_ = spec.count;
  bank->families_ = spec.families;
  const std::size_t F = spec.count, A = spec.families;
  bank->indices_.assign(spec.indices, spec.indices + F * spec.k);
  for (std::size_t i = 0; i < bank->indices_.size(); ++i) {
    if (bank->indices_[i] >= spec.neurons) {
      *status = Error(Code::kOutOfRange, "indices",
                      "Expected indices < neurons (" + std::to_string(spec.neurons) + ") for indices but received " +
                          std::to_string(bank->indices_[i]) + " at indices" + At(i));
      return nullptr;
    }
  }
  // Checked where the caller holds them: the records below are the bank's only copy.
  auto check_mean = [&](const float* v, std::size_t n, const char* name) {
    for (std::size_t i = 0; i < n; ++i) {
      if (!std::isfinite(v[i])) {
        *status = Error(Code::kNonFinite, name,
                        std::string("Expected finite values for ") + name + " but received " + Number(v[i]) + " at " +
                            name + At(i));
        return false;
      }
    }
    return true;
  };
  auto check_sd = [&](const float* v, std::size_t n, const char* name) {
    for (std::size_t i = 0; i < n; ++i) {
      if (!(std::isfinite(v[i]) && v[i] > 0.0f)) {
        *status = Error(Code::kOutOfRange, name,
                        std::string("Expected positive finite values for ") + name + " but received " + Number(v[i]) +
                            " at " + name + At(i));
        return false;
      }
    }
    return true;
  };
  if (!check_mean(spec.mu0, F, "mu0") || !check_sd(spec.sd0, F, "sd0") || !check_mean(spec.mu1, A * F, "mu1") ||
      !check_sd(spec.sd1, A * F, "sd1")) {
    return nullptr;
  }
  // A record shorter than a cache line is padded to one (one family: 40 -> 64 bytes; two: exactly 64),
  // so that no record straddles two lines; longer ones pack.
  constexpr std::size_t kPerLine = kRecordAlign / sizeof(double);
  const std::size_t fields = 2 + 3 * A;
  bank->stride_ = fields < kPerLine ? kPerLine : fields;
  const std::size_t bytes = F * bank->stride_ * sizeof(double);
  // Not zero-filled (every field is written below), and on huge pages where the kernel offers them: a
  // 1,000-class bank's 128 MB of records cost a page fault per 4 KiB otherwise, more than filling them.
  constexpr std::size_t kHuge = std::size_t{2} << 20;
  void* storage = nullptr;
  if (posix_memalign(&storage, bytes >= kHuge ? kHuge : kRecordAlign, bytes == 0 ? kRecordAlign : bytes) != 0) {
    *status = Error(Code::kInternal, "bank", "Could not allocate " + std::to_string(bytes) + " bytes of records");
    return nullptr;
  }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes >= kHuge) madvise(storage, bytes, MADV_HUGEPAGE);
#endif
  bank->record_storage_.reset(static_cast<double*>(storage));
  bank->records_ = bank->record_storage_.get();
  double* records = bank->records_;
  const std::size_t stride = bank->stride_;
  parallel_for(F, 16384, [&](std::size_t begin, std::size_t end) {
    for (std::size_t f = begin; f < end; ++f) {
      double* r = records + f * stride;
      const double sd0 = static_cast<double>(spec.sd0[f]);
      const double log_sd0 = std::log(sd0);
      r[0] = static_cast<double>(spec.mu0[f]);
      r[1] = 1.0 / sd0;
      for (std::size_t a = 0; a < A; ++a) {
        const std::size_t i = a * F + f;
        r[2 + 3 * a] = static_cast<double>(spec.mu1[i]);
        r[3 + 3 * a] = 1.0 / static_cast<double>(spec.sd1[i]);
        r[4 + 3 * a] = log_sd0 - std::log(static_cast<double>(spec.sd1[i]));
      }
      for (std::size_t j = 2 + 3 * A; j < stride; ++j) r[j] = 0.0;  // padding
    }
  });
  return bank;
}

// One field of every record as an array: `field` of the record (the shared fields) or, with
// `per_family`, field + 3a for family a, family-major [A x F].
template <class T>
std::vector<T> Bank::Column(std::size_t field, bool per_family) const {
  const std::size_t A = per_family ? families_ : 1;
  std::vector<T> out(A * count_);
  for (std::size_t a = 0; a < A; ++a)
    for (std::size_t f = 0; f < count_; ++f) out[a * count_ + f] = static_cast<T>(record(f)[field + 3 * a]);
  return out;
}

std::vector<float> Bank::all_mu0() const { return Column<float>(0, false); }
std::vector<float> Bank::all_mu1() const { return Column<float>(2, true); }
std::vector<double> Bank::all_inv_sd0() const { return Column<double>(1, false); }
std::vector<double> Bank::all_inv_sd1() const { return Column<double>(3, true); }
std::vector<double> Bank::all_log_sd_ratio() const { return Column<double>(4, true); }

std::shared_ptr<void> Bank::attachment(const std::function<std::shared_ptr<void>()>& make) const {
  std::lock_guard<std::mutex> lock(attachment_mu_);
  if (!attachment_) attachment_ = make();
  return attachment_;
}

}  // namespace nfp
