// Process-wide settings exposed to JavaScript: thread count, backend choice, and build info.
#pragma once

#include <napi.h>

namespace binding {

void InitRuntime();  // reads NFP_BACKEND once at load
Napi::Value Info(const Napi::CallbackInfo& info);
Napi::Value SetThreads(const Napi::CallbackInfo& info);
Napi::Value SetBackend(const Napi::CallbackInfo& info);

}  // namespace binding
