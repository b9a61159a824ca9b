// The CUDA kernels (src/cuda/launch.cu) run on the CPU under the emulator of cuda/emulate.h and
// compared with the CPU backend: the kernels' indexing, reductions, flags and edge cases are
// checked on every machine, GPU or not. What only a GPU can check (its memory model, launch
// limits, the host side in backend.cc) is in test_cuda.
#include <random>

#include "check.h"
#include "cuda/launch.cu"  // the kernels themselves, compiled as C++ against the emulator
#include "nfp/kernels.h"
#include "reference.h"

namespace launch = nfp::cuda::launch;

namespace {

launch::Flags NoFlags() { return {launch::kNone, launch::kNone}; }

// The arrays a device bank uploads, kept on the host for the emulated kernels.
struct HostBank {
  std::vector<float> mu0, mu1;
  std::vector<double> inv_sd0, inv_sd1, log_sd_ratio;
  launch::BankView view;
  explicit HostBank(const nfp::Bank& bank)
      : mu0(bank.all_mu0()),
        mu1(bank.all_mu1()),
        inv_sd0(bank.all_inv_sd0()),
        inv_sd1(bank.all_inv_sd1()),
        log_sd_ratio(bank.all_log_sd_ratio()) {
    view = {bank.all_indices().data(), mu0.data(),   inv_sd0.data(), mu1.data(),      inv_sd1.data(),
            log_sd_ratio.data(),       bank.count(), bank.k(),       bank.families(), bank.neurons()};
  }
};

std::unique_ptr<nfp::Bank> MakeBank(const reference::BankData& d) {
  nfp::Status st;
  auto bank = nfp::Bank::Create(d.spec(), &st);
  CHECK_MSG(st.ok(), st.message);
  return bank;
}

}  // namespace

TEST(subset_means_kernel_matches_cpu) {
  std::mt19937_64 rng(31);
  struct Shape {
    std::size_t rows, neurons, k, count;
  };
  for (const Shape& s : {Shape{1, 1, 1, 1}, Shape{3, 7, 7, 5}, Shape{5, 300, 50, 61}, Shape{2, 100000, 3, 9}}) {
    auto acts = reference::RandomMatrix(rng, s.rows * s.neurons, -3, 3);
    auto idx = reference::RandomSubsets(rng, s.count, s.k, s.neurons);
    std::vector<float> cpu(s.rows * s.count), gpu(s.rows * s.count, -7.0f);
    CHECK(nfp::cpu::subset_means({acts.data(), s.rows, s.neurons}, {idx.data(), s.count, s.k}, cpu.data()).ok());
    launch::Flags flags = NoFlags();
    CHECK(launch::SubsetMeans(acts.data(), s.rows, s.neurons, idx.data(), s.count, s.k, gpu.data(), &flags, nullptr) ==
          cudaSuccess);
    CHECK(flags.bad_index == launch::kNone && flags.non_finite == launch::kNone);
    for (std::size_t i = 0; i < cpu.size(); ++i) CHECK(gpu[i] == cpu[i]);  // same code, same order: exact
  }
}

TEST(subset_means_kernel_flags_first_bad_index_and_nonfinite) {
  std::mt19937_64 rng(32);
  const std::size_t rows = 3, N = 40, k = 4, F = 12;
  auto acts = reference::RandomMatrix(rng, rows * N, -1, 1);
  auto idx = reference::RandomSubsets(rng, F, k, N);
  std::vector<float> out(rows * F);
  auto bad = idx;
  bad[30] = N;
  bad[9] = N + 5;
  launch::Flags flags = NoFlags();
  launch::SubsetMeans(acts.data(), rows, N, bad.data(), F, k, out.data(), &flags, nullptr);
  CHECK(flags.bad_index == 9);
  acts[1 * N + idx[5 * k + 2]] = std::nanf("");
  flags = NoFlags();
  launch::SubsetMeans(acts.data(), rows, N, idx.data(), F, k, out.data(), &flags, nullptr);
  CHECK(flags.bad_index == launch::kNone);
  // The first (row, subset) in row-major order whose subset holds the NaN.
  std::size_t first = launch::kNone;
  for (std::size_t f = 0; f < F && first == launch::kNone; ++f) {
    for (std::size_t j = 0; j < k; ++j) {
      if (idx[f * k + j] == idx[5 * k + 2]) first = 1 * F + f;
    }
  }
  CHECK_MSG(flags.non_finite == first, std::to_string(flags.non_finite) + " vs " + std::to_string(first));
}

TEST(row_scores_kernel_matches_cpu_scores_terms_and_gradient) {
  std::mt19937_64 rng(33);
  struct Case {
    std::size_t rows, neurons, k, count, families, m;
  };
  for (const Case& c : {Case{1, 1, 1, 1, 1, 1}, Case{3, 60, 5, 20, 2, 7}, Case{2, 500, 50, 30, 3, 300},
                        Case{2, 20, 20, 3, 4, 0}, Case{4, 3048, 3, 200, 1, 25}}) {
    const auto data = reference::RandomBank(rng, c.neurons, c.k, c.count, c.families);
    auto bank = MakeBank(data);
    auto acts = reference::RandomMatrix(rng, c.rows * c.neurons, -2, 2);
    std::vector<std::uint32_t> draws(c.rows * c.m);
    for (auto& d : draws) d = static_cast<std::uint32_t>(rng() % c.count);
    const std::size_t A = c.families, n = c.rows * c.m;
    for (nfp::Combine combine : {nfp::Combine::kMax, nfp::Combine::kLogSumExp}) {
      std::vector<float> s0(c.rows), s1(c.rows), f0(c.rows * A), f1(c.rows * A), m0(n), m1(n), t0(n * A), t1(n * A);
      CHECK(nfp::cpu::detect_scores({acts.data(), c.rows, c.neurons}, *bank, {draws.data(), c.m}, combine,
                                    {s0.data(), f0.data(), m0.data(), t0.data()})
                .ok());
      std::vector<double> scratch(n + 1);
      launch::Flags flags = NoFlags();
      CHECK(launch::RowScores(acts.data(), c.rows, HostBank(*bank).view, draws.data(), c.m, combine, s1.data(),
                              f1.data(), m1.data(), t1.data(), nullptr, scratch.data(), &flags,
                              nullptr) == cudaSuccess);
      CHECK(flags.bad_index == launch::kNone && flags.non_finite == launch::kNone);
      for (std::size_t i = 0; i < c.rows; ++i) CHECK_CLOSE(s1[i], s0[i], 1e-6, 1e-5);
      for (std::size_t i = 0; i < f0.size(); ++i) CHECK_CLOSE(f1[i], f0[i], 1e-6, 1e-5);
      for (std::size_t i = 0; i < n; ++i) CHECK(m1[i] == m0[i]);
      for (std::size_t i = 0; i < t0.size(); ++i) CHECK_CLOSE(t1[i], t0[i], 1e-6, 1e-6);
      std::vector<float> g0(acts.size()), g1(acts.size(), 5.0f);
      CHECK(nfp::cpu::score_gradient({acts.data(), c.rows, c.neurons}, *bank, {draws.data(), c.m}, combine, g0.data())
                .ok());
      flags = NoFlags();
      CHECK(launch::RowScores(acts.data(), c.rows, HostBank(*bank).view, draws.data(), c.m, combine, nullptr, nullptr,
                              nullptr, nullptr, g1.data(), scratch.data(), &flags, nullptr) == cudaSuccess);
      for (std::size_t i = 0; i < g0.size(); ++i) CHECK_CLOSE(g1[i], g0[i], 1e-5, 1e-5);
    }
  }
}

TEST(row_scores_kernel_flags_bad_draws_and_nonfinite_means) {
  std::mt19937_64 rng(34);
  const std::size_t rows = 3, N = 30, k = 3, F = 8, m = 5;
  const auto data = reference::RandomBank(rng, N, k, F, 2);
  auto bank = MakeBank(data);
  auto acts = reference::RandomMatrix(rng, rows * N, -1, 1);
  std::vector<std::uint32_t> draws(rows * m);
  for (auto& d : draws) d = static_cast<std::uint32_t>(rng() % F);
  draws[11] = F;
  draws[13] = F + 9;
  std::vector<float> score(rows);
  std::vector<double> scratch(rows * m);
  launch::Flags flags = NoFlags();
  launch::RowScores(acts.data(), rows, HostBank(*bank).view, draws.data(), m, nfp::Combine::kMax, score.data(), nullptr,
                    nullptr, nullptr, nullptr, scratch.data(), &flags, nullptr);
  CHECK(flags.bad_index == 11);
  draws[11] = 0;
  draws[13] = 1;
  acts[2 * N + bank->indices(draws[2 * m + 3])[1]] = std::numeric_limits<float>::infinity();
  flags = NoFlags();
  launch::RowScores(acts.data(), rows, HostBank(*bank).view, draws.data(), m, nfp::Combine::kMax, score.data(), nullptr,
                    nullptr, nullptr, nullptr, scratch.data(), &flags, nullptr);
  CHECK(flags.bad_index == launch::kNone);
  CHECK(flags.non_finite >= 2 * m && flags.non_finite <= 2 * m + 3);
}

TEST(transpose_kernel_places_blocks_at_their_offset) {
  std::mt19937_64 rng(35);
  for (auto [rows, cols] : {std::pair<std::size_t, std::size_t>{1, 1}, {33, 70}, {64, 32}, {5, 129}}) {
    auto src = reference::RandomMatrix(rng, rows * cols, -1, 1);
    const std::size_t ld = rows + 7, offset = 3;
    std::vector<float> dst(cols * ld, -9.0f);
    CHECK(launch::Transpose(src.data(), rows, cols, dst.data(), ld, offset, nullptr) == cudaSuccess);
    for (std::size_t c = 0; c < cols; ++c) {
      for (std::size_t r = 0; r < ld; ++r) {
        const bool inside = r >= offset && r < offset + rows;
        CHECK(dst[c * ld + r] == (inside ? src[(r - offset) * cols + c] : -9.0f));
      }
    }
  }
}

TEST(screen_kernel_matches_cpu) {
  std::mt19937_64 rng(36);
  struct Case {
    std::size_t n0, n1, neurons, k, count;
  };
  for (const Case& c :
       {Case{2, 2, 1, 1, 1}, Case{3, 5, 9, 3, 17}, Case{100, 90, 300, 50, 24}, Case{130, 140, 64, 33, 9}}) {
    for (nfp::stats::TTest test : {nfp::stats::TTest::kWelch, nfp::stats::TTest::kStudent}) {
      auto clean = reference::RandomMatrix(rng, c.n0 * c.neurons, 10, 12);
      auto attacked = reference::RandomMatrix(rng, c.n1 * c.neurons, 10.05f, 12.05f);
      auto idx = reference::RandomSubsets(rng, c.count, c.k, c.neurons);
      const std::size_t C = c.count, n = c.n0 + c.n1;
      std::vector<double> cpu(7 * C), gpu(7 * C, -1.0);
      auto views = [C](std::vector<double>& v) {
        double* b = v.data();
        return nfp::ScreenOutputs{b, b + C, b + 2 * C, b + 3 * C, b + 4 * C, b + 5 * C, b + 6 * C};
      };
      CHECK(nfp::cpu::screen({clean.data(), c.n0, c.neurons}, {attacked.data(), c.n1, c.neurons}, {idx.data(), C, c.k},
                             test, views(cpu))
                .ok());
      // Feature-major input built here (the transpose kernel has its own test; emulating it at
      // these sizes would cost tens of thousands of threads).
      std::vector<float> fm(c.neurons * n);
      for (std::size_t j = 0; j < c.neurons; ++j) {
        for (std::size_t i = 0; i < c.n0; ++i) fm[j * n + i] = clean[i * c.neurons + j];
        for (std::size_t i = 0; i < c.n1; ++i) fm[j * n + c.n0 + i] = attacked[i * c.neurons + j];
      }
      launch::Flags flags = NoFlags();
      CHECK(launch::Screen(fm.data(), c.neurons, c.n0, c.n1, idx.data(), C, c.k, test, views(gpu), &flags, nullptr) ==
            cudaSuccess);
      CHECK(flags.bad_index == launch::kNone && flags.non_finite == launch::kNone);
      for (std::size_t i = 0; i < 7 * C; ++i) {
        const double rel = i / C == 5 ? 1e-6 : 1e-9;  // p is steep in t
        CHECK_CLOSE(gpu[i], cpu[i], rel, 1e-12);
      }
    }
  }
}

TEST(screen_kernel_flags_bad_candidates_and_nonfinite) {
  std::mt19937_64 rng(37);
  const std::size_t n0 = 4, n1 = 5, N = 20, k = 40, C = 6, n = n0 + n1;
  auto fm = reference::RandomMatrix(rng, N * n, 0, 1);
  std::vector<std::uint32_t> idx(C * k);
  for (auto& v : idx) v = static_cast<std::uint32_t>(rng() % N);
  idx[4 * k + 35] = N;  // in the second 32-lane pass over k
  idx[2 * k + 1] = N + 1;
  std::vector<double> out(7 * C);
  double* b = out.data();
  const nfp::ScreenOutputs views{b, b + C, b + 2 * C, b + 3 * C, b + 4 * C, b + 5 * C, b + 6 * C};
  launch::Flags flags = NoFlags();
  launch::Screen(fm.data(), N, n0, n1, idx.data(), C, k, nfp::stats::TTest::kWelch, views, &flags, nullptr);
  CHECK(flags.bad_index == 2 * k + 1);
  idx[4 * k + 35] = 0;
  idx[2 * k + 1] = 0;
  fm[static_cast<std::size_t>(idx[3 * k]) * n + n0 + 2] = std::nanf("");  // an attacked image of candidate 3
  flags = NoFlags();
  launch::Screen(fm.data(), N, n0, n1, idx.data(), C, k, nfp::stats::TTest::kWelch, views, &flags, nullptr);
  CHECK(flags.bad_index == launch::kNone);
  CHECK(flags.non_finite <= 3);  // candidate 3, or an earlier one sharing the neuron
}

CHECK_MAIN()
