// Bank construction: copy, validate (indices < N, finite means, positive finite stds) and
// precompute the reciprocals and log ratios the score uses.
#include "nfp/bank.h"

#include <cmath>
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
  bank->inv_sd0_.resize(F);
  bank->inv_sd1_.resize(A * F);
  bank->log_sd_ratio_.resize(A * F);
  for (std::size_t f = 0; f < F; ++f) bank->inv_sd0_[f] = 1.0 / static_cast<double>(bank->sd0_[f]);
  for (std::size_t a = 0; a < A; ++a) {
    for (std::size_t f = 0; f < F; ++f) {
      const std::size_t i = a * F + f;
      bank->inv_sd1_[i] = 1.0 / static_cast<double>(bank->sd1_[i]);
      bank->log_sd_ratio_[i] =
          std::log(static_cast<double>(bank->sd0_[f])) - std::log(static_cast<double>(bank->sd1_[i]));
    }
  }
  return bank;
}

std::shared_ptr<void> Bank::attachment(const std::function<std::shared_ptr<void>()>& make) const {
  std::lock_guard<std::mutex> lock(attachment_mu_);
  if (!attachment_) attachment_ = make();
  return attachment_;
}

}  // namespace nfp
