// Argument validation at the N-API boundary: every value from JavaScript is checked here (type,
// integer range, typed-array kind and exact length) and rejected with a TypeError or RangeError
// of one shape, "Expected <what> for <argument> but received <value>", before any kernel runs.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "nfp/status.h"

namespace binding {

// A short description of a JavaScript value for error messages: "undefined", "a string ('x')",
// "a Float64Array of length 3", "the number 2.5".
std::string Describe(const Napi::Value& value);

[[noreturn]] void ThrowTypeError(Napi::Env env, const std::string& argument, const std::string& expected,
                                 const Napi::Value& received);
[[noreturn]] void ThrowRangeError(Napi::Env env, const std::string& argument, const std::string& message);

// A JavaScript Error for a failed nfp::Status: RangeError for argument problems, Error
// otherwise; `code` is NFP_<CODE> and `argument` names the parameter.
Napi::Error StatusError(Napi::Env env, const nfp::Status& status);

// The single options object every kernel takes.
Napi::Object OptionsArg(const Napi::CallbackInfo& info, const char* function);

// An integer in [min, max] (JavaScript numbers only; NaN, fractions and infinities rejected).
std::size_t DimArg(const Napi::Object& options, const char* name, std::size_t min, std::size_t max = 0xFFFFFFFFull);

// The same for a value already read, e.g. a field of an array element ("taps[2].width").
std::size_t DimValue(Napi::Env env, const Napi::Value& value, const std::string& name, std::size_t min,
                     std::size_t max = 0xFFFFFFFFull);

// Optional string among `allowed` (comma-separated in the message), `fallback` when absent.
std::string EnumArg(const Napi::Object& options, const char* name, std::initializer_list<const char*> allowed,
                    const char* fallback);

bool BoolArg(const Napi::Object& options, const char* name, bool fallback);

template <typename T>
struct TypedArrayTraits;
template <>
struct TypedArrayTraits<float> {
  static constexpr napi_typedarray_type kType = napi_float32_array;
  static constexpr const char* kName = "Float32Array";
};
template <>
struct TypedArrayTraits<std::uint32_t> {
  static constexpr napi_typedarray_type kType = napi_uint32_array;
  static constexpr const char* kName = "Uint32Array";
};

template <typename T>
Napi::TypedArrayOf<T> TypedArrayValue(Napi::Env env, const Napi::Value& v, const std::string& name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != TypedArrayTraits<T>::kType) {
    ThrowTypeError(env, name, std::string("a ") + TypedArrayTraits<T>::kName, v);
  }
  return v.As<Napi::TypedArrayOf<T>>();
}

template <typename T>
Napi::TypedArrayOf<T> TypedArrayArg(const Napi::Object& options, const char* name) {
  return TypedArrayValue<T>(options.Env(), options.Get(name), name);
}

// rows * cols without overflow; throws RangeError naming `argument` when it would overflow.
std::size_t CheckedProduct(Napi::Env env, const char* argument, std::size_t a, std::size_t b);

// Requires `array` to hold exactly `expected` elements, `shape` explaining where that comes from.
void ExpectLength(Napi::Env env, const char* argument, std::size_t length, std::size_t expected,
                  const std::string& shape);

}  // namespace binding
