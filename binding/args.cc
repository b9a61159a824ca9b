// Argument validation helpers (see args.h).
#include "args.h"

#include <cmath>
#include <sstream>

namespace binding {
namespace {

const char* CodeName(nfp::Code code) {
  switch (code) {
    case nfp::Code::kOk:
      return "NFP_OK";
    case nfp::Code::kInvalidArgument:
      return "NFP_INVALID_ARGUMENT";
    case nfp::Code::kOutOfRange:
      return "NFP_OUT_OF_RANGE";
    case nfp::Code::kNonFinite:
      return "NFP_NON_FINITE";
    case nfp::Code::kUnavailable:
      return "NFP_UNAVAILABLE";
    case nfp::Code::kInternal:
      return "NFP_INTERNAL";
  }
  return "NFP_INTERNAL";
}

template <typename E>
E Tagged(E error, const char* code, const std::string& argument) {
  error.Set("code", Napi::String::New(error.Env(), code));
  if (!argument.empty()) error.Set("argument", Napi::String::New(error.Env(), argument));
  return error;
}

}  // namespace

std::string Describe(const Napi::Value& value) {
  std::ostringstream out;
  switch (value.Type()) {
    case napi_undefined:
      return "undefined";
    case napi_null:
      return "null";
    case napi_boolean:
      return value.As<Napi::Boolean>().Value() ? "true" : "false";
    case napi_number: {
      out.precision(17);
      out << "the number " << value.As<Napi::Number>().DoubleValue();
      return out.str();
    }
    case napi_string: {
      std::string s = value.As<Napi::String>().Utf8Value();
      if (s.size() > 40) s = s.substr(0, 40) + "...";
      return "a string ('" + s + "')";
    }
    case napi_symbol:
      return "a symbol";
    case napi_function:
      return "a function";
    case napi_bigint:
      return "a bigint";
    case napi_external:
      return "an external";
    case napi_object:
      break;
  }
  if (value.IsArray()) return "an Array of length " + std::to_string(value.As<Napi::Array>().Length());
  if (value.IsTypedArray()) {
    Napi::TypedArray t = value.As<Napi::TypedArray>();
    static const char* const names[] = {"Int8Array",    "Uint8Array",    "Uint8ClampedArray", "Int16Array",
                                        "Uint16Array",  "Int32Array",    "Uint32Array",       "Float32Array",
                                        "Float64Array", "BigInt64Array", "BigUint64Array"};
    const auto type = static_cast<std::size_t>(t.TypedArrayType());
    const char* name = type < sizeof(names) / sizeof(names[0]) ? names[type] : "TypedArray";
    return std::string("a ") + name + " of length " + std::to_string(t.ElementLength());
  }
  if (value.IsArrayBuffer()) return "an ArrayBuffer";
  if (value.IsBuffer()) return "a Buffer";
  return "an object";
}

void ThrowTypeError(Napi::Env env, const std::string& argument, const std::string& expected,
                    const Napi::Value& received) {
  throw Tagged(
      Napi::TypeError::New(env, "Expected " + expected + " for " + argument + " but received " + Describe(received)),
      "NFP_INVALID_ARGUMENT", argument);
}

void ThrowRangeError(Napi::Env env, const std::string& argument, const std::string& message) {
  throw Tagged(Napi::RangeError::New(env, message), "NFP_INVALID_ARGUMENT", argument);
}

Napi::Error StatusError(Napi::Env env, const nfp::Status& status) {
  switch (status.code) {
    case nfp::Code::kInvalidArgument:
    case nfp::Code::kOutOfRange:
    case nfp::Code::kNonFinite:
      return Tagged(Napi::RangeError::New(env, status.message), CodeName(status.code), status.argument);
    default:
      return Tagged(Napi::Error::New(env, status.message), CodeName(status.code), status.argument);
  }
}

Napi::Object OptionsArg(const Napi::CallbackInfo& info, const char* function) {
  if (info.Length() < 1 || !info[0].IsObject() || info[0].IsArray() || info[0].IsTypedArray()) {
    ThrowTypeError(info.Env(), std::string("the options of ") + function, "an object",
                   info.Length() < 1 ? info.Env().Undefined() : info[0]);
  }
  return info[0].As<Napi::Object>();
}

std::size_t DimArg(const Napi::Object& options, const char* name, std::size_t min, std::size_t max) {
  return DimValue(options.Env(), options.Get(name), name, min, max);
}

std::size_t DimValue(Napi::Env env, const Napi::Value& v, const std::string& name, std::size_t min, std::size_t max) {
  const std::string expected = "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  if (!v.IsNumber()) ThrowTypeError(env, name, expected, v);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d) || d < static_cast<double>(min) || d > static_cast<double>(max)) {
    std::ostringstream out;
    out.precision(17);
    out << "Expected " << expected << " for " << name << " but received " << Describe(v);
    ThrowRangeError(env, name, out.str());
  }
  return static_cast<std::size_t>(d);
}

std::string EnumArg(const Napi::Object& options, const char* name, std::initializer_list<const char*> allowed,
                    const char* fallback) {
  Napi::Value v = options.Get(name);
  if (v.IsUndefined()) return fallback;
  std::string list;
  for (const char* a : allowed) list += (list.empty() ? "'" : ", '") + std::string(a) + "'";
  if (v.IsString()) {
    const std::string s = v.As<Napi::String>().Utf8Value();
    for (const char* a : allowed) {
      if (s == a) return s;
    }
  }
  ThrowTypeError(options.Env(), name, "one of " + list, v);
}

bool BoolArg(const Napi::Object& options, const char* name, bool fallback) {
  Napi::Value v = options.Get(name);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) ThrowTypeError(options.Env(), name, "a boolean", v);
  return v.As<Napi::Boolean>().Value();
}

std::size_t CheckedProduct(Napi::Env env, const char* argument, std::size_t a, std::size_t b) {
  std::size_t out = 0;
  if (__builtin_mul_overflow(a, b, &out) || out > (std::size_t{1} << 53)) {
    ThrowRangeError(env, argument,
                    "Expected a shape whose size fits in memory for " + std::string(argument) + " but received " +
                        std::to_string(a) + " x " + std::to_string(b));
  }
  return out;
}

void ExpectLength(Napi::Env env, const char* argument, std::size_t length, std::size_t expected,
                  const std::string& shape) {
  if (length != expected) {
    ThrowRangeError(env, argument,
                    "Expected " + std::to_string(expected) + " elements (" + shape + ") for " + argument +
                        " but received " + std::to_string(length));
  }
}

}  // namespace binding
