// slab::arena<T>: a slab that never erases, so a reference lives as long as the arena.
//
//   slab::arena<Symbol> symbols;
//   Symbol& s = symbols.alloc("EURUSD", 5);   // a plain reference, valid until ~arena
//   slab::key k = symbols.emplace("GBPUSD", 5);
//   Symbol* p = symbols.get(k);               // index bounds check only, no generation
//
// It is slab::slab<T, Backing> with erase taken away: the same tiers (allocated as it
// grows, never moved), the same keys, the same options and backings. Since no slot is
// ever freed, a key handed out by this arena can never go stale, and get skips the
// generation check: it reads only the tier table and the value, not the slot's header
// (one cache line and one page fewer than slab::get on a random lookup). It still
// refuses an index past what was handed out (nullptr), so a bad key cannot reach memory
// outside the tiers; a key from another arena, of an index this one has handed out,
// reads this arena's value (there is no generation to tell).
//
// Values are destroyed when the arena is. No erase, no clear. Not thread-safe (one
// thread at a time), like slab::slab. Across processes: pools with mode = "arena" and
// slab::arena_pool<T> (client.hpp).
#pragma once

#include <cstddef>
#include <string>
#include <utility>

#include <slab/error.hpp>
#include <slab/key.hpp>
#include <slab/slab.hpp>

namespace slab {

template <class T, backing Backing = heap_backing> class arena {
public:
  using value_type = T;

  explicit arena(slab_options opt = {}, Backing backing = Backing{})
      : s_(opt, std::move(backing)) {}

  /// Constructs a T and returns a reference that stays valid until the arena dies.
  /// Throws like slab::emplace (exhausted, out_of_memory, T's constructor).
  template <class... Args> T& alloc(Args&&... args) {
    return *s_.place(std::forward<Args>(args)...).s.value;
  }
  /// Constructs a T and returns its key (to send elsewhere, or to store compactly).
  template <class... Args> key emplace(Args&&... args) {
    return s_.place(std::forward<Args>(args)...).k;
  }

  /// The value of a key this arena handed out; nullptr for an index it never handed out.
  /// The key's generation is not looked at.
  [[nodiscard]] T* get(key k) noexcept { return s_.value_at(k.index()); }
  [[nodiscard]] const T* get(key k) const noexcept { return const_cast<arena*>(this)->get(k); }
  /// The same, throwing slab::error(invalid_argument) for an index never handed out.
  T& at(key k) {
    if (T* p = get(k)) return *p;
    throw error(errc::invalid_argument, "arena: index " + std::to_string(k.index()) +
                                            " was never handed out (size " +
                                            std::to_string(s_.size()) + ")");
  }

  [[nodiscard]] std::size_t size() const noexcept { return s_.size(); }
  [[nodiscard]] bool empty() const noexcept { return s_.empty(); }
  [[nodiscard]] std::size_t capacity() const noexcept { return s_.capacity(); }
  [[nodiscard]] std::size_t max_capacity() const noexcept { return s_.max_capacity(); }
  [[nodiscard]] unsigned tier_count() const noexcept { return s_.tier_count(); }
  [[nodiscard]] const Backing& backing() const noexcept { return s_.backing(); }
  void reserve(std::size_t n) { s_.reserve(n); }

  /// Every value, in index order, as {key, value&} (as slab::slab iterates).
  auto begin() noexcept { return s_.begin(); }
  auto end() noexcept { return s_.end(); }

private:
  slab<T, Backing> s_;
};

} // namespace slab
