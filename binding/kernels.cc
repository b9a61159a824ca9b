// subsetMeans and screen: validate the options object, allocate outputs, build the job.
#include "kernels.h"

#include <cmath>
#include <string>

#include "args.h"
#include "job.h"
#include "nfp/dispatch.h"
#include "runtime.h"

namespace binding {
namespace {

// Shared by the Sync and Promise forms: everything but the choice of how to run.
Job SubsetMeansJob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = OptionsArg(info, "subsetMeans");
  auto acts = TypedArrayArg<float>(o, "acts");
  const std::size_t rows = DimArg(o, "rows", 0);
  const std::size_t neurons = DimArg(o, "neurons", 1);
  auto subsets = TypedArrayArg<std::uint32_t>(o, "subsets");
  const std::size_t k = DimArg(o, "k", 1);
  ExpectLength(env, "acts", acts.ElementLength(), CheckedProduct(env, "acts", rows, neurons), "rows x neurons");
  if (subsets.ElementLength() % k != 0) {
    ThrowRangeError(env, "subsets",
                    "Expected a multiple of k (" + std::to_string(k) + ") elements for subsets but received " +
                        std::to_string(subsets.ElementLength()));
  }
  const std::size_t count = subsets.ElementLength() / k;
  auto out = Napi::Float32Array::New(env, CheckedProduct(env, "subsetMeans output", rows, count));
  Job job;
  const float* a = acts.Data();
  const std::uint32_t* s = subsets.Data();
  float* dst = out.Data();
  const nfp::BackendKind backend = CurrentBackend();
  job.run = [=] { return nfp::subset_means(backend, {a, rows, neurons}, {s, count, k}, dst); };
  job.result = [](Napi::Env, const std::vector<Napi::Value>& kept) { return kept[2]; };
  job.keep_alive = {acts, subsets, out};
  job.work = static_cast<double>(rows) * count * k;
  return job;
}

Job ScreenJob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = OptionsArg(info, "screen");
  auto clean = TypedArrayArg<float>(o, "clean");
  const std::size_t clean_rows = DimArg(o, "cleanRows", 2);
  auto attacked = TypedArrayArg<float>(o, "attacked");
  const std::size_t attacked_rows = DimArg(o, "attackedRows", 2);
  const std::size_t neurons = DimArg(o, "neurons", 1);
  auto candidates = TypedArrayArg<std::uint32_t>(o, "candidates");
  const std::size_t k = DimArg(o, "k", 1);
  const std::string test = EnumArg(o, "test", {"welch", "student"}, "welch");
  ExpectLength(env, "clean", clean.ElementLength(), CheckedProduct(env, "clean", clean_rows, neurons),
               "cleanRows x neurons");
  ExpectLength(env, "attacked", attacked.ElementLength(), CheckedProduct(env, "attacked", attacked_rows, neurons),
               "attackedRows x neurons");
  if (candidates.ElementLength() % k != 0) {
    ThrowRangeError(env, "candidates",
                    "Expected a multiple of k (" + std::to_string(k) + ") elements for candidates but received " +
                        std::to_string(candidates.ElementLength()));
  }
  const std::size_t count = candidates.ElementLength() / k;
  // One buffer, seven views: mu0, sd0, mu1, sd1, t, p, d.
  auto buffer = Napi::ArrayBuffer::New(env, CheckedProduct(env, "screen output", 7 * sizeof(double), count));
  double* base = static_cast<double*>(buffer.Data());
  Job job;
  const float* c0 = clean.Data();
  const float* c1 = attacked.Data();
  const std::uint32_t* idx = candidates.Data();
  const auto kind = test == "student" ? nfp::stats::TTest::kStudent : nfp::stats::TTest::kWelch;
  const nfp::BackendKind backend = CurrentBackend();
  job.run = [=] {
    nfp::ScreenOutputs out{
        base, base + count, base + 2 * count, base + 3 * count, base + 4 * count, base + 5 * count, base + 6 * count};
    return nfp::screen(backend, {c0, clean_rows, neurons}, {c1, attacked_rows, neurons}, {idx, count, k}, kind, out);
  };
  job.result = [count](Napi::Env env, const std::vector<Napi::Value>& kept) {
    auto buf = kept[3].As<Napi::ArrayBuffer>();
    Napi::Object r = Napi::Object::New(env);
    const char* names[] = {"mu0", "sd0", "mu1", "sd1", "t", "p", "d"};
    for (std::size_t i = 0; i < 7; ++i) {
      r.Set(names[i], Napi::Float64Array::New(env, count, buf, i * count * sizeof(double)));
    }
    return Napi::Value(r);
  };
  job.keep_alive = {clean, attacked, candidates, buffer};
  job.work = static_cast<double>(clean_rows + attacked_rows) * count * k;
  return job;
}

// A number option that may be any non-NaN double, infinities included (bounds).
double BoundArg(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber() || std::isnan(v.As<Napi::Number>().DoubleValue())) {
    ThrowTypeError(o.Env(), name, "a number (not NaN)", v);
  }
  return v.As<Napi::Number>().DoubleValue();
}

}  // namespace

Napi::Value RowsWithin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = OptionsArg(info, "rowsWithin");
  auto data = TypedArrayArg<float>(o, "data");
  const std::size_t rows = DimArg(o, "rows", 0);
  const double lo = BoundArg(o, "lo"), hi = BoundArg(o, "hi");
  const std::size_t n = data.ElementLength();
  if (rows == 0 ? n != 0 : n % rows != 0) {
    ThrowRangeError(env, "data",
                    "Expected a multiple of rows (" + std::to_string(rows) + ") elements for data but received " +
                        std::to_string(n));
  }
  auto out = Napi::Uint8Array::New(env, rows);
  const nfp::Status st = nfp::cpu::rows_within(data.Data(), rows, rows == 0 ? 0 : n / rows, lo, hi, out.Data());
  if (!st.ok()) throw StatusError(env, st);
  return out;
}

Napi::Value SubsetMeans(const Napi::CallbackInfo& info) { return RunAsync(info.Env(), SubsetMeansJob(info)); }
Napi::Value SubsetMeansSync(const Napi::CallbackInfo& info) { return RunSync(info.Env(), SubsetMeansJob(info)); }
Napi::Value Screen(const Napi::CallbackInfo& info) { return RunAsync(info.Env(), ScreenJob(info)); }
Napi::Value ScreenSync(const Napi::CallbackInfo& info) { return RunSync(info.Env(), ScreenJob(info)); }

}  // namespace binding
