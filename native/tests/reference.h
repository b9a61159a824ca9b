// Plain, single-threaded, float64 reference versions of the kernels, written for clarity only;
// the tests compare the optimized kernels against them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "nfp/kernels.h"

namespace reference {

inline double Mean(const float* row, const std::uint32_t* idx, std::size_t k) {
  double s = 0;
  for (std::size_t j = 0; j < k; ++j) s += row[idx[j]];
  return s / k;
}

inline double Llr(double x, double mu0, double sd0, double mu1, double sd1) {
  auto logpdf = [](double v, double mu, double sd) {
    const double z = (v - mu) / sd;
    return -0.5 * z * z - std::log(sd) - 0.5 * std::log(2 * M_PI);
  };
  return logpdf(x, mu1, sd1) - logpdf(x, mu0, sd0);
}

struct BankData {
  std::size_t neurons, k, count, families;
  std::vector<std::uint32_t> indices;
  std::vector<float> mu0, sd0, mu1, sd1;
  nfp::BankSpec spec() const {
    return {neurons, k, count, families, indices.data(), mu0.data(), sd0.data(), mu1.data(), sd1.data()};
  }
};

inline double Score(const float* row, const BankData& b, const std::uint32_t* draw, std::size_t m,
                    nfp::Combine combine) {
  std::vector<double> sums(b.families, 0.0);
  for (std::size_t i = 0; i < m; ++i) {
    const std::uint32_t f = draw[i];
    const double x = Mean(row, &b.indices[f * b.k], b.k);
    for (std::size_t a = 0; a < b.families; ++a) {
      sums[a] += Llr(x, b.mu0[f], b.sd0[f], b.mu1[a * b.count + f], b.sd1[a * b.count + f]);
    }
  }
  double best = *std::max_element(sums.begin(), sums.end());
  if (combine == nfp::Combine::kMax) return best;
  double t = 0;
  for (double s : sums) t += std::exp(s - best);
  return best + std::log(t);
}

// Random distinct indices per subset (k <= n).
inline std::vector<std::uint32_t> RandomSubsets(std::mt19937_64& rng, std::size_t count, std::size_t k, std::size_t n) {
  std::vector<std::uint32_t> out(count * k), pool(n);
  for (std::size_t c = 0; c < count; ++c) {
    for (std::size_t j = 0; j < n; ++j) pool[j] = static_cast<std::uint32_t>(j);
    for (std::size_t j = 0; j < k; ++j) {
      std::uniform_int_distribution<std::size_t> pick(j, n - 1);
      std::swap(pool[j], pool[pick(rng)]);
      out[c * k + j] = pool[j];
    }
  }
  return out;
}

inline std::vector<float> RandomMatrix(std::mt19937_64& rng, std::size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

inline BankData RandomBank(std::mt19937_64& rng, std::size_t neurons, std::size_t k, std::size_t count,
                           std::size_t families) {
  BankData b{neurons, k, count, families, RandomSubsets(rng, count, k, neurons), {}, {}, {}, {}};
  std::uniform_real_distribution<float> mu(-1, 1), sd(0.05f, 1.0f);
  for (std::size_t f = 0; f < count; ++f) {
    b.mu0.push_back(mu(rng));
    b.sd0.push_back(sd(rng));
  }
  for (std::size_t i = 0; i < count * families; ++i) {
    b.mu1.push_back(mu(rng));
    b.sd1.push_back(sd(rng));
  }
  return b;
}

}  // namespace reference
