// detect_scores: the detector's hot path, fused per row: gather the drawn fingerprints'
// neurons, take each mean, add its Gaussian log-likelihood ratio to every family's sum, then
// combine the families. One pass over the gathered values, nothing materialized in between.
#include <vector>

#include "cpu/common.h"
#include "nfp/thread_pool.h"

namespace nfp {
namespace cpu {

Status detect_scores(const Activations& acts, const Bank& bank, const Draws& draws, Combine combine,
                     const DetectOutputs& out) {
  Status st = CheckScoreShapes(acts, bank);
  if (!st.ok()) return st;
  const std::size_t m = draws.per_row, A = bank.families(), k = bank.k(), N = acts.neurons;
  st = CheckIndices(draws.ids, acts.rows * m, bank.count(), "draws");
  if (!st.ok()) return st;
  FirstFailure bad;
  // At least ~64k gathers per chunk: waking a pool thread costs tens of microseconds, more than a
  // typical serving batch (32 rows x 25 fingerprints x 50 neurons) takes on one core.
  const std::size_t work_per_row = std::max<std::size_t>(1, m * (k + A));
  parallel_for(acts.rows, std::max<std::size_t>(1, 65536 / work_per_row), [&](std::size_t begin, std::size_t end) {
    std::vector<double> sums(A);
    for (std::size_t b = begin; b < end; ++b) {
      const float* row = acts.data + b * N;
      std::fill(sums.begin(), sums.end(), 0.0);
      for (std::size_t i = 0; i < m; ++i) {
        const std::size_t pos = b * m + i;
        const std::uint32_t f = draws.ids[pos];
        const double mean = SubsetMean(row, bank.indices(f), k);
        if (!std::isfinite(mean)) bad.Record(pos);
        const double z0 = (mean - bank.mu0(f)) * bank.inv_sd0(f);
        for (std::size_t a = 0; a < A; ++a) {
          const double term = LlrTerm(mean, z0, bank.mu1(a, f), bank.inv_sd1(a, f), bank.log_sd_ratio(a, f));
          sums[a] += term;
          if (out.terms != nullptr) out.terms[pos * A + a] = static_cast<float>(term);
        }
        if (out.means != nullptr) out.means[pos] = static_cast<float>(mean);
      }
      out.score[b] = static_cast<float>(A == 0 ? 0.0 : CombineFamilies(sums.data(), A, combine, nullptr));
      if (out.family_scores != nullptr) {
        for (std::size_t a = 0; a < A; ++a) out.family_scores[b * A + a] = static_cast<float>(sums[a]);
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
