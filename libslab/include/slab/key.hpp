// slab::key: the 64-bit name of a slot, valid in every process that maps the slab.
//
// Bit layout of key::raw():
//
//   63                              32 31                               0
//  +----------------------------------+----------------------------------+
//  |  generation (odd while live)     |  slot index                      |
//  +----------------------------------+----------------------------------+
//
// A shared pool's keys carry the pool's salt XORed into the generation half
// (proto::key_salt, docs/design-choices.md "Keys"), so that a key of one pool misses in
// another; the salt is even, so everything below holds for them as well.
//
// A slot's generation is even while the slot is free and odd while it is live; it
// steps by one on every allocation and every free. A key therefore always carries an
// odd generation, and key 0 (generation 0) is never valid. A key goes stale the moment
// its slot is freed; it could only alias a later occupant after the same slot has
// been reused 2^31 times, which at a million reuses of one slot a second is 35 minutes
// of nothing but that slot; documented in docs/keys.md.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

namespace slab {

class key {
public:
  constexpr key() noexcept = default;

  /// Rebuilds a key from raw(): the way keys cross process boundaries.
  static constexpr key from_raw(std::uint64_t raw) noexcept { return key(raw); }
  static constexpr key make(std::uint32_t index, std::uint32_t generation) noexcept {
    return key((std::uint64_t{generation} << 32) | index);
  }

  [[nodiscard]] constexpr std::uint64_t raw() const noexcept { return raw_; }
  [[nodiscard]] constexpr std::uint32_t index() const noexcept {
    return static_cast<std::uint32_t>(raw_);
  }
  [[nodiscard]] constexpr std::uint32_t generation() const noexcept {
    return static_cast<std::uint32_t>(raw_ >> 32);
  }
  /// False for key 0 and for any key whose generation is even (it cannot name a live
  /// slot). True does not mean live: only the slab can say that.
  [[nodiscard]] constexpr bool plausible() const noexcept { return (generation() & 1U) != 0; }
  constexpr explicit operator bool() const noexcept { return raw_ != 0; }

  friend constexpr bool operator==(key, key) noexcept = default;
  friend constexpr auto operator<=>(key, key) noexcept = default;

private:
  constexpr explicit key(std::uint64_t raw) noexcept : raw_(raw) {}
  std::uint64_t raw_ = 0;
};

static_assert(sizeof(key) == 8);
static_assert(key::make(7, 3).index() == 7 && key::make(7, 3).generation() == 3);
static_assert(key::from_raw(key::make(7, 3).raw()) == key::make(7, 3));
static_assert(!key{}.plausible() && !key{});

} // namespace slab

template <> struct std::hash<slab::key> {
  std::size_t operator()(slab::key k) const noexcept {
    // Keys are dense in their low half; mix so hash tables keyed by them spread well.
    std::uint64_t x = k.raw();
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return static_cast<std::size_t>(x);
  }
};
