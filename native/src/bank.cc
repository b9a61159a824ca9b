// Bank construction: copy, validate (indices < N, finite means, positive finite stds) and
// precompute the reciprocals and log ratios the score uses.
#include "nfp/bank.h"

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>

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
  bank->mu0_.assign(spec.mu0, spec.mu0 + F);
  bank->sd0_.assign(spec.sd0, spec.sd0 + F);
  bank->mu1_.assign(spec.mu1, spec.mu1 + A * F);
  bank->sd1_.assign(spec.sd1, spec.sd1 + A * F);
  auto check_mean = [&](const std::vector<float>& v, const char* name) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i])) {
        *status = Error(Code::kNonFinite, name,
                        std::string("Expected finite values for ") + name + " but received " + Number(v[i]) + " at " +
                            name + At(i));
        return false;
      }
    }
    return true;
  };
  auto check_sd = [&](const std::vector<float>& v, const char* name) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!(std::isfinite(v[i]) && v[i] > 0.0f)) {
        *status = Error(Code::kOutOfRange, name,
                        std::string("Expected positive finite values for ") + name + " but received " + Number(v[i]) +
                            " at " + name + At(i));
        return false;
      }
    }
    return true;
  };
  if (!check_mean(bank->mu0_, "mu0") || !check_sd(bank->sd0_, "sd0") || !check_mean(bank->mu1_, "mu1") ||
      !check_sd(bank->sd1_, "sd1")) {
    return nullptr;
  }
  // A record shorter than a cache line is padded to one (one family: 40 -> 64 bytes; two: exactly 64),
  // so that no record straddles two lines; longer ones pack.
  constexpr std::size_t kPerLine = kRecordAlign / sizeof(double);
  const std::size_t fields = 2 + 3 * A;
  bank->stride_ = fields < kPerLine ? kPerLine : fields;
  bank->record_storage_.assign(F * bank->stride_ + kPerLine, 0.0);
  const auto base = reinterpret_cast<std::uintptr_t>(bank->record_storage_.data());
  bank->records_ =
      bank->record_storage_.data() + ((kRecordAlign - base % kRecordAlign) % kRecordAlign) / sizeof(double);
  for (std::size_t f = 0; f < F; ++f) {
    double* r = bank->records_ + f * bank->stride_;
    r[0] = static_cast<double>(bank->mu0_[f]);
    r[1] = 1.0 / static_cast<double>(bank->sd0_[f]);
    for (std::size_t a = 0; a < A; ++a) {
      const std::size_t i = a * F + f;
      r[2 + 3 * a] = static_cast<double>(bank->mu1_[i]);
      r[3 + 3 * a] = 1.0 / static_cast<double>(bank->sd1_[i]);
      r[4 + 3 * a] = std::log(static_cast<double>(bank->sd0_[f])) - std::log(static_cast<double>(bank->sd1_[i]));
    }
  }
  return bank;
}

std::vector<double> Bank::all_inv_sd0() const {
  std::vector<double> out(count_);
  for (std::size_t f = 0; f < count_; ++f) out[f] = inv_sd0(f);
  return out;
}

std::vector<double> Bank::all_inv_sd1() const {
  std::vector<double> out(families_ * count_);
  for (std::size_t a = 0; a < families_; ++a)
    for (std::size_t f = 0; f < count_; ++f) out[a * count_ + f] = inv_sd1(a, f);
  return out;
}

std::vector<double> Bank::all_log_sd_ratio() const {
  std::vector<double> out(families_ * count_);
  for (std::size_t a = 0; a < families_; ++a)
    for (std::size_t f = 0; f < count_; ++f) out[a * count_ + f] = log_sd_ratio(a, f);
  return out;
}

std::shared_ptr<void> Bank::attachment(const std::function<std::shared_ptr<void>()>& make) const {
  std::lock_guard<std::mutex> lock(attachment_mu_);
  if (!attachment_) attachment_ = make();
  return attachment_;
}

}  // namespace nfp
