// Process-wide settings exposed to JavaScript: thread count, backend choice, and build info.
#pragma once

#include <napi.h>

#include "nfp/backend.h"

namespace binding {

void InitRuntime();  // reads NFP_BACKEND once at load
Napi::Value Info(const Napi::CallbackInfo& info);
Napi::Value SetThreads(const Napi::CallbackInfo& info);
Napi::Value SetBackend(const Napi::CallbackInfo& info);

// The backend chosen now (NFP_BACKEND at load, then setBackend); a job reads it when it is
// created, so a call already queued keeps the backend it was made with.
nfp::BackendKind CurrentBackend();

}  // namespace binding
