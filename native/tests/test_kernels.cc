// The CPU kernels against the float64 reference (reference.h) on random shapes and edge cases,
// and their determinism across thread counts.
#include <algorithm>
#include <cmath>
#include <limits>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "check.h"
#include "nfp/kernels.h"
#include "nfp/tap_binding.h"
#include "nfp/thread_pool.h"
#include "reference.h"

using nfp::Activations;
using nfp::Subsets;

namespace {

std::unique_ptr<nfp::Bank> MakeBank(const reference::BankData& d) {
  nfp::Status st;
  auto bank = nfp::Bank::Create(d.spec(), &st);
  CHECK_MSG(st.ok(), st.message);
  return bank;
}

struct Shape {
  std::size_t rows, neurons, k, count;
};

const Shape kShapes[] = {{1, 1, 1, 1},     {1, 5, 5, 3},       {3, 7, 1, 9},       {32, 650, 10, 100},
                         {5, 100, 100, 4}, {17, 3048, 50, 25}, {2, 200000, 7, 33}, {64, 33, 3, 257}};

}  // namespace

TEST(subset_means_matches_reference) {
  std::mt19937_64 rng(1);
  for (const Shape& s : kShapes) {
    auto acts = reference::RandomMatrix(rng, s.rows * s.neurons, -3, 3);
    auto idx = reference::RandomSubsets(rng, s.count, s.k, s.neurons);
    std::vector<float> out(s.rows * s.count, -777.0f);
    auto st = nfp::cpu::subset_means({acts.data(), s.rows, s.neurons}, {idx.data(), s.count, s.k}, out.data());
    CHECK_MSG(st.ok(), st.message);
    for (std::size_t b = 0; b < s.rows; ++b)
      for (std::size_t f = 0; f < s.count; ++f)
        CHECK_CLOSE(out[b * s.count + f], reference::Mean(&acts[b * s.neurons], &idx[f * s.k], s.k), 1e-6, 1e-7);
  }
}

TEST(subset_means_repeated_indices_and_rows) {
  // Subsets may repeat a neuron (the kernel does not require distinct indices); rows may repeat.
  std::vector<float> acts = {1, 2, 3, 1, 2, 3};
  std::vector<std::uint32_t> idx = {2, 2, 0};
  std::vector<float> out(2);
  auto st = nfp::cpu::subset_means({acts.data(), 2, 3}, {idx.data(), 1, 3}, out.data());
  CHECK(st.ok());
  CHECK_CLOSE(out[0], 7.0 / 3, 1e-7, 0);
  CHECK(out[0] == out[1]);
}

TEST(subset_means_rejects_bad_indices_and_nonfinite) {
  std::vector<float> acts = {1, 2, 3, 4};
  std::vector<std::uint32_t> idx = {0, 2};
  std::vector<float> out(2);
  auto st = nfp::cpu::subset_means({acts.data(), 2, 2}, {idx.data(), 1, 2}, out.data());
  CHECK(st.code == nfp::Code::kOutOfRange && st.argument == "subsets");
  idx = {0, 0xFFFFFFFFu};
  st = nfp::cpu::subset_means({acts.data(), 2, 2}, {idx.data(), 1, 2}, out.data());
  CHECK(st.code == nfp::Code::kOutOfRange);
  idx = {0, 1};
  acts[3] = NAN;
  st = nfp::cpu::subset_means({acts.data(), 2, 2}, {idx.data(), 1, 2}, out.data());
  CHECK(st.code == nfp::Code::kNonFinite && st.argument == "acts");
  CHECK_MSG(st.message.find("row 1") != std::string::npos, st.message);
  acts[3] = INFINITY;
  st = nfp::cpu::subset_means({acts.data(), 2, 2}, {idx.data(), 1, 2}, out.data());
  CHECK(st.code == nfp::Code::kNonFinite);
}

TEST(detect_scores_matches_reference) {
  std::mt19937_64 rng(2);
  for (std::size_t families : {1u, 2u, 3u}) {
    for (const Shape& s : kShapes) {
      auto bank_data = reference::RandomBank(rng, s.neurons, s.k, s.count, families);
      auto bank = MakeBank(bank_data);
      auto acts = reference::RandomMatrix(rng, s.rows * s.neurons, -1.5f, 1.5f);
      const std::size_t m = std::min<std::size_t>(s.count, 25);
      std::vector<std::uint32_t> draws(s.rows * m);
      for (std::size_t b = 0; b < s.rows; ++b) {
        auto d = reference::RandomSubsets(rng, 1, m, s.count);
        std::copy(d.begin(), d.end(), draws.begin() + b * m);
      }
      for (auto combine : {nfp::Combine::kMax, nfp::Combine::kLogSumExp}) {
        std::vector<float> score(s.rows), fam(s.rows * families), means(s.rows * m), terms(s.rows * m * families);
        nfp::DetectOutputs out{score.data(), fam.data(), means.data(), terms.data()};
        auto st = nfp::cpu::detect_scores({acts.data(), s.rows, s.neurons}, *bank, {draws.data(), m}, combine, out);
        CHECK_MSG(st.ok(), st.message);
        for (std::size_t b = 0; b < s.rows; ++b) {
          const double want = reference::Score(&acts[b * s.neurons], bank_data, &draws[b * m], m, combine);
          CHECK_CLOSE(score[b], want, 1e-5, 1e-4);
          double fam_total = 0;
          for (std::size_t i = 0; i < m; ++i) {
            const std::uint32_t f = draws[b * m + i];
            const double x = reference::Mean(&acts[b * s.neurons], &bank_data.indices[f * s.k], s.k);
            CHECK_CLOSE(means[b * m + i], x, 1e-6, 1e-7);
            fam_total += terms[(b * m + i) * families + 0];
          }
          CHECK_CLOSE(fam[b * families + 0], fam_total, 1e-5, 1e-3);
        }
      }
    }
  }
}

TEST(detect_scores_zero_draws_and_bad_draws) {
  std::mt19937_64 rng(3);
  auto bank_data = reference::RandomBank(rng, 10, 2, 5, 1);
  auto bank = MakeBank(bank_data);
  auto acts = reference::RandomMatrix(rng, 3 * 10, 0, 1);
  std::vector<float> score(3, 1.0f);
  auto st = nfp::cpu::detect_scores({acts.data(), 3, 10}, *bank, {nullptr, 0}, nfp::Combine::kMax, {score.data()});
  CHECK(st.ok());
  CHECK(score[0] == 0 && score[2] == 0);
  std::vector<std::uint32_t> draws = {0, 5, 1, 1, 2, 3};
  st = nfp::cpu::detect_scores({acts.data(), 3, 10}, *bank, {draws.data(), 2}, nfp::Combine::kMax, {score.data()});
  CHECK(st.code == nfp::Code::kOutOfRange && st.argument == "draws");
  st = nfp::cpu::detect_scores({acts.data(), 3, 9}, *bank, {draws.data(), 2}, nfp::Combine::kMax, {score.data()});
  CHECK(st.code == nfp::Code::kInvalidArgument && st.argument == "acts");
  draws[1] = 4;
  acts[2 * 10 + bank_data.indices[2 * 2]] = NAN;  // row 2 uses fingerprint 2
  st = nfp::cpu::detect_scores({acts.data(), 3, 10}, *bank, {draws.data(), 2}, nfp::Combine::kMax, {score.data()});
  CHECK(st.code == nfp::Code::kNonFinite);
  CHECK_MSG(st.message.find("row 2") != std::string::npos, st.message);
}

// Random tap buffers standing for `neurons` neurons: several layers, some sampled (columns into a
// wider layer), some empty, each buffer holding `ran` >= rows images (a padded fixed-batch run).
struct RandomTaps {
  std::vector<std::vector<float>> buffers;
  std::vector<std::vector<std::uint32_t>> columns;
  std::vector<const float*> data;
  std::vector<const std::uint32_t*> column_ptrs;
  std::vector<std::size_t> offsets{0}, widths;
  nfp::TapActivations view(std::size_t rows) const {
    return {data.data(), offsets.data(), widths.data(), column_ptrs.data(), widths.size(), rows};
  }
};

RandomTaps MakeRandomTaps(std::mt19937_64& rng, std::size_t neurons, std::size_t taps, std::size_t ran) {
  RandomTaps t;
  std::size_t left = neurons;
  for (std::size_t i = 0; i < taps; ++i) {
    const std::size_t size = i + 1 == taps ? left : std::uniform_int_distribution<std::size_t>(0, left)(rng);
    left -= size;
    const bool sampled = size > 0 && rng() % 2 == 0;
    const std::size_t width = sampled ? size + 1 + rng() % 7 : size;
    std::vector<std::uint32_t> cols;
    if (sampled) {
      auto c = reference::RandomSubsets(rng, 1, size, width);
      cols.assign(c.begin(), c.end());
      std::sort(cols.begin(), cols.end());
    }
    t.buffers.push_back(reference::RandomMatrix(rng, ran * width, -1.5f, 1.5f));
    t.columns.push_back(cols);
    t.widths.push_back(width);
    t.offsets.push_back(t.offsets.back() + size);
  }
  for (std::size_t i = 0; i < taps; ++i) {
    t.data.push_back(t.buffers[i].data());
    t.column_ptrs.push_back(t.columns[i].empty() ? nullptr : t.columns[i].data());
  }
  return t;
}

TEST(detect_scores_on_tap_buffers_equals_packed_matrix) {
  std::mt19937_64 rng(12);
  for (std::size_t taps : {1u, 2u, 5u, 40u}) {
    for (const Shape& s : kShapes) {
      auto bank_data = reference::RandomBank(rng, s.neurons, s.k, s.count, 2);
      auto bank = MakeBank(bank_data);
      const std::size_t ran = s.rows + rng() % 3;
      RandomTaps t = MakeRandomTaps(rng, s.neurons, taps, ran);
      std::vector<float> packed(s.rows * s.neurons);
      auto st = nfp::cpu::pack_taps(t.view(s.rows), packed.data());
      CHECK_MSG(st.ok(), st.message);
      const std::size_t m = std::min<std::size_t>(s.count, 25);
      auto draws = reference::RandomSubsets(rng, s.rows, m, s.count);
      for (auto combine : {nfp::Combine::kMax, nfp::Combine::kLogSumExp}) {
        std::vector<float> score(s.rows), fam(s.rows * 2), means(s.rows * m), terms(s.rows * m * 2);
        std::vector<float> score2(s.rows), fam2(s.rows * 2), means2(s.rows * m), terms2(s.rows * m * 2);
        st = nfp::cpu::detect_scores({packed.data(), s.rows, s.neurons}, *bank, {draws.data(), m}, combine,
                                     {score.data(), fam.data(), means.data(), terms.data()});
        CHECK_MSG(st.ok(), st.message);
        st = nfp::cpu::detect_scores(t.view(s.rows), *bank, {draws.data(), m}, combine,
                                     {score2.data(), fam2.data(), means2.data(), terms2.data()});
        CHECK_MSG(st.ok(), st.message);
        // Bit for bit: the same values summed in the same order.
        CHECK(std::memcmp(score.data(), score2.data(), score.size() * sizeof(float)) == 0);
        CHECK(std::memcmp(fam.data(), fam2.data(), fam.size() * sizeof(float)) == 0);
        CHECK(std::memcmp(means.data(), means2.data(), means.size() * sizeof(float)) == 0);
        CHECK(std::memcmp(terms.data(), terms2.data(), terms.size() * sizeof(float)) == 0);
      }
    }
  }
}

// A binding made once scores any buffers of its layout: equal, bit for bit, to the packed matrix,
// for 1-3 families (records of one, exactly one and more than one cache line), and independent of
// the caller's column arrays after it is made (it keeps its own copy).
TEST(tap_binding_scores_equal_packed_matrix_and_keeps_its_layout) {
  std::mt19937_64 rng(14);
  for (std::size_t families : {1u, 2u, 3u}) {
    for (const Shape& s : kShapes) {
      auto bank_data = reference::RandomBank(rng, s.neurons, s.k, s.count, families);
      auto bank = MakeBank(bank_data);
      const std::size_t ran = s.rows + rng() % 3;
      RandomTaps t = MakeRandomTaps(rng, s.neurons, 1 + rng() % 6, ran);
      nfp::Status st;
      auto binding = nfp::TapBinding::Create(*bank, t.view(0), &st);
      CHECK_MSG(binding != nullptr, st.message);
      RandomTaps layout_copy = t;  // what the binding was made from, before the caller's arrays change
      for (auto& cols : t.columns) {
        for (auto& c : cols) c = 0;
      }
      for (int round = 0; round < 2; ++round) {
        for (auto& buffer : layout_copy.buffers) buffer = reference::RandomMatrix(rng, buffer.size(), -2.0f, 2.0f);
        for (std::size_t i = 0; i < layout_copy.data.size(); ++i) layout_copy.data[i] = layout_copy.buffers[i].data();
        for (std::size_t i = 0; i < layout_copy.column_ptrs.size(); ++i)
          if (layout_copy.column_ptrs[i] != nullptr) layout_copy.column_ptrs[i] = layout_copy.columns[i].data();
        std::vector<float> packed(s.rows * s.neurons);
        CHECK(nfp::cpu::pack_taps(layout_copy.view(s.rows), packed.data()).ok());
        const std::size_t m = std::min<std::size_t>(s.count, 25);
        auto draws = reference::RandomSubsets(rng, s.rows, m, s.count);
        const std::size_t A = families;
        std::vector<float> score(s.rows), fam(s.rows * A), terms(s.rows * m * A);
        std::vector<float> score2(s.rows), fam2(s.rows * A), terms2(s.rows * m * A);
        CHECK(nfp::cpu::detect_scores({packed.data(), s.rows, s.neurons}, *bank, {draws.data(), m},
                                      nfp::Combine::kLogSumExp, {score.data(), fam.data(), nullptr, terms.data()})
                  .ok());
        st = nfp::cpu::detect_scores(*binding, layout_copy.data.data(), s.rows, {draws.data(), m},
                                     nfp::Combine::kLogSumExp, {score2.data(), fam2.data(), nullptr, terms2.data()});
        CHECK_MSG(st.ok(), st.message);
        CHECK(std::memcmp(score.data(), score2.data(), score.size() * sizeof(float)) == 0);
        CHECK(std::memcmp(fam.data(), fam2.data(), fam.size() * sizeof(float)) == 0);
        CHECK(std::memcmp(terms.data(), terms2.data(), terms.size() * sizeof(float)) == 0);
      }
    }
  }
}

TEST(tap_binding_refuses_bad_layouts_and_draws) {
  std::mt19937_64 rng(15);
  auto bank_data = reference::RandomBank(rng, 10, 2, 5, 2);
  auto bank = MakeBank(bank_data);
  RandomTaps t = MakeRandomTaps(rng, 9, 3, 2);  // one neuron short of the bank's
  nfp::Status st;
  CHECK(nfp::TapBinding::Create(*bank, t.view(0), &st) == nullptr);
  CHECK_MSG(st.message.find("10 neurons") != std::string::npos, st.message);
  RandomTaps u = MakeRandomTaps(rng, 10, 1, 2);
  u.column_ptrs[0] = nullptr;  // a whole layer whose width is not its size
  u.widths[0] = 12;
  CHECK(nfp::TapBinding::Create(*bank, u.view(0), &st) == nullptr);
  CHECK(st.code == nfp::Code::kInvalidArgument);
  RandomTaps v = MakeRandomTaps(rng, 10, 1, 2);
  auto binding = nfp::TapBinding::Create(*bank, v.view(0), &st);
  CHECK_MSG(binding != nullptr, st.message);
  std::vector<std::uint32_t> draws = {0, 5};  // 5 is past the bank's 5 fingerprints
  std::vector<float> score(1);
  st = nfp::cpu::detect_scores(*binding, v.data.data(), 1, {draws.data(), 2}, nfp::Combine::kMax, {score.data()});
  CHECK(st.code == nfp::Code::kOutOfRange);
  CHECK_MSG(st.message.find("draws") != std::string::npos, st.message);
}

TEST(detect_scores_on_tap_buffers_rejects_bad_layouts_and_nonfinite) {
  std::mt19937_64 rng(13);
  auto bank_data = reference::RandomBank(rng, 10, 2, 5, 1);
  auto bank = MakeBank(bank_data);
  RandomTaps t = MakeRandomTaps(rng, 10, 3, 2);
  std::vector<std::uint32_t> draws = {0, 1, 2, 3};
  std::vector<float> score(2);
  auto st = nfp::cpu::detect_scores(t.view(2), *bank, {draws.data(), 2}, nfp::Combine::kMax, {score.data()});
  CHECK_MSG(st.ok(), st.message);
  // Neurons in all differ from the bank's.
  RandomTaps fewer = MakeRandomTaps(rng, 9, 3, 2);
  st = nfp::cpu::detect_scores(fewer.view(2), *bank, {draws.data(), 2}, nfp::Combine::kMax, {score.data()});
  CHECK(st.code == nfp::Code::kInvalidArgument && st.argument == "taps");
  // A column past its layer's width.
  RandomTaps wide = MakeRandomTaps(rng, 10, 1, 2);
  wide.columns[0].assign(10, 0);
  wide.columns[0][9] = static_cast<std::uint32_t>(wide.widths[0]);
  wide.column_ptrs[0] = wide.columns[0].data();
  st = nfp::cpu::detect_scores(wide.view(2), *bank, {draws.data(), 2}, nfp::Combine::kMax, {score.data()});
  CHECK(st.code == nfp::Code::kOutOfRange && st.argument == "taps");
  CHECK_MSG(st.message.find("columns[9]") != std::string::npos, st.message);
  // Draws out of range, then a NaN read by row 1's draw: the same errors as the matrix form.
  draws[3] = 5;
  st = nfp::cpu::detect_scores(t.view(2), *bank, {draws.data(), 2}, nfp::Combine::kMax, {score.data()});
  CHECK(st.code == nfp::Code::kOutOfRange && st.argument == "draws");
  draws[3] = 3;
  std::vector<float> packed(2 * 10);
  CHECK(nfp::cpu::pack_taps(t.view(2), packed.data()).ok());
  const std::uint32_t n = bank_data.indices[2 * 2];  // row 1 draws fingerprint 2 first
  std::size_t tap = 0;
  while (t.offsets[tap + 1] <= n) ++tap;
  const std::size_t j = n - t.offsets[tap];
  const std::size_t col = t.columns[tap].empty() ? j : t.columns[tap][j];
  t.buffers[tap][1 * t.widths[tap] + col] = NAN;
  st = nfp::cpu::detect_scores(t.view(2), *bank, {draws.data(), 2}, nfp::Combine::kMax, {score.data()});
  CHECK(st.code == nfp::Code::kNonFinite);
  CHECK_MSG(st.message.find("row 1") != std::string::npos, st.message);
}

TEST(score_gradient_matches_finite_differences) {
  std::mt19937_64 rng(4);
  for (std::size_t families : {1u, 2u, 4u}) {
    for (auto combine : {nfp::Combine::kMax, nfp::Combine::kLogSumExp}) {
      const std::size_t N = 40, k = 3, F = 30, rows = 3, m = 8;
      auto bank_data = reference::RandomBank(rng, N, k, F, families);
      auto bank = MakeBank(bank_data);
      auto acts = reference::RandomMatrix(rng, rows * N, -1, 1);
      std::vector<std::uint32_t> draws;
      for (std::size_t b = 0; b < rows; ++b) {
        auto d = reference::RandomSubsets(rng, 1, m, F);
        draws.insert(draws.end(), d.begin(), d.end());
      }
      std::vector<float> grad(rows * N, 123.0f);
      auto st = nfp::cpu::score_gradient({acts.data(), rows, N}, *bank, {draws.data(), m}, combine, grad.data());
      CHECK_MSG(st.ok(), st.message);
      for (std::size_t b = 0; b < rows; ++b) {
        std::vector<float> row(acts.begin() + b * N, acts.begin() + (b + 1) * N);
        for (std::size_t j = 0; j < N; ++j) {
          const float h = 1e-3f;
          auto up = row, down = row;
          up[j] += h;
          down[j] -= h;
          const double fd = (reference::Score(up.data(), bank_data, &draws[b * m], m, combine) -
                             reference::Score(down.data(), bank_data, &draws[b * m], m, combine)) /
                            (static_cast<double>(up[j]) - down[j]);
          CHECK_CLOSE(grad[b * N + j], fd, 2e-2, 2e-2);
        }
      }
    }
  }
}

TEST(screen_matches_scipy_fixture) {
  std::ifstream in(std::string(NFP_TEST_DATA_DIR) + "/screen_small.txt");
  std::size_t n0, n1, N, k, C;
  in >> n0 >> n1 >> N >> k >> C;
  std::vector<float> clean(n0 * N), attacked(n1 * N);
  for (auto& v : clean) in >> v;
  for (auto& v : attacked) in >> v;
  std::vector<std::uint32_t> idx(C * k);
  for (auto& v : idx) in >> v;
  for (auto test : {nfp::stats::TTest::kWelch, nfp::stats::TTest::kStudent}) {
    std::vector<double> o(7 * C, -1);
    nfp::ScreenOutputs out{&o[0], &o[C], &o[2 * C], &o[3 * C], &o[4 * C], &o[5 * C], &o[6 * C]};
    auto st = nfp::cpu::screen({clean.data(), n0, N}, {attacked.data(), n1, N}, {idx.data(), C, k}, test, out);
    CHECK_MSG(st.ok(), st.message);
    std::ifstream again(std::string(NFP_TEST_DATA_DIR) + "/screen_small.txt");
    std::string line;
    for (std::size_t i = 0; i < 1 + n0 + n1 + C; ++i) std::getline(again, line);
    for (std::size_t c = 0; c < C; ++c) {
      double e[9];
      for (double& v : e) again >> v;
      const bool welch = test == nfp::stats::TTest::kWelch;
      CHECK_CLOSE(o[c], e[0], 1e-9, 1e-12);
      CHECK_CLOSE(o[C + c], e[1], 1e-9, 1e-12);
      CHECK_CLOSE(o[2 * C + c], e[2], 1e-9, 1e-12);
      CHECK_CLOSE(o[3 * C + c], e[3], 1e-9, 1e-12);
      CHECK_CLOSE(o[4 * C + c], welch ? e[4] : e[6], 1e-8, 1e-10);
      CHECK_CLOSE(o[5 * C + c], welch ? e[5] : e[7], 1e-7, 1e-300);
      CHECK_CLOSE(o[6 * C + c], e[8], 1e-8, 1e-10);
    }
  }
}

TEST(screen_random_shapes_against_direct_moments) {
  std::mt19937_64 rng(5);
  struct S {
    std::size_t n0, n1, N, k, C;
  };
  for (S s :
       {S{2, 2, 1, 1, 1}, S{3, 5, 4, 4, 7}, S{300, 250, 650, 10, 300}, S{9, 700, 3, 2, 5}, S{50, 60, 40000, 5, 20}}) {
    // A large common offset checks that centering keeps variances accurate.
    auto clean = reference::RandomMatrix(rng, s.n0 * s.N, 1000.0f, 1001.0f);
    auto attacked = reference::RandomMatrix(rng, s.n1 * s.N, 1000.2f, 1001.2f);
    auto idx = reference::RandomSubsets(rng, s.C, s.k, s.N);
    std::vector<double> o(7 * s.C);
    const std::size_t C = s.C;
    nfp::ScreenOutputs out{&o[0], &o[C], &o[2 * C], &o[3 * C], &o[4 * C], &o[5 * C], &o[6 * C]};
    auto st = nfp::cpu::screen({clean.data(), s.n0, s.N}, {attacked.data(), s.n1, s.N}, {idx.data(), C, s.k},
                               nfp::stats::TTest::kWelch, out);
    CHECK_MSG(st.ok(), st.message);
    for (std::size_t c = 0; c < C; ++c) {
      auto moments = [&](const std::vector<float>& m, std::size_t n, double* mean, double* sd) {
        std::vector<double> x(n);
        double sum = 0;
        for (std::size_t i = 0; i < n; ++i) sum += x[i] = reference::Mean(&m[i * s.N], &idx[c * s.k], s.k);
        *mean = sum / n;
        double ss = 0;
        for (double v : x) ss += (v - *mean) * (v - *mean);
        *sd = std::sqrt(ss / (n - 1));
      };
      double m0, sd0, m1, sd1;
      moments(clean, s.n0, &m0, &sd0);
      moments(attacked, s.n1, &m1, &sd1);
      CHECK_CLOSE(o[c], m0, 1e-9, 1e-9);
      CHECK_CLOSE(o[C + c], sd0, 1e-5, 1e-9);
      CHECK_CLOSE(o[2 * C + c], m1, 1e-9, 1e-9);
      CHECK_CLOSE(o[3 * C + c], sd1, 1e-5, 1e-9);
    }
  }
}

TEST(screen_rejects_bad_input) {
  std::vector<float> a(4 * 3, 1.0f), b(4 * 3, 2.0f);
  std::vector<std::uint32_t> idx = {0, 3};
  std::vector<double> o(7);
  nfp::ScreenOutputs out{&o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6]};
  auto st = nfp::cpu::screen({a.data(), 4, 3}, {b.data(), 4, 3}, {idx.data(), 1, 2}, nfp::stats::TTest::kWelch, out);
  CHECK(st.code == nfp::Code::kOutOfRange && st.argument == "candidates");
  idx = {0, 2};
  st = nfp::cpu::screen({a.data(), 1, 3}, {b.data(), 4, 3}, {idx.data(), 1, 2}, nfp::stats::TTest::kWelch, out);
  CHECK(st.code == nfp::Code::kInvalidArgument && st.argument == "clean");
  st = nfp::cpu::screen({a.data(), 4, 3}, {b.data(), 4, 2}, {idx.data(), 1, 2}, nfp::stats::TTest::kWelch, out);
  CHECK(st.code == nfp::Code::kInvalidArgument && st.argument == "attacked");
  b[3 * 3 + 2] = NAN;
  st = nfp::cpu::screen({a.data(), 4, 3}, {b.data(), 4, 3}, {idx.data(), 1, 2}, nfp::stats::TTest::kWelch, out);
  CHECK(st.code == nfp::Code::kNonFinite && st.argument == "attacked");
  CHECK_MSG(st.message.find("row 3") != std::string::npos, st.message);
  // Constant groups: identical gives p = 1, shifted gives p = 0 and infinite d.
  b[3 * 3 + 2] = 2.0f;
  st = nfp::cpu::screen({a.data(), 4, 3}, {b.data(), 4, 3}, {idx.data(), 1, 2}, nfp::stats::TTest::kWelch, out);
  CHECK(st.ok() && o[5] == 0.0 && std::isinf(o[6]) && o[1] == 0.0);
  st = nfp::cpu::screen({a.data(), 4, 3}, {a.data(), 4, 3}, {idx.data(), 1, 2}, nfp::stats::TTest::kWelch, out);
  CHECK(st.ok() && o[5] == 1.0 && o[6] == 0.0);
}

TEST(results_do_not_depend_on_thread_count) {
  std::mt19937_64 rng(6);
  const std::size_t n0 = 120, n1 = 90, N = 500, k = 8, C = 3000;
  auto clean = reference::RandomMatrix(rng, n0 * N, -1, 1);
  auto attacked = reference::RandomMatrix(rng, n1 * N, -1, 2);
  auto idx = reference::RandomSubsets(rng, C, k, N);
  std::vector<std::vector<double>> runs;
  std::vector<std::vector<float>> means;
  for (std::size_t threads : {1u, 2u, 3u, 8u}) {
    nfp::set_threads(threads);
    CHECK(nfp::threads() == threads);
    std::vector<double> o(7 * C);
    nfp::ScreenOutputs out{&o[0], &o[C], &o[2 * C], &o[3 * C], &o[4 * C], &o[5 * C], &o[6 * C]};
    CHECK(nfp::cpu::screen({clean.data(), n0, N}, {attacked.data(), n1, N}, {idx.data(), C, k},
                           nfp::stats::TTest::kWelch, out)
              .ok());
    runs.push_back(o);
    std::vector<float> sm(n0 * C);
    CHECK(nfp::cpu::subset_means({clean.data(), n0, N}, {idx.data(), C, k}, sm.data()).ok());
    means.push_back(sm);
  }
  nfp::set_threads(0);
  for (std::size_t r = 1; r < runs.size(); ++r) {
    CHECK(std::memcmp(runs[0].data(), runs[r].data(), runs[0].size() * sizeof(double)) == 0);
    CHECK(means[0] == means[r]);
  }
}

CHECK_MAIN()

// rows_within against the double comparison it stands for, on random rows with values at, just
// inside and just outside the bounds (as floats), NaN and +-Infinity, and lengths around the
// 64-value blocks.
TEST(rows_within_matches_double_comparison) {
  std::mt19937_64 rng(16);
  const double inf = std::numeric_limits<double>::infinity();
  const double bounds[][2] = {{0.0 - 1e-6, 1.0 + 1e-6},
                              {-2.1, 2.6},
                              {0.0, 1.0},
                              {-1.7976931348623157e308, 1.7976931348623157e308},
                              {-inf, inf}};
  for (const auto& b : bounds) {
    const float lo_f = static_cast<float>(b[0]), hi_f = static_cast<float>(b[1]);
    const float specials[] = {lo_f,
                              hi_f,
                              std::nextafter(lo_f, -INFINITY),
                              std::nextafter(hi_f, INFINITY),
                              std::nextafter(lo_f, INFINITY),
                              std::nextafter(hi_f, -INFINITY),
                              NAN,
                              INFINITY,
                              -INFINITY,
                              0.5f};
    for (std::size_t per : {1u, 63u, 64u, 65u, 200u}) {
      const std::size_t rows = 40;
      std::vector<float> data(rows * per);
      for (auto& v : data) v = std::uniform_real_distribution<float>(0.1f, 0.9f)(rng);
      for (std::size_t r = 1; r < rows; ++r) data[r * per + rng() % per] = specials[r % 10];
      std::vector<std::uint8_t> out(rows, 7);
      CHECK(nfp::cpu::rows_within(data.data(), rows, per, b[0], b[1], out.data()).ok());
      for (std::size_t r = 0; r < rows; ++r) {
        bool within = true;
        for (std::size_t i = 0; i < per; ++i) {
          const double x = data[r * per + i];
          within = within && x >= b[0] && x <= b[1];
        }
        CHECK(out[r] == (within ? 1 : 0));
      }
    }
  }
  std::vector<std::uint8_t> out(1);
  const float one = 1.0f;
  CHECK(nfp::cpu::rows_within(&one, 1, 1, NAN, 1.0, out.data()).code == nfp::Code::kInvalidArgument);
  CHECK(nfp::cpu::rows_within(nullptr, 0, 5, 0.0, 1.0, out.data()).ok());
}
