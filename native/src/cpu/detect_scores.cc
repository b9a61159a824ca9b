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
    std::vector<double> sums(A), means(m);
    for (std::size_t b = begin; b < end; ++b) {
      const std::size_t first = b * m;
      float* terms = out.terms != nullptr ? out.terms + first * A : nullptr;
      const std::size_t nonfinite =
          RowLlrSums(acts.data + b * N, bank, draws.ids + first, m, sums.data(), means.data(), terms);
      if (nonfinite < m) bad.Record(first + nonfinite);
      if (out.means != nullptr) {
        for (std::size_t i = 0; i < m; ++i) out.means[first + i] = static_cast<float>(means[i]);
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
