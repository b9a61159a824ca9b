// The Bank class (see bank.h).
#include "bank.h"

#include "args.h"
#include "job.h"
#include "nfp/dispatch.h"
#include "runtime.h"

namespace binding {
namespace {

struct DrawArgs {
  Napi::Float32Array acts;
  Napi::Uint32Array draws;
  std::size_t rows;
  std::size_t per_row;
  nfp::Combine combine;
};

DrawArgs ReadDrawArgs(const Napi::Object& o, const nfp::Bank& bank) {
  Napi::Env env = o.Env();
  DrawArgs a{TypedArrayArg<float>(o, "acts"), Napi::Uint32Array(), 0, 0, nfp::Combine::kMax};
  a.rows = DimArg(o, "rows", 0);
  a.draws = TypedArrayArg<std::uint32_t>(o, "draws");
  a.combine =
      EnumArg(o, "combine", {"max", "logsumexp"}, "max") == "max" ? nfp::Combine::kMax : nfp::Combine::kLogSumExp;
  ExpectLength(env, "acts", a.acts.ElementLength(), CheckedProduct(env, "acts", a.rows, bank.neurons()),
               "rows x the bank's " + std::to_string(bank.neurons()) + " neurons");
  const std::size_t n = a.draws.ElementLength();
  if (a.rows == 0) {
    if (n != 0) ExpectLength(env, "draws", n, 0, "rows x draws per row, with rows = 0");
  } else if (n % a.rows != 0) {
    ThrowRangeError(env, "draws",
                    "Expected a multiple of rows (" + std::to_string(a.rows) + ") elements for draws but received " +
                        std::to_string(n));
  } else {
    a.per_row = n / a.rows;
  }
  return a;
}

}  // namespace

Napi::Function Bank::Define(Napi::Env env) {
  return DefineClass(
      env, "Bank",
      {InstanceMethod<&Bank::DetectScores>("detectScores"), InstanceMethod<&Bank::DetectScoresSync>("detectScoresSync"),
       InstanceMethod<&Bank::ScoreGradient>("scoreGradient"),
       InstanceMethod<&Bank::ScoreGradientSync>("scoreGradientSync")});
}

Bank::Bank(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Bank>(info) {
  Napi::Env env = info.Env();
  Napi::Object o = OptionsArg(info, "Bank");
  nfp::BankSpec spec;
  spec.neurons = DimArg(o, "neurons", 1);
  spec.k = DimArg(o, "k", 1);
  auto indices = TypedArrayArg<std::uint32_t>(o, "indices");
  auto mu0 = TypedArrayArg<float>(o, "mu0");
  auto sd0 = TypedArrayArg<float>(o, "sd0");
  auto mu1 = TypedArrayArg<float>(o, "mu1");
  auto sd1 = TypedArrayArg<float>(o, "sd1");
  spec.families = DimArg(o, "families", 1, 4096);
  if (indices.ElementLength() % spec.k != 0) {
    ThrowRangeError(env, "indices",
                    "Expected a multiple of k (" + std::to_string(spec.k) + ") elements for indices but received " +
                        std::to_string(indices.ElementLength()));
  }
  spec.count = indices.ElementLength() / spec.k;
  ExpectLength(env, "mu0", mu0.ElementLength(), spec.count, "one per fingerprint");
  ExpectLength(env, "sd0", sd0.ElementLength(), spec.count, "one per fingerprint");
  const std::size_t per_family = CheckedProduct(env, "mu1", spec.families, spec.count);
  ExpectLength(env, "mu1", mu1.ElementLength(), per_family, "families x fingerprints");
  ExpectLength(env, "sd1", sd1.ElementLength(), per_family, "families x fingerprints");
  spec.indices = indices.Data();
  spec.mu0 = mu0.Data();
  spec.sd0 = sd0.Data();
  spec.mu1 = mu1.Data();
  spec.sd1 = sd1.Data();
  nfp::Status status;
  bank_ = nfp::Bank::Create(spec, &status);
  if (!bank_) throw StatusError(env, status);
  Napi::Object self = info.This().As<Napi::Object>();
  self.DefineProperties({
      Napi::PropertyDescriptor::Value("neurons", Napi::Number::New(env, static_cast<double>(spec.neurons)),
                                      napi_enumerable),
      Napi::PropertyDescriptor::Value("k", Napi::Number::New(env, static_cast<double>(spec.k)), napi_enumerable),
      Napi::PropertyDescriptor::Value("count", Napi::Number::New(env, static_cast<double>(spec.count)),
                                      napi_enumerable),
      Napi::PropertyDescriptor::Value("families", Napi::Number::New(env, static_cast<double>(spec.families)),
                                      napi_enumerable),
  });
}

namespace {

Job DetectJob(const Napi::CallbackInfo& info, const std::shared_ptr<const nfp::Bank>& bank) {
  Napi::Env env = info.Env();
  Napi::Object o = OptionsArg(info, "detectScores");
  DrawArgs a = ReadDrawArgs(o, *bank);
  const bool want_means = BoolArg(o, "means", false), want_terms = BoolArg(o, "terms", false);
  const std::size_t A = bank->families();
  auto score = Napi::Float32Array::New(env, a.rows);
  auto family = Napi::Float32Array::New(env, CheckedProduct(env, "familyScores", a.rows, A));
  auto means = Napi::Float32Array::New(env, want_means ? a.draws.ElementLength() : 0);
  auto terms = Napi::Float32Array::New(env, want_terms ? CheckedProduct(env, "terms", a.draws.ElementLength(), A) : 0);
  nfp::DetectOutputs out{score.Data(), family.Data(), want_means ? means.Data() : nullptr,
                         want_terms ? terms.Data() : nullptr};
  const float* acts = a.acts.Data();
  const std::uint32_t* draws = a.draws.Data();
  const std::size_t rows = a.rows, per_row = a.per_row;
  const nfp::Combine combine = a.combine;
  Job job;
  const nfp::BackendKind backend = CurrentBackend();
  job.run = [=] {
    return nfp::detect_scores(backend, {acts, rows, bank->neurons()}, *bank, {draws, per_row}, combine, out);
  };
  job.result = [want_means, want_terms](Napi::Env env, const std::vector<Napi::Value>& kept) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("score", kept[2]);
    r.Set("familyScores", kept[3]);
    if (want_means) r.Set("means", kept[4]);
    if (want_terms) r.Set("terms", kept[5]);
    return Napi::Value(r);
  };
  job.keep_alive = {a.acts, a.draws, score, family, means, terms, info.This()};
  job.work = static_cast<double>(a.draws.ElementLength()) * (bank->k() + A);
  return job;
}

Job GradientJob(const Napi::CallbackInfo& info, const std::shared_ptr<const nfp::Bank>& bank) {
  Napi::Env env = info.Env();
  Napi::Object o = OptionsArg(info, "scoreGradient");
  DrawArgs a = ReadDrawArgs(o, *bank);
  auto grad = Napi::Float32Array::New(env, a.acts.ElementLength());
  const float* acts = a.acts.Data();
  const std::uint32_t* draws = a.draws.Data();
  float* g = grad.Data();
  const std::size_t rows = a.rows, per_row = a.per_row;
  const nfp::Combine combine = a.combine;
  Job job;
  const nfp::BackendKind backend = CurrentBackend();
  job.run = [=] {
    return nfp::score_gradient(backend, {acts, rows, bank->neurons()}, *bank, {draws, per_row}, combine, g);
  };
  job.result = [](Napi::Env, const std::vector<Napi::Value>& kept) { return kept[2]; };
  job.keep_alive = {a.acts, a.draws, grad, info.This()};
  job.work = static_cast<double>(a.acts.ElementLength()) + static_cast<double>(a.draws.ElementLength()) * bank->k();
  return job;
}

}  // namespace

Napi::Value Bank::DetectScores(const Napi::CallbackInfo& info) { return RunAsync(info.Env(), DetectJob(info, bank_)); }
Napi::Value Bank::DetectScoresSync(const Napi::CallbackInfo& info) {
  return RunSync(info.Env(), DetectJob(info, bank_));
}
Napi::Value Bank::ScoreGradient(const Napi::CallbackInfo& info) {
  return RunAsync(info.Env(), GradientJob(info, bank_));
}
Napi::Value Bank::ScoreGradientSync(const Napi::CallbackInfo& info) {
  return RunSync(info.Env(), GradientJob(info, bank_));
}

}  // namespace binding
