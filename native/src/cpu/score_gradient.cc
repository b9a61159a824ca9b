// score_gradient: d score / d acts for each row's drawn fingerprints, the signal an adaptive
// attacker back-propagates through the model. Zero outside the drawn neurons; a neuron shared
// by several drawn fingerprints receives the sum of their contributions.
#include <vector>

#include "cpu/common.h"
#include "nfp/thread_pool.h"

namespace nfp {
namespace cpu {

Status score_gradient(const Activations& acts, const Bank& bank, const Draws& draws, Combine combine, float* grad) {
  Status st = CheckScoreShapes(acts, bank);
  if (!st.ok()) return st;
  const std::size_t m = draws.per_row, A = bank.families(), k = bank.k(), N = acts.neurons;
  st = CheckIndices(draws.ids, acts.rows * m, bank.count(), "draws");
  if (!st.ok()) return st;
  FirstFailure bad;
  const double inv_k = 1.0 / static_cast<double>(k);
  parallel_for(acts.rows, 1, [&](std::size_t begin, std::size_t end) {
    std::vector<double> sums(A), weights(A), means(m);
    for (std::size_t b = begin; b < end; ++b) {
      const float* row = acts.data + b * N;
      float* g = grad + b * N;
      std::fill(g, g + N, 0.0f);
      const std::size_t nonfinite = RowLlrSums(row, bank, draws.ids + b * m, m, sums.data(), means.data(), nullptr);
      if (nonfinite < m) bad.Record(b * m + nonfinite);
      if (A == 0) continue;
      CombineFamilies(sums.data(), A, combine, weights.data());
      for (std::size_t i = 0; i < m; ++i) {
        const std::uint32_t f = draws.ids[b * m + i];
        const double mean = means[i];
        // d/dx [0.5 z0^2 - 0.5 z1^2] = z0 / sd0 - z1 / sd1; the family weights sum to one.
        double dmean = (mean - bank.mu0(f)) * bank.inv_sd0(f) * bank.inv_sd0(f);
        for (std::size_t a = 0; a < A; ++a) {
          const double inv1 = bank.inv_sd1(a, f);
          dmean -= weights[a] * (mean - bank.mu1(a, f)) * inv1 * inv1;
        }
        const float share = static_cast<float>(dmean * inv_k);
        const std::uint32_t* idx = bank.indices(f);
        for (std::size_t j = 0; j < k; ++j) g[idx[j]] += share;
      }
    }
  });
  if (bad.found()) {
    const std::size_t pos = bad.position();
    return NonFiniteError("acts", pos / m, "fingerprint", draws.ids[pos]);
  }
  return Status::Ok();
}

}  // namespace cpu
}  // namespace nfp
