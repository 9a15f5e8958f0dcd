// cache<R>: one context's allocator over a shared region: the per-context cache of two
// magazines (Bonwick's loaded and previous), and the depot steps behind it.
//
// Invariant: every slot index < the fresh cursor is exactly one of
//   - live: its generation is odd;
//   - free once: in exactly one magazine position [0, count) of a magazine that is in
//     the FULL stack or held by exactly one context (mag[0], mag[1] or spare);
// and every slot at or past the cursor has never been used (generation 0). Every
// magazine id is in exactly one of: the FULL stack (count == K), the EMPTY stack
// (count == 0), a context's record. A crash between any two stores of the steps below
// leaves a state that reclaim.hpp can complete or undo from the context's record.
//
// Hot path (cache hit), alloc: one load of count, one of the index, one of the slot
// header, a release store of the new generation, a store of count. No read-modify-write,
// no fence. Free: a compare-and-swap of the slot's header (the cross-process double-free
// guard DESIGN.md asks for), the intent and two stores into the cache.
//
// A context is used by one thread at a time.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>

#include <slab/core/fault.hpp>
#include <slab/core/region.hpp>
#include <slab/core/shared_layout.hpp>
#include <slab/core/slot_header.hpp>
#include <slab/core/wide_cell.hpp>
#include <slab/key.hpp>

namespace slab::core {

inline constexpr auto relaxed = std::memory_order_relaxed;

template <region R> class cache {
public:
  /// Binds to context record `ctx` (already marked active by whoever registered it) and
  /// takes its two magazines from the EMPTY stack if it has none yet. Check ready().
  cache(R& r, std::uint32_t ctx) SLAB_STEP_NOEXCEPT : r_(r), rec_(r.context(ctx)), me_(ctx) {
    for (std::uint32_t i = 0; i < 2; ++i) {
      if (rec_.mag[i].load(relaxed) != no_magazine) continue;
      const std::uint32_t m = pop(cell_id::empty);
      if (m == no_magazine) return;
      rec_.mag[i].store(m, relaxed);
      rec_.spare.store(no_magazine, relaxed);
      clear_intent();
    }
    reload();
  }

  /// False when the pool had no magazine to give this context (too many contexts).
  [[nodiscard]] bool ready() const noexcept { return loaded_ != nullptr && prev_ != nullptr; }
  [[nodiscard]] std::uint32_t id() const noexcept { return me_; }
  [[nodiscard]] context_record& record() noexcept { return rec_; }

  /// Takes a free slot and marks it live. key{} when the pool has no free slot within
  /// its ready tiers (the caller may ask for growth and retry).
  key alloc() SLAB_STEP_NOEXCEPT {
    return take([&](shared_header& h, std::uint32_t idx, std::uint32_t g) SLAB_STEP_NOEXCEPT {
      fault::point("alloc.publish");
      h.store({g + 1, me_}, std::memory_order_release);
      return key::make(idx, g + 1);
    });
  }

  /// Two-phase allocation, step 1: takes a free slot out of the cache without making it
  /// live: its header keeps its (even) generation and names this context with
  /// claimed_flag, and claims[entry] of the record holds the key it will have, so that
  /// reclaim gives it back if this context dies before step 2. get() of that key finds
  /// nothing until the value is written. key{} with entry == claim_slots when every
  /// claim entry is in use; key{} otherwise when the pool has no free slot (as alloc).
  key claim(std::uint32_t& entry) SLAB_STEP_NOEXCEPT {
    for (entry = 0; entry < claim_slots; ++entry) {
      if (rec_.claims[entry].load(relaxed) == 0) break;
    }
    if (entry == claim_slots) return key{};
    std::atomic<std::uint64_t>& e = rec_.claims[entry];
    return take([&](shared_header& h, std::uint32_t idx, std::uint32_t g) SLAB_STEP_NOEXCEPT {
      const key k = key::make(idx, g + 1);
      e.store(k.raw(), relaxed); // recorded before the slot leaves the cache
      fault::point("claim.recorded");
      h.store({g, me_ | claimed_flag}, std::memory_order_release);
      return k;
    });
  }
  /// Step 2, written: the value is in place (the caller constructed it); the slot goes
  /// live under the claim's key, published with release like alloc's.
  void commit_claim(std::uint32_t entry, key k) SLAB_STEP_NOEXCEPT {
    r_.header(k.index()).store({k.generation(), me_}, std::memory_order_release);
    fault::point("claim.committed");
    rec_.claims[entry].store(0, std::memory_order_release);
  }
  /// Step 2, abandoned: the slot goes back to the cache, unwritten; its generation moves
  /// two on, so the key the claim announced never becomes valid.
  void abandon_claim(std::uint32_t entry, key k) SLAB_STEP_NOEXCEPT {
    // Kept recorded if the slot could not go back (no room in the cache): reclaim will.
    if (!return_claimed(k.index(), k.generation() - 1, me_)) return;
    fault::point("claim.freed");
    rec_.claims[entry].store(0, std::memory_order_release);
  }
  /// Puts slot idx, claimed by context `claimer` at generation g (even) and not written,
  /// into this context's cache. A free in all but the CAS's expected value, under a free
  /// intent, so that a death midway is settled like any free's. False when the header
  /// is not {g, claimer | claimed_flag}.
  bool return_claimed(std::uint32_t idx, std::uint32_t g,
                      std::uint32_t claimer) SLAB_STEP_NOEXCEPT {
    if (!r_.has_slot(idx)) return false;
    shared_header& h = r_.header(idx);
    shared_header::value seen{g, claimer | claimed_flag};
    if (h.load(std::memory_order_acquire) != seen) return false;
    if (loaded_->count.load(relaxed) == magazine_slots && !make_room()) [[unlikely]] {
      bump(rec_.counters.anomalies);
      return false;
    }
    const std::uint32_t c = loaded_->count.load(relaxed);
    set_intent(intent_op::free, idx, g + 1); // settled as done when the header is {g+2, me}
    if (!h.cas(seen, {g + 2, me_})) {
      clear_intent();
      return false;
    }
    fault::point("free.store");
    loaded_->slots[c].store(idx, relaxed);
    loaded_->count.store(c + 1, std::memory_order_release);
    clear_intent();
    bump(rec_.counters.frees); // the claim counted as an alloc
    return true;
  }

  /// Frees the slot named by k. False, and nothing done, when k is stale, out of range
  /// or already freed in any process (the header CAS decides between racing frees).
  bool free(key k) SLAB_STEP_NOEXCEPT {
    return free(k, [] {});
  }

  /// free, running `on_claimed` after this context has won the slot (its generation
  /// moved on, nobody else can free or allocate it) and before it enters the cache:
  /// the place to run a destructor exactly once however many processes race to erase.
  /// A death inside on_claimed is settled by reclaim like any other half-done free.
  template <class F> bool free(key k, F&& on_claimed) SLAB_STEP_NOEXCEPT {
    const std::uint32_t idx = k.index();
    const std::uint32_t g = k.generation();
    if (!gen_live(g) || !r_.has_slot(idx)) return refuse();
    shared_header& h = r_.header(idx);
    shared_header::value seen = h.load(std::memory_order_acquire);
    if (seen.gen != g) return refuse();
    if (loaded_->count.load(relaxed) == magazine_slots && !make_room()) [[unlikely]] {
      bump(rec_.counters.anomalies);
      return false;
    }
    const std::uint32_t c = loaded_->count.load(relaxed);
    set_intent(intent_op::free, idx, g);
    fault::point("free.cas");
    if (!h.cas(seen, {g + 1, me_})) {
      clear_intent();
      return refuse();
    }
    on_claimed();
    fault::point("free.store");
    loaded_->slots[c].store(idx, relaxed);
    fault::point("free.count");
    loaded_->count.store(c + 1, std::memory_order_release); // after the slot (reclaim)
    fault::point("free.clear");
    clear_intent();
    bump(rec_.counters.frees);
    return true;
  }

  /// Growth's primitive: links magazines [first, last] (fresh, empty, owned by nobody
  /// yet) and pushes the chain onto the EMPTY stack with one CAS, so that a death
  /// leaves either all of them published or none.
  void donate(std::uint32_t first, std::uint32_t last) SLAB_STEP_NOEXCEPT {
    for (std::uint32_t m = first; m < last; ++m)
      r_.mag(m).next.store(m + 1, relaxed);
    push_chain(cell_id::empty, first, last);
    clear_intent();
  }

  /// Reclaim's primitive: puts a slot that is already free (even generation, in no
  /// list) into this context's cache. The caller guarantees that idx exists.
  void adopt(std::uint32_t idx, std::uint32_t from_magazine) SLAB_STEP_NOEXCEPT {
    if (loaded_->count.load(relaxed) == magazine_slots && !make_room()) {
      bump(rec_.counters.anomalies);
      return;
    }
    const std::uint32_t c = loaded_->count.load(relaxed);
    set_intent(intent_op::adopt, idx, from_magazine);
    loaded_->slots[c].store(idx, relaxed);
    fault::point("adopt.count");
    loaded_->count.store(c + 1, relaxed);
    fault::point("adopt.source");
    magazine& src = r_.mag(from_magazine);
    src.count.store(src.count.load(relaxed) - 1, relaxed);
    clear_intent();
  }

  /// Reclaim's other primitive: hands magazine m, recorded in `field` of another
  /// (dead) context's record, to the depot: FULL when it holds K slots, EMPTY when none.
  /// This context's push intent stays set until the field is cleared, so a reclaimer
  /// that dies in between leaves a won push naming m, which reclaim honours over the
  /// stale field.
  /// Returns false for a partial magazine (empty it with adopt first).
  bool give_magazine(std::uint32_t m, std::atomic<std::uint32_t>& field) SLAB_STEP_NOEXCEPT {
    const std::uint32_t c = r_.mag(m).count.load(relaxed);
    if (c != 0 && c != magazine_slots) return false;
    r_.mag(m).owner.store(stamp_of(me_), relaxed); // this context's now (reclaim.hpp: owned)
    fault::point("give.stamped");
    push(c == 0 ? cell_id::empty : cell_id::full, m);
    field.store(no_magazine, relaxed);
    fault::point("give.clear");
    clear_intent();
    return true;
  }

  /// Re-reads the record's magazines (after reclaim rewrote them).
  void reload() noexcept {
    const std::uint32_t a = rec_.active.load(relaxed) & 1U;
    const std::uint32_t l = rec_.mag[a].load(relaxed);
    const std::uint32_t p = rec_.mag[a ^ 1U].load(relaxed);
    loaded_ = (l != no_magazine && r_.has_magazine(l)) ? &r_.mag(l) : nullptr;
    prev_ = (p != no_magazine && r_.has_magazine(p)) ? &r_.mag(p) : nullptr;
  }

private:
  static void bump(std::atomic<std::uint64_t>& c) noexcept {
#ifndef SLAB_BENCH_NO_COUNTERS
    c.store(c.load(relaxed) + 1, relaxed); // owner-only counter: a plain add
#else
    (void)c; // bench/counters_cost's comparison build only: what the counters cost
#endif
  }
  // The top slot of the loaded magazine, refilling as needed, made whatever `publish`
  // makes it (publish(header, index, generation) stores the header and returns the key);
  // then off the count. key{} when the pool has no free slot within its ready tiers.
  template <class P> [[gnu::always_inline]] key take(P&& publish) SLAB_STEP_NOEXCEPT {
    for (;;) {
      std::uint32_t c = loaded_->count.load(relaxed);
      if (c == 0) [[unlikely]] {
        if (!refill()) return key{};
        continue;
      }
      const std::uint32_t idx = loaded_->slots[c - 1].load(relaxed);
      if (!r_.has_slot(idx)) [[unlikely]] {
        // A published slot this process cannot map right now (shmd unreachable): keep
        // it cached and report no slot. Anything else is garbage: never hand it out.
        if (idx < r_.state().ready_slots.load(std::memory_order_acquire)) return key{};
        drop_top(c);
        continue;
      }
      shared_header& h = r_.header(idx);
      const std::uint32_t g = h.gen(relaxed); // we own it: the last writer published it to us
      if (gen_live(g)) [[unlikely]] {
        drop_top(c); // a live slot in a free list: refuse to hand it out twice
        continue;
      }
      const key k = publish(h, idx, g);
      fault::point("alloc.count");
      // Release (a plain store on x86): reclaim relies on the header store coming first.
      loaded_->count.store(c - 1, std::memory_order_release);
      bump(rec_.counters.allocs);
      return k;
    }
  }

  bool refuse() noexcept {
    bump(rec_.counters.stale);
    return false;
  }
  void drop_top(std::uint32_t c) noexcept {
    loaded_->count.store(c - 1, relaxed);
    bump(rec_.counters.anomalies);
  }

  void set_intent(intent_op op, std::uint32_t arg, std::uint64_t seq) noexcept {
    rec_.intent.arg.store(arg, relaxed);
    rec_.intent.seq.store(seq, relaxed);
    rec_.intent.op.store(static_cast<std::uint32_t>(op), std::memory_order_release);
  }
  void clear_intent() noexcept {
    rec_.intent.op.store(static_cast<std::uint32_t>(intent_op::none), std::memory_order_release);
  }

  void swap_magazines() noexcept {
    rec_.active.store(rec_.active.load(relaxed) ^ 1U, relaxed);
    std::swap(loaded_, prev_);
  }
  std::uint32_t loaded_id() const noexcept {
    return rec_.mag[rec_.active.load(relaxed) & 1U].load(relaxed);
  }
  // After a push of the loaded magazine: the spare becomes the loaded one.
  void replace_loaded_with_spare() SLAB_STEP_NOEXCEPT {
    const std::uint32_t s = rec_.spare.load(relaxed);
    rec_.mag[rec_.active.load(relaxed) & 1U].store(s, relaxed);
    fault::point("exchange.spare");
    rec_.spare.store(no_magazine, std::memory_order_release); // after the copy (reclaim)
    loaded_ = &r_.mag(s);
  }

  // The loaded magazine is empty: swap with a non-empty previous one, else exchange the
  // empty one for a full one from the depot, else fill it from fresh space.
  bool refill() SLAB_STEP_NOEXCEPT {
    if (prev_->count.load(relaxed) != 0) {
      swap_magazines();
      return true;
    }
    if (pop(cell_id::full) != no_magazine) {
      push(cell_id::empty, loaded_id());
      replace_loaded_with_spare();
      clear_intent();
      bump(rec_.counters.depot_gets);
      return true;
    }
    return carve();
  }

  // The loaded magazine is full: swap with a non-full previous one, else exchange a full
  // one for an empty one from the depot.
  bool make_room() SLAB_STEP_NOEXCEPT {
    if (prev_->count.load(relaxed) != magazine_slots) {
      swap_magazines();
      return true;
    }
    if (pop(cell_id::empty) == no_magazine) return false; // the magazine budget forbids it
    push(cell_id::full, loaded_id());
    replace_loaded_with_spare();
    clear_intent();
    bump(rec_.counters.depot_puts);
    return true;
  }

  // Step 1 of every wide_cell transition: tell the previous winner it won.
  void notify(cell_id c, const cell_value& seen) noexcept {
    if (seen.winner < r_.context_count()) {
      fetch_max(r_.context(seen.winner).won[static_cast<std::uint32_t>(c)], seen.seq);
    }
  }

  // Pops a magazine from a depot stack into rec_.spare (which must be empty).
  // Leaves the intent set; the caller clears it once the magazine is recorded.
  std::uint32_t pop(cell_id c) SLAB_STEP_NOEXCEPT {
    wide_cell& cell = r_.state().cell(c);
    const intent_op op = c == cell_id::full ? intent_op::pop_full : intent_op::pop_empty;
    cell_value seen = cell.load();
    for (;;) {
      if (seen.value == no_magazine) return no_magazine;
      if (!r_.has_magazine(seen.value)) return no_magazine; // corrupt head: the audit reports it
      notify(c, seen);
      set_intent(op, seen.value, seen.seq);
      const std::uint32_t next = r_.mag(seen.value).next.load(relaxed);
      fault::point("pop.cas");
      const std::uint32_t m = seen.value;
      if (cell.cas(seen, {next, me_, seen.seq + 1})) {
        fault::point("pop.record");
        r_.mag(m).owner.store(stamp_of(me_), relaxed);
        fault::point("pop.stamped");
        rec_.spare.store(m, relaxed);
        fault::point("pop.recorded");
        return m;
      }
    }
  }

  // Pushes magazine m (held in this record) onto a depot stack. Leaves the intent set.
  void push(cell_id c, std::uint32_t m) SLAB_STEP_NOEXCEPT { push_chain(c, m, m); }

  // Pushes the chain first -> ... -> last (already linked) with one CAS.
  void push_chain(cell_id c, std::uint32_t first, std::uint32_t last) SLAB_STEP_NOEXCEPT {
    wide_cell& cell = r_.state().cell(c);
    const intent_op op = c == cell_id::full ? intent_op::push_full : intent_op::push_empty;
    magazine& tail = r_.mag(last);
    std::uint32_t stamp = r_.mag(first).owner.load(relaxed); // a single push's: its holder's
    cell_value seen = cell.load();
    for (;;) {
      notify(c, seen);
      set_intent(op, first, seen.seq);
      tail.next.store(seen.value, relaxed);
      fault::point("push.cas");
      if (cell.cas(seen, {first, me_, seen.seq + 1})) {
        fault::point("push.done");
        // In the depot now: clear the stamp, unless a popper already put its own there.
        r_.mag(first).owner.compare_exchange_strong(stamp, no_owner, relaxed);
        return;
      }
    }
  }

  // Fills the (empty) loaded magazine with K never-used slots from the fresh cursor.
  bool carve() SLAB_STEP_NOEXCEPT {
    pool_state& st = r_.state();
    wide_cell& cell = st.cell(cell_id::fresh);
    const std::uint64_t limit = st.ready_slots.load(std::memory_order_acquire);
    cell_value seen = cell.load();
    for (;;) {
      const std::uint64_t start = seen.value;
      if (start + magazine_slots > limit) return false;
      notify(cell_id::fresh, seen);
      set_intent(intent_op::carve, seen.value, seen.seq);
      fault::point("carve.cas");
      const auto end = static_cast<std::uint32_t>(start + magazine_slots);
      if (cell.cas(seen, {end, me_, seen.seq + 1})) break;
    }
    prefetch_headers(seen.value, limit);
    fault::point("carve.fill");
    for (std::uint32_t i = 0; i < magazine_slots; ++i) {
      loaded_->slots[i].store(static_cast<std::uint32_t>(seen.value + i), relaxed);
    }
    fault::point("carve.count");
    loaded_->count.store(magazine_slots, std::memory_order_release);
    clear_intent();
    bump(rec_.counters.carves);
    return true;
  }

  // Fresh slots' headers are cold lines (DRAM), and every alloc reads its slot's. Asks
  // for the carved range's lines and the next range's (this context's likely next carve,
  // when it is growing), so those misses overlap here instead of stalling allocs one by
  // one. A hint only: a prefetch never faults, even past what this process has mapped.
  void prefetch_headers(std::uint64_t first, std::uint64_t limit) noexcept {
    constexpr std::uint64_t per_line = 64 / sizeof(shared_header);
    const std::uint64_t end = std::min(first + 2 * magazine_slots, limit);
    for (std::uint64_t i = first; i < end; i += per_line)
      __builtin_prefetch(&r_.header(static_cast<std::uint32_t>(i)), 1);
  }

  R& r_;
  context_record& rec_;
  std::uint32_t me_;
  magazine* loaded_ = nullptr;
  magazine* prev_ = nullptr;
};

} // namespace slab::core
