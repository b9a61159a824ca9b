// Host side of the CUDA backend: argument checks, device memory, staging through pinned host
// buffers, the resident bank, and turning kernel flags into the CPU backend's errors. Compiled
// by the C++ compiler; the kernels are in launch.cu.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cpu/common.h"
#include "cuda/launch.h"
#include "nfp/backend.h"
#include "nfp/cuda.h"

namespace nfp {
namespace cuda {
namespace {

Status CudaError(cudaError_t err, const char* what) {
  return Error(
      Code::kInternal, "",
      std::string("CUDA error in ") + what + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

#define NFP_CUDA_TRY(expr, what)                                   \
  do {                                                             \
    const cudaError_t nfp_err_ = (expr);                           \
    if (nfp_err_ != cudaSuccess) return CudaError(nfp_err_, what); \
  } while (0)

// Device memory for one call, from the stream-ordered pool: freeing returns it to the pool
// (kept, see KeepPoolMemory) so a steady stream of calls does not reach the driver.
template <typename T>
class DeviceArray {
 public:
  DeviceArray(std::size_t n, cudaStream_t stream) : n_(n), stream_(stream) {
    if (n > 0) err_ = cudaMallocAsync(reinterpret_cast<void**>(&ptr_), n * sizeof(T), stream);
  }
  ~DeviceArray() {
    if (ptr_ != nullptr) cudaFreeAsync(ptr_, stream_);
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  cudaError_t error() const { return err_; }
  T* get() const { return ptr_; }
  std::size_t size() const { return n_; }

 private:
  T* ptr_ = nullptr;
  std::size_t n_;
  cudaStream_t stream_;
  cudaError_t err_ = cudaSuccess;
};

void KeepPoolMemory() {
  static const bool done = [] {
    cudaMemPool_t pool;
    if (cudaDeviceGetDefaultMemPool(&pool, 0) == cudaSuccess) {
      std::uint64_t keep = std::numeric_limits<std::uint64_t>::max();
      cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
    }
    cudaGetLastError();
    return true;
  }();
  (void)done;
}

Status Usable() {
  const CudaInfo& info = cuda_info();
  if (!info.usable()) return Error(Code::kUnavailable, "backend", "The cuda backend is unavailable: " + info.reason);
  KeepPoolMemory();
  return Status::Ok();
}

// Per-thread stream and pinned staging buffers for the host forms. Two pinned chunks let the
// host copy into one while the DMA engine drains the other.
class HostContext {
 public:
  static constexpr std::size_t kChunk = 8u << 20;

  static Status Get(HostContext** out) {
    thread_local HostContext context;
    if (!context.ready_) {
      NFP_CUDA_TRY(cudaSetDevice(0), "cudaSetDevice");
      if (context.stream_ == nullptr)
        NFP_CUDA_TRY(cudaStreamCreateWithFlags(&context.stream_, cudaStreamNonBlocking), "cudaStreamCreate");
      for (int i = 0; i < 2; ++i) {
        if (context.pinned_[i] == nullptr) NFP_CUDA_TRY(cudaMallocHost(&context.pinned_[i], kChunk), "cudaMallocHost");
        if (context.done_[i] == nullptr)
          NFP_CUDA_TRY(cudaEventCreateWithFlags(&context.done_[i], cudaEventDisableTiming), "cudaEventCreate");
      }
      context.ready_ = true;
    }
    *out = &context;
    return Status::Ok();
  }

  ~HostContext() {
    // At process exit the CUDA runtime may already be gone; its errors are of no use then.
    for (int i = 0; i < 2; ++i) {
      if (pinned_[i] != nullptr) cudaFreeHost(pinned_[i]);
      if (done_[i] != nullptr) cudaEventDestroy(done_[i]);
    }
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  cudaStream_t stream() const { return stream_; }

  // Host -> device through the pinned chunks; returns once the source may be reused.
  Status Upload(void* dst, const void* src, std::size_t bytes) {
    const char* from = static_cast<const char*>(src);
    char* to = static_cast<char*>(dst);
    for (std::size_t off = 0, i = 0; off < bytes; off += kChunk, i ^= 1) {
      const std::size_t n = std::min(kChunk, bytes - off);
      NFP_CUDA_TRY(cudaEventSynchronize(done_[i]), "upload");  // the chunk's previous copy is done
      std::memcpy(pinned_[i], from + off, n);
      NFP_CUDA_TRY(cudaMemcpyAsync(to + off, pinned_[i], n, cudaMemcpyHostToDevice, stream_), "upload");
      NFP_CUDA_TRY(cudaEventRecord(done_[i], stream_), "upload");
    }
    return Status::Ok();
  }

  // Device -> host through the pinned chunks, after the work queued so far.
  Status Download(void* dst, const void* src, std::size_t bytes) {
    char* to = static_cast<char*>(dst);
    const char* from = static_cast<const char*>(src);
    const std::size_t chunks = (bytes + kChunk - 1) / kChunk;
    auto issue = [&](std::size_t c) -> Status {
      const std::size_t off = c * kChunk, n = std::min(kChunk, bytes - off);
      NFP_CUDA_TRY(cudaMemcpyAsync(pinned_[c & 1], from + off, n, cudaMemcpyDeviceToHost, stream_), "download");
      NFP_CUDA_TRY(cudaEventRecord(done_[c & 1], stream_), "download");
      return Status::Ok();
    };
    if (chunks == 0) return Status::Ok();
    Status st = issue(0);
    if (!st.ok()) return st;
    for (std::size_t c = 0; c < chunks; ++c) {
      if (c + 1 < chunks) {
        // Chunk c+1 goes to the other buffer, whose last reader (chunk c-1) has finished.
        st = issue(c + 1);
        if (!st.ok()) return st;
      }
      NFP_CUDA_TRY(cudaEventSynchronize(done_[c & 1]), "download");
      const std::size_t off = c * kChunk;
      std::memcpy(to + off, pinned_[c & 1], std::min(kChunk, bytes - off));
    }
    return Status::Ok();
  }

 private:
  HostContext() = default;
  bool ready_ = false;
  cudaStream_t stream_ = nullptr;
  void* pinned_[2] = {nullptr, nullptr};
  cudaEvent_t done_[2] = {nullptr, nullptr};
};

// The flags a kernel raises, read back after the stream drains.
class FlagsOnDevice {
 public:
  explicit FlagsOnDevice(cudaStream_t stream) : stream_(stream), flags_(1, stream) {}
  Status Reset() {
    NFP_CUDA_TRY(flags_.error(), "cudaMallocAsync");
    NFP_CUDA_TRY(cudaMemsetAsync(flags_.get(), 0xff, sizeof(launch::Flags), stream_), "cudaMemsetAsync");
    return Status::Ok();
  }
  launch::Flags* get() const { return flags_.get(); }
  // Waits for the stream, then reads the flags.
  Status Read(launch::Flags* host) {
    NFP_CUDA_TRY(cudaMemcpyAsync(host, flags_.get(), sizeof(launch::Flags), cudaMemcpyDeviceToHost, stream_), "flags");
    NFP_CUDA_TRY(cudaStreamSynchronize(stream_), "kernel");
    return Status::Ok();
  }

 private:
  cudaStream_t stream_;
  DeviceArray<launch::Flags> flags_;
};

Status OutOfRange(const char* argument, std::size_t bound, std::uint32_t value, unsigned long long pos) {
  return Error(Code::kOutOfRange, argument,
               std::string("Expected values < ") + std::to_string(bound) + " for " + argument + " but received " +
                   std::to_string(value) + " at " + argument + "[" + std::to_string(pos) + "]");
}

// Reads one element of a device array (for error messages only).
template <typename T>
T ReadOne(const T* device, std::size_t pos, cudaStream_t stream) {
  T value{};
  if (cudaMemcpyAsync(&value, device + pos, sizeof(T), cudaMemcpyDeviceToHost, stream) == cudaSuccess) {
    cudaStreamSynchronize(stream);
  }
  return value;
}

// A bank uploaded once and kept on the device for the bank's lifetime (Bank::attachment).
struct DeviceBank {
  std::uint32_t* indices = nullptr;
  float *mu0 = nullptr, *mu1 = nullptr;
  double *inv_sd0 = nullptr, *inv_sd1 = nullptr, *log_sd_ratio = nullptr;
  launch::BankView view{};
  ~DeviceBank() {
    for (void* p : {static_cast<void*>(indices), static_cast<void*>(mu0), static_cast<void*>(mu1),
                    static_cast<void*>(inv_sd0), static_cast<void*>(inv_sd1), static_cast<void*>(log_sd_ratio)}) {
      if (p != nullptr) cudaFree(p);
    }
  }
};

template <typename T>
cudaError_t UploadVector(T** dst, const std::vector<T>& src) {
  if (src.empty()) return cudaSuccess;
  cudaError_t err = cudaMalloc(reinterpret_cast<void**>(dst), src.size() * sizeof(T));
  if (err != cudaSuccess) return err;
  return cudaMemcpy(*dst, src.data(), src.size() * sizeof(T), cudaMemcpyHostToDevice);
}

Status ResidentBank(const Bank& bank, std::shared_ptr<DeviceBank>* out) {
  Status status;
  std::shared_ptr<void> attached = bank.attachment([&]() -> std::shared_ptr<void> {
    auto d = std::make_shared<DeviceBank>();
    cudaError_t err = cudaSetDevice(0);
    if (err == cudaSuccess) err = UploadVector(&d->indices, bank.all_indices());
    if (err == cudaSuccess) err = UploadVector(&d->mu0, bank.all_mu0());
    if (err == cudaSuccess) err = UploadVector(&d->inv_sd0, bank.all_inv_sd0());
    if (err == cudaSuccess) err = UploadVector(&d->mu1, bank.all_mu1());
    if (err == cudaSuccess) err = UploadVector(&d->inv_sd1, bank.all_inv_sd1());
    if (err == cudaSuccess) err = UploadVector(&d->log_sd_ratio, bank.all_log_sd_ratio());
    if (err != cudaSuccess) {
      status = CudaError(err, "uploading the bank");
      return nullptr;
    }
    d->view = {d->indices,      d->mu0,       d->inv_sd0, d->mu1,          d->inv_sd1,
               d->log_sd_ratio, bank.count(), bank.k(),   bank.families(), bank.neurons()};
    return d;
  });
  if (!attached) return status.ok() ? Error(Code::kInternal, "bank", "The bank could not be uploaded") : status;
  *out = std::static_pointer_cast<DeviceBank>(attached);
  return Status::Ok();
}

Status CheckRowsFitGrid(std::size_t rows) {
  if (rows > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    return Error(Code::kInvalidArgument, "acts",
                 "Expected at most 2147483647 rows for acts on the cuda backend but received " + std::to_string(rows));
  }
  return Status::Ok();
}

Status CheckScoreShapes(const Activations& acts, const Bank& bank) {
  Status st = cpu::CheckScoreShapes(acts, bank);
  return st.ok() ? CheckRowsFitGrid(acts.rows) : st;
}

Status ScreenShapes(const Activations& clean, const Activations& attacked, const Subsets& candidates) {
  Status st = cpu::CheckScreenShapes(clean, attacked, candidates);
  if (!st.ok()) return st;
  // The transpose tiles images along the grid's y dimension (at most 65535 blocks of 32).
  if (clean.rows > 65535u * 32u || attacked.rows > 65535u * 32u) {
    return Error(Code::kInvalidArgument, "clean",
                 "Expected at most 2097120 rows for clean and attacked on the cuda backend");
  }
  return Status::Ok();
}

// The device form of detect_scores and score_gradient: the kernel is the same, `grad` decides.
Status RowScoresOnDevice(const Activations& acts, const Bank& bank, const Draws& draws, Combine combine,
                         const DetectOutputs& out, float* grad, cudaStream_t stream) {
  Status st = Usable();
  if (!st.ok()) return st;
  st = CheckScoreShapes(acts, bank);
  if (!st.ok()) return st;
  std::shared_ptr<DeviceBank> device_bank;
  st = ResidentBank(bank, &device_bank);
  if (!st.ok()) return st;
  const std::size_t m = draws.per_row;
  DeviceArray<double> scratch(acts.rows * m, stream);
  NFP_CUDA_TRY(scratch.error(), "cudaMallocAsync");
  FlagsOnDevice flags(stream);
  st = flags.Reset();
  if (!st.ok()) return st;
  NFP_CUDA_TRY(launch::RowScores(acts.data, acts.rows, device_bank->view, draws.ids, m, combine, out.score,
                                 out.family_scores, out.means, out.terms, grad, scratch.get(), flags.get(), stream),
               grad != nullptr ? "score_gradient" : "detect_scores");
  launch::Flags f{};
  st = flags.Read(&f);
  if (!st.ok()) return st;
  if (f.bad_index != launch::kNone) {
    return OutOfRange("draws", bank.count(), ReadOne(draws.ids, f.bad_index, stream), f.bad_index);
  }
  if (f.non_finite != launch::kNone) {
    return NonFiniteError("acts", f.non_finite / m, "fingerprint", ReadOne(draws.ids, f.non_finite, stream));
  }
  return Status::Ok();
}

}  // namespace

Status subset_means_on_device(const Activations& acts, const Subsets& subsets, float* out, void* stream_ptr) {
  Status st = Usable();
  if (!st.ok()) return st;
  if (subsets.k == 0) return Error(Code::kInvalidArgument, "k", "Expected a positive integer for k but received 0");
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  FlagsOnDevice flags(stream);
  st = flags.Reset();
  if (!st.ok()) return st;
  NFP_CUDA_TRY(launch::SubsetMeans(acts.data, acts.rows, acts.neurons, subsets.indices, subsets.count, subsets.k, out,
                                   flags.get(), stream),
               "subset_means");
  launch::Flags f{};
  st = flags.Read(&f);
  if (!st.ok()) return st;
  if (f.bad_index != launch::kNone) {
    return OutOfRange("subsets", acts.neurons, ReadOne(subsets.indices, f.bad_index, stream), f.bad_index);
  }
  if (f.non_finite != launch::kNone) {
    return NonFiniteError("acts", f.non_finite / subsets.count, "subset", f.non_finite % subsets.count);
  }
  return Status::Ok();
}

Status detect_scores_on_device(const Activations& acts, const Bank& bank, const Draws& draws, Combine combine,
                               const DetectOutputs& out, void* stream) {
  return RowScoresOnDevice(acts, bank, draws, combine, out, nullptr, static_cast<cudaStream_t>(stream));
}

Status score_gradient_on_device(const Activations& acts, const Bank& bank, const Draws& draws, Combine combine,
                                float* grad, void* stream) {
  return RowScoresOnDevice(acts, bank, draws, combine, DetectOutputs{}, grad, static_cast<cudaStream_t>(stream));
}

namespace {

// The device form's work; a non-finite candidate is returned in *non_finite (kNone if none) so
// that the host form can name the row as the CPU backend does.
Status ScreenOnDevice(const Activations& clean, const Activations& attacked, const Subsets& candidates,
                      stats::TTest test, const ScreenOutputs& out, cudaStream_t stream,
                      unsigned long long* non_finite) {
  *non_finite = launch::kNone;
  Status st = Usable();
  if (!st.ok()) return st;
  st = ScreenShapes(clean, attacked, candidates);
  if (!st.ok()) return st;
  const std::size_t N = clean.neurons, n0 = clean.rows, n1 = attacked.rows;
  // Feature-major copy: one row per neuron, clean images then attacked ones, so that a warp's
  // reads of one neuron across images are contiguous.
  DeviceArray<float> fm(N * (n0 + n1), stream);
  NFP_CUDA_TRY(fm.error(), "cudaMallocAsync");
  NFP_CUDA_TRY(launch::Transpose(clean.data, n0, N, fm.get(), n0 + n1, 0, stream), "transpose");
  NFP_CUDA_TRY(launch::Transpose(attacked.data, n1, N, fm.get(), n0 + n1, n0, stream), "transpose");
  FlagsOnDevice flags(stream);
  st = flags.Reset();
  if (!st.ok()) return st;
  NFP_CUDA_TRY(launch::Screen(fm.get(), N, n0, n1, candidates.indices, candidates.count, candidates.k, test, out,
                              flags.get(), stream),
               "screen");
  launch::Flags f{};
  st = flags.Read(&f);
  if (!st.ok()) return st;
  if (f.bad_index != launch::kNone) {
    return OutOfRange("candidates", N, ReadOne(candidates.indices, f.bad_index, stream), f.bad_index);
  }
  *non_finite = f.non_finite;
  return Status::Ok();
}

}  // namespace

Status screen_on_device(const Activations& clean, const Activations& attacked, const Subsets& candidates,
                        stats::TTest test, const ScreenOutputs& out, void* stream) {
  unsigned long long non_finite = launch::kNone;
  Status st = ScreenOnDevice(clean, attacked, candidates, test, out, static_cast<cudaStream_t>(stream), &non_finite);
  if (!st.ok() || non_finite == launch::kNone) return st;
  return Error(Code::kNonFinite, "clean",
               "Expected finite values in clean and attacked but the statistics of candidate " +
                   std::to_string(non_finite) + " are NaN or Inf");
}

// Host forms: check what can be checked on the host first (so errors match the CPU backend's
// word for word), upload, run the device form, download.

Status subset_means(const Activations& acts, const Subsets& subsets, float* out) {
  Status st = Usable();
  if (!st.ok()) return st;
  if (subsets.k == 0) return Error(Code::kInvalidArgument, "k", "Expected a positive integer for k but received 0");
  st = cpu::CheckIndices(subsets.indices, subsets.count * subsets.k, acts.neurons, "subsets");
  if (!st.ok()) return st;
  HostContext* ctx = nullptr;
  st = HostContext::Get(&ctx);
  if (!st.ok()) return st;
  const cudaStream_t stream = ctx->stream();
  DeviceArray<float> d_acts(acts.rows * acts.neurons, stream);
  DeviceArray<std::uint32_t> d_idx(subsets.count * subsets.k, stream);
  DeviceArray<float> d_out(acts.rows * subsets.count, stream);
  for (cudaError_t e : {d_acts.error(), d_idx.error(), d_out.error()}) NFP_CUDA_TRY(e, "cudaMallocAsync");
  if ((st = ctx->Upload(d_acts.get(), acts.data, d_acts.size() * sizeof(float))).ok() &&
      (st = ctx->Upload(d_idx.get(), subsets.indices, d_idx.size() * sizeof(std::uint32_t))).ok() &&
      (st = subset_means_on_device({d_acts.get(), acts.rows, acts.neurons}, {d_idx.get(), subsets.count, subsets.k},
                                   d_out.get(), stream))
          .ok()) {
    st = ctx->Download(out, d_out.get(), d_out.size() * sizeof(float));
  }
  return st;
}

namespace {

Status RowScoresFromHost(const Activations& acts, const Bank& bank, const Draws& draws, Combine combine,
                         const DetectOutputs& out, float* grad) {
  Status st = Usable();
  if (!st.ok()) return st;
  st = CheckScoreShapes(acts, bank);
  if (!st.ok()) return st;
  const std::size_t rows = acts.rows, m = draws.per_row, A = bank.families(), N = acts.neurons;
  st = cpu::CheckIndices(draws.ids, rows * m, bank.count(), "draws");
  if (!st.ok()) return st;
  HostContext* ctx = nullptr;
  st = HostContext::Get(&ctx);
  if (!st.ok()) return st;
  const cudaStream_t stream = ctx->stream();
  const bool gradient = grad != nullptr;
  DeviceArray<float> d_acts(rows * N, stream);
  DeviceArray<std::uint32_t> d_draws(rows * m, stream);
  DeviceArray<float> d_score(gradient ? 0 : rows, stream);
  DeviceArray<float> d_family(out.family_scores != nullptr ? rows * A : 0, stream);
  DeviceArray<float> d_means(out.means != nullptr ? rows * m : 0, stream);
  DeviceArray<float> d_terms(out.terms != nullptr ? rows * m * A : 0, stream);
  DeviceArray<float> d_grad(gradient ? rows * N : 0, stream);
  for (cudaError_t e : {d_acts.error(), d_draws.error(), d_score.error(), d_family.error(), d_means.error(),
                        d_terms.error(), d_grad.error()}) {
    NFP_CUDA_TRY(e, "cudaMallocAsync");
  }
  st = ctx->Upload(d_acts.get(), acts.data, rows * N * sizeof(float));
  if (st.ok()) st = ctx->Upload(d_draws.get(), draws.ids, rows * m * sizeof(std::uint32_t));
  if (!st.ok()) return st;
  const DetectOutputs d_out{d_score.get(), d_family.get(), d_means.get(), d_terms.get()};
  st = RowScoresOnDevice({d_acts.get(), rows, N}, bank, {d_draws.get(), m}, combine, d_out, d_grad.get(), stream);
  if (!st.ok()) return st;
  if (gradient) return ctx->Download(grad, d_grad.get(), d_grad.size() * sizeof(float));
  st = ctx->Download(out.score, d_score.get(), rows * sizeof(float));
  if (st.ok() && out.family_scores != nullptr)
    st = ctx->Download(out.family_scores, d_family.get(), d_family.size() * sizeof(float));
  if (st.ok() && out.means != nullptr) st = ctx->Download(out.means, d_means.get(), d_means.size() * sizeof(float));
  if (st.ok() && out.terms != nullptr) st = ctx->Download(out.terms, d_terms.get(), d_terms.size() * sizeof(float));
  return st;
}

}  // namespace

Status detect_scores(const Activations& acts, const Bank& bank, const Draws& draws, Combine combine,
                     const DetectOutputs& out) {
  return RowScoresFromHost(acts, bank, draws, combine, out, nullptr);
}

Status score_gradient(const Activations& acts, const Bank& bank, const Draws& draws, Combine combine, float* grad) {
  return RowScoresFromHost(acts, bank, draws, combine, DetectOutputs{}, grad);
}

Status screen(const Activations& clean, const Activations& attacked, const Subsets& candidates, stats::TTest test,
              const ScreenOutputs& out) {
  Status st = Usable();
  if (!st.ok()) return st;
  st = ScreenShapes(clean, attacked, candidates);
  if (!st.ok()) return st;
  const std::size_t N = clean.neurons, C = candidates.count, k = candidates.k;
  st = cpu::CheckIndices(candidates.indices, C * k, N, "candidates");
  if (!st.ok() || C == 0) return st;
  HostContext* ctx = nullptr;
  st = HostContext::Get(&ctx);
  if (!st.ok()) return st;
  const cudaStream_t stream = ctx->stream();
  DeviceArray<float> d_clean(clean.rows * N, stream), d_attacked(attacked.rows * N, stream);
  DeviceArray<std::uint32_t> d_idx(C * k, stream);
  DeviceArray<double> d_out(7 * C, stream);
  for (cudaError_t e : {d_clean.error(), d_attacked.error(), d_idx.error(), d_out.error()}) {
    NFP_CUDA_TRY(e, "cudaMallocAsync");
  }
  st = ctx->Upload(d_clean.get(), clean.data, d_clean.size() * sizeof(float));
  if (st.ok()) st = ctx->Upload(d_attacked.get(), attacked.data, d_attacked.size() * sizeof(float));
  if (st.ok()) st = ctx->Upload(d_idx.get(), candidates.indices, d_idx.size() * sizeof(std::uint32_t));
  if (!st.ok()) return st;
  double* base = d_out.get();
  const ScreenOutputs d{base, base + C, base + 2 * C, base + 3 * C, base + 4 * C, base + 5 * C, base + 6 * C};
  unsigned long long non_finite = launch::kNone;
  st = ScreenOnDevice({d_clean.get(), clean.rows, N}, {d_attacked.get(), attacked.rows, N}, {d_idx.get(), C, k}, test,
                      d, stream, &non_finite);
  if (!st.ok()) return st;
  // The candidate comes from the device; the row is found here, as the CPU backend reports it.
  if (non_finite != launch::kNone) return cpu::ScreenNonFiniteError(clean, attacked, candidates, non_finite);
  double* outs[7] = {out.mu0, out.sd0, out.mu1, out.sd1, out.t, out.p, out.d};
  for (int i = 0; i < 7 && st.ok(); ++i) st = ctx->Download(outs[i], base + i * C, C * sizeof(double));
  return st;
}

}  // namespace cuda
}  // namespace nfp
