// local_region: a region (region.hpp) in one heap block, for tests and benchmarks of
// the shared algorithms within one process. Capacity is fixed at construction; slots
// become usable as grow() publishes them, the way the daemon publishes tiers.
//
// Magazine budget (why an EMPTY magazine is always there when a context needs one):
// FULL holds only magazines of exactly K slots, so at most ready/K of them; each
// context holds at most three. With ready/K + 3 * contexts + 2 magazines, at least two
// are empty and in the depot whenever a context asks for one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include <slab/core/region.hpp>
#include <slab/core/shared_layout.hpp>
#include <slab/core/slot_header.hpp>

namespace slab::core {

constexpr std::uint32_t magazine_budget(std::uint64_t slots, std::uint32_t contexts) noexcept {
  return static_cast<std::uint32_t>(slots / magazine_slots) + 3 * contexts + 2;
}

class local_region {
public:
  local_region(std::uint64_t max_slots, std::uint32_t contexts, std::size_t stride = 64)
      : max_slots_(max_slots / magazine_slots * magazine_slots), contexts_(contexts),
        mags_(magazine_budget(max_slots_, contexts)), stride_(stride),
        headers_(std::make_unique<shared_header[]>(max_slots_)),
        magazines_(std::make_unique<struct magazine[]>(mags_)),
        records_(std::make_unique<context_record[]>(contexts)),
        payload_(std::make_unique<std::byte[]>(max_slots_ * stride)) {
    state_.cell(cell_id::full).init({no_magazine, no_context, 0});
    state_.cell(cell_id::empty).init({no_magazine, no_context, 0});
    state_.cell(cell_id::fresh).init({0, no_context, 0});
    state_.max_slots.store(max_slots_);
    state_.contexts.store(contexts);
  }

  /// Publishes slots up to `slots` (a multiple of K): links the magazines that budget
  /// adds onto the EMPTY stack and raises ready_slots. Single-threaded set-up only: the
  /// daemon does the same through its own context while clients run.
  void grow(std::uint64_t slots) noexcept {
    const std::uint32_t upto = magazine_budget(slots, contexts_);
    wide_cell& empty = state_.cell(cell_id::empty);
    cell_value head = empty.load();
    for (std::uint32_t m = published_mags_; m < upto; ++m) {
      magazines_[m].next.store(head.value, std::memory_order_relaxed);
      head = {m, no_context, head.seq + 1};
    }
    empty.init(head);
    published_mags_ = upto;
    state_.magazines.store(upto, std::memory_order_relaxed);
    state_.ready_slots.store(slots, std::memory_order_release);
  }

  /// Marks a free context record active and returns its id, or no_context.
  std::uint32_t attach(std::uint32_t pid = 0) noexcept {
    for (std::uint32_t c = 0; c < contexts_; ++c) {
      auto expected = static_cast<std::uint32_t>(context_state::free);
      if (records_[c].state.compare_exchange_strong(
              expected, static_cast<std::uint32_t>(context_state::active))) {
        records_[c].pid.store(pid, std::memory_order_relaxed);
        records_[c].incarnation.fetch_add(1, std::memory_order_relaxed);
        return c;
      }
    }
    return no_context;
  }

  // The region interface.
  pool_state& state() noexcept { return state_; }
  shared_header& header(std::uint32_t i) noexcept { return headers_[i]; }
  struct magazine& mag(std::uint32_t m) noexcept {
    return magazines_[m];
  }
  context_record& context(std::uint32_t c) noexcept { return records_[c]; }
  bool has_slot(std::uint32_t i) const noexcept {
    return i < state_.ready_slots.load(std::memory_order_acquire);
  }
  bool has_magazine(std::uint32_t m) const noexcept {
    return m < state_.magazines.load(std::memory_order_acquire);
  }
  std::uint32_t context_count() const noexcept { return contexts_; }
  std::uint32_t magazine_count() const noexcept {
    return state_.magazines.load(std::memory_order_acquire);
  }

  void* payload(std::uint32_t i) noexcept { return payload_.get() + std::size_t{i} * stride_; }
  std::uint64_t max_slots() const noexcept { return max_slots_; }

private:
  std::uint64_t max_slots_;
  std::uint32_t contexts_;
  std::uint32_t mags_;
  std::size_t stride_;
  std::uint32_t published_mags_ = 0;
  pool_state state_;
  std::unique_ptr<shared_header[]> headers_;
  std::unique_ptr<struct magazine[]> magazines_;
  std::unique_ptr<context_record[]> records_;
  std::unique_ptr<std::byte[]> payload_;
};
static_assert(region<local_region>);

} // namespace slab::core
