// checked_floor<T, Inline>: the floor (floor.hpp) plus the one thing a checked slab
// cannot skip: a generation per slot, read by get and by erase before they act, bumped
// by erase, and carried in the key. No CAS, no cache, no second process: what is left of
// a shared pool's cost once everything but the check is taken away, as a yardstick for
// where the check's own cost ends and the pool's begins.
//
//   Inline = false: the generations in an array of their own, one 8-byte word per slot
//                   (the pool's layout: slot headers apart from the values).
//   Inline = true:  each slot's generation in front of its value, on the value's first
//                   line (a 64-byte value then takes a 128-byte stride).
//
// A stale or foreign key's get returns nullptr and its erase does nothing, as a slab's
// would; past capacity, insert is undefined behaviour, as the floor's is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace peers {

template <class T, bool Inline> class checked_floor {
  struct alignas(64) inline_slot {
    std::uint64_t gen;
    T value;
  };
  struct alignas(64) plain_slot {
    T value;
  };
  using slot = std::conditional_t<Inline, inline_slot, plain_slot>;

public:
  using key_type = std::uint64_t; // index << 32 | generation (odd while live)

  /// Allocates and prefaults room for exactly `capacity` values; links them in address
  /// order, so the first inserts take the fresh slots in turn (the floor's growth).
  explicit checked_floor(std::size_t capacity)
      : slots_(std::make_unique<slot[]>(capacity)),
        gens_(Inline ? nullptr : std::make_unique<std::uint64_t[]>(capacity)),
        next_(std::make_unique<std::uint32_t[]>(capacity)), cap_(capacity) {
    for (std::size_t i = 0; i < cap_; ++i) {
      gen(i) = 0;
      next_[i] = static_cast<std::uint32_t>(i + 1);
    }
  }

  template <class... Args> key_type insert(Args&&... args) {
    const std::uint32_t i = head_;
    head_ = next_[i];
    const std::uint64_t g = ++gen(i); // now odd: live
    ::new (static_cast<void*>(&slots_[i].value)) T(std::forward<Args>(args)...);
    return std::uint64_t{i} << 32 | g;
  }

  [[nodiscard]] T* get(key_type k) noexcept {
    const std::size_t i = k >> 32;
    if (i >= cap_ || gen(i) != (k & 0xFFFFFFFFU)) return nullptr;
    return &slots_[i].value;
  }

  void erase(key_type k) noexcept {
    const std::uint32_t i = static_cast<std::uint32_t>(k >> 32);
    if (i >= cap_ || gen(i) != (k & 0xFFFFFFFFU)) return;
    ++gen(i); // even: free, and every key of the value it held is stale
    slots_[i].value.~T();
    next_[i] = head_; // the free list apart from the slots: erase writes no value line
    head_ = i;
  }

private:
  std::uint64_t& gen(std::size_t i) noexcept {
    if constexpr (Inline)
      return slots_[i].gen;
    else
      return gens_[i];
  }

  std::unique_ptr<slot[]> slots_;
  std::unique_ptr<std::uint64_t[]> gens_;
  std::unique_ptr<std::uint32_t[]> next_;
  std::size_t cap_;
  std::uint32_t head_ = 0;
};

} // namespace peers
