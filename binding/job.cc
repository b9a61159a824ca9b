// Sync and async execution of prepared kernel jobs (see job.h).
#include "job.h"

#include "args.h"

namespace binding {
namespace {

// Below this many element operations a job runs inline (tens of microseconds at most).
constexpr double kInlineWork = 2e5;

class Worker : public Napi::AsyncWorker {
 public:
  Worker(Napi::Env env, Job job)
      : Napi::AsyncWorker(env, "nfp:kernel"), job_(std::move(job)), deferred_(Napi::Promise::Deferred::New(env)) {
    for (Napi::Value& v : job_.keep_alive) refs_.push_back(Napi::Persistent(v.As<Napi::Object>()));
    job_.keep_alive.clear();
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      status_ = job_.run();
    } catch (const std::exception& e) {
      status_ = nfp::Error(nfp::Code::kInternal, "", std::string("Internal error: ") + e.what());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (!status_.ok()) {
      deferred_.Reject(StatusError(env, status_).Value());
      return;
    }
    std::vector<Napi::Value> kept;
    for (auto& r : refs_) kept.push_back(r.Value());
    try {
      deferred_.Resolve(job_.result(env, kept));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Job job_;
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> refs_;
  nfp::Status status_;
};

}  // namespace

Napi::Value RunSync(Napi::Env env, Job job) {
  nfp::Status status;
  try {
    status = job.run();
  } catch (const std::exception& e) {
    status = nfp::Error(nfp::Code::kInternal, "", std::string("Internal error: ") + e.what());
  }
  if (!status.ok()) throw StatusError(env, status);
  return job.result(env, job.keep_alive);
}

Napi::Value RunAsync(Napi::Env env, Job job) {
  if (job.work < kInlineWork) {
    auto deferred = Napi::Promise::Deferred::New(env);
    try {
      deferred.Resolve(RunSync(env, std::move(job)));
    } catch (const Napi::Error& e) {
      deferred.Reject(e.Value());
    }
    return deferred.Promise();
  }
  auto* worker = new Worker(env, std::move(job));  // deleted by node-addon-api after OnOK/OnError
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace binding
