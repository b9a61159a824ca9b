// A persistent worker pool shared by all CPU kernels. Many callers (Node's libuv threads, test
// threads) may run parallel_for at once: each call is an independent job that the caller helps
// to finish, so concurrent calls cannot deadlock. Kernels do not nest parallel_for.
#pragma once

#include <cstddef>
#include <functional>

namespace nfp {

// Threads used by parallel_for, the caller included. Defaults to NFP_THREADS from the
// environment when set, else std::thread::hardware_concurrency().
std::size_t threads();

// Resizes the pool; waits for running jobs to finish first. n = 0 restores the default.
void set_threads(std::size_t n);

// The default thread count (NFP_THREADS or the hardware's).
std::size_t default_threads();

// Calls body(begin, end) over [0, n) in chunks of at least `grain` items, on up to threads()
// threads. Runs inline when one chunk covers the range.
void parallel_for(std::size_t n, std::size_t grain, const std::function<void(std::size_t, std::size_t)>& body);

}  // namespace nfp
