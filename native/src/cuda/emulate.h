// A small CUDA emulator for testing the kernels of launch.cu on a machine without a GPU: the
// kernels compile as plain C++ and run with one std::thread per CUDA thread, a block at a time,
// with real barriers for __syncthreads and for warp intrinsics. It checks the kernels' logic
// (indexing, reductions, flags, edge cases); timing, the memory model and launch limits of real
// hardware are not emulated, which is what a run on a GPU (scripts/verify-gpu.sh) adds.
// Only what launch.cu uses is provided. Build with NFP_CUDA_EMULATE defined.
#pragma once

#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

using cudaStream_t = struct CUstream_st*;
enum cudaError_t { cudaSuccess = 0, cudaErrorInvalidConfiguration = 9 };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace nfp_emu {

// A reusable barrier for `count` threads (C++17 has no std::barrier).
class Barrier {
 public:
  void Reset(std::size_t count) {
    count_ = count;
    waiting_ = 0;
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    const std::size_t generation = generation_;
    if (++waiting_ == count_) {
      waiting_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation != generation_; });
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t count_ = 0, waiting_ = 0, generation_ = 0;
};

struct Block {
  Barrier all;
  Barrier warps[32];
  double slots[32][32];  // [warp][lane]: values exchanged by shuffles and votes
  std::vector<unsigned char> dynamic_shared;
};

inline Block& block() {
  static Block b;
  return b;
}
inline thread_local dim3 thread_idx, block_idx;
inline dim3 block_dim, grid_dim;
inline cudaError_t last_error = cudaSuccess;

inline unsigned Linear() { return thread_idx.y * block_dim.x + thread_idx.x; }

// Runs `kernel` over the grid: blocks one after another (so `static` stands in for __shared__),
// the threads of a block concurrently.
inline void Launch(dim3 grid, dim3 blockd, std::size_t shared_bytes, const std::function<void()>& kernel) {
  const unsigned threads = blockd.x * blockd.y * blockd.z;
  if (threads == 0 || threads > 1024 || grid.x == 0 || grid.y > 65535 || (threads % 32) != 0) {
    last_error = cudaErrorInvalidConfiguration;
    return;
  }
  grid_dim = grid;
  block_dim = blockd;
  Block& b = block();
  b.dynamic_shared.assign(shared_bytes, 0xcd);  // garbage, as on a GPU
  b.all.Reset(threads);
  for (auto& w : b.warps) w.Reset(32);
  for (unsigned by = 0; by < grid.y; ++by) {
    for (unsigned bx = 0; bx < grid.x; ++bx) {
      std::vector<std::thread> pool;
      pool.reserve(threads);
      for (unsigned t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
          thread_idx = dim3(t % blockd.x, t / blockd.x);
          block_idx = dim3(bx, by);
          kernel();
        });
      }
      for (auto& th : pool) th.join();
    }
  }
}

inline void SyncThreads() { block().all.Wait(); }
inline void SyncWarp() { block().warps[Linear() / 32].Wait(); }

template <typename T>
T ShflDown(T v, int offset) {
  Block& b = block();
  const unsigned lane = Linear() % 32, warp = Linear() / 32;
  b.slots[warp][lane] = static_cast<double>(v);
  b.warps[warp].Wait();
  const T r = lane + offset < 32 ? static_cast<T>(b.slots[warp][lane + offset]) : v;
  b.warps[warp].Wait();
  return r;
}

inline bool Any(bool pred) {
  Block& b = block();
  const unsigned lane = Linear() % 32, warp = Linear() / 32;
  b.slots[warp][lane] = pred ? 1.0 : 0.0;
  b.warps[warp].Wait();
  bool any = false;
  for (int l = 0; l < 32; ++l) any = any || b.slots[warp][l] != 0.0;
  b.warps[warp].Wait();
  return any;
}

inline unsigned long long AtomicMin(unsigned long long* p, unsigned long long v) {
  unsigned long long cur = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (v < cur && !__atomic_compare_exchange_n(p, &cur, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return cur;
}

inline float AtomicAdd(float* p, float v) {
  std::uint32_t* bits = reinterpret_cast<std::uint32_t*>(p);
  std::uint32_t cur = __atomic_load_n(bits, __ATOMIC_RELAXED);
  for (;;) {
    float f;
    std::memcpy(&f, &cur, 4);
    const float next = f + v;
    std::uint32_t want;
    std::memcpy(&want, &next, 4);
    if (__atomic_compare_exchange_n(bits, &cur, want, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) return f;
  }
}

}  // namespace nfp_emu

#define __global__
#define __device__
#define __host__
#define __shared__ static
#define threadIdx (::nfp_emu::thread_idx)
#define blockIdx (::nfp_emu::block_idx)
#define blockDim (::nfp_emu::block_dim)
#define gridDim (::nfp_emu::grid_dim)
#define __syncthreads() ::nfp_emu::SyncThreads()
#define __syncwarp() ::nfp_emu::SyncWarp()
#define __shfl_down_sync(mask, v, offset) ::nfp_emu::ShflDown((v), (offset))
#define __any_sync(mask, pred) ::nfp_emu::Any(pred)
#define __ldg(p) (*(p))
#define atomicMin(p, v) ::nfp_emu::AtomicMin((p), (v))
#define atomicAdd(p, v) ::nfp_emu::AtomicAdd((p), (v))
#define NFP_LAUNCH(kernel, grid, block, shared, stream, ...) \
  ::nfp_emu::Launch(dim3(grid), dim3(block), (shared), [&] { kernel(__VA_ARGS__); })
#define NFP_DYNAMIC_SHARED(type, name) type* name = reinterpret_cast<type*>(::nfp_emu::block().dynamic_shared.data())

inline cudaError_t cudaGetLastError() {
  const cudaError_t e = ::nfp_emu::last_error;
  ::nfp_emu::last_error = cudaSuccess;
  return e;
}
template <typename F>
cudaError_t cudaFuncSetAttribute(F, cudaFuncAttribute, int) {
  return cudaSuccess;
}
using std::isfinite;
