// slab::slab<T>: the embedded, single-process slab.
//
// Values live in tiers that are allocated as the slab grows and never moved, resized or
// copied: a value's address is fixed from emplace to erase, whatever is added after it,
// and growth costs one block allocation instead of a copy of everything. A key names a
// slot together with its generation, so a key whose value was erased (and perhaps
// replaced) is refused by get and erase instead of reaching the new occupant.
//
//   slab::slab<Order> book;
//   slab::key k = book.emplace(42, 100.5);
//   Order* o = book.get(k);      // nullptr once k is stale
//   bool gone = book.erase(k);   // false when k is stale
//
// Not thread-safe: one thread at a time, like a std::vector. For sharing across
// threads and processes use slab::client and slab::pool<T>.
#pragma once

#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include <slab/backing.hpp>
#include <slab/core/layout.hpp>
#include <slab/core/slot_header.hpp>
#include <slab/core/tier.hpp>
#include <slab/error.hpp>
#include <slab/handles.hpp>
#include <slab/key.hpp>

namespace slab {

struct slab_options {
  /// Slots in the first tier (rounded up to a power of two). 0: about 64 KiB of payload.
  std::uint64_t first_tier = 0;
  /// Never grow past this many slots (emplace then throws errc::exhausted).
  std::uint64_t max_capacity = core::max_slots;
};

template <class T, backing Backing = heap_backing> class slab {
  static_assert(std::is_object_v<T> && !std::is_const_v<T>, "slab<T> holds mutable objects");
  static constexpr core::slot_layout layout_ =
      core::slot_layout::for_payload(sizeof(T), alignof(T));
  static constexpr std::size_t block_align_ =
      layout_.align > core::cache_line ? layout_.align : core::cache_line;

  struct tier {
    std::byte* payload = nullptr;     // tier_size * stride bytes
    core::slot_header* hdr = nullptr; // tier_size headers, after the payloads
    std::uint32_t first = 0;          // index of the tier's first slot
  };
  // A slot found once per operation: its header and its payload.
  struct slot_ref {
    core::slot_header* hdr;
    T* value;
  };

public:
  using value_type = T;

  explicit slab(slab_options opt = {}, Backing backing = Backing{})
      : geo_(core::tier_geometry::for_base(opt.first_tier != 0 ? opt.first_tier : default_base())),
        max_(opt.max_capacity < core::max_slots ? opt.max_capacity : core::max_slots),
        backing_(std::move(backing)) {}

  slab(const slab&) = delete;
  slab& operator=(const slab&) = delete;
  slab(slab&& o) noexcept
      : geo_(o.geo_), max_(o.max_), backing_(std::move(o.backing_)), ntiers_(o.ntiers_),
        capacity_(o.capacity_), used_(o.used_), inited_(o.inited_), free_head_(o.free_head_),
        size_(o.size_), clears_(o.clears_) {
    std::copy(std::begin(o.tiers_), std::end(o.tiers_), std::begin(tiers_));
    o.forget();
  }
  slab& operator=(slab&& o) noexcept {
    if (this != &o) {
      release();
      geo_ = o.geo_;
      max_ = o.max_;
      backing_ = std::move(o.backing_);
      ntiers_ = o.ntiers_;
      capacity_ = o.capacity_;
      used_ = o.used_;
      inited_ = o.inited_;
      free_head_ = o.free_head_;
      size_ = o.size_;
      clears_ = o.clears_;
      std::copy(std::begin(o.tiers_), std::end(o.tiers_), std::begin(tiers_));
      o.forget();
    }
    return *this;
  }
  ~slab() { release(); }

  /// Constructs a T in a free slot and returns its key. Grows by one tier when full.
  /// Throws slab::error (exhausted, out_of_memory) when no slot can be had, and
  /// whatever T's constructor throws; either way nothing is taken.
  template <class... Args> key emplace(Args&&... args) {
    return place(std::forward<Args>(args)...).k;
  }

  /// Like emplace, but returns nullopt instead of throwing when no slot can be had.
  /// Exceptions from T's constructor still propagate.
  template <class... Args> std::optional<key> try_emplace(Args&&... args) {
    if (free_head_ == core::no_index && used_ == capacity_ && !try_grow()) return std::nullopt;
    return emplace(std::forward<Args>(args)...);
  }

  /// The value named by k, or nullptr when k is stale, out of range or 0.
  [[nodiscard]] T* get(key k) noexcept {
    const std::uint32_t idx = k.index();
    if (idx >= used_) return nullptr;
    const slot_ref s = find(idx);
    if (s.hdr->gen != k.generation() || !core::gen_live(k.generation())) return nullptr;
    return std::launder(s.value);
  }
  [[nodiscard]] const T* get(key k) const noexcept { return const_cast<slab*>(this)->get(k); }
  [[nodiscard]] bool contains(key k) const noexcept { return get(k) != nullptr; }

  /// Destroys the value named by k and frees its slot. False (and nothing done) when k
  /// is stale, out of range or 0.
  bool erase(key k) noexcept {
    const std::uint32_t idx = k.index();
    if (idx >= used_) return false;
    const slot_ref s = find(idx);
    if (s.hdr->gen != k.generation() || !core::gen_live(k.generation())) return false;
    std::launder(s.value)->~T();
    ++s.hdr->gen;
    s.hdr->aux = free_head_;
    free_head_ = idx;
    --size_;
    return true;
  }

  // ---- handles, two-phase claims, several values at once (slab/handles.hpp) ----

  /// emplace, owned by a move-only handle that erases the value when it dies.
  template <class... Args> unique_slot<T, slab> make_unique(Args&&... args) {
    const placed p = place(std::forward<Args>(args)...);
    return unique_slot<T, slab>(this, p.k, p.s.value);
  }
  /// emplace, owned by counted handles; the last one erases. The count lives in the
  /// slot's header (its free-list word, unused while the slot is live): no allocation.
  template <class... Args> shared_slot<T, slab> make_shared(Args&&... args) {
    const placed p = place(std::forward<Args>(args)...);
    p.s.hdr->aux = 1;
    return shared_slot<T, slab>(this, p.k, p.s.value, p.s.hdr);
  }
  /// Reserves a free slot (growing like emplace, and throwing like it) without
  /// constructing anything; claim_guard::write constructs. See handles.hpp.
  claim_guard<T, slab> claim() {
    const std::uint32_t idx = take_index();
    return claim_guard<T, slab>(this, key::make(idx, header(idx).gen + 1), clears_);
  }

  /// Pointers to several live values at once, all distinct, for code that must hold
  /// and change them together: nullopt when a key is stale (or 0, or out of range) or
  /// when two keys name the same slot. Pairwise check: meant for a handful of keys.
  ///   if (auto v = book.get_many(a, b)) { auto [x, y] = *v; std::swap(x->qty, y->qty); }
  template <class... K>
  requires(std::same_as<K, key>&&...)
      [[nodiscard]] std::optional<std::array<T*, sizeof...(K)>> get_many(K... keys) noexcept {
    const std::array<key, sizeof...(K)> ks{keys...};
    std::array<T*, sizeof...(K)> out{};
    if (!get_many(std::span<const key>(ks), std::span<T*>(out))) return std::nullopt;
    return out;
  }
  /// The same for a run-time list, saying which keys were wrong. On failure `out` is
  /// left unspecified.
  get_many_result get_many(std::span<const key> keys, std::span<T*> out) noexcept {
    using st = get_many_result::status;
    if (out.size() < keys.size()) return {st::too_small, keys.size(), out.size()};
    for (std::size_t i = 0; i < keys.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (keys[j].index() == keys[i].index()) return {st::duplicate, j, i};
      }
      out[i] = get(keys[i]);
      if (out[i] == nullptr) return {st::stale, i, i};
    }
    return {};
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  /// Slots held by the tiers allocated so far.
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] std::size_t max_capacity() const noexcept { return max_; }
  [[nodiscard]] unsigned tier_count() const noexcept { return ntiers_; }
  /// The backing the tiers came from (e.g. locked_backing::fell_back()).
  [[nodiscard]] const Backing& backing() const noexcept { return backing_; }
  [[nodiscard]] static constexpr core::slot_layout layout() noexcept { return layout_; }

  /// Adds tiers until capacity() >= n. Throws like emplace when that is impossible.
  void reserve(std::size_t n) {
    if (n > max_)
      throw error(errc::exhausted, "slab: reserve(" + std::to_string(n) +
                                       ") exceeds max_capacity " + std::to_string(max_));
    while (capacity_ < n)
      grow();
  }

  /// Destroys every value. Capacity stays; every key handed out so far goes stale, and
  /// claims still pending are voided (their write throws, their drop does nothing).
  void clear() noexcept {
    ++clears_;
    for_each_live([](std::uint32_t, core::slot_header& h, T* v) {
      v->~T();
      ++h.gen;
    });
    used_ = 0;
    free_head_ = core::no_index;
    size_ = 0;
  }

  // Iteration over live slots, in index order. Erasing the current element through its
  // key is allowed; emplacing during iteration may or may not visit the new element.
  struct entry {
    ::slab::key key;
    T& value;
  };
  class iterator {
  public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = entry;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    entry operator*() const { return {key::make(idx_, s_->header(idx_).gen), *s_->slot_ptr(idx_)}; }
    iterator& operator++() {
      ++idx_;
      skip();
      return *this;
    }
    iterator operator++(int) {
      iterator t = *this;
      ++*this;
      return t;
    }
    friend bool operator==(const iterator& a, const iterator& b) { return a.idx_ == b.idx_; }

  private:
    friend class slab;
    iterator(slab* s, std::uint32_t i) : s_(s), idx_(i) { skip(); }
    void skip() {
      while (idx_ < s_->used_ && !core::gen_live(s_->header(idx_).gen))
        ++idx_;
    }
    slab* s_ = nullptr;
    std::uint32_t idx_ = 0;
  };
  iterator begin() noexcept { return iterator(this, 0); }
  iterator end() noexcept { return iterator(this, static_cast<std::uint32_t>(used_)); }

private:
  template <class, class> friend class unique_slot;
  template <class, class> friend class shared_slot;
  template <class, class> friend class claim_guard;
  template <class, ::slab::backing> friend class arena;

  struct placed {
    key k;
    slot_ref s;
  };
  // emplace, also returning where the value went (for handles and the arena).
  template <class... Args> placed place(Args&&... args) {
    const std::uint32_t idx = take_index();
    const slot_ref s = find(idx);
    try {
      ::new (static_cast<void*>(s.value)) T(std::forward<Args>(args)...);
    } catch (...) {
      give_back(idx, *s.hdr);
      throw;
    }
    assert(!core::gen_live(s.hdr->gen) && "a slot on the free list must be free");
    const std::uint32_t g = ++s.hdr->gen;
    ++size_;
    return {key::make(idx, g), s};
  }

  // Hooks of the handles (handles.hpp). A live slot's header is shared_slot's count.
  core::slot_header* share_cell(key k) noexcept { return find(k.index()).hdr; }
  // claim_guard: `token` is clears_ when the claim was made; a clear() since voids it.
  template <class... Args> void fill_claim(key k, std::uint64_t token, Args&&... args) {
    if (token != clears_) {
      throw error(errc::invalid_argument,
                  "claim_guard::write: the claim was voided by clear() (slot " +
                      std::to_string(k.index()) + ")");
    }
    const slot_ref s = find(k.index());
    ::new (static_cast<void*>(s.value)) T(std::forward<Args>(args)...);
    assert(s.hdr->gen + 1 == k.generation() && "a claimed slot stays free until written");
    ++s.hdr->gen;
    ++size_;
  }
  // An abandoned claim's key may have been shown to the program (claim_guard::key), so
  // its generation is burnt: stepped by two, the slot stays free and that key never
  // matches a later occupant.
  void drop_claim(key k, std::uint64_t token) noexcept {
    if (token != clears_) return;
    core::slot_header& h = header(k.index());
    h.gen += 2;
    give_back(k.index(), h);
  }
  // The arena: the value at a handed-out index, with no generation check.
  T* value_at(std::uint32_t idx) noexcept {
    return idx < used_ ? std::launder(find(idx).value) : nullptr;
  }

  static constexpr std::uint64_t default_base() noexcept {
    const std::uint64_t n = (64 * 1024) / layout_.stride;
    return n < 16 ? 16 : n;
  }

  slot_ref find(std::uint32_t idx) noexcept {
    const tier& t = tiers_[geo_.tier_of(idx)];
    const std::size_t off = idx - t.first;
    return {t.hdr + off, reinterpret_cast<T*>(t.payload + off * layout_.stride)};
  }
  core::slot_header& header(std::uint32_t idx) noexcept { return *find(idx).hdr; }
  T* slot_ptr(std::uint32_t idx) noexcept { return find(idx).value; }

  // Removes a free index from the free list or the never-used space, growing if needed.
  // A never-used slot's header is written here, when the slot is first taken, not when
  // its tier is added: growth then costs one block allocation, not a pass over a
  // header array as large as the tier. Headers below inited_ keep their generations
  // across clear(), so keys from before a clear stay stale.
  std::uint32_t take_index() {
    if (free_head_ != core::no_index) {
      const std::uint32_t idx = free_head_;
      free_head_ = header(idx).aux;
      return idx;
    }
    if (used_ == capacity_) grow();
    const auto idx = static_cast<std::uint32_t>(used_++);
    if (idx == inited_) {
      ::new (static_cast<void*>(&header(idx))) core::slot_header{};
      ++inited_;
    }
    return idx;
  }
  // Undoes take_index after a throwing constructor: the slot goes back to the free list
  // with its generation untouched, so no key is affected.
  void give_back(std::uint32_t idx, core::slot_header& h) noexcept {
    h.aux = free_head_;
    free_head_ = idx;
  }

  bool try_grow() noexcept {
    try {
      grow();
      return true;
    } catch (const error&) {
      return false;
    }
  }

  void grow() {
    const unsigned t = ntiers_;
    const std::uint64_t n = geo_.tier_size(t);
    if (t >= core::max_tiers || capacity_ >= max_) {
      throw error(errc::exhausted,
                  "slab: max_capacity of " + std::to_string(max_) + " slots reached");
    }
    const std::size_t payload_bytes = static_cast<std::size_t>(n) * layout_.stride;
    void* block = backing_.allocate(block_bytes(n), block_align_);
    auto* base = static_cast<std::byte*>(block);
    tiers_[t].payload = base;
    tiers_[t].hdr = reinterpret_cast<core::slot_header*>(base + payload_bytes);
    tiers_[t].first = static_cast<std::uint32_t>(geo_.tier_begin(t));
    ntiers_ = t + 1;
    const std::uint64_t cap = geo_.capacity_through(t);
    capacity_ = static_cast<std::size_t>(cap < max_ ? cap : max_);
  }

  static std::size_t block_bytes(std::uint64_t n) noexcept {
    return static_cast<std::size_t>(n) * (layout_.stride + sizeof(core::slot_header));
  }

  template <class F> void for_each_live(F&& f) noexcept {
    for (std::uint32_t i = 0; i < used_; ++i) {
      core::slot_header& h = header(i);
      if (core::gen_live(h.gen)) f(i, h, slot_ptr(i));
    }
  }

  void release() noexcept {
    if (ntiers_ == 0) return;
    for_each_live([](std::uint32_t, core::slot_header&, T* v) { v->~T(); });
    for (unsigned t = 0; t < ntiers_; ++t) {
      backing_.deallocate(tiers_[t].payload, block_bytes(geo_.tier_size(t)), block_align_);
    }
    forget();
  }
  void forget() noexcept {
    for (tier& t : tiers_)
      t = tier{};
    ntiers_ = 0;
    capacity_ = used_ = inited_ = size_ = 0;
    free_head_ = core::no_index;
  }

  core::tier_geometry geo_;
  std::size_t max_;
  [[no_unique_address]] Backing backing_;
  tier tiers_[core::max_tiers]{};
  unsigned ntiers_ = 0;
  std::size_t capacity_ = 0; // slots in allocated tiers (capped at max_)
  std::size_t used_ = 0;     // indices [0, used_) have been handed out since the last clear
  std::size_t inited_ = 0;   // headers [0, inited_) have been written (>= used_)
  std::uint32_t free_head_ = core::no_index;
  std::size_t size_ = 0;
  std::uint64_t clears_ = 0; // clear() calls: voids claims made before (claim_guard)
};

} // namespace slab
