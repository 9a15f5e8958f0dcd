// Handles: keys paired with the value they name, for code that wants ownership in the
// type system. Values in a slab never move, so a handle can carry a plain pointer to its
// value beside the key: dereferencing costs nothing, and dropping the handle erases.
//
//   slab::slab<Order> book;
//   slab::unique_slot<Order> u = book.make_unique(42, 100.5);  // erased when u dies
//   u->price = 101.0;
//   slab::key kept = u.release();                              // or keep it, by key
//
//   slab::shared_slot<Order> a = book.make_shared(7, 99.0);    // erased by the last copy
//   slab::shared_slot<Order> b = a;                            // a.use_count() == 2
//
//   auto c = book.claim();             // a slot reserved, nothing constructed yet
//   slab::key k = c.key();             // the key it will have (e.g. to store inside)
//   c.write(k.raw(), 100.5);           // constructs; dropped unwritten, the slot goes back
//
// The same templates serve slab::slab<T, Backing> (here) and slab::pool<T> (client.hpp):
// the second parameter names the container, and defaults to the embedded slab.
//
// What a handle relies on, and checks where it is cheap:
//   - The container outlives its handles and is not moved while they exist (a handle
//     points at it, as an iterator would).
//   - Erasing a handle's value through its key behind the handle's back is allowed and
//     safe: the handle's final erase is then refused by the generation check. Its
//     pointer, like any pointer to an erased value, must not be used after that.
//   - shared_slot's count is not a separate allocation. In slab::slab it lives in the
//     slot header's second word, which links free slots only, so it is unused while the
//     slot is live (and sits beside the generation that every operation reads anyway).
//     Every count update first compares the header's generation with the handle's key,
//     so a handle whose value was erased by key (or by clear()) never touches the slot
//     again. In slab::pool<T> the count is process-local (see client.hpp).
//   - Like the containers, handles are for one thread at a time.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include <slab/backing.hpp>
#include <slab/core/slot_header.hpp>
#include <slab/error.hpp>
#include <slab/key.hpp>

namespace slab {

template <class T, backing Backing> class slab;
template <class T, backing Backing> class arena;
template <class T, class Owner = slab<T, heap_backing>> class unique_slot;
template <class T, class Owner = slab<T, heap_backing>> class shared_slot;
template <class T, class Owner = slab<T, heap_backing>> class claim_guard;

namespace detail {

/// What every handle holds and the accessors they share: the container, the key, and
/// the value's address (values never move, so a handle may keep a plain pointer).
template <class T, class Owner> class handle_base {
public:
  using value_type = T;

  [[nodiscard]] ::slab::key key() const noexcept { return key_; }
  [[nodiscard]] T* get() const noexcept { return value_; }
  T& operator*() const noexcept {
    assert(value_ != nullptr && "dereferencing an empty slab handle");
    return *value_;
  }
  T* operator->() const noexcept {
    assert(value_ != nullptr && "dereferencing an empty slab handle");
    return value_;
  }
  explicit operator bool() const noexcept { return value_ != nullptr; }

protected:
  handle_base() noexcept = default;
  handle_base(Owner* o, ::slab::key k, T* v) noexcept : owner_(o), key_(k), value_(v) {}
  /// Takes what o holds, leaving o empty.
  void take(handle_base& o) noexcept {
    owner_ = std::exchange(o.owner_, nullptr);
    key_ = std::exchange(o.key_, ::slab::key{});
    value_ = std::exchange(o.value_, nullptr);
  }
  void forget() noexcept {
    owner_ = nullptr;
    value_ = nullptr;
    key_ = ::slab::key{};
  }
  void swap_base(handle_base& o) noexcept {
    std::swap(owner_, o.owner_);
    std::swap(key_, o.key_);
    std::swap(value_, o.value_);
  }

  Owner* owner_ = nullptr;
  ::slab::key key_{};
  T* value_ = nullptr;
};

} // namespace detail

/// An exclusive owner of one value: move-only, erases the value when it is destroyed or
/// reset. `release()` gives the key back and keeps the value (then erase it by key).
template <class T, class Owner> class unique_slot : public detail::handle_base<T, Owner> {
  using base = detail::handle_base<T, Owner>;

public:
  unique_slot() noexcept = default;
  unique_slot(unique_slot&& o) noexcept { this->take(o); }
  unique_slot& operator=(unique_slot&& o) noexcept {
    if (this != &o) {
      reset();
      this->take(o);
    }
    return *this;
  }
  unique_slot(const unique_slot&) = delete;
  unique_slot& operator=(const unique_slot&) = delete;
  ~unique_slot() { reset(); }

  /// Gives up ownership without erasing: returns the key (0 when empty).
  [[nodiscard]] ::slab::key release() noexcept {
    const ::slab::key k = this->key_;
    this->forget();
    return k;
  }
  /// Erases the value now (when there is one) and leaves the handle empty.
  void reset() noexcept {
    if (this->owner_ != nullptr) (void)this->owner_->erase(this->key_);
    this->forget();
  }

private:
  friend Owner;
  friend class shared_slot<T, Owner>;
  unique_slot(Owner* o, ::slab::key k, T* v) noexcept : base(o, k, v) {}
};

/// A counted owner of one value: copies share it, the last one erases it. The count is
/// kept in a per-slot cell that the container provides (see the top of this file).
template <class T, class Owner> class shared_slot : public detail::handle_base<T, Owner> {
  using base = detail::handle_base<T, Owner>;

public:
  shared_slot() noexcept = default;
  /// Takes over a unique_slot's value (count 1). May throw what the container's
  /// count storage throws (a pool maps its process-local counts on first use).
  shared_slot(unique_slot<T, Owner>&& u) // NOLINT(google-explicit-constructor): like shared_ptr
  {
    if (u.owner_ == nullptr) return;
    core::slot_header* c = u.owner_->share_cell(u.key_);
    c->gen = u.key_.generation();
    c->aux = 1;
    cell_ = c;
    this->take(u);
  }
  shared_slot(const shared_slot& o) noexcept : base(o), cell_(o.cell_) { acquire(); }
  shared_slot(shared_slot&& o) noexcept : cell_(std::exchange(o.cell_, nullptr)) { this->take(o); }
  shared_slot& operator=(const shared_slot& o) noexcept {
    if (this != &o) {
      shared_slot copy(o);
      swap(copy);
    }
    return *this;
  }
  shared_slot& operator=(shared_slot&& o) noexcept {
    if (this != &o) {
      reset();
      swap(o);
    }
    return *this;
  }
  ~shared_slot() { reset(); }

  /// Handles sharing the value; 0 when empty or when the value was erased by key.
  [[nodiscard]] std::uint32_t use_count() const noexcept { return counted() ? cell_->aux : 0; }

  /// Drops this reference now; the last one erases the value.
  void reset() noexcept {
    if (counted() && --cell_->aux == 0) (void)this->owner_->erase(this->key_);
    this->forget();
    cell_ = nullptr;
  }
  void swap(shared_slot& o) noexcept {
    this->swap_base(o);
    std::swap(cell_, o.cell_);
  }

private:
  friend Owner;
  shared_slot(Owner* o, ::slab::key k, T* v, core::slot_header* cell) noexcept
      : base(o, k, v), cell_(cell) {}

  // The cell still counts our value: its generation is our key's. False once the value
  // was erased by key or by clear(), in which case the cell is not ours to touch.
  [[nodiscard]] bool counted() const noexcept {
    return cell_ != nullptr && cell_->gen == this->key_.generation();
  }
  void acquire() noexcept {
    if (counted()) {
      assert(cell_->aux != UINT32_MAX && "shared_slot: reference count overflow");
      ++cell_->aux;
    }
  }

  core::slot_header* cell_ = nullptr;
};

/// Two-phase allocation: a slot reserved by `claim()`, constructed by `write(args...)`.
/// The key is known before the value exists (`key()`), so a value can hold its own key.
/// A guard destroyed unwritten gives the slot back, and the key it announced never
/// becomes valid (not even for the slot's next occupant). If T's constructor throws in write, the
/// slot stays claimed and goes back when the guard dies. Move-only.
template <class T, class Owner> class claim_guard {
public:
  claim_guard(claim_guard&& o) noexcept
      : owner_(std::exchange(o.owner_, nullptr)), key_(o.key_), token_(o.token_) {}
  claim_guard& operator=(claim_guard&& o) noexcept {
    if (this != &o) {
      drop();
      owner_ = std::exchange(o.owner_, nullptr);
      key_ = o.key_;
      token_ = o.token_;
    }
    return *this;
  }
  claim_guard(const claim_guard&) = delete;
  claim_guard& operator=(const claim_guard&) = delete;
  ~claim_guard() { drop(); }

  /// The key the value will have once written (0 after write or give_back).
  [[nodiscard]] ::slab::key key() const noexcept {
    return owner_ != nullptr ? key_ : ::slab::key{};
  }
  /// Whether the slot is still held, unwritten.
  [[nodiscard]] bool pending() const noexcept { return owner_ != nullptr; }

  /// Constructs the value in the claimed slot and returns its key; the guard is then
  /// empty. Throws slab::error(invalid_argument) when the guard is empty or the claim was
  /// voided (the container was cleared), and whatever T's constructor throws.
  template <class... Args>::slab::key write(Args&&... args) {
    if (owner_ == nullptr)
      throw error(errc::invalid_argument, "claim_guard::write: nothing claimed");
    owner_->fill_claim(key_, token_, std::forward<Args>(args)...);
    owner_ = nullptr;
    return key_;
  }
  /// Returns the slot unwritten, now.
  void give_back() noexcept { drop(); }

private:
  friend Owner;
  claim_guard(Owner* o, ::slab::key k, std::uint64_t token) noexcept
      : owner_(o), key_(k), token_(token) {}
  void drop() noexcept {
    if (owner_ != nullptr) owner_->drop_claim(key_, token_);
    owner_ = nullptr;
  }

  Owner* owner_ = nullptr;
  ::slab::key key_{};
  std::uint64_t token_ = 0; // the container's own tag (the slab: its clear() count)
};

/// What get_many found (the span form). `first` and `second` are positions in the key
/// list: the stale key, or the two keys naming the same slot.
struct get_many_result {
  enum class status : std::uint8_t {
    ok,        ///< every key live and distinct: the out span holds their values
    stale,     ///< keys[first] is stale, out of range or 0
    duplicate, ///< keys[first] and keys[second] name the same slot
    too_small, ///< the out span is shorter than the key list
  };
  status what = status::ok;
  std::size_t first = 0;
  std::size_t second = 0;
  explicit operator bool() const noexcept { return what == status::ok; }
};

} // namespace slab
