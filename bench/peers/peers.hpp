// The peers every benchmark runs side by side, behind one small interface.
//
//   Peer p(capacity);               // capacity: a hint; only the floor needs it
//   Peer::key_type k = p.insert(v);
//   Payload64* v = p.get(k);
//   p.erase(k);
//   Peer::name                      // how reports name it
//
// Adding a peer: write it in its own header here, add an adapter with this shape, and
// list it in the programs' peer lists.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <slab/platform/locked_backing.hpp>
#include <slab/slab.hpp>

#include "checked_floor.hpp"
#include "floor.hpp"
#include "vec_slab.hpp"

namespace peers {

/// The value every workload stores: `Bytes` of data (64: one cache line; 256: four),
/// 8-byte aligned like most records (slab::slab lines it up on 64 bytes by itself;
/// vec_slab and malloc do not).
template <std::size_t Bytes> struct payload {
  static_assert(Bytes % 8 == 0 && Bytes >= 8);
  std::uint64_t w[Bytes / 8];
};
using Payload64 = payload<64>;
using Payload256 = payload<256>;
static_assert(sizeof(Payload64) == 64 && sizeof(Payload256) == 256);

/// A payload whose words depend on `seed`, so no two stores are the same bytes.
template <class P = Payload64> inline P make_payload(std::uint64_t seed) noexcept {
  P p{};
  for (std::uint64_t i = 0; i < std::size(p.w); ++i)
    p.w[i] = seed + i;
  return p;
}

/// slab::slab with its default heap backing: tiers allocated as it grows, never moved.
template <class P = Payload64> struct slab_peer {
  static constexpr std::string_view name = "slab::slab";
  using key_type = slab::key;
  explicit slab_peer(std::size_t /*capacity: it grows*/) {}
  key_type insert(const P& v) { return s.emplace(v); }
  P* get(key_type k) noexcept { return s.get(k); }
  void erase(key_type k) noexcept { s.erase(k); }
  slab::slab<P> s;
};

/// slab::slab on locked_backing with its capacity reserved before the clock starts:
/// every tier mapped (hugepages where reserved, else normal pages), prefaulted and
/// mlocked, so the timed inserts meet neither growth nor a page fault. What the daemon
/// does for shared pools, done by hand in one process.
template <class P = Payload64> struct slab_locked_peer {
  static constexpr std::string_view name = "slab+locked";
  using key_type = slab::key;
  using backing = slab::platform::locked_backing;
  explicit slab_locked_peer(std::size_t capacity)
      : s({}, backing({.hugepages = slab::platform::page_policy::prefer, .lock = true},
                      [](const std::string&) {})) {
    s.reserve(capacity);
  }
  key_type insert(const P& v) { return s.emplace(v); }
  P* get(key_type k) noexcept { return s.get(k); }
  void erase(key_type k) noexcept { s.erase(k); }
  slab::slab<P, backing> s;
};

/// The Rust-`slab`-style vector slab: grows by reallocating and copying.
template <class P = Payload64> struct vec_slab_peer {
  static constexpr std::string_view name = "vec_slab";
  using key_type = std::size_t;
  explicit vec_slab_peer(std::size_t /*capacity: it grows*/) {}
  key_type insert(const P& v) { return s.insert(v); }
  P* get(key_type k) noexcept { return s.get(k); }
  void erase(key_type k) noexcept { s.erase(k); }
  vec_slab<P> s;
};

/// The floor: a prefaulted array with an unchecked LIFO free list.
template <class P = Payload64> struct floor_peer {
  static constexpr std::string_view name = "floor";
  using key_type = P*;
  explicit floor_peer(std::size_t capacity) : s(capacity) {}
  key_type insert(const P& v) noexcept { return s.insert(v); }
  P* get(key_type k) noexcept { return s.get(k); }
  void erase(key_type k) noexcept { s.erase(k); }
  floor_slab<P> s;
};

/// The floor with a generation check (checked_floor.hpp): generations apart, as the
/// pool's headers, or on the value's line (Inline).
template <class P, bool Inline> struct checked_peer {
  static constexpr std::string_view name = Inline ? "checked floor, inline" : "checked floor";
  using key_type = std::uint64_t;
  explicit checked_peer(std::size_t capacity) : s(capacity) {}
  key_type insert(const P& v) noexcept { return s.insert(v); }
  P* get(key_type k) noexcept { return s.get(k); }
  void erase(key_type k) noexcept { s.erase(k); }
  checked_floor<P, Inline> s;
};
template <class P = Payload64> using checked_floor_peer = checked_peer<P, false>;
template <class P = Payload64> using checked_floor_inline_peer = checked_peer<P, true>;

/// A plain array indexed by position, filled in order: what a lookup costs with no
/// slab at all (no key check, no free list). Its erase does nothing.
template <class P = Payload64> struct array_peer {
  static constexpr std::string_view name = "plain array";
  using key_type = std::uint32_t;
  explicit array_peer(std::size_t capacity) { a.reserve(capacity); }
  key_type insert(const P& v) {
    a.push_back(v);
    return static_cast<key_type>(a.size() - 1);
  }
  P* get(key_type k) noexcept { return &a[k]; }
  void erase(key_type) noexcept {}
  std::vector<P> a;
};

/// The payload type a peer stores.
template <class Peer>
using payload_of = std::remove_pointer_t<decltype(std::declval<Peer&>().get(
    std::declval<typename Peer::key_type>()))>;

/// Fills p with n values and returns their keys, in insertion order (untimed setup).
template <class Peer> std::vector<typename Peer::key_type> fill(Peer& p, std::size_t n) {
  std::vector<typename Peer::key_type> keys;
  keys.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    keys.push_back(p.insert(make_payload<payload_of<Peer>>(i)));
  return keys;
}

/// Gives back every value still stored, untimed: allocator peers (malloc and friends)
/// free each object; slabs and arenas drop everything with their destructor.
template <class Peer> void dispose(Peer& p, const std::vector<typename Peer::key_type>& keys) {
  if constexpr (requires { Peer::frees_each; }) {
    for (const auto& k : keys)
      p.erase(k);
  }
}

/// A small, fast, seeded PRNG (SplitMix64): the same seed gives every peer the same
/// sequence of choices.
class splitmix64 {
public:
  explicit splitmix64(std::uint64_t seed) noexcept : x_(seed) {}
  std::uint64_t operator()() noexcept {
    std::uint64_t z = (x_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, n), up to a bias below n / 2^64: negligible for any n we use, and
  /// the division is outside every timed region.
  std::size_t below(std::size_t n) noexcept { return static_cast<std::size_t>((*this)() % n); }

private:
  std::uint64_t x_;
};

} // namespace peers
