// Kernel launchers of the CUDA backend: plain C++ declarations (no CUDA syntax) so that the host
// side (backend.cc) compiles with the C++ compiler; only launch.cu goes through nvcc. Every
// pointer is device memory; each launcher queues its work on `stream` and returns the launch
// error, if any.
#pragma once

#if defined(NFP_CUDA_EMULATE)
#include "cuda/emulate.h"
#else
#include <cuda_runtime.h>
#endif

#include <cstddef>
#include <cstdint>

#include "nfp/kernels.h"

namespace nfp {
namespace cuda {
namespace launch {

// Where a kernel found bad input: the smallest flat position of an out-of-range index and of a
// non-finite result, or kNone. Smallest, so the report does not depend on scheduling.
struct Flags {
  unsigned long long bad_index;
  unsigned long long non_finite;
};
constexpr unsigned long long kNone = ~0ull;

// A bank resident in device memory, laid out as nfp::Bank holds it.
struct BankView {
  const std::uint32_t* indices;  // [F x k]
  const float* mu0;              // [F]
  const double* inv_sd0;         // [F]
  const float* mu1;              // [A x F]
  const double* inv_sd1;         // [A x F]
  const double* log_sd_ratio;    // [A x F]
  std::size_t count, k, families, neurons;
};

cudaError_t SubsetMeans(const float* acts, std::size_t rows, std::size_t neurons, const std::uint32_t* indices,
                        std::size_t count, std::size_t k, float* out, Flags* flags, cudaStream_t stream);

// One block per row. `scratch` holds rows x per_row doubles (the drawn fingerprints' means).
// With `grad` non-null the kernel writes d score / d acts instead of nothing extra.
cudaError_t RowScores(const float* acts, std::size_t rows, const BankView& bank, const std::uint32_t* draws,
                      std::size_t per_row, Combine combine, float* score, float* family_scores, float* means,
                      float* terms, float* grad, double* scratch, Flags* flags, cudaStream_t stream);

// dst[j * ld + offset + i] = src[i * cols + j]: row-major [rows x cols] into a column block of
// a feature-major matrix.
cudaError_t Transpose(const float* src, std::size_t rows, std::size_t cols, float* dst, std::size_t ld,
                      std::size_t offset, cudaStream_t stream);

// `feature_major` is [neurons x (n0 + n1)]: each neuron's clean images, then its attacked ones.
cudaError_t Screen(const float* feature_major, std::size_t neurons, std::size_t n0, std::size_t n1,
                   const std::uint32_t* candidates, std::size_t count, std::size_t k, stats::TTest test,
                   const ScreenOutputs& out, Flags* flags, cudaStream_t stream);

}  // namespace launch
}  // namespace cuda
}  // namespace nfp
