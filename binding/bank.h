// Bank: the JavaScript class wrapping nfp::Bank. Built once from typed arrays (validated and
// copied into native memory), then used for detectScores and scoreGradient calls.
#pragma once

#include <napi.h>

#include <memory>

#include "nfp/bank.h"
#include "nfp/tap_binding.h"

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
  Napi::Value BindTaps(const Napi::CallbackInfo& info);

  std::shared_ptr<const nfp::Bank> bank_;
};

// TapBinding: a Bank bound once to a layout of tap buffers (Bank.bindTaps({ taps: [{ width,
// columns? }] })), whose detectScores({ data: [buffers], rows, draws, ... }) scores buffers of that
// layout in place. Keeps its bank alive; made only by bindTaps.
class TapBinding : public Napi::ObjectWrap<TapBinding> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit TapBinding(const Napi::CallbackInfo& info);

 private:
  friend class Bank;
  Napi::Value DetectScores(const Napi::CallbackInfo& info);
  Napi::Value DetectScoresSync(const Napi::CallbackInfo& info);

  std::shared_ptr<const nfp::Bank> bank_;
  std::shared_ptr<const nfp::TapBinding> binding_;
};

}  // namespace binding
