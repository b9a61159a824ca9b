// A minimal assertion harness for the ctest executables: no dependency, one line per failure,
// a non-zero exit code when anything failed, and a closing "N passed, N failed" line.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace check {

struct Registry {
  std::vector<std::pair<std::string, std::function<void()>>> tests;
  int failures = 0;
  static Registry& get() {
    static Registry r;
    return r;
  }
};

struct Register {
  Register(const char* name, std::function<void()> fn) { Registry::get().tests.emplace_back(name, std::move(fn)); }
};

inline void Fail(const char* file, int line, const std::string& what) {
  ++Registry::get().failures;
  std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
}

inline bool Close(double a, double b, double rel, double abs_tol) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::fabs(a - b) <= abs_tol + rel * std::fabs(b);
}

inline int RunAll() {
  int passed = 0, failed = 0;
  for (auto& [name, fn] : Registry::get().tests) {
    const int before = Registry::get().failures;
    fn();
    if (Registry::get().failures == before) {
      ++passed;
      std::printf("  ok  %s\n", name.c_str());
    } else {
      ++failed;
      std::printf("  FAIL %s\n", name.c_str());
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

}  // namespace check

#define CHECK_CAT2(a, b) a##b
#define CHECK_CAT(a, b) CHECK_CAT2(a, b)
#define TEST(name)                                                \
  static void name();                                             \
  static check::Register CHECK_CAT(register_, name)(#name, name); \
  static void name()
#define CHECK(cond)                                      \
  do {                                                   \
    if (!(cond)) check::Fail(__FILE__, __LINE__, #cond); \
  } while (0)
#define CHECK_MSG(cond, msg)                                                         \
  do {                                                                               \
    if (!(cond)) check::Fail(__FILE__, __LINE__, std::string(#cond) + ": " + (msg)); \
  } while (0)
#define CHECK_CLOSE(a, b, rel, abs_tol)                                                                          \
  do {                                                                                                           \
    const double check_a_ = (a), check_b_ = (b);                                                                 \
    if (!check::Close(check_a_, check_b_, rel, abs_tol))                                                         \
      check::Fail(__FILE__, __LINE__,                                                                            \
                  std::string(#a " ~ " #b ": ") + std::to_string(check_a_) + " vs " + std::to_string(check_b_)); \
  } while (0)
#define CHECK_MAIN() \
  int main() { return check::RunAll(); }
