// Linked into the prebuilt addon only (NFP_STATIC_LIBSTDCXX). The static libstdc++ of a glibc 2.36
// system refers to arc4random (std::random_device, which the addon never uses); defined here, the
// binary loads on glibc 2.34 and 2.35 as well (Ubuntu 22.04, RHEL 9) instead of needing 2.36.
#include <sys/random.h>

#include <cstdint>
#include <cstdlib>

extern "C" __attribute__((visibility("hidden"))) uint32_t arc4random(void) {
  uint32_t value = 0;
  if (getrandom(&value, sizeof value, 0) != static_cast<ssize_t>(sizeof value)) std::abort();
  return value;
}
