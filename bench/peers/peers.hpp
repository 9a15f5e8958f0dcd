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
#include <string_view>
#include <vector>

#include <slab/platform/locked_backing.hpp>
#include <slab/slab.hpp>

#include "floor.hpp"
#include "vec_slab.hpp"

namespace peers {

/// The value every workload stores: one cache line of data, 8-byte aligned like most
/// records (slab::slab lines it up on 64 bytes by itself; vec_slab does not).
struct Payload64 {
  std::uint64_t w[8];
};
static_assert(sizeof(Payload64) == 64);

/// A payload whose words depend on `seed`, so no two stores are the same bytes.
inline Payload64 make_payload(std::uint64_t seed) noexcept {
  Payload64 p{};
  for (std::uint64_t i = 0; i < 8; ++i)
    p.w[i] = seed + i;
  return p;
}

/// slab::slab with its default heap backing: tiers allocated as it grows, never moved.
struct slab_peer {
  static constexpr std::string_view name = "slab::slab";
  using key_type = slab::key;
  explicit slab_peer(std::size_t /*capacity: it grows*/) {}
  key_type insert(const Payload64& v) { return s.emplace(v); }
  Payload64* get(key_type k) noexcept { return s.get(k); }
  void erase(key_type k) noexcept { s.erase(k); }
  slab::slab<Payload64> s;
};

/// slab::slab on locked_backing with its capacity reserved before the clock starts:
/// every tier mapped (hugepages where reserved, else normal pages), prefaulted and
/// mlocked, so the timed inserts meet neither growth nor a page fault. What the daemon
/// does for shared pools, done by hand in one process.
struct slab_locked_peer {
  static constexpr std::string_view name = "slab+locked";
  using key_type = slab::key;
  using backing = slab::platform::locked_backing;
  explicit slab_locked_peer(std::size_t capacity)
      : s({}, backing({.hugepages = slab::platform::page_policy::prefer, .lock = true},
                      [](const std::string&) {})) {
    s.reserve(capacity);
  }
  key_type insert(const Payload64& v) { return s.emplace(v); }
  Payload64* get(key_type k) noexcept { return s.get(k); }
  void erase(key_type k) noexcept { s.erase(k); }
  slab::slab<Payload64, backing> s;
};

/// The Rust-`slab`-style vector slab: grows by reallocating and copying.
struct vec_slab_peer {
  static constexpr std::string_view name = "vec_slab";
  using key_type = std::size_t;
  explicit vec_slab_peer(std::size_t /*capacity: it grows*/) {}
  key_type insert(const Payload64& v) { return s.insert(v); }
  Payload64* get(key_type k) noexcept { return s.get(k); }
  void erase(key_type k) noexcept { s.erase(k); }
  vec_slab<Payload64> s;
};

/// The floor: a prefaulted array with an unchecked LIFO free list.
struct floor_peer {
  static constexpr std::string_view name = "floor";
  using key_type = Payload64*;
  explicit floor_peer(std::size_t capacity) : s(capacity) {}
  key_type insert(const Payload64& v) noexcept { return s.insert(v); }
  Payload64* get(key_type k) noexcept { return s.get(k); }
  void erase(key_type k) noexcept { s.erase(k); }
  floor_slab<Payload64> s;
};

/// Fills p with n values and returns their keys, in insertion order (untimed setup).
template <class Peer> std::vector<typename Peer::key_type> fill(Peer& p, std::size_t n) {
  std::vector<typename Peer::key_type> keys;
  keys.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    keys.push_back(p.insert(make_payload(i)));
  return keys;
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
