// rows_within: which rows hold only values in [lo, hi] (NaN and +-Infinity fail), the check every
// detect() runs on its input pixels before scoring. A row's scan stops at its first failure.
#include <cmath>
#include <limits>

#include "cpu/common.h"

namespace nfp {
namespace cpu {
namespace {

// The float bounds that give the same answers for float values as the double bounds: the smallest
// float >= lo and the largest float <= hi (a double bound past the float range becomes +-FLT_MAX, so
// that +-Infinity still fails).
float FloatAtLeast(double lo) {
  float f = static_cast<float>(lo);
  if (static_cast<double>(f) < lo) f = std::nextafter(f, std::numeric_limits<float>::infinity());
  return f;
}
float FloatAtMost(double hi) {
  float f = static_cast<float>(hi);
  if (static_cast<double>(f) > hi) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  return f;
}

// Branch-free over blocks of 64 values, so that the compiler vectorizes the comparisons; a block
// that fails ends the row. The tail's !(v >= lo && v <= hi) is true for NaN.
NFP_TARGET_CLONES bool RowWithin(const float* v, std::size_t n, float lo, float hi) {
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    // Bitwise, not short-circuit, so that the block is one run of vector compares (x != x: NaN).
    int fail = 0;
    for (std::size_t j = 0; j < 64; ++j) {
      const float x = v[i + j];
      fail |= static_cast<int>(x < lo) | static_cast<int>(x > hi) | static_cast<int>(x != x);
    }
    if (fail) return false;
  }
  for (; i < n; ++i) {
    if (!(v[i] >= lo && v[i] <= hi)) return false;
  }
  return true;
}

}  // namespace

Status rows_within(const float* data, std::size_t rows, std::size_t per_row, double lo, double hi, std::uint8_t* out) {
  if (std::isnan(lo) || std::isnan(hi)) {
    return Error(Code::kInvalidArgument, "range", "Expected bounds that are numbers for range but received NaN");
  }
  const float lo_f = FloatAtLeast(lo), hi_f = FloatAtMost(hi);
  for (std::size_t r = 0; r < rows; ++r) out[r] = RowWithin(data + r * per_row, per_row, lo_f, hi_f) ? 1 : 0;
  return Status::Ok();
}

}  // namespace cpu
}  // namespace nfp
