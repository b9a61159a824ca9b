// Module entry point of nfp.node: registers the kernels, the Bank class and runtime settings.
// Nothing numeric lives in binding/: it validates, allocates, and calls native/.
#include <napi.h>

#include "bank.h"
#include "kernels.h"
#include "runtime.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  binding::InitRuntime();
  exports.Set("subsetMeans", Napi::Function::New<binding::SubsetMeans>(env, "subsetMeans"));
  exports.Set("subsetMeansSync", Napi::Function::New<binding::SubsetMeansSync>(env, "subsetMeansSync"));
  exports.Set("screen", Napi::Function::New<binding::Screen>(env, "screen"));
  exports.Set("screenSync", Napi::Function::New<binding::ScreenSync>(env, "screenSync"));
  exports.Set("rowsWithin", Napi::Function::New<binding::RowsWithin>(env, "rowsWithin"));
  exports.Set("Bank", binding::Bank::Define(env));
  exports.Set("info", Napi::Function::New<binding::Info>(env, "info"));
  exports.Set("setThreads", Napi::Function::New<binding::SetThreads>(env, "setThreads"));
  exports.Set("setBackend", Napi::Function::New<binding::SetBackend>(env, "setBackend"));
  return exports;
}

}  // namespace

NODE_API_MODULE(nfp, Init)
