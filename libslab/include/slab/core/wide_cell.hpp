// wide_cell: a 16-byte shared word whose every transition names its winner, so that a
// context that dies right after a compare-and-swap can still be told whether its CAS
// happened. It is the one mechanism behind the depot's stacks and the fresh-space
// cursor.
//
// Value: {value (a magazine id or a slot index), winner (the context that made the
// last transition), seq (bumped by every transition)}. The seq makes the cell immune to
// ABA for 2^64 transitions; the winner makes each transition's outcome recoverable:
//
//   1. A context that wants to move the cell away from a value it observed, {v, w, s},
//      first *notifies* w: won[w][cell] = max(won[w][cell], s). The value {v, w, s}
//      was in the cell, so w's CAS that produced it succeeded: this is a fact, written
//      by whoever sees it, monotonically.
//   2. It records its intent {cell, s} in its own context record.
//   3. It compare-and-swaps {v, w, s} -> {v', me, s + 1}.
//
// Whatever instant a context c dies at, its intent {cell, s} resolves exactly:
//   - cell.seq == s:                      the CAS did not happen;
//   - cell == {*, c, s + 1}:              c's CAS happened;
//   - cell.seq > s + 1 or winner != c:    c's CAS happened iff won[c][cell] == s + 1,
//     because whoever moved the cell past {*, c, s + 1} notified c first (step 1).
// A notification can never name a transition later than c's current one (c does one
// at a time), and fetch-max keeps a late, slower notifier from hiding a newer one.
//
// Hardware: x86-64 cmpxchg16b (compiled with -mcx16 so it is inlined: a libatomic
// fallback would take a process-local lock, useless across processes). A load is a
// CAS that writes back what it finds; it dirties the line but never changes it, and
// needs a writable mapping: readers of a read-only mapping use peek().
#pragma once

#include <atomic>
#include <cstdint>

// The cell is only as good as its 16-byte compare-and-swap: a library call behind a
// process-local lock (what the compiler emits without cmpxchg16b) would let two
// processes move a cell at once. Refuse to build rather than corrupt pools.
#if !defined(__GCC_HAVE_SYNC_COMPARE_AND_SWAP_16)
#error                                                                                             \
    "slab needs an inline 16-byte compare-and-swap: on x86-64 compile with -mcx16 (the slab::slab CMake target and slab.pc pass it)"
#endif

namespace slab::core {

__extension__ using u128 = unsigned __int128; // a GNU extension; -Wpedantic knows

struct cell_value {
  std::uint32_t value = 0;
  std::uint32_t winner = 0;
  std::uint64_t seq = 0;
  friend constexpr bool operator==(cell_value, cell_value) = default;
};

class alignas(16) wide_cell {
public:
  [[nodiscard]] cell_value load() const noexcept {
    auto* self = const_cast<u128*>(&word_);
    return unpack(__sync_val_compare_and_swap(self, word0, word0));
  }
  /// The value, read without writing to the cell: load()'s cmpxchg16b always writes, so
  /// it faults on a read-only mapping (a pool attached read-only, as slabctl and the
  /// tests' audit do). Two 8-byte loads of the seq around one of {value, winner}: every
  /// transition writes all 16 bytes at once and bumps the seq, so equal seqs mean the
  /// value read belongs to that seq (x86-64 keeps loads in order). Retries while the cell
  /// moves: meant for a quiescent pool (the audit) or for status displays.
  [[nodiscard]] cell_value peek() const noexcept {
    const auto* half = reinterpret_cast<const std::uint64_t*>(&word_);
    for (;;) {
      const std::uint64_t seq = __atomic_load_n(&half[1], __ATOMIC_ACQUIRE);
      const std::uint64_t lo = __atomic_load_n(&half[0], __ATOMIC_ACQUIRE);
      if (__atomic_load_n(&half[1], __ATOMIC_ACQUIRE) == seq) {
        return unpack((static_cast<u128>(seq) << 64) | lo);
      }
    }
  }
  /// Full-barrier compare-and-swap. On failure `expected` is refreshed.
  bool cas(cell_value& expected, cell_value desired) noexcept {
    const u128 e = pack(expected);
    const u128 seen = __sync_val_compare_and_swap(&word_, e, pack(desired));
    if (seen == e) return true;
    expected = unpack(seen);
    return false;
  }
  /// Initialisation only (no concurrent users yet, e.g. when the daemon builds a pool).
  void init(cell_value v) noexcept { word_ = pack(v); }

private:
  static constexpr u128 word0 = 0;
  static constexpr u128 pack(cell_value v) noexcept {
    const std::uint64_t lo = (std::uint64_t{v.winner} << 32) | v.value;
    return (static_cast<u128>(v.seq) << 64) | lo;
  }
  static constexpr cell_value unpack(u128 w) noexcept {
    const auto lo = static_cast<std::uint64_t>(w);
    return {static_cast<std::uint32_t>(lo), static_cast<std::uint32_t>(lo >> 32),
            static_cast<std::uint64_t>(w >> 64)};
  }
  u128 word_ = 0;
};
static_assert(sizeof(wide_cell) == 16 && alignof(wide_cell) == 16);

/// Raises `slot` to at least v (lock-free; the notification of step 1 above).
inline void fetch_max(std::atomic<std::uint64_t>& slot, std::uint64_t v) noexcept {
  std::uint64_t cur = slot.load(std::memory_order_relaxed);
  while (cur < v && !slot.compare_exchange_weak(cur, v, std::memory_order_acq_rel,
                                                std::memory_order_relaxed)) {}
}

} // namespace slab::core
