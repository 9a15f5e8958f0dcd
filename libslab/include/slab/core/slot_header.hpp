// The per-slot header: the generation that makes keys safe, plus one word of links.
//
// Headers live in their own tiered array beside the payloads (never inside them), so a
// stray write through a stale pointer can corrupt a payload but never a free list, and
// payloads keep their cache-line alignment without a header in front of them.
//
//   gen   even while the slot is free, odd while it is live; +1 on every alloc and free.
//   aux   the embedded slab: the next free index (LIFO free list), no_index at the end.
//         shared pools: the id of the context that made the last transition (alloc or
//         free), so the daemon can tell whose half-done free a header belongs to, and
//         slabctl can say who holds what.
//
// In shared memory the pair is read and written as one 64-bit atomic (see
// shared_header below): a free is a compare-and-swap of {gen, aux} from {g, *} to
// {g + 1, me}, which is also the guard against a double free across processes.
#pragma once

#include <atomic>
#include <cstdint>

namespace slab::core {

/// Generation helpers: the rules of the key layout in one place.
constexpr bool gen_live(std::uint32_t gen) noexcept { return (gen & 1U) != 0; }

/// In a shared header's aux (the owner of the last transition): the slot is claimed by
/// that context (cache::claim), out of every free list, not yet written: not live.
inline constexpr std::uint32_t claimed_flag = 0x8000'0000U;

/// The embedded (single-process, single-thread) header: plain integers.
struct slot_header {
  std::uint32_t gen = 0;
  std::uint32_t aux = 0;
};
static_assert(sizeof(slot_header) == 8);

/// The shared header: one 64-bit word, gen in the low half, aux in the high half.
/// Memory orders: a reader (get) loads with acquire so that a key seen live also sees
/// whatever the allocator published before it; writers publish with release.
class shared_header {
public:
  struct value {
    std::uint32_t gen;
    std::uint32_t aux;
    [[nodiscard]] constexpr std::uint64_t pack() const noexcept {
      return (std::uint64_t{aux} << 32) | gen;
    }
    static constexpr value unpack(std::uint64_t w) noexcept {
      return {static_cast<std::uint32_t>(w), static_cast<std::uint32_t>(w >> 32)};
    }
    friend constexpr bool operator==(value, value) = default;
  };

  [[nodiscard]] value load(std::memory_order mo = std::memory_order_acquire) const noexcept {
    return value::unpack(word_.load(mo));
  }
  [[nodiscard]] std::uint32_t gen(std::memory_order mo = std::memory_order_acquire) const noexcept {
    return static_cast<std::uint32_t>(word_.load(mo));
  }
  void store(value v, std::memory_order mo = std::memory_order_release) noexcept {
    word_.store(v.pack(), mo);
  }
  /// Compare-and-swap of the whole header; on failure `expected` holds what was there.
  bool cas(value& expected, value desired) noexcept {
    std::uint64_t e = expected.pack();
    const bool ok = word_.compare_exchange_strong(e, desired.pack(), std::memory_order_acq_rel,
                                                  std::memory_order_acquire);
    if (!ok) expected = value::unpack(e);
    return ok;
  }

private:
  std::atomic<std::uint64_t> word_{0};
};
static_assert(sizeof(shared_header) == 8);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

} // namespace slab::core
