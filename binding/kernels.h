// The stateless kernels exposed to JavaScript: subsetMeans and screen, each as a Promise and
// as a synchronous call.
#pragma once

#include <napi.h>

namespace binding {

Napi::Value SubsetMeans(const Napi::CallbackInfo& info);
Napi::Value SubsetMeansSync(const Napi::CallbackInfo& info);
Napi::Value Screen(const Napi::CallbackInfo& info);
Napi::Value ScreenSync(const Napi::CallbackInfo& info);

}  // namespace binding
