// TapBinding construction: the layout checked and copied, each fingerprint's neurons resolved to slots.
#include "nfp/tap_binding.h"

#include <string>

namespace nfp {

std::unique_ptr<TapBinding> TapBinding::Create(const Bank& bank, const TapActivations& layout, Status* status) {
  *status = cpu::check_taps(layout);
  if (!status->ok()) return nullptr;
  if (layout.neurons() != bank.neurons()) {
    *status = Error(Code::kInvalidArgument, "taps",
                    "Expected taps of " + std::to_string(bank.neurons()) +
                        " neurons in all (the bank's) but received " + std::to_string(layout.neurons()));
    return nullptr;
  }
  std::unique_ptr<TapBinding> b(new TapBinding());
  b->bank_ = &bank;
  const std::size_t T = layout.taps;
  b->offsets_.assign(layout.offsets, layout.offsets + T + 1);
  b->widths_.assign(layout.widths, layout.widths + T);
  b->columns_.resize(T);
  b->column_ptrs_.assign(T, nullptr);
  // The tap of every neuron, then each fingerprint's neurons through it.
  std::vector<TapSlot> of_neuron(bank.neurons());
  for (std::size_t t = 0; t < T; ++t) {
    const std::uint32_t* columns = layout.columns[t];
    const std::size_t size = b->offsets_[t + 1] - b->offsets_[t];
    if (columns != nullptr) {
      b->columns_[t].reserve(1);  // a sampled layer of no columns keeps a non-null pointer: it is still sampled
      b->columns_[t].assign(columns, columns + size);
      b->column_ptrs_[t] = b->columns_[t].data();
    }
    for (std::size_t j = 0; j < size; ++j) {
      of_neuron[b->offsets_[t] + j] = {static_cast<std::uint32_t>(t),
                                       columns != nullptr ? columns[j] : static_cast<std::uint32_t>(j)};
    }
  }
  const std::vector<std::uint32_t>& indices = bank.all_indices();
  b->slots_.resize(indices.size());
  for (std::size_t i = 0; i < indices.size(); ++i) b->slots_[i] = of_neuron[indices[i]];
  return b;
}

TapActivations TapBinding::View(const float* const* data, std::size_t rows) const {
  return {data, offsets_.data(), widths_.data(), column_ptrs_.data(), widths_.size(), rows};
}

}  // namespace nfp
