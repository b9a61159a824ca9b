// A kernel call prepared on the main thread (arguments validated, outputs allocated, inputs
// pinned by references), then run either synchronously or on a libuv worker thread. Small
// jobs run inline even when a Promise is asked for: a thread hop costs more than they do.
#pragma once

#include <napi.h>

#include <functional>
#include <vector>

#include "nfp/status.h"

namespace binding {

struct Job {
  std::function<nfp::Status()> run;  // any thread; touches no JavaScript value
  // Main thread, after run() succeeded; receives `keep_alive` back (handles do not outlive a
  // scope, so results are rebuilt from it rather than captured).
  std::function<Napi::Value(Napi::Env, const std::vector<Napi::Value>&)> result;
  std::vector<Napi::Value> keep_alive;  // inputs and outputs `run` reads or writes, outputs too
  double work = 0;                      // rough element operations, picks inline vs worker
};

// Runs now; throws the mapped JavaScript error on failure.
Napi::Value RunSync(Napi::Env env, Job job);

// Returns a Promise; runs inline when job.work is small, else on the libuv pool.
Napi::Value RunAsync(Napi::Env env, Job job);

}  // namespace binding
