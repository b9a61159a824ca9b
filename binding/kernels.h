// The stateless kernels exposed to JavaScript: subsetMeans and screen, each as a Promise and
// as a synchronous call, and the synchronous rowsWithin (too short to be worth a thread).
#pragma once

#include <napi.h>

namespace binding {

Napi::Value SubsetMeans(const Napi::CallbackInfo& info);
Napi::Value SubsetMeansSync(const Napi::CallbackInfo& info);
Napi::Value Screen(const Napi::CallbackInfo& info);
Napi::Value ScreenSync(const Napi::CallbackInfo& info);
// rowsWithin({ data, rows, lo, hi }): Uint8Array [rows], 1 where every value of the row is in [lo, hi].
Napi::Value RowsWithin(const Napi::CallbackInfo& info);

}  // namespace binding
