// Thread count, backend choice and build information (see runtime.h).
#include "runtime.h"

#include <cstdlib>
#include <mutex>
#include <string>

#include "args.h"
#include "nfp/backend.h"
#include "nfp/thread_pool.h"

namespace binding {
namespace {

std::mutex backend_mu;
nfp::BackendChoice backend_choice;
std::string backend_requested = "auto";

}  // namespace

void InitRuntime() {
  const char* env = std::getenv("NFP_BACKEND");
  std::string want = env != nullptr && *env != '\0' ? env : "auto";
  nfp::BackendChoice choice;
  nfp::Status status = nfp::choose_backend(want, &choice);
  if (!status.ok()) {
    // An environment preference is not an API call: fall back and say why in info().
    nfp::choose_backend("cpu", &choice);
    choice.message = "NFP_BACKEND=" + want + " ignored: " + status.message + "; using cpu";
  }
  std::lock_guard<std::mutex> lock(backend_mu);
  backend_requested = want;
  backend_choice = choice;
}

nfp::BackendKind CurrentBackend() {
  std::lock_guard<std::mutex> lock(backend_mu);
  return backend_choice.kind;
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object r = Napi::Object::New(env);
  {
    std::lock_guard<std::mutex> lock(backend_mu);
    r.Set("backend", nfp::backend_name(backend_choice.kind));
    r.Set("backendRequested", backend_requested);
    r.Set("backendMessage", backend_choice.message);
  }
  r.Set("threads", static_cast<double>(nfp::threads()));
  r.Set("defaultThreads", static_cast<double>(nfp::default_threads()));
  const nfp::CudaInfo& cuda = nfp::cuda_info();
  Napi::Object c = Napi::Object::New(env);
  c.Set("compiled", cuda.compiled);
  c.Set("devices", cuda.devices);
  c.Set("deviceName", cuda.device_name);
  c.Set("runtime", cuda.runtime);
  c.Set("kernels", cuda.kernels);
  c.Set("usable", cuda.usable());
  c.Set("reason", cuda.reason);
  r.Set("cuda", c);
  r.Set("napiVersion", NAPI_VERSION);
#if defined(__clang__)
  r.Set("compiler", std::string("clang ") + __clang_version__);
#elif defined(__GNUC__)
  r.Set("compiler", std::string("gcc ") + __VERSION__);
#endif
  return r;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    ThrowTypeError(env, "threads", "an integer in [0, 1024]", info.Length() < 1 ? env.Undefined() : info[0]);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("threads", info[0]);
  nfp::set_threads(DimArg(o, "threads", 0, 1024));
  return Napi::Number::New(env, static_cast<double>(nfp::threads()));
}

Napi::Value SetBackend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    ThrowTypeError(env, "backend", "one of 'auto', 'cpu', 'cuda'", info.Length() < 1 ? env.Undefined() : info[0]);
  }
  const std::string want = info[0].As<Napi::String>().Utf8Value();
  nfp::BackendChoice choice;
  nfp::Status status = nfp::choose_backend(want, &choice);
  if (!status.ok()) throw StatusError(env, status);
  std::lock_guard<std::mutex> lock(backend_mu);
  backend_requested = want;
  backend_choice = choice;
  return Napi::String::New(env, nfp::backend_name(choice.kind));
}

}  // namespace binding
