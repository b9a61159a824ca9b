// detect_scores: the detector's hot path, fused per row: gather the drawn fingerprints'
// neurons, take each mean, add its Gaussian log-likelihood ratio to every family's sum, then
// combine the families. One pass over the gathered values, nothing materialized in between.
// The activations come as one matrix or as the model's tap buffers read in place (TapActivations):
// on a small model, copying the taps into a matrix cost more than scoring them.
#include <vector>

#include "cpu/common.h"
#include "nfp/tap_binding.h"
#include "nfp/thread_pool.h"

namespace nfp {
namespace cpu {
namespace {

// Rows of tap buffers through a binding: image b's base pointer in every tap (each chunk of rows
// works on its own copy).
class BoundRows {
 public:
  BoundRows(const TapBinding& binding, const float* const* data)
      : binding_(&binding), data_(data), bases_(binding.taps()) {}
  BoundRow operator()(std::size_t b) {
    for (std::size_t t = 0; t < bases_.size(); ++t) bases_[t] = data_[t] + b * binding_->width(t);
    return BoundRow{bases_.data()};
  }

 private:
  const TapBinding* binding_;
  const float* const* data_;
  std::vector<const float*> bases_;
};

// `row_at(b)` gives image b's row (MatrixRow or BoundRow) and `index_of(f)` fingerprint f's indices
// into it; the rest is the same for both forms.
template <class RowAt, class IndexOf>
Status DetectScoresRows(std::size_t rows, RowAt row_at, IndexOf index_of, const Bank& bank, const Draws& draws,
                        Combine combine, const DetectOutputs& out) {
  const std::size_t m = draws.per_row, A = bank.families(), k = bank.k();
  Status st = CheckIndices(draws.ids, rows * m, bank.count(), "draws");
  if (!st.ok()) return st;
  FirstFailure bad;
  // At least ~64k gathers per chunk: waking a pool thread costs tens of microseconds, more than a
  // typical serving batch (32 rows x 25 fingerprints x 50 neurons) takes on one core.
  const std::size_t work_per_row = std::max<std::size_t>(1, m * (k + A));
  parallel_for(rows, std::max<std::size_t>(1, 65536 / work_per_row), [&](std::size_t begin, std::size_t end) {
    std::vector<double> sums(A), means(m);
    RowAt rows_here = row_at;
    for (std::size_t b = begin; b < end; ++b) {
      const std::size_t first = b * m;
      float* terms = out.terms != nullptr ? out.terms + first * A : nullptr;
      const std::size_t nonfinite =
          RowLlrSums(rows_here(b), index_of, bank, draws.ids + first, m, sums.data(), means.data(), terms);
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

}  // namespace

Status detect_scores(const Activations& acts, const Bank& bank, const Draws& draws, Combine combine,
                     const DetectOutputs& out) {
  Status st = CheckScoreShapes(acts, bank);
  if (!st.ok()) return st;
  const float* data = acts.data;
  const std::size_t N = acts.neurons;
  return DetectScoresRows(
      acts.rows, [data, N](std::size_t b) { return MatrixRow{data + b * N}; },
      [&bank](std::uint32_t f) { return bank.indices(f); }, bank, draws, combine, out);
}

Status detect_scores(const TapBinding& binding, const float* const* data, std::size_t rows, const Draws& draws,
                     Combine combine, const DetectOutputs& out) {
  return DetectScoresRows(
      rows, BoundRows(binding, data), [&binding](std::uint32_t f) { return binding.slots(f); }, binding.bank(), draws,
      combine, out);
}

// A one-off binding: callers that score the same layout again bind once (TapBinding) instead.
Status detect_scores(const TapActivations& acts, const Bank& bank, const Draws& draws, Combine combine,
                     const DetectOutputs& out) {
  Status st;
  std::unique_ptr<TapBinding> binding = TapBinding::Create(bank, acts, &st);
  if (!binding) return st;
  return detect_scores(*binding, acts.data, acts.rows, draws, combine, out);
}

Status check_taps(const TapActivations& acts) {
  if (acts.taps > 0 && acts.offsets[0] != 0) {
    return Error(Code::kInvalidArgument, "taps",
                 "Expected the first tap at neuron 0 but received offset " + std::to_string(acts.offsets[0]));
  }
  for (std::size_t t = 0; t < acts.taps; ++t) {
    const std::string name = "taps[" + std::to_string(t) + "]";
    if (acts.offsets[t + 1] < acts.offsets[t]) {
      return Error(Code::kInvalidArgument, "taps",
                   "Expected ascending tap offsets but " + name + " ends before it starts");
    }
    const std::size_t size = acts.offsets[t + 1] - acts.offsets[t];
    const std::uint32_t* columns = acts.columns[t];
    if (columns == nullptr) {
      if (size != acts.widths[t]) {
        return Error(Code::kInvalidArgument, "taps",
                     "Expected " + std::to_string(size) + " values per image (its size) for " + name +
                         " without columns but received " + std::to_string(acts.widths[t]));
      }
      continue;
    }
    for (std::size_t j = 0; j < size; ++j) {
      if (columns[j] >= acts.widths[t]) {
        return Error(Code::kOutOfRange, "taps",
                     "Expected columns < " + std::to_string(acts.widths[t]) + " (its width) for " + name +
                         " but received " + std::to_string(columns[j]) + " at columns[" + std::to_string(j) + "]");
      }
    }
  }
  return Status::Ok();
}

Status pack_taps(const TapActivations& acts, float* out) {
  Status st = check_taps(acts);
  if (!st.ok()) return st;
  const std::size_t N = acts.neurons();
  for (std::size_t r = 0; r < acts.rows; ++r) {
    for (std::size_t t = 0; t < acts.taps; ++t) {
      const float* base = acts.data[t] + r * acts.widths[t];
      float* to = out + r * N + acts.offsets[t];
      const std::size_t size = acts.offsets[t + 1] - acts.offsets[t];
      const std::uint32_t* columns = acts.columns[t];
      for (std::size_t j = 0; j < size; ++j) to[j] = columns != nullptr ? base[columns[j]] : base[j];
    }
  }
  return Status::Ok();
}

}  // namespace cpu
}  // namespace nfp
