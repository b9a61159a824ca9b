// subset_means: out[b, f] = mean of acts[b, idx[f, :]], parallel over (row, subset) pairs in
// row-major order so each thread walks within a row that stays in cache.
#include "cpu/common.h"
#include "nfp/thread_pool.h"

namespace nfp {
namespace cpu {

Status subset_means(const Activations& acts, const Subsets& subsets, float* out) {
  if (subsets.k == 0) return Error(Code::kInvalidArgument, "k", "Expected a positive integer for k but received 0");
  Status st = CheckIndices(subsets.indices, subsets.count * subsets.k, acts.neurons, "subsets");
  if (!st.ok()) return st;
  const std::size_t F = subsets.count, k = subsets.k, N = acts.neurons;
  const std::size_t total = acts.rows * F;
  FirstFailure bad;
  parallel_for(total, std::max<std::size_t>(1, 8192 / k), [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const std::size_t b = i / F, f = i % F;
      const double mean = SubsetMean(acts.data + b * N, subsets.indices + f * k, k);
      if (!std::isfinite(mean)) bad.Record(i);
      out[i] = static_cast<float>(mean);
    }
  });
  if (bad.found()) return NonFiniteError("acts", bad.position() / F, "subset", bad.position() % F);
  return Status::Ok();
}

}  // namespace cpu
}  // namespace nfp
