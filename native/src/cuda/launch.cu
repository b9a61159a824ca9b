// The CUDA kernels. The arithmetic per fingerprint and per candidate is the CPU backend's own
// (shared/score_math.h, shared/stats_math.h, compiled here for the device); what differs is only
// how work is spread over threads, and with it the order in which sums over draws and images
// are added.
#include <algorithm>

#include "cuda/launch.h"
#include "shared/score_math.h"
#include "shared/stats_math.h"

#if !defined(NFP_CUDA_EMULATE)
// On a GPU: a plain launch. Under the emulator (cuda/emulate.h, tests only) these run the
// kernel on host threads.
#define NFP_LAUNCH(kernel, grid, block, shared, stream, ...) \
  kernel<<<(grid), (block), (shared), (stream)>>>(__VA_ARGS__)
#define NFP_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif

namespace nfp {
namespace cuda {
namespace launch {
namespace {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kRowThreads = 128;     // RowScores: threads per row (per block)
constexpr int kScreenThreads = 256;  // Screen: 8 warps per block, one candidate per warp at a time
constexpr int kImagesPerLane = 4;    // Screen: independent accumulators per lane, for memory parallelism

__device__ bool Finite(double x) { return isfinite(x); }

__device__ double WarpSum(double v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(kFullMask, v, offset);
  return v;
}

// Sum over the block in a fixed order (warp trees, then a tree over warps), so a score does not
// change from run to run. Every thread gets the total. `red` holds one double per warp.
__device__ double BlockSum(double v, double* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  v = WarpSum(v);
  __syncthreads();  // `red` may still be read from the previous call
  if (lane == 0) red[warp] = v;
  __syncthreads();
  double total = 0.0;
  for (int w = 0; w < warps; ++w) total += red[w];
  return total;
}

__global__ void SubsetMeansKernel(const float* acts, std::size_t rows, std::size_t neurons,
                                  const std::uint32_t* indices, std::size_t count, std::size_t k, float* out,
                                  Flags* flags) {
  const std::size_t total = rows * count;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const std::size_t b = i / count, f = i % count;
    const std::uint32_t* idx = indices + f * k;
    bool in_range = true;
    for (std::size_t j = 0; j < k; ++j) {
      if (idx[j] >= neurons) {
        atomicMin(&flags->bad_index, static_cast<unsigned long long>(f * k + j));
        in_range = false;
      }
    }
    if (!in_range) continue;
    const double mean = score::SubsetMean(acts + b * neurons, idx, k);
    if (!Finite(mean)) atomicMin(&flags->non_finite, static_cast<unsigned long long>(i));
    out[i] = static_cast<float>(mean);
  }
}

// One block per row: the drawn fingerprints' means (one thread per draw, strided), then each
// family's sum of log-likelihood ratio terms, the combined score, and, when `grad` is given, the
// score's gradient spread back onto the drawn neurons.
__global__ void RowScoresKernel(const float* acts, BankView bank, const std::uint32_t* draws, std::size_t per_row,
                                Combine combine, float* score, float* family_scores, float* means, float* terms,
                                float* grad, double* scratch, Flags* flags) {
  NFP_DYNAMIC_SHARED(double, shared);  // [families] sums, [families] weights, [warps] reduction
  const std::size_t A = bank.families, F = bank.count, k = bank.k, N = bank.neurons;
  double* sums = shared;
  double* weights = shared + A;
  double* red = shared + 2 * A;
  const std::size_t b = blockIdx.x;
  const float* row = acts + b * N;
  float* g = grad != nullptr ? grad + b * N : nullptr;
  if (g != nullptr) {
    for (std::size_t n = threadIdx.x; n < N; n += blockDim.x) g[n] = 0.0f;
  }
  for (std::size_t i = threadIdx.x; i < per_row; i += blockDim.x) {
    const std::size_t pos = b * per_row + i;
    const std::uint32_t f = draws[pos];
    if (f >= F) {
      atomicMin(&flags->bad_index, static_cast<unsigned long long>(pos));
      continue;
    }
    const double mean = score::SubsetMean(row, bank.indices + static_cast<std::size_t>(f) * k, k);
    if (!Finite(mean)) atomicMin(&flags->non_finite, static_cast<unsigned long long>(pos));
    scratch[pos] = mean;
    if (means != nullptr) means[pos] = static_cast<float>(mean);
  }
  // Each thread reads back only the draws it wrote: no barrier needed before this loop.
  for (std::size_t a = 0; a < A; ++a) {
    double partial = 0.0;
    for (std::size_t i = threadIdx.x; i < per_row; i += blockDim.x) {
      const std::size_t pos = b * per_row + i;
      const std::uint32_t f = draws[pos];
      if (f >= F) continue;
      const double mean = scratch[pos];
      const double z0 = (mean - bank.mu0[f]) * bank.inv_sd0[f];
      const std::size_t af = a * F + f;
      const double term = score::LlrTerm(mean, z0, bank.mu1[af], bank.inv_sd1[af], bank.log_sd_ratio[af]);
      if (terms != nullptr) terms[pos * A + a] = static_cast<float>(term);
      partial += term;
    }
    const double total = BlockSum(partial, red);
    if (threadIdx.x == 0) sums[a] = total;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const double combined = A == 0 ? 0.0 : score::CombineFamilies(sums, A, combine, g != nullptr ? weights : nullptr);
    if (score != nullptr) score[b] = static_cast<float>(combined);
    if (family_scores != nullptr) {
      for (std::size_t a = 0; a < A; ++a) family_scores[b * A + a] = static_cast<float>(sums[a]);
    }
  }
  if (g == nullptr || A == 0) return;
  __syncthreads();  // the weights, and the zeroed gradient row, are visible to the whole block
  const double inv_k = 1.0 / static_cast<double>(k);
  for (std::size_t i = threadIdx.x; i < per_row; i += blockDim.x) {
    const std::size_t pos = b * per_row + i;
    const std::uint32_t f = draws[pos];
    if (f >= F) continue;
    const double mean = scratch[pos];
    // d/dx [0.5 z0^2 - 0.5 z1^2] = z0 / sd0 - z1 / sd1; the family weights sum to one.
    double dmean = (mean - bank.mu0[f]) * bank.inv_sd0[f] * bank.inv_sd0[f];
    for (std::size_t a = 0; a < A; ++a) {
      const std::size_t af = a * F + f;
      dmean -= weights[a] * (mean - bank.mu1[af]) * bank.inv_sd1[af] * bank.inv_sd1[af];
    }
    const float share = static_cast<float>(dmean * inv_k);
    const std::uint32_t* idx = bank.indices + static_cast<std::size_t>(f) * k;
    for (std::size_t j = 0; j < k; ++j) atomicAdd(g + idx[j], share);
  }
}

constexpr int kTile = 32;

__global__ void TransposeKernel(const float* src, std::size_t rows, std::size_t cols, float* dst, std::size_t ld,
                                std::size_t offset) {
  __shared__ float tile[kTile][kTile + 1];  // +1: no bank conflicts on the transposed read
  const std::size_t r0 = static_cast<std::size_t>(blockIdx.y) * kTile,
                    c0 = static_cast<std::size_t>(blockIdx.x) * kTile;
  for (int y = threadIdx.y; y < kTile; y += blockDim.y) {
    const std::size_t r = r0 + y, c = c0 + threadIdx.x;
    if (r < rows && c < cols) tile[y][threadIdx.x] = src[r * cols + c];
  }
  __syncthreads();
  for (int y = threadIdx.y; y < kTile; y += blockDim.y) {
    const std::size_t c = c0 + y, r = r0 + threadIdx.x;
    if (r < rows && c < cols) dst[c * ld + offset + r] = tile[threadIdx.x][y];
  }
}

// One warp per candidate. Lanes run across images, so each of the k neuron reads of a step is
// one coalesced 128-byte line of the feature-major matrix; per-image subset sums are float64 and
// added in the CPU backend's order (so they are bit-identical), moments about the candidate's sum
// on the first clean image, then a warp reduction and the t-test on lane 0.
__global__ void ScreenKernel(const float* fm, std::size_t neurons, std::size_t n0, std::size_t n1,
                             const std::uint32_t* candidates, std::size_t count, std::size_t k, stats::TTest test,
                             ScreenOutputs out, Flags* flags) {
  const int lane = threadIdx.x & 31;
  const std::size_t n = n0 + n1;
  const std::size_t warps = static_cast<std::size_t>(gridDim.x) * (blockDim.x >> 5);
  for (std::size_t c = (static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; c < count; c += warps) {
    const std::uint32_t* idx = candidates + c * k;
    bool bad = false;
    for (std::size_t j = lane; j < k; j += 32) {
      if (idx[j] >= neurons) {
        atomicMin(&flags->bad_index, static_cast<unsigned long long>(c * k + j));
        bad = true;
      }
    }
    if (__any_sync(kFullMask, bad)) continue;
    double shift = 0.0;
    for (std::size_t j = 0; j < k; ++j) shift += fm[static_cast<std::size_t>(idx[j]) * n];
    double s0 = 0.0, ss0 = 0.0, s1 = 0.0, ss1 = 0.0;
    for (std::size_t base = 0; base < n; base += 32 * kImagesPerLane) {
      double acc[kImagesPerLane];
#pragma unroll
      for (int u = 0; u < kImagesPerLane; ++u) acc[u] = 0.0;
      const std::size_t first = base + lane;
      for (std::size_t j = 0; j < k; ++j) {
        const float* col = fm + static_cast<std::size_t>(idx[j]) * n;
#pragma unroll
        for (int u = 0; u < kImagesPerLane; ++u) {
          const std::size_t i = first + 32 * u;
          if (i < n) acc[u] += __ldg(col + i);
        }
      }
#pragma unroll
      for (int u = 0; u < kImagesPerLane; ++u) {
        const std::size_t i = first + 32 * u;
        if (i >= n) continue;
        const double v = acc[u] - shift;
        if (i < n0) {
          s0 += v;
          ss0 += v * v;
        } else {
          s1 += v;
          ss1 += v * v;
        }
      }
    }
    s0 = WarpSum(s0);
    ss0 = WarpSum(ss0);
    s1 = WarpSum(s1);
    ss1 = WarpSum(ss1);
    // Only lane 0 works from here, inside a branch rather than after a `continue`, so the warp
    // re-converges before the next candidate's warp-wide intrinsics.
    if (lane == 0) {
      if (!Finite(s0 + ss0 + s1 + ss1 + shift)) atomicMin(&flags->non_finite, static_cast<unsigned long long>(c));
      const stats::math::CandidateStats r = stats::math::FromSumMoments(
          s0, ss0, static_cast<double>(n0), s1, ss1, static_cast<double>(n1), shift, static_cast<double>(k), test);
      stats::math::Store(r, c, out);
    }
    __syncwarp();
  }
}

unsigned GridFor(std::size_t items, std::size_t per_block) {
  // Enough blocks to fill any current GPU many times over; the kernels stride beyond that.
  const std::size_t blocks = (items + per_block - 1) / per_block;
  return static_cast<unsigned>(std::max<std::size_t>(1, std::min<std::size_t>(blocks, 1u << 20)));
}

}  // namespace

cudaError_t SubsetMeans(const float* acts, std::size_t rows, std::size_t neurons, const std::uint32_t* indices,
                        std::size_t count, std::size_t k, float* out, Flags* flags, cudaStream_t stream) {
  if (rows == 0 || count == 0) return cudaSuccess;
  NFP_LAUNCH(SubsetMeansKernel, GridFor(rows * count, 256), 256, 0, stream, acts, rows, neurons, indices, count, k, out,
             flags);
  return cudaGetLastError();
}

cudaError_t RowScores(const float* acts, std::size_t rows, const BankView& bank, const std::uint32_t* draws,
                      std::size_t per_row, Combine combine, float* score, float* family_scores, float* means,
                      float* terms, float* grad, double* scratch, Flags* flags, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  const std::size_t shared = (2 * bank.families + kRowThreads / 32) * sizeof(double);
  if (shared > 48 * 1024) {
    // Past the default limit only with thousands of families; Hopper allows up to 227 KiB.
    const cudaError_t err =
        cudaFuncSetAttribute(RowScoresKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared));
    if (err != cudaSuccess) return err;
  }
  NFP_LAUNCH(RowScoresKernel, static_cast<unsigned>(rows), kRowThreads, shared, stream, acts, bank, draws, per_row,
             combine, score, family_scores, means, terms, grad, scratch, flags);
  return cudaGetLastError();
}

cudaError_t Transpose(const float* src, std::size_t rows, std::size_t cols, float* dst, std::size_t ld,
                      std::size_t offset, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  const dim3 block(kTile, 8);
  const dim3 grid(static_cast<unsigned>((cols + kTile - 1) / kTile), static_cast<unsigned>((rows + kTile - 1) / kTile));
  NFP_LAUNCH(TransposeKernel, grid, block, 0, stream, src, rows, cols, dst, ld, offset);
  return cudaGetLastError();
}

cudaError_t Screen(const float* feature_major, std::size_t neurons, std::size_t n0, std::size_t n1,
                   const std::uint32_t* candidates, std::size_t count, std::size_t k, stats::TTest test,
                   const ScreenOutputs& out, Flags* flags, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  NFP_LAUNCH(ScreenKernel, GridFor(count, kScreenThreads / 32), kScreenThreads, 0, stream, feature_major, neurons, n0,
             n1, candidates, count, k, test, out, flags);
  return cudaGetLastError();
}

}  // namespace launch
}  // namespace cuda
}  // namespace nfp
