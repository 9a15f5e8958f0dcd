// vec_slab<T>: a slab backed by one std::vector, the way Rust's `slab` crate is built.
//
// The peer that shows the problem this project exists to remove. Every entry is either
// occupied (a value) or vacant (the index of the next vacant entry: an embedded LIFO free
// list), the key is the entry's index, and growth is push_back: when the vector is full
// it allocates twice the space and copies every entry over, so one insert in a while
// costs a copy of the whole slab (plus faulting in the new block), and values move.
//
// Faithful to the crate: no generations (a stale key silently reaches a new occupant),
// an entry is a tagged union (std::variant here, a Rust enum there: 64-byte value + tag
// = 72 bytes, unaligned to cache lines), and the free list takes the most recently freed
// entry first.
#pragma once

#include <cstddef>
#include <utility>
#include <variant>
#include <vector>

namespace peers {

template <class T> class vec_slab {
  struct vacant {
    std::size_t next; // next vacant entry; entries_.size() ends the list
  };
  using entry = std::variant<vacant, T>;

public:
  using key_type = std::size_t;

  vec_slab() = default;

  /// Stores a value and returns its key: the head of the free list, or a new entry at
  /// the end (which may reallocate and copy every entry).
  template <class... Args> key_type insert(Args&&... args) {
    const std::size_t k = next_;
    if (k == entries_.size()) {
      entries_.emplace_back(std::in_place_index<1>, std::forward<Args>(args)...);
      next_ = k + 1;
    } else {
      next_ = std::get<0>(entries_[k]).next; // throws if the list is corrupt, as Rust panics
      entries_[k].template emplace<1>(std::forward<Args>(args)...);
    }
    ++len_;
    return k;
  }

  /// The value at k, or nullptr when k is vacant or out of range.
  [[nodiscard]] T* get(key_type k) noexcept {
    return k < entries_.size() ? std::get_if<1>(&entries_[k]) : nullptr;
  }

  /// Destroys the value at k and puts its entry on the free list (Rust's try_remove).
  bool erase(key_type k) noexcept {
    if (get(k) == nullptr) return false;
    entries_[k].template emplace<0>(vacant{next_});
    next_ = k;
    --len_;
    return true;
  }

  [[nodiscard]] std::size_t size() const noexcept { return len_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return entries_.capacity(); }

private:
  std::vector<entry> entries_;
  std::size_t next_ = 0;
  std::size_t len_ = 0;
};

} // namespace peers
