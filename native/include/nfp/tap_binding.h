// TapBinding: a bank's fingerprints resolved against one layout of tap buffers (see TapActivations),
// once, so that scoring the buffers in place reads each drawn neuron's (tap, column) next to the
// fingerprint's other neurons instead of looking every neuron up in a per-call table. A detector
// binds its bank to its model's taps when it loads and scores every batch through the binding.
// Read-only after construction; it refers to the bank, which must outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "nfp/bank.h"
#include "nfp/kernels.h"

namespace nfp {

class TapBinding {
 public:
  // Validates `layout` (as check_taps; its data and rows are ignored) against the bank's neurons and
  // copies it; on failure returns null and sets *status.
  static std::unique_ptr<TapBinding> Create(const Bank& bank, const TapActivations& layout, Status* status);

  const Bank& bank() const { return *bank_; }
  std::size_t taps() const { return widths_.size(); }
  // Values per image in tap t's buffer.
  std::size_t width(std::size_t t) const { return widths_[t]; }
  // Fingerprint f's k neurons as slots of the layout, in the bank's order.
  const TapSlot* slots(std::size_t f) const { return slots_.data() + f * bank_->k(); }
  // The layout with these buffers: what the packing fallbacks (the CUDA backend) read.
  TapActivations View(const float* const* data, std::size_t rows) const;

 private:
  TapBinding() = default;
  const Bank* bank_ = nullptr;
  std::vector<std::size_t> offsets_, widths_;
  std::vector<std::vector<std::uint32_t>> columns_;
  std::vector<const std::uint32_t*> column_ptrs_;
  std::vector<TapSlot> slots_;  // [count x k]
};

}  // namespace nfp
