// screen: per-candidate statistics of the subset mean m_S(x) over clean and attacked images,
// the hot path of bank building (10^4..10^6 candidates per class).
//
// Layout. The activations are copied once, neuron-major and in tiles of T images
// ([tile][neuron][image in tile]). A candidate then reads k contiguous runs of T floats per tile
// and adds them with vector instructions, and a tile (N * T floats, sized to stay in L2) is
// reused by every candidate of a chunk before the next tile is touched. Each candidate's moments
// are taken about a shift (its subset sum on the first clean image, exact in float64), which
// keeps sum-of-squares variances free of cancellation when activations sit far from zero.
//
// Precision. Per-image subset sums and the moments over images are float64: with hundreds of
// images the float32 alternative loses digits that p-values near 1e-3 are sensitive to.
#include <algorithm>
#include <vector>

#include "cpu/common.h"
#include "shared/stats_math.h"
#include "nfp/thread_pool.h"

namespace nfp {
namespace cpu {
namespace {

struct Tile {
  std::size_t offset;  // into the tiled buffer
  std::size_t images;  // T for this tile (the last of a group may be shorter)
  int group;           // 0 clean, 1 attacked
};

// Sums the k centered runs of one candidate over one tile, then adds the per-image sums and
// their squares to the candidate's running moments.
NFP_TARGET_CLONES
void AccumulateTile(const float* tile, std::size_t images, const std::uint32_t* idx, std::size_t k, double shift,
                    double* acc, double* sum, double* sumsq) {
  const float* col = tile + static_cast<std::size_t>(idx[0]) * images;
  for (std::size_t i = 0; i < images; ++i) acc[i] = col[i];
  for (std::size_t j = 1; j < k; ++j) {
    col = tile + static_cast<std::size_t>(idx[j]) * images;
    for (std::size_t i = 0; i < images; ++i) acc[i] += col[i];
  }
  double s = 0.0, ss = 0.0;
  for (std::size_t i = 0; i < images; ++i) {
    const double v = acc[i] - shift;
    s += v;
    ss += v * v;
  }
  *sum += s;
  *sumsq += ss;
}

std::size_t TileImages(std::size_t neurons, std::size_t images) {
  // About 512 KiB of floats per tile, at least 16 images (a 64-byte cache line of floats per
  // gathered neuron, which matters once N is large), at most 256.
  std::size_t t = (512 * 1024 / sizeof(float)) / std::max<std::size_t>(neurons, 1);
  t = std::max<std::size_t>(16, std::min<std::size_t>(256, t));
  t = t / 8 * 8;
  return std::min(t, images);
}

}  // namespace

Status screen(const Activations& clean, const Activations& attacked, const Subsets& candidates, stats::TTest test,
              const ScreenOutputs& out) {
  Status st = CheckScreenShapes(clean, attacked, candidates);
  if (!st.ok()) return st;
  const std::size_t N = clean.neurons, k = candidates.k, C = candidates.count;
  st = CheckIndices(candidates.indices, C * k, N, "candidates");
  if (!st.ok() || C == 0) return st;

  // Tiles: the clean images first, then the attacked ones; no tile spans both.
  std::vector<Tile> tiles;
  std::size_t total = 0;
  const Activations* groups[2] = {&clean, &attacked};
  for (int g = 0; g < 2; ++g) {
    const std::size_t rows = groups[g]->rows, T = TileImages(N, rows);
    for (std::size_t r0 = 0; r0 < rows; r0 += T) {
      const std::size_t t = std::min(T, rows - r0);
      tiles.push_back({total, t, g});
      total += N * t;
    }
  }
  std::vector<float> tiled(total);
  std::vector<std::size_t> tile_first_row(tiles.size());
  {
    std::size_t r[2] = {0, 0};
    for (std::size_t t = 0; t < tiles.size(); ++t) {
      tile_first_row[t] = r[tiles[t].group];
      r[tiles[t].group] += tiles[t].images;
    }
  }
  parallel_for(tiles.size(), 1, [&](std::size_t begin, std::size_t end) {
    for (std::size_t t = begin; t < end; ++t) {
      const Tile& tile = tiles[t];
      const Activations& src = *groups[tile.group];
      float* dst = tiled.data() + tile.offset;
      for (std::size_t i = 0; i < tile.images; ++i) {
        const float* a = src.data + (tile_first_row[t] + i) * N;
        for (std::size_t j = 0; j < N; ++j) dst[j * tile.images + i] = a[j];
      }
    }
  });

  FirstFailure bad;
  const double n0 = static_cast<double>(clean.rows), n1 = static_cast<double>(attacked.rows);
  const double kk = static_cast<double>(k);
  std::size_t max_images = 0;
  for (const Tile& t : tiles) max_images = std::max(max_images, t.images);
  // Chunks large enough that a tile loaded into cache serves many candidates.
  parallel_for(C, 512, [&](std::size_t begin, std::size_t end) {
    const std::size_t n = end - begin;
    std::vector<double> moments(4 * n, 0.0);  // sum0, sumsq0, sum1, sumsq1 per candidate
    std::vector<double> shift(n);
    std::vector<double> acc(max_images);
    for (std::size_t c = 0; c < n; ++c) {
      const std::uint32_t* idx = candidates.indices + (begin + c) * k;
      double s = 0.0;
      for (std::size_t j = 0; j < k; ++j) s += clean.data[idx[j]];
      shift[c] = s;
    }
    for (const Tile& tile : tiles) {
      const float* base = tiled.data() + tile.offset;
      const int g = tile.group;
      for (std::size_t c = 0; c < n; ++c) {
        AccumulateTile(base, tile.images, candidates.indices + (begin + c) * k, k, shift[c], acc.data(),
                       &moments[4 * c + 2 * g], &moments[4 * c + 2 * g + 1]);
      }
    }
    for (std::size_t c = 0; c < n; ++c) {
      const std::size_t cand = begin + c;
      const double s0 = moments[4 * c], ss0 = moments[4 * c + 1];
      const double s1 = moments[4 * c + 2], ss1 = moments[4 * c + 3];
      if (!std::isfinite(s0 + ss0 + s1 + ss1 + shift[c])) bad.Record(cand);
      const stats::math::CandidateStats r = stats::math::FromSumMoments(s0, ss0, n0, s1, ss1, n1, shift[c], kk, test);
      stats::math::Store(r, cand, out);
    }
  });
  if (bad.found()) return ScreenNonFiniteError(clean, attacked, candidates, bad.position());
  return Status::Ok();
}

}  // namespace cpu
}  // namespace nfp
