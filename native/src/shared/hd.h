// NFP_HD marks functions compiled for both the host and, under nvcc, the device, so the CPU and
// CUDA backends share one copy of every formula (and so agree to the last bit where the order
// of operations allows).
#pragma once

#if defined(__CUDACC__)
#define NFP_HD __host__ __device__ inline
#else
#define NFP_HD inline
#endif
