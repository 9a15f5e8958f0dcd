// Tier math: how a slot index maps to the tier that holds it.
//
// Storage grows by tiers that are never moved. Tier 0 holds B slots and tier t >= 1
// holds B * 2^(t-1), so tiers 0..t together hold B * 2^t slots and the first index of
// tier t >= 1 is B * 2^(t-1). With B = 2^b, an index i lives in tier bit_width(i >> b):
// one shift and one lzcnt, no table, no loop. 2^32 slots need at most 33 - b tiers.
#pragma once

#include <bit>
#include <cstdint>

namespace slab::core {

/// The largest number of slots a slab may hold: indices are 32 bits and the all-ones
/// index is kept free as the "no slot" marker of intrusive free lists.
inline constexpr std::uint64_t max_slots = (std::uint64_t{1} << 32) - 1;
/// Enough tiers for 2^32 slots even with B = 1.
inline constexpr unsigned max_tiers = 33;
inline constexpr std::uint32_t no_index = 0xFFFFFFFFU;

struct tier_pos {
  unsigned tier;
  std::uint32_t offset; ///< index within the tier
  friend constexpr bool operator==(tier_pos, tier_pos) = default;
};

class tier_geometry {
public:
  /// base_log2 = b, with tier 0 holding 2^b slots; b <= 31.
  constexpr explicit tier_geometry(unsigned base_log2) noexcept : b_(base_log2) {}

  /// The geometry whose tier 0 holds at least `slots` (rounded up to a power of two,
  /// and to at least `min_base`, itself a power of two).
  static constexpr tier_geometry for_base(std::uint64_t slots,
                                          std::uint64_t min_base = 1) noexcept {
    std::uint64_t b = slots < min_base ? min_base : slots;
    if (b == 0) b = 1; // for_base(0, 0): bit_width(b - 1) would be 64, base() a shift by 64
    if (b > (std::uint64_t{1} << 31)) b = std::uint64_t{1} << 31;
    return tier_geometry(static_cast<unsigned>(std::bit_width(b - 1)));
  }

  [[nodiscard]] constexpr unsigned base_log2() const noexcept { return b_; }
  [[nodiscard]] constexpr std::uint64_t base() const noexcept { return std::uint64_t{1} << b_; }

  [[nodiscard]] constexpr unsigned tier_of(std::uint32_t index) const noexcept {
    // bit_width(x) == bit_width(2x + 1) - 1, and 2x + 1 is never 0: without -mlzcnt the
    // compiler can then use bsr with no zero test. Done in 64 bits so 2x cannot wrap.
    const std::uint64_t x = index >> b_;
    return static_cast<unsigned>(std::bit_width((x << 1) | 1U)) - 1;
  }
  /// First index of tier t.
  [[nodiscard]] constexpr std::uint64_t tier_begin(unsigned t) const noexcept {
    return t == 0 ? 0 : std::uint64_t{1} << (b_ + t - 1);
  }
  [[nodiscard]] constexpr std::uint64_t tier_size(unsigned t) const noexcept {
    return t == 0 ? base() : std::uint64_t{1} << (b_ + t - 1);
  }
  /// Slots held by tiers 0..t together.
  [[nodiscard]] constexpr std::uint64_t capacity_through(unsigned t) const noexcept {
    return std::uint64_t{1} << (b_ + t);
  }
  [[nodiscard]] constexpr tier_pos locate(std::uint32_t index) const noexcept {
    const unsigned t = tier_of(index);
    return {t, static_cast<std::uint32_t>(index - tier_begin(t))};
  }
  /// How many tiers hold at least `slots` slots (0 for 0 slots).
  [[nodiscard]] constexpr unsigned tiers_for(std::uint64_t slots) const noexcept {
    if (slots == 0) return 0;
    if (slots <= base()) return 1;
    return static_cast<unsigned>(std::bit_width((slots - 1) >> b_)) + 1;
  }
  /// Tiers needed to reach max_slots.
  [[nodiscard]] constexpr unsigned max_tier_count() const noexcept { return tiers_for(max_slots); }

private:
  unsigned b_;
};

// Compile-time checks of the boundaries; tests/libslab/tier_test.cpp walks them all.
static_assert(tier_geometry(4).locate(0) == tier_pos{0, 0});
static_assert(tier_geometry(4).locate(15) == tier_pos{0, 15});
static_assert(tier_geometry(4).locate(16) == tier_pos{1, 0});
static_assert(tier_geometry(4).locate(31) == tier_pos{1, 15});
static_assert(tier_geometry(4).locate(32) == tier_pos{2, 0});
static_assert(tier_geometry(4).locate(0xFFFFFFFFU) == tier_pos{28, 0x7FFFFFFFU});
static_assert(tier_geometry(0).tiers_for(max_slots) == 33);
static_assert(tier_geometry(4).tiers_for(16) == 1 && tier_geometry(4).tiers_for(17) == 2);
static_assert(tier_geometry::for_base(1000).base() == 1024);

} // namespace slab::core
