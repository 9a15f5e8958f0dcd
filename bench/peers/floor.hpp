// floor_slab<T>: the least any slab can cost, as a yardstick.
//
// An intrusive LIFO free list threaded through one array allocated up front: insert pops
// the head, erase pushes the slot back, a key is the value's address. No bounds, no
// generations, no growth, no checks of any kind: inserting past capacity or erasing a
// stale key is undefined behaviour. Threading the list through every slot at
// construction is also what prefaults the array, so no measured operation takes a page
// fault; on a fresh array the list runs in address order, so inserts into an empty
// floor_slab take the next fresh slot, just like a slab's growth.
//
// Anything a real slab adds (keys that survive reuse, growth, stale-key checks) shows up
// as its distance from this peer.
#pragma once

#include <cstddef>
#include <new>
#include <utility>

namespace peers {

template <class T> class floor_slab {
  union slot {
    slot* next; // while free
    T value;    // while occupied
    explicit slot(slot* n) noexcept : next(n) {}
    ~slot() {}
  };
  // Slots on their own cache lines when a slot is a line or more, as slab::slab does.
  static constexpr std::size_t align_ = alignof(slot) > 64 ? alignof(slot) : 64;

public:
  using key_type = T*;

  /// Allocates and prefaults room for exactly `capacity` values.
  explicit floor_slab(std::size_t capacity)
      : slots_(
            static_cast<slot*>(::operator new (capacity * sizeof(slot), std::align_val_t{align_}))),
        cap_(capacity) {
    for (std::size_t i = 0; i < cap_; ++i)
      ::new (static_cast<void*>(slots_ + i)) slot(i + 1 < cap_ ? slots_ + i + 1 : nullptr);
    head_ = cap_ != 0 ? slots_ : nullptr;
  }
  floor_slab(const floor_slab&) = delete;
  floor_slab& operator=(const floor_slab&) = delete;
  // Values still stored are abandoned, not destroyed: the floor keeps no occupancy.
  ~floor_slab() { ::operator delete (slots_, std::align_val_t{align_}); }

  template <class... Args> key_type insert(Args&&... args) {
    slot* s = head_;
    head_ = s->next;
    return ::new (static_cast<void*>(&s->value)) T(std::forward<Args>(args)...);
  }

  [[nodiscard]] T* get(key_type k) noexcept { return k; }

  void erase(key_type k) noexcept {
    k->~T();
    slot* s = reinterpret_cast<slot*>(k); // a union and its member share an address
    s->next = head_;
    head_ = s;
  }

  [[nodiscard]] std::size_t capacity() const noexcept { return cap_; }

private:
  slot* slots_;
  std::size_t cap_;
  slot* head_ = nullptr;
};

} // namespace peers
