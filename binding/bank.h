// Bank: the JavaScript class wrapping nfp::Bank. Built once from typed arrays (validated and
// copied into native memory), then used for detectScores and scoreGradient calls.
#pragma once

#include <napi.h>

#include <memory>

#include "nfp/bank.h"

namespace binding {

class Bank : public Napi::ObjectWrap<Bank> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Bank(const Napi::CallbackInfo& info);

 private:
  Napi::Value DetectScores(const Napi::CallbackInfo& info);
  Napi::Value DetectScoresSync(const Napi::CallbackInfo& info);
  Napi::Value ScoreGradient(const Napi::CallbackInfo& info);
  Napi::Value ScoreGradientSync(const Napi::CallbackInfo& info);

  std::shared_ptr<const nfp::Bank> bank_;
};

}  // namespace binding
