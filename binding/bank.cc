// The Bank class (see bank.h).
#include "bank.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "job.h"
#include "nfp/dispatch.h"
#include "runtime.h"

namespace binding {
namespace {

// Tap buffers given in place of `acts` (detectScores), or their layout alone (bindTaps, no data): the
// layout the kernel reads them by, pointing into arrays that the job keeps alive.
struct TapArgs {
  std::vector<Napi::Value> arrays;
  std::vector<const float*> data;
  std::vector<std::size_t> offsets{0}, widths;
  std::vector<const std::uint32_t*> columns;
};

struct DrawArgs {
  Napi::Float32Array acts;
  Napi::Uint32Array draws;
  std::size_t rows;
  std::size_t per_row;
  nfp::Combine combine;
  std::shared_ptr<TapArgs> taps;  // set when the activations come as tap buffers
};

// A tap buffer's length checked against its layout: whole images of `width` values, at least `rows`.
void CheckImages(Napi::Env env, std::size_t n, std::size_t width, std::size_t rows, const std::string& name) {
  if (width == 0 ? n != 0 : n % width != 0 || n / width < rows) {
    ThrowRangeError(env, name,
                    "Expected whole images of width " + std::to_string(width) + ", at least rows (" +
                        std::to_string(rows) + ") of them, for " + name + " but received " + std::to_string(n) +
                        " values");
  }
}

// `taps`: [{ data: Float32Array, width, columns?: Uint32Array }] (without data for bindTaps), each
// buffer whole images of `width` values, at least `rows` of them; the sizes (columns' lengths, else
// widths) add up to the bank's neurons. Column bounds are checked by the kernel (nfp::cpu::check_taps).
std::shared_ptr<TapArgs> ReadTaps(const Napi::Object& o, std::size_t rows, std::size_t neurons, bool with_data) {
  Napi::Env env = o.Env();
  const char* shape = with_data ? "{ data, width, columns? }" : "{ width, columns? }";
  Napi::Value v = o.Get("taps");
  if (!v.IsArray()) ThrowTypeError(env, "taps", std::string("an array of ") + shape, v);
  auto list = v.As<Napi::Array>();
  auto t = std::make_shared<TapArgs>();
  for (std::uint32_t i = 0; i < list.Length(); ++i) {
    const std::string name = "taps[" + std::to_string(i) + "]";
    Napi::Value e = list.Get(i);
    if (!e.IsObject() || e.IsArray()) ThrowTypeError(env, name, std::string("an object ") + shape, e);
    Napi::Object tap = e.As<Napi::Object>();
    Napi::Float32Array data =
        with_data ? TypedArrayValue<float>(env, tap.Get("data"), name + ".data") : Napi::Float32Array();
    const std::size_t width = DimValue(env, tap.Get("width"), name + ".width", 0);
    Napi::Value cv = tap.Get("columns");
    const bool sampled = !cv.IsUndefined() && !cv.IsNull();
    Napi::Uint32Array columns =
        sampled ? TypedArrayValue<std::uint32_t>(env, cv, name + ".columns") : Napi::Uint32Array();
    if (with_data) {
      CheckImages(env, data.ElementLength(), width, rows, name + ".data");
      t->arrays.push_back(data);
      t->data.push_back(data.Data());
    }
    if (sampled) t->arrays.push_back(columns);
    t->widths.push_back(width);
    t->columns.push_back(sampled ? columns.Data() : nullptr);
    t->offsets.push_back(t->offsets.back() + (sampled ? columns.ElementLength() : width));
  }
  if (t->offsets.back() != neurons) {
    ThrowRangeError(env, "taps",
                    "Expected taps of " + std::to_string(neurons) + " neurons in all (the bank's) but received " +
                        std::to_string(t->offsets.back()));
  }
  return t;
}

void ReadDraws(const Napi::Object& o, DrawArgs* a);

// The activations (`acts`, or with `allow_taps` the tap buffers `taps`), rows, draws and combine.
DrawArgs ReadDrawArgs(const Napi::Object& o, const nfp::Bank& bank, bool allow_taps) {
  Napi::Env env = o.Env();
  DrawArgs a{Napi::Float32Array(), Napi::Uint32Array(), 0, 0, nfp::Combine::kMax, nullptr};
  if (allow_taps && !o.Get("taps").IsUndefined()) {
    if (!o.Get("acts").IsUndefined()) {
      ThrowTypeError(env, "acts", "undefined when taps are given (one or the other)", o.Get("acts"));
    }
    a.rows = DimArg(o, "rows", 0);
    a.taps = ReadTaps(o, a.rows, bank.neurons(), true);
    a.acts = Napi::Float32Array::New(env, 0);
  } else {
    a.acts = TypedArrayArg<float>(o, "acts");
    a.rows = DimArg(o, "rows", 0);
    ExpectLength(env, "acts", a.acts.ElementLength(), CheckedProduct(env, "acts", a.rows, bank.neurons()),
                 "rows x the bank's " + std::to_string(bank.neurons()) + " neurons");
  }
  ReadDraws(o, &a);
  return a;
}

// `draws` ([rows x per row]) and `combine` into `a`, whose rows are known.
void ReadDraws(const Napi::Object& o, DrawArgs* a) {
  Napi::Env env = o.Env();
  a->draws = TypedArrayArg<std::uint32_t>(o, "draws");
  a->combine =
      EnumArg(o, "combine", {"max", "logsumexp"}, "max") == "max" ? nfp::Combine::kMax : nfp::Combine::kLogSumExp;
  const std::size_t n = a->draws.ElementLength();
  if (a->rows == 0) {
    if (n != 0) ExpectLength(env, "draws", n, 0, "rows x draws per row, with rows = 0");
  } else if (n % a->rows != 0) {
    ThrowRangeError(env, "draws",
                    "Expected a multiple of rows (" + std::to_string(a->rows) + ") elements for draws but received " +
                        std::to_string(n));
  } else {
    a->per_row = n / a->rows;
  }
}

}  // namespace

// The TapBinding constructor of this addon instance (one per Node environment: worker threads
// load their own), which Bank.bindTaps instantiates.
struct Constructors {
  Napi::FunctionReference tap_binding;
};

Napi::Function Bank::Define(Napi::Env env) {
  auto* constructors = new Constructors();
  constructors->tap_binding = Napi::Persistent(TapBinding::Define(env));
  env.SetInstanceData<Constructors>(constructors);
  return DefineClass(
      env, "Bank",
      {InstanceMethod<&Bank::DetectScores>("detectScores"), InstanceMethod<&Bank::DetectScoresSync>("detectScoresSync"),
       InstanceMethod<&Bank::ScoreGradient>("scoreGradient"),
       InstanceMethod<&Bank::ScoreGradientSync>("scoreGradientSync"), InstanceMethod<&Bank::BindTaps>("bindTaps")});
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

// A detectScores job over validated arguments: `score(out)` runs the kernel into the outputs
// allocated here (score, familyScores, and means / terms when asked for).
Job DetectJobOf(const Napi::Object& o, const DrawArgs& a, std::size_t families, double work_per_draw,
                std::function<nfp::Status(const nfp::DetectOutputs&)> score) {
  Napi::Env env = o.Env();
  const bool want_means = BoolArg(o, "means", false), want_terms = BoolArg(o, "terms", false);
  const std::size_t A = families;
  auto out_score = Napi::Float32Array::New(env, a.rows);
  auto family = Napi::Float32Array::New(env, CheckedProduct(env, "familyScores", a.rows, A));
  auto means = Napi::Float32Array::New(env, want_means ? a.draws.ElementLength() : 0);
  auto terms = Napi::Float32Array::New(env, want_terms ? CheckedProduct(env, "terms", a.draws.ElementLength(), A) : 0);
  nfp::DetectOutputs out{out_score.Data(), family.Data(), want_means ? means.Data() : nullptr,
                         want_terms ? terms.Data() : nullptr};
  Job job;
  job.run = [score = std::move(score), out] { return score(out); };
  job.result = [want_means, want_terms](Napi::Env env, const std::vector<Napi::Value>& kept) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("score", kept[2]);
    r.Set("familyScores", kept[3]);
    if (want_means) r.Set("means", kept[4]);
    if (want_terms) r.Set("terms", kept[5]);
    return Napi::Value(r);
  };
  job.keep_alive = {a.acts, a.draws, out_score, family, means, terms};
  job.work = static_cast<double>(a.draws.ElementLength()) * work_per_draw;
  return job;
}

Job DetectJob(const Napi::CallbackInfo& info, const std::shared_ptr<const nfp::Bank>& bank) {
  Napi::Object o = OptionsArg(info, "detectScores");
  DrawArgs a = ReadDrawArgs(o, *bank, true);
  const float* acts = a.acts.Data();
  const nfp::Draws draws{a.draws.Data(), a.per_row};
  const std::size_t rows = a.rows;
  const nfp::Combine combine = a.combine;
  const nfp::BackendKind backend = CurrentBackend();
  const std::shared_ptr<const TapArgs> taps = a.taps;
  Job job = DetectJobOf(
      o, a, bank->families(), static_cast<double>(bank->k() + bank->families()), [=](const nfp::DetectOutputs& out) {
        if (taps != nullptr) {
          const nfp::TapActivations view{taps->data.data(),    taps->offsets.data(), taps->widths.data(),
                                         taps->columns.data(), taps->widths.size(),  rows};
          return nfp::detect_scores(backend, view, *bank, draws, combine, out);
        }
        return nfp::detect_scores(backend, {acts, rows, bank->neurons()}, *bank, draws, combine, out);
      });
  job.keep_alive.push_back(info.This());
  if (taps != nullptr) job.keep_alive.insert(job.keep_alive.end(), taps->arrays.begin(), taps->arrays.end());
  return job;
}

Job GradientJob(const Napi::CallbackInfo& info, const std::shared_ptr<const nfp::Bank>& bank) {
  Napi::Env env = info.Env();
  Napi::Object o = OptionsArg(info, "scoreGradient");
  DrawArgs a = ReadDrawArgs(o, *bank, false);
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

namespace {

// `taps`: [{ width, columns?: Uint32Array }] in tap order, as detectScores takes them but without data.
// The binding copies the columns and checks their bounds (TapBinding::Create).
std::unique_ptr<nfp::TapBinding> ReadBinding(const Napi::Object& o, const nfp::Bank& bank) {
  const std::shared_ptr<TapArgs> t = ReadTaps(o, 0, bank.neurons(), false);
  const nfp::TapActivations layout{nullptr,           t->offsets.data(), t->widths.data(),
                                   t->columns.data(), t->widths.size(),  0};
  nfp::Status status;
  std::unique_ptr<nfp::TapBinding> binding = nfp::TapBinding::Create(bank, layout, &status);
  if (!binding) throw StatusError(o.Env(), status);
  return binding;
}

// `data`: one Float32Array per tap of the binding, each whole images of the tap's width, at least `rows`.
Job BoundDetectJob(const Napi::CallbackInfo& info, const std::shared_ptr<const nfp::Bank>& bank,
                   const std::shared_ptr<const nfp::TapBinding>& binding) {
  Napi::Env env = info.Env();
  Napi::Object o = OptionsArg(info, "detectScores");
  DrawArgs a{
      Napi::Float32Array::New(env, 0), Napi::Uint32Array(), DimArg(o, "rows", 0), 0, nfp::Combine::kMax, nullptr};
  Napi::Value dv = o.Get("data");
  if (!dv.IsArray()) ThrowTypeError(env, "data", "an array of Float32Array, one per tap", dv);
  auto list = dv.As<Napi::Array>();
  if (list.Length() != binding->taps()) {
    ThrowRangeError(env, "data",
                    "Expected " + std::to_string(binding->taps()) +
                        " buffers (one per tap of the binding) for data "
                        "but received " +
                        std::to_string(list.Length()));
  }
  auto pointers = std::make_shared<std::vector<const float*>>();
  std::vector<Napi::Value> arrays;
  for (std::uint32_t t = 0; t < list.Length(); ++t) {
    const std::string name = "data[" + std::to_string(t) + "]";
    auto data = TypedArrayValue<float>(env, list.Get(t), name);
    CheckImages(env, data.ElementLength(), binding->width(t), a.rows, name);
    arrays.push_back(data);
    pointers->push_back(data.Data());
  }
  ReadDraws(o, &a);
  const nfp::Draws draws{a.draws.Data(), a.per_row};
  const std::size_t rows = a.rows;
  const nfp::Combine combine = a.combine;
  const nfp::BackendKind backend = CurrentBackend();
  Job job = DetectJobOf(o, a, bank->families(), static_cast<double>(bank->k() + bank->families()),
                        [=](const nfp::DetectOutputs& out) {
                          return nfp::detect_scores(backend, *binding, pointers->data(), rows, draws, combine, out);
                        });
  job.keep_alive.push_back(info.This());
  job.keep_alive.insert(job.keep_alive.end(), arrays.begin(), arrays.end());
  return job;
}

}  // namespace

Napi::Value Bank::BindTaps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = OptionsArg(info, "bindTaps");
  std::unique_ptr<nfp::TapBinding> made = ReadBinding(o, *bank_);
  Napi::Object obj = env.GetInstanceData<Constructors>()->tap_binding.New({});
  TapBinding* b = TapBinding::Unwrap(obj);
  b->bank_ = bank_;
  b->binding_ = std::move(made);
  return obj;
}

Napi::Function TapBinding::Define(Napi::Env env) {
  return DefineClass(env, "TapBinding",
                     {InstanceMethod<&TapBinding::DetectScores>("detectScores"),
                      InstanceMethod<&TapBinding::DetectScoresSync>("detectScoresSync")});
}

TapBinding::TapBinding(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TapBinding>(info) {}

Napi::Value TapBinding::DetectScores(const Napi::CallbackInfo& info) {
  if (!binding_) throw Napi::Error::New(info.Env(), "A TapBinding is made by Bank.bindTaps()");
  return RunAsync(info.Env(), BoundDetectJob(info, bank_, binding_));
}

Napi::Value TapBinding::DetectScoresSync(const Napi::CallbackInfo& info) {
  if (!binding_) throw Napi::Error::New(info.Env(), "A TapBinding is made by Bank.bindTaps()");
  return RunSync(info.Env(), BoundDetectJob(info, bank_, binding_));
}

}  // namespace binding
