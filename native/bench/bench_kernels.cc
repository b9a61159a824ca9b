// C++ micro-benchmark of the CPU kernels, runnable without Node (e.g. on a GPU host):
//   bench_kernels [--C 100000] [--k 50] [--n0 400] [--n1 400] [--N 3048] [--B 32] [--m 25] [--threads T]
// Prints one JSON object: candidates/s for screen, us/image for detect_scores, and GB/s of the
// gathered bytes beside a plain memcpy measured in the same run. With a usable CUDA device it
// adds the CUDA backend's figures in the same run: host forms (uploads and downloads included),
// device forms (data already on the GPU), the screen kernel's gather rate and a device-to-device
// copy for scale, and the speedup over the CPU path at --threads (2 for the 2-core comparison).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "nfp/backend.h"
#include "nfp/cuda.h"
#include "nfp/kernels.h"
#include "nfp/thread_pool.h"

#if defined(NFP_WITH_CUDA)
#include <cuda_runtime.h>
#endif

namespace {

double Now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

template <typename F>
double BestOf(int reps, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = Now();
    f();
    best = std::min(best, Now() - t0);
  }
  return best;
}

// The CUDA backend on the same inputs; a JSON fragment to append to the CPU figures.
std::string CudaFigures(const std::vector<float>& clean, const std::vector<float>& attacked,
                        const std::vector<std::uint32_t>& idx, const nfp::Bank& bank,
                        const std::vector<std::uint32_t>& draws, std::size_t n0, std::size_t n1, std::size_t N,
                        std::size_t C, std::size_t k, std::size_t B, std::size_t m, double cpu_screen_s,
                        double cpu_detect_s) {
  std::vector<double> o(7 * C);
  nfp::ScreenOutputs out{&o[0], &o[C], &o[2 * C], &o[3 * C], &o[4 * C], &o[5 * C], &o[6 * C]};
  auto must = [](const nfp::Status& st) {
    if (!st.ok()) {
      std::fprintf(stderr, "cuda: %s\n", st.message.c_str());
      std::exit(1);
    }
  };
  must(nfp::cuda::screen({clean.data(), n0, N}, {attacked.data(), n1, N}, {idx.data(), C, k}, nfp::stats::TTest::kWelch,
                         out));
  const double t_screen = BestOf(3, [&] {
    must(nfp::cuda::screen({clean.data(), n0, N}, {attacked.data(), n1, N}, {idx.data(), C, k},
                           nfp::stats::TTest::kWelch, out));
  });
  std::vector<float> score(B);
  const int inner = 200;
  const double t_detect = BestOf(5,
                                 [&] {
                                   for (int r = 0; r < inner; ++r)
                                     must(nfp::cuda::detect_scores({clean.data(), B, N}, bank, {draws.data(), m},
                                                                   nfp::Combine::kMax, {score.data()}));
                                 }) /
                          inner;
  double t_screen_device = 0, t_detect_device = 0, copy_GBps = 0;
#if defined(NFP_WITH_CUDA)
  float *d_clean, *d_attacked, *d_score, *d_copy;
  std::uint32_t *d_idx, *d_draws;
  double* d_out;
  cudaMalloc(&d_clean, clean.size() * 4);
  cudaMalloc(&d_attacked, attacked.size() * 4);
  cudaMalloc(&d_copy, clean.size() * 4);
  cudaMalloc(&d_idx, idx.size() * 4);
  cudaMalloc(&d_draws, draws.size() * 4);
  cudaMalloc(&d_score, B * 4);
  cudaMalloc(&d_out, 7 * C * 8);
  cudaMemcpy(d_clean, clean.data(), clean.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(d_attacked, attacked.data(), attacked.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(d_idx, idx.data(), idx.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(d_draws, draws.data(), draws.size() * 4, cudaMemcpyHostToDevice);
  const nfp::ScreenOutputs d{d_out,         d_out + C,     d_out + 2 * C, d_out + 3 * C,
                             d_out + 4 * C, d_out + 5 * C, d_out + 6 * C};
  t_screen_device = BestOf(5, [&] {
    must(nfp::cuda::screen_on_device({d_clean, n0, N}, {d_attacked, n1, N}, {d_idx, C, k}, nfp::stats::TTest::kWelch, d,
                                     nullptr));
  });
  t_detect_device = BestOf(5,
                           [&] {
                             for (int r = 0; r < inner; ++r)
                               must(nfp::cuda::detect_scores_on_device({d_clean, B, N}, bank, {d_draws, m},
                                                                       nfp::Combine::kMax, {d_score}, nullptr));
                           }) /
                    inner;
  const double t_copy = BestOf(5,
                               [&] {
                                 for (int r = 0; r < 20; ++r)
                                   cudaMemcpy(d_copy, d_clean, clean.size() * 4, cudaMemcpyDeviceToDevice);
                                 cudaDeviceSynchronize();
                               }) /
                        20;
  copy_GBps = 2.0 * clean.size() * 4 / t_copy / 1e9;  // read + write
  for (void* p : {static_cast<void*>(d_clean), static_cast<void*>(d_attacked), static_cast<void*>(d_copy),
                  static_cast<void*>(d_idx), static_cast<void*>(d_draws), static_cast<void*>(d_score),
                  static_cast<void*>(d_out)}) {
    cudaFree(p);
  }
#endif
  // Bytes the screen kernel reads per run: k floats per image per candidate (mostly from L2).
  const double screen_bytes = static_cast<double>(C) * k * (n0 + n1) * sizeof(float);
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                ",\"cuda\":{\"device\":\"%s\",\"screen_s\":%.6f,\"screen_candidates_per_s\":%.1f,"
                "\"screen_device_s\":%.6f,\"screen_speedup_vs_cpu\":%.2f,\"screen_device_speedup_vs_cpu\":%.2f,"
                "\"screen_gather_GBps\":%.1f,\"d2d_copy_GBps\":%.1f,\"detect_us_per_image\":%.4f,"
                "\"detect_device_us_per_image\":%.4f,\"detect_speedup_vs_cpu\":%.2f}",
                nfp::cuda_info().device_name.c_str(), t_screen, C / t_screen, t_screen_device, cpu_screen_s / t_screen,
                t_screen_device > 0 ? cpu_screen_s / t_screen_device : 0.0,
                t_screen_device > 0 ? screen_bytes / t_screen_device / 1e9 : 0.0, copy_GBps, 1e6 * t_detect / B,
                1e6 * t_detect_device / B, cpu_detect_s / t_detect);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t C = 100000, k = 50, n0 = 400, n1 = 400, N = 3048, B = 32, m = 25, threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const std::size_t v = std::strtoull(argv[i + 1], nullptr, 10);
    if (a == "--C")
      C = v;
    else if (a == "--k")
      k = v;
    else if (a == "--n0")
      n0 = v;
    else if (a == "--n1")
      n1 = v;
    else if (a == "--N")
      N = v;
    else if (a == "--B")
      B = v;
    else if (a == "--m")
      m = v;
    else if (a == "--threads")
      threads = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  nfp::set_threads(threads);
  std::mt19937_64 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> clean(n0 * N), attacked(n1 * N);
  for (auto& v : clean) v = normal(rng);
  for (auto& v : attacked) v = normal(rng) + 0.1f;
  std::vector<std::uint32_t> idx(C * k);
  std::uniform_int_distribution<std::uint32_t> pick(0, static_cast<std::uint32_t>(N - 1));
  for (auto& v : idx) v = pick(rng);

  std::vector<double> o(7 * C);
  nfp::ScreenOutputs out{&o[0], &o[C], &o[2 * C], &o[3 * C], &o[4 * C], &o[5 * C], &o[6 * C]};
  const double t_screen = BestOf(3, [&] {
    nfp::cpu::screen({clean.data(), n0, N}, {attacked.data(), n1, N}, {idx.data(), C, k}, nfp::stats::TTest::kWelch,
                     out);
  });

  // detect_scores: a bank of 2,000 fingerprints, B rows, m draws each.
  const std::size_t F = 2000;
  std::vector<float> mu0(F, 0.0f), sd0(F, 1.0f), mu1(F, 0.5f), sd1(F, 1.2f);
  nfp::Status st;
  auto bank = nfp::Bank::Create({N, k, F, 1, idx.data(), mu0.data(), sd0.data(), mu1.data(), sd1.data()}, &st);
  std::vector<std::uint32_t> draws(B * m);
  std::uniform_int_distribution<std::uint32_t> pick_f(0, F - 1);
  for (auto& v : draws) v = pick_f(rng);
  std::vector<float> score(B);
  const int inner = 200;
  const double t_detect = BestOf(5,
                                 [&] {
                                   for (int r = 0; r < inner; ++r)
                                     nfp::cpu::detect_scores({clean.data(), B, N}, *bank, {draws.data(), m},
                                                             nfp::Combine::kMax, {score.data()});
                                 }) /
                          inner;
  const double gathered_bytes = static_cast<double>(B * m * k) * (sizeof(float) + sizeof(std::uint32_t));
  std::vector<char> src(static_cast<std::size_t>(gathered_bytes)), dst(src.size());
  std::memset(src.data(), 1, src.size());
  const double t_copy = BestOf(5,
                               [&] {
                                 for (int r = 0; r < inner; ++r) {
                                   std::memcpy(dst.data(), src.data(), src.size());
                                   src[r % src.size()] ^= 1;
                                 }
                               }) /
                        inner;

  std::string cuda_json = ",\"cuda\":null";
  if (nfp::cuda_info().usable())
    cuda_json = CudaFigures(clean, attacked, idx, *bank, draws, n0, n1, N, C, k, B, m, t_screen, t_detect);
  std::printf(
      "{\"threads\":%zu,\"C\":%zu,\"k\":%zu,\"n0\":%zu,\"n1\":%zu,\"N\":%zu,\"screen_s\":%.6f,"
      "\"screen_candidates_per_s\":%.1f,\"B\":%zu,\"m\":%zu,\"detect_us_per_image\":%.4f,"
      "\"detect_gathered_GBps\":%.3f,\"memcpy_same_bytes_GBps\":%.3f%s}\n",
      nfp::threads(), C, k, n0, n1, N, t_screen, C / t_screen, B, m, 1e6 * t_detect / B,
      2 * gathered_bytes / t_detect / 1e9, 2 * gathered_bytes / t_copy / 1e9, cuda_json.c_str());
  return 0;
}
