// The CUDA backend against the CPU backend: same inputs, same results (to rounding: sums over
// draws and images are added in another order on the GPU), same errors word for word. Without a
// usable device only the "unavailable" contract is checked, and the run reports itself skipped
// (exit code 77) so that a CPU-only ctest never passes these comparisons off as done.
#include <cstring>
#include <random>
#include <thread>

#include "check.h"
#include "nfp/backend.h"
#include "nfp/cuda.h"
#include "nfp/dispatch.h"
#include "nfp/kernels.h"
#include "reference.h"

#if defined(NFP_WITH_CUDA)
#include <cuda_runtime.h>
#endif

using nfp::Activations;
using nfp::Subsets;

namespace {

bool Usable() { return nfp::cuda_info().usable(); }
bool skipped = false;

bool SkipWithoutDevice(const char* test) {
  if (Usable()) return false;
  std::printf("  skip %s: %s\n", test, nfp::cuda_info().reason.c_str());
  skipped = true;
  return true;
}

std::unique_ptr<nfp::Bank> MakeBank(const reference::BankData& d) {
  nfp::Status st;
  auto bank = nfp::Bank::Create(d.spec(), &st);
  CHECK_MSG(st.ok(), st.message);
  return bank;
}

void CheckSameStatus(const nfp::Status& cpu, const nfp::Status& gpu) {
  CHECK_MSG(cpu.code == gpu.code, "cpu: " + cpu.message + " / cuda: " + gpu.message);
  CHECK_MSG(cpu.argument == gpu.argument, cpu.argument + " vs " + gpu.argument);
  CHECK_MSG(cpu.message == gpu.message, "cpu: " + cpu.message + " / cuda: " + gpu.message);
}

struct Shape {
  std::size_t rows, neurons, k, count;
};

const Shape kShapes[] = {{1, 1, 1, 1},     {1, 5, 5, 3},       {3, 7, 1, 9},       {32, 650, 10, 100},
                         {5, 100, 100, 4}, {17, 3048, 50, 25}, {2, 200000, 7, 33}, {64, 33, 3, 257}};

}  // namespace

TEST(unavailable_backend_says_why) {
  if (Usable()) return;
  const std::vector<float> acts(4, 1.0f);
  const std::vector<std::uint32_t> idx = {0, 1};
  std::vector<float> out(2);
  const nfp::Status st = nfp::cuda::subset_means({acts.data(), 2, 2}, {idx.data(), 1, 2}, out.data());
  CHECK(st.code == nfp::Code::kUnavailable);
  CHECK_MSG(st.message.find(nfp::cuda_info().reason) != std::string::npos, st.message);
  nfp::BackendChoice choice;
  CHECK(nfp::choose_backend("cuda", &choice).code == nfp::Code::kUnavailable);
  CHECK(nfp::choose_backend("auto", &choice).ok() && choice.kind == nfp::BackendKind::kCpu);
  // The dispatcher's CPU path is the CPU backend.
  CHECK(nfp::subset_means(nfp::BackendKind::kCpu, {acts.data(), 2, 2}, {idx.data(), 1, 2}, out.data()).ok());
  CHECK(out[0] == 1.0f && out[1] == 1.0f);
}

TEST(subset_means_matches_cpu) {
  if (SkipWithoutDevice("subset_means_matches_cpu")) return;
  std::mt19937_64 rng(11);
  for (const Shape& s : kShapes) {
    auto acts = reference::RandomMatrix(rng, s.rows * s.neurons, -3, 3);
    auto idx = reference::RandomSubsets(rng, s.count, s.k, s.neurons);
    std::vector<float> cpu(s.rows * s.count), gpu(s.rows * s.count, -777.0f);
    CHECK(nfp::cpu::subset_means({acts.data(), s.rows, s.neurons}, {idx.data(), s.count, s.k}, cpu.data()).ok());
    const nfp::Status st =
        nfp::cuda::subset_means({acts.data(), s.rows, s.neurons}, {idx.data(), s.count, s.k}, gpu.data());
    CHECK_MSG(st.ok(), st.message);
    // The same float64 summation code on both sides: equal up to the last float bit.
    for (std::size_t i = 0; i < cpu.size(); ++i) CHECK_CLOSE(gpu[i], cpu[i], 1e-6, 1e-7);
  }
}

TEST(detect_scores_and_gradient_match_cpu) {
  if (SkipWithoutDevice("detect_scores_and_gradient_match_cpu")) return;
  std::mt19937_64 rng(12);
  struct Case {
    std::size_t rows, neurons, k, count, families, m;
  };
  const Case cases[] = {{1, 1, 1, 1, 1, 1},       {1, 10, 3, 5, 2, 7},        {32, 3048, 50, 200, 2, 25},
                        {5, 650, 10, 40, 3, 300}, {3, 200000, 7, 100, 1, 64}, {64, 54602, 3, 2000, 2, 25},
                        {2, 20, 20, 3, 4, 0}};
  for (const Case& c : cases) {
    const auto data = reference::RandomBank(rng, c.neurons, c.k, c.count, c.families);
    auto bank = MakeBank(data);
    auto acts = reference::RandomMatrix(rng, c.rows * c.neurons, -2, 2);
    std::vector<std::uint32_t> draws(c.rows * c.m);
    for (auto& d : draws) d = static_cast<std::uint32_t>(rng() % c.count);
    for (nfp::Combine combine : {nfp::Combine::kMax, nfp::Combine::kLogSumExp}) {
      const std::size_t A = c.families, n = c.rows * c.m;
      std::vector<float> s0(c.rows), s1(c.rows), f0(c.rows * A), f1(c.rows * A), m0(n), m1(n), t0(n * A), t1(n * A);
      CHECK(nfp::cpu::detect_scores({acts.data(), c.rows, c.neurons}, *bank, {draws.data(), c.m}, combine,
                                    {s0.data(), f0.data(), m0.data(), t0.data()})
                .ok());
      const nfp::Status st = nfp::cuda::detect_scores({acts.data(), c.rows, c.neurons}, *bank, {draws.data(), c.m},
                                                      combine, {s1.data(), f1.data(), m1.data(), t1.data()});
      CHECK_MSG(st.ok(), st.message);
      for (std::size_t i = 0; i < c.rows; ++i) CHECK_CLOSE(s1[i], s0[i], 1e-5, 1e-4);
      for (std::size_t i = 0; i < f0.size(); ++i) CHECK_CLOSE(f1[i], f0[i], 1e-5, 1e-4);
      for (std::size_t i = 0; i < n; ++i) CHECK_CLOSE(m1[i], m0[i], 1e-6, 1e-7);
      for (std::size_t i = 0; i < t0.size(); ++i) CHECK_CLOSE(t1[i], t0[i], 1e-5, 1e-5);
      std::vector<float> g0(acts.size()), g1(acts.size(), 9.0f);
      CHECK(nfp::cpu::score_gradient({acts.data(), c.rows, c.neurons}, *bank, {draws.data(), c.m}, combine, g0.data())
                .ok());
      const nfp::Status sg =
          nfp::cuda::score_gradient({acts.data(), c.rows, c.neurons}, *bank, {draws.data(), c.m}, combine, g1.data());
      CHECK_MSG(sg.ok(), sg.message);
      for (std::size_t i = 0; i < g0.size(); ++i) CHECK_CLOSE(g1[i], g0[i], 1e-4, 1e-4);
    }
  }
}

// Tap buffers go to the GPU packed into one matrix (nfp::detect_scores in dispatch.h): the scores
// must match the CPU's in-place read of the same buffers, to the GPU's rounding.
TEST(detect_scores_on_tap_buffers_match_cpu) {
  if (SkipWithoutDevice("detect_scores_on_tap_buffers_match_cpu")) return;
  std::mt19937_64 rng(14);
  const std::size_t rows = 9, m = 25, A = 2;
  const std::size_t widths[] = {40, 300, 7};  // tap 1 contributes a sample of 120 columns
  std::vector<std::vector<float>> buffers;
  for (std::size_t w : widths) buffers.push_back(reference::RandomMatrix(rng, (rows + 1) * w, -2, 2));
  std::vector<std::uint32_t> columns(120);
  for (std::size_t j = 0; j < columns.size(); ++j) columns[j] = static_cast<std::uint32_t>(2 * j + 1);
  const float* data[] = {buffers[0].data(), buffers[1].data(), buffers[2].data()};
  const std::uint32_t* cols[] = {nullptr, columns.data(), nullptr};
  const std::size_t offsets[] = {0, 40, 160, 167};
  const nfp::TapActivations taps{data, offsets, widths, cols, 3, rows};
  const auto bank_data = reference::RandomBank(rng, 167, 3, 60, A);
  auto bank = MakeBank(bank_data);
  std::vector<std::uint32_t> draws(rows * m);
  for (auto& d : draws) d = static_cast<std::uint32_t>(rng() % 60);
  std::vector<float> s0(rows), s1(rows), f0(rows * A), f1(rows * A);
  CHECK(nfp::cpu::detect_scores(taps, *bank, {draws.data(), m}, nfp::Combine::kMax, {s0.data(), f0.data()}).ok());
  const nfp::Status st = nfp::detect_scores(nfp::BackendKind::kCuda, taps, *bank, {draws.data(), m}, nfp::Combine::kMax,
                                            {s1.data(), f1.data()});
  CHECK_MSG(st.ok(), st.message);
  for (std::size_t i = 0; i < rows; ++i) CHECK_CLOSE(s1[i], s0[i], 1e-5, 1e-4);
  for (std::size_t i = 0; i < f0.size(); ++i) CHECK_CLOSE(f1[i], f0[i], 1e-5, 1e-4);
}

TEST(screen_matches_cpu) {
  if (SkipWithoutDevice("screen_matches_cpu")) return;
  std::mt19937_64 rng(13);
  struct Case {
    std::size_t n0, n1, neurons, k, count;
    float offset;
  };
  const Case cases[] = {
      {2, 2, 1, 1, 1, 0.0f},         {3, 5, 7, 3, 50, 0.5f},       {400, 400, 3048, 50, 20000, 0.1f},
      {37, 129, 1000, 1, 300, 0.0f}, {130, 2, 100, 100, 10, 2.0f}, {600, 1400, 100000, 5, 2000, 0.05f}};
  for (const Case& c : cases) {
    for (nfp::stats::TTest test : {nfp::stats::TTest::kWelch, nfp::stats::TTest::kStudent}) {
      auto clean = reference::RandomMatrix(rng, c.n0 * c.neurons, 10, 12);  // far from zero: the shift matters
      auto attacked = reference::RandomMatrix(rng, c.n1 * c.neurons, 10 + c.offset, 12 + c.offset);
      auto idx = reference::RandomSubsets(rng, c.count, c.k, c.neurons);
      std::vector<double> cpu(7 * c.count), gpu(7 * c.count, -1.0);
      auto views = [&](std::vector<double>& v) {
        double* b = v.data();
        const std::size_t C = c.count;
        return nfp::ScreenOutputs{b, b + C, b + 2 * C, b + 3 * C, b + 4 * C, b + 5 * C, b + 6 * C};
      };
      const Activations a0{clean.data(), c.n0, c.neurons}, a1{attacked.data(), c.n1, c.neurons};
      CHECK(nfp::cpu::screen(a0, a1, {idx.data(), c.count, c.k}, test, views(cpu)).ok());
      const nfp::Status st = nfp::cuda::screen(a0, a1, {idx.data(), c.count, c.k}, test, views(gpu));
      CHECK_MSG(st.ok(), st.message);
      const std::size_t C = c.count;
      for (std::size_t i = 0; i < C; ++i) {
        CHECK_CLOSE(gpu[i], cpu[i], 1e-12, 1e-12);                  // mu0
        CHECK_CLOSE(gpu[C + i], cpu[C + i], 1e-8, 1e-12);           // sd0
        CHECK_CLOSE(gpu[2 * C + i], cpu[2 * C + i], 1e-12, 1e-12);  // mu1
        CHECK_CLOSE(gpu[3 * C + i], cpu[3 * C + i], 1e-8, 1e-12);   // sd1
        CHECK_CLOSE(gpu[4 * C + i], cpu[4 * C + i], 1e-7, 1e-9);    // t
        CHECK_CLOSE(gpu[5 * C + i], cpu[5 * C + i], 1e-5, 1e-300);  // p, relative even in the far tail
        CHECK_CLOSE(gpu[6 * C + i], cpu[6 * C + i], 1e-7, 1e-9);    // d
      }
    }
  }
}

TEST(errors_match_cpu) {
  if (SkipWithoutDevice("errors_match_cpu")) return;
  std::mt19937_64 rng(14);
  const std::size_t rows = 4, N = 50, k = 5, F = 10, m = 6;
  auto acts = reference::RandomMatrix(rng, rows * N, -1, 1);
  auto idx = reference::RandomSubsets(rng, F, k, N);
  std::vector<float> out(rows * F);
  // An index past the end, at several positions.
  for (std::size_t pos : {std::size_t{0}, std::size_t{17}, F * k - 1}) {
    auto bad = idx;
    bad[pos] = static_cast<std::uint32_t>(N + pos);
    CheckSameStatus(nfp::cpu::subset_means({acts.data(), rows, N}, {bad.data(), F, k}, out.data()),
                    nfp::cuda::subset_means({acts.data(), rows, N}, {bad.data(), F, k}, out.data()));
  }
  // NaN and Inf activations.
  for (float poison : {std::nanf(""), std::numeric_limits<float>::infinity()}) {
    auto bad = acts;
    bad[2 * N + idx[3 * k + 1]] = poison;
    CheckSameStatus(nfp::cpu::subset_means({bad.data(), rows, N}, {idx.data(), F, k}, out.data()),
                    nfp::cuda::subset_means({bad.data(), rows, N}, {idx.data(), F, k}, out.data()));
    const auto data = reference::RandomBank(rng, N, k, F, 2);
    auto bank = MakeBank(data);
    std::vector<std::uint32_t> draws(rows * m);
    for (auto& d : draws) d = static_cast<std::uint32_t>(rng() % F);
    std::vector<float> score(rows);
    CheckSameStatus(
        nfp::cpu::detect_scores({bad.data(), rows, N}, *bank, {draws.data(), m}, nfp::Combine::kMax, {score.data()}),
        nfp::cuda::detect_scores({bad.data(), rows, N}, *bank, {draws.data(), m}, nfp::Combine::kMax, {score.data()}));
    draws[7] = static_cast<std::uint32_t>(F);
    CheckSameStatus(
        nfp::cpu::detect_scores({acts.data(), rows, N}, *bank, {draws.data(), m}, nfp::Combine::kMax, {score.data()}),
        nfp::cuda::detect_scores({acts.data(), rows, N}, *bank, {draws.data(), m}, nfp::Combine::kMax, {score.data()}));
    std::vector<double> so(7 * F);
    double* b = so.data();
    const nfp::ScreenOutputs views{b, b + F, b + 2 * F, b + 3 * F, b + 4 * F, b + 5 * F, b + 6 * F};
    const Activations half0{bad.data(), 2, N}, half1{bad.data() + 2 * N, 2, N};
    CheckSameStatus(nfp::cpu::screen(half0, half1, {idx.data(), F, k}, nfp::stats::TTest::kWelch, views),
                    nfp::cuda::screen(half0, half1, {idx.data(), F, k}, nfp::stats::TTest::kWelch, views));
  }
}

TEST(concurrent_callers_share_the_resident_bank) {
  if (SkipWithoutDevice("concurrent_callers_share_the_resident_bank")) return;
  std::mt19937_64 rng(15);
  const std::size_t rows = 32, N = 3048, k = 10, F = 500, m = 25;
  const auto data = reference::RandomBank(rng, N, k, F, 2);
  auto bank = MakeBank(data);
  auto acts = reference::RandomMatrix(rng, rows * N, -1, 1);
  std::vector<std::uint32_t> draws(rows * m);
  for (auto& d : draws) d = static_cast<std::uint32_t>(rng() % F);
  std::vector<float> expected(rows);
  CHECK(
      nfp::cuda::detect_scores({acts.data(), rows, N}, *bank, {draws.data(), m}, nfp::Combine::kMax, {expected.data()})
          .ok());
  std::vector<std::thread> threads;
  std::vector<int> mismatches(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::vector<float> got(rows);
      for (int rep = 0; rep < 20; ++rep) {
        if (!nfp::cuda::detect_scores({acts.data(), rows, N}, *bank, {draws.data(), m}, nfp::Combine::kMax,
                                      {got.data()})
                 .ok() ||
            std::memcmp(got.data(), expected.data(), rows * sizeof(float)) != 0) {
          ++mismatches[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 8; ++t) CHECK(mismatches[t] == 0);  // the block reduction has a fixed order
}

#if defined(NFP_WITH_CUDA)
TEST(device_forms_take_device_pointers_and_a_stream) {
  if (SkipWithoutDevice("device_forms_take_device_pointers_and_a_stream")) return;
  std::mt19937_64 rng(16);
  const std::size_t rows = 8, N = 700, k = 4, F = 64, m = 9;
  auto acts = reference::RandomMatrix(rng, rows * N, -1, 1);
  auto idx = reference::RandomSubsets(rng, F, k, N);
  const auto data = reference::RandomBank(rng, N, k, F, 2);
  auto bank = MakeBank(data);
  std::vector<std::uint32_t> draws(rows * m);
  for (auto& d : draws) d = static_cast<std::uint32_t>(rng() % F);
  cudaStream_t stream;
  CHECK(cudaStreamCreate(&stream) == cudaSuccess);
  float *d_acts, *d_means, *d_score;
  std::uint32_t *d_idx, *d_draws;
  CHECK(cudaMalloc(&d_acts, acts.size() * 4) == cudaSuccess);
  CHECK(cudaMalloc(&d_means, rows * F * 4) == cudaSuccess);
  CHECK(cudaMalloc(&d_score, rows * 4) == cudaSuccess);
  CHECK(cudaMalloc(&d_idx, idx.size() * 4) == cudaSuccess);
  CHECK(cudaMalloc(&d_draws, draws.size() * 4) == cudaSuccess);
  cudaMemcpy(d_acts, acts.data(), acts.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(d_idx, idx.data(), idx.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(d_draws, draws.data(), draws.size() * 4, cudaMemcpyHostToDevice);
  nfp::Status st = nfp::cuda::subset_means_on_device({d_acts, rows, N}, {d_idx, F, k}, d_means, stream);
  CHECK_MSG(st.ok(), st.message);
  std::vector<float> means(rows * F), cpu_means(rows * F);
  cudaMemcpy(means.data(), d_means, means.size() * 4, cudaMemcpyDeviceToHost);
  CHECK(nfp::cpu::subset_means({acts.data(), rows, N}, {idx.data(), F, k}, cpu_means.data()).ok());
  for (std::size_t i = 0; i < means.size(); ++i) CHECK_CLOSE(means[i], cpu_means[i], 1e-6, 1e-7);
  st =
      nfp::cuda::detect_scores_on_device({d_acts, rows, N}, *bank, {d_draws, m}, nfp::Combine::kMax, {d_score}, stream);
  CHECK_MSG(st.ok(), st.message);
  std::vector<float> score(rows), cpu_score(rows);
  cudaMemcpy(score.data(), d_score, rows * 4, cudaMemcpyDeviceToHost);
  CHECK(
      nfp::cpu::detect_scores({acts.data(), rows, N}, *bank, {draws.data(), m}, nfp::Combine::kMax, {cpu_score.data()})
          .ok());
  for (std::size_t i = 0; i < rows; ++i) CHECK_CLOSE(score[i], cpu_score[i], 1e-5, 1e-4);
  // An out-of-range draw found on the device is reported with its position and value.
  const std::uint32_t bad = static_cast<std::uint32_t>(F + 3);
  cudaMemcpy(d_draws + 5, &bad, 4, cudaMemcpyHostToDevice);
  st =
      nfp::cuda::detect_scores_on_device({d_acts, rows, N}, *bank, {d_draws, m}, nfp::Combine::kMax, {d_score}, stream);
  CHECK(st.code == nfp::Code::kOutOfRange);
  CHECK_MSG(st.message.find("received 67 at draws[5]") != std::string::npos, st.message);
  for (void* p : {static_cast<void*>(d_acts), static_cast<void*>(d_means), static_cast<void*>(d_score),
                  static_cast<void*>(d_idx), static_cast<void*>(d_draws)}) {
    cudaFree(p);
  }
  cudaStreamDestroy(stream);
}
#endif

int main() {
  const int rc = check::RunAll();
  if (rc != 0) return rc;
  if (skipped) {
    std::printf("CUDA comparisons skipped: %s\n", nfp::cuda_info().reason.c_str());
    return 77;
  }
  return 0;
}
