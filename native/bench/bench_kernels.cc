// C++ micro-benchmark of the CPU kernels, runnable without Node (e.g. on a GPU host):
//   bench_kernels [--C 100000] [--k 50] [--n0 400] [--n1 400] [--N 3048] [--B 32] [--m 25] [--threads T]
// Prints one JSON object: candidates/s for screen, us/image for detect_scores, and GB/s of the
// gathered bytes beside a plain memcpy measured in the same run.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "nfp/kernels.h"
#include "nfp/thread_pool.h"

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

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

}  // namespace

int main(int argc, char** argv) {
  std::size_t C = 100000, k = 50, n0 = 400, n1 = 400, N = 3048, B = 32, m = 25, threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const std::size_t v = std::strtoull(argv[i + 1], nullptr, 10);
    if (a == "--C") C = v; else if (a == "--k") k = v; else if (a == "--n0") n0 = v; else if (a == "--n1") n1 = v;
    else if (a == "--N") N = v; else if (a == "--B") B = v; else if (a == "--m") m = v;
    else if (a == "--threads") threads = v;
    else { std::fprintf(stderr, "unknown option %s\n", a.c_str()); return 2; }
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
  nfp::cpu::ScreenOutputs out{&o[0], &o[C], &o[2 * C], &o[3 * C], &o[4 * C], &o[5 * C], &o[6 * C]};
  const double t_screen = BestOf(3, [&] {
    nfp::cpu::screen({clean.data(), n0, N}, {attacked.data(), n1, N}, {idx.data(), C, k}, nfp::stats::TTest::kWelch, out);
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
  const double t_detect = BestOf(5, [&] {
    for (int r = 0; r < inner; ++r)
      nfp::cpu::detect_scores({clean.data(), B, N}, *bank, {draws.data(), m}, nfp::Combine::kMax, {score.data()});
  }) / inner;
  const double gathered_bytes = static_cast<double>(B * m * k) * (sizeof(float) + sizeof(std::uint32_t));
  std::vector<char> src(static_cast<std::size_t>(gathered_bytes)), dst(src.size());
  std::memset(src.data(), 1, src.size());
  const double t_copy = BestOf(5, [&] {
    for (int r = 0; r < inner; ++r) {
      std::memcpy(dst.data(), src.data(), src.size());
      src[r % src.size()] ^= 1;
    }
  }) / inner;

  std::printf(
      "{\"threads\":%zu,\"C\":%zu,\"k\":%zu,\"n0\":%zu,\"n1\":%zu,\"N\":%zu,\"screen_s\":%.6f,"
      "\"screen_candidates_per_s\":%.1f,\"B\":%zu,\"m\":%zu,\"detect_us_per_image\":%.4f,"
      "\"detect_gathered_GBps\":%.3f,\"memcpy_same_bytes_GBps\":%.3f}\n",
      nfp::threads(), C, k, n0, n1, N, t_screen, C / t_screen, B, m, 1e6 * t_detect / B,
      2 * gathered_bytes / t_detect / 1e9, 2 * gathered_bytes / t_copy / 1e9);
  return 0;
}
