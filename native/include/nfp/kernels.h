// The numeric kernels: batched random-subset neuron means, the fused Gaussian log-likelihood
// ratio score of the detector, its gradient, and candidate screening for bank building.
// Shapes are row-major; every pointer must hold the number of elements its shape says. The
// callers (binding, tests) validate shapes; the kernels still check index bounds.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nfp/bank.h"
#include "nfp/stats.h"
#include "nfp/status.h"

namespace nfp {

class TapBinding;

// A row-major matrix of activations: one row per image, one column per tapped neuron.
struct Activations {
  const float* data = nullptr;
  std::size_t rows = 0;
  std::size_t neurons = 0;
};

// The same activations left where the model wrote them, one buffer per tapped layer: no copy into
// one matrix. Tap t owns the neurons [offsets[t], offsets[t + 1]) of a row; its buffer holds
// `widths[t]` values per image (the layer's whole output), image r at data[t] + r * widths[t], and
// neuron offsets[t] + j is column columns[t][j] of it (a sampled layer) or column j (columns[t] null).
struct TapActivations {
  const float* const* data = nullptr;             // [taps]
  const std::size_t* offsets = nullptr;           // [taps + 1]: 0, ..., neurons
  const std::size_t* widths = nullptr;            // [taps]
  const std::uint32_t* const* columns = nullptr;  // [taps], entries null or [offsets[t + 1] - offsets[t]]
  std::size_t taps = 0;
  std::size_t rows = 0;
  std::size_t neurons() const { return taps == 0 ? 0 : offsets[taps]; }
};

// Where a neuron of tap buffers lies: its tap, and its column in that tap's per-image values (a
// sampled layer's column applied).
struct TapSlot {
  std::uint32_t tap;
  std::uint32_t column;
};

// `count` subsets of `k` neuron indices each, row-major [count x k].
struct Subsets {
  const std::uint32_t* indices = nullptr;
  std::size_t count = 0;
  std::size_t k = 0;
};

// How per-family log-likelihood ratio sums combine into one score.
enum class Combine {
  kMax,        // the most alarming family decides
  kLogSumExp,  // a soft maximum: log sum_a exp(S_a)
};

// A draw: for each activation row, `per_row` fingerprint ids into the bank, [rows x per_row].
struct Draws {
  const std::uint32_t* ids = nullptr;
  std::size_t per_row = 0;
};

struct DetectOutputs {
  float* score = nullptr;          // [rows], required
  float* family_scores = nullptr;  // [rows x families], optional
  float* means = nullptr;          // [rows x per_row], optional: m_S(x) per drawn fingerprint
  float* terms = nullptr;          // [rows x per_row x families], optional: each LLR term
};

// Per-candidate statistics of the subset mean over clean and attacked images (every backend's screen).
struct ScreenOutputs {
  double* mu0;
  double* sd0;
  double* mu1;
  double* sd1;
  double* t;
  double* p;
  double* d;
};

namespace cpu {

// out[b, f] = mean_{j < k} acts[b, subsets[f, j]]   (float64 accumulation)
Status subset_means(const Activations& acts, const Subsets& subsets, float* out);

// score[b] = combine_a sum_{i < per_row} LLR_a(m_{S(draws[b, i])}(acts[b]))
// where LLR_a(x) = log N(x; mu1_a, sd1_a) - log N(x; mu0, sd0).
Status detect_scores(const Activations& acts, const Bank& bank, const Draws& draws, Combine combine,
                     const DetectOutputs& out);

// The same scores read from the tap buffers in place: equal, bit for bit, to detect_scores on
// the matrix pack_taps makes of them (the same values gathered and summed in the same order).
Status detect_scores(const TapActivations& acts, const Bank& bank, const Draws& draws, Combine combine,
                     const DetectOutputs& out);

// The same scores through a binding of the bank to the buffers' layout (nfp/tap_binding.h), made
// once: tap buffer t of image r at data[t] + r * binding.width(t), at least `rows` images each (the
// caller's to check). Equal, bit for bit, to the forms above.
Status detect_scores(const TapBinding& binding, const float* const* data, std::size_t rows, const Draws& draws,
                     Combine combine, const DetectOutputs& out);

// Checks the layout of tap buffers: offsets ascending from 0, a whole layer's width equal to its
// size, every column < its layer's width. The buffers' lengths are the caller's to check.
Status check_taps(const TapActivations& acts);

// out[r, offsets[t] + j] = tap t's neuron j of image r: the matrix [rows x neurons] the tap buffers stand for.
Status pack_taps(const TapActivations& acts, float* out);

// grad[b, :] = d score[b] / d acts[b, :] (zero outside the drawn subsets), [rows x neurons].
Status score_gradient(const Activations& acts, const Bank& bank, const Draws& draws, Combine combine, float* grad);

Status screen(const Activations& clean, const Activations& attacked, const Subsets& candidates, stats::TTest test,
              const ScreenOutputs& out);

// out[r] = 1 when every value of row r ([rows x per_row]) lies in [lo, hi] (compared in double), else
// 0; NaN and +-Infinity are outside any bounds. detect()'s check of its input pixels.
Status rows_within(const float* data, std::size_t rows, std::size_t per_row, double lo, double hi, std::uint8_t* out);

}  // namespace cpu
}  // namespace nfp
