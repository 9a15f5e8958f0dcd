// cache<R>: one context's allocator over a shared region: Bonwick's loaded and previous
// magazines, refilled from and spilled to the depot (depot.hpp) a whole magazine at a
// time, and the slot header steps of alloc, free and two-phase claim.
//
// Invariant: every slot index below the fresh cursor is exactly one of
//   - live: its generation is odd;
//   - claimed: its header names a context with claimed_flag, and a claim entry of that
//     context's record holds the key it will have;
//   - free once: in exactly one position [0, count) of one magazine held by one context
//     or sitting in the FULL stack;
// and every slot at or past the cursor has never been used (generation 0).
//
// Each step's stores in order, with their kill points (fault.hpp) and what a death there
// leaves for reclaim (reclaim.hpp):
//
//   alloc   header := {g+1, me} (release) | alloc.count | count := c-1 (release)
//             before the count moved, the slot is still in the magazine: reclaim sees
//             a live header at the top, made by this context, and frees it (its key
//             never reached the program).
//   free    intent {free, idx, g} | free.cas | header CAS {g,*} -> {g+1, me} |
//           free.store | slot | free.count | count := c+1 (release) | free.clear |
//           intent cleared
//             after the CAS the slot is this context's, free: reclaim puts it into the
//             loaded magazine unless it is there already.
//   claim   claims[e] := key | claim.recorded | header := {g, me|claimed} (release) |
//           alloc.count | count := c-1
//             the claim entry names the slot before the slot leaves the magazine.
//
// Hot path (cache hit), alloc: one load of count, one of the index, one of the slot
// header, a release store of the new generation, a store of count, and a prefetch of the
// next slot's header (prefetch_header). No read-modify-write, no fence. Free: the intent, a
// compare-and-swap of the slot's header (the cross-process double-free guard DESIGN.md asks for),
// two stores into the cache.
//
// A context is used by one thread at a time. Its own state is checked by SLAB_ASSERT in
// debug builds (check.hpp); what others may have written is refused and counted.
#pragma once

#include <cstdint>
#include <utility>

#include <slab/core/check.hpp>
#include <slab/core/depot.hpp>
#include <slab/core/fault.hpp>
#include <slab/core/intent.hpp>
#include <slab/core/region.hpp>
#include <slab/core/shared_layout.hpp>
#include <slab/core/slot_header.hpp>
#include <slab/key.hpp>

namespace slab::core {

template <region R> class handover;

template <region R> class cache {
public:
  /// Binds to context record `ctx` (already marked active by whoever registered it) and
  /// takes its two magazines from the EMPTY stack if it has none yet. Check ready().
  cache(R& r, std::uint32_t ctx) SLAB_STEP_NOEXCEPT : r_(r),
                                                      rec_(r.context(ctx)),
                                                      me_(ctx),
                                                      depot_(r, rec_, ctx) {
    SLAB_ASSERT(ctx < r.context_count(), "context id past the pool's records");
    for (std::uint32_t i = 0; i < 2; ++i) {
      if (rec_.mag[i].load(relaxed) != no_magazine) continue;
      const std::uint32_t m = depot_.pop(cell_id::empty);
      if (m == no_magazine) return;
      publish(rec_.mag[i], m);          // held in mag[i] before the spare lets go of it
      publish(rec_.spare, no_magazine); // (reclaim dedupes a magazine in both fields)
      depot_.intent().clear();
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
      e.store(k.raw(), relaxed); // before the header: its release store orders it
      fault::point("claim.recorded");
      h.store({g, me_ | claimed_flag}, std::memory_order_release);
      return k;
    });
  }
  /// Step 2, written: the value is in place (the caller constructed it); the slot goes
  /// live under the claim's key, published with release like alloc's.
  void commit_claim(std::uint32_t entry, key k) SLAB_STEP_NOEXCEPT {
    SLAB_ASSERT(entry < claim_slots && rec_.claims[entry].load(relaxed) == k.raw(),
                "commit of a claim this context does not hold");
    r_.header(k.index()).store({k.generation(), me_}, std::memory_order_release);
    fault::point("claim.committed");
    publish(rec_.claims[entry], std::uint64_t{0}); // after the header: live before unclaimed
  }
  /// Step 2, abandoned: the slot goes back to the cache, unwritten; its generation moves
  /// two on, so the key the claim announced never becomes valid.
  void abandon_claim(std::uint32_t entry, key k) SLAB_STEP_NOEXCEPT {
    SLAB_ASSERT(entry < claim_slots && rec_.claims[entry].load(relaxed) == k.raw(),
                "abandon of a claim this context does not hold");
    // Kept recorded if the slot could not go back (no room in the cache): reclaim will.
    if (!return_claimed(k.index(), k.generation() - 1, me_)) return;
    fault::point("claim.freed");
    publish(rec_.claims[entry], std::uint64_t{0}); // after the slot is back in the cache
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
    if (h.load(std::memory_order_acquire) != seen || !room_for_one()) return false;
    // Settled as done by reclaim when the header reads {g + 2, me}.
    return free_won(idx, seen, {g + 2, me_}, g + 1, [] {});
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
    // The CAS below needs the line exclusive. Asked for so now, the load waits for that
    // one transfer; loaded first, a line another process wrote comes shared and the CAS
    // pays a second transfer to upgrade it.
    prefetch_header(idx);
    shared_header::value seen = r_.header(idx).load(std::memory_order_acquire);
    if (seen.gen != g) return refuse();
    if (!room_for_one()) return false;
    return free_won(idx, seen, {g + 1, me_}, g, std::forward<F>(on_claimed)) || refuse();
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
  friend class handover<R>;

  static void bump(std::atomic<std::uint64_t>& c) noexcept {
#ifndef SLAB_BENCH_NO_COUNTERS
    c.store(c.load(relaxed) + 1, relaxed); // owner-only counter: a plain add, no order needed
#else
    (void)c; // bench/counters_cost's comparison build only: what the counters cost
#endif
  }

  // The top slot of the loaded magazine, refilling as needed, made whatever `publish`
  // makes it (publish(header, index, generation) stores the header and returns the key);
  // then off the count. key{} when the pool has no free slot within its ready tiers.
  template <class P> [[gnu::always_inline]] key take(P&& publish_slot) SLAB_STEP_NOEXCEPT {
    assert_between_steps();
    for (;;) {
      const std::uint32_t c = loaded_->count.load(relaxed);
      SLAB_ASSERT(c <= magazine_slots, "own loaded magazine holds more than K");
      if (c == 0) [[unlikely]] {
        if (!refill()) return key{};
        prefetch_entries(*loaded_);
        SLAB_ASSERT(agrees_with_record(), "cache and record disagree after a refill");
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
      if (c >= 2) prefetch_header(loaded_->slots[c - 2].load(relaxed));
      shared_header& h = r_.header(idx);
      const std::uint32_t g = h.gen(relaxed); // we own it: the last writer published it to us
      if (gen_live(g)) [[unlikely]] {
        drop_top(c); // a live slot in a free list: refuse to hand it out twice
        continue;
      }
      const key k = publish_slot(h, idx, g);
      fault::point("alloc.count");
      publish(loaded_->count, c - 1); // after the header (reclaim undoes a half alloc)
      bump(rec_.counters.allocs);
      return k;
    }
  }

  // Room for one more slot in the loaded magazine; false (counted as an anomaly) when
  // the depot has no empty magazine to exchange a full one for, which the magazine
  // budget forbids unless someone took more than their share.
  bool room_for_one() SLAB_STEP_NOEXCEPT {
    assert_between_steps();
    if (loaded_->count.load(relaxed) == magazine_slots) [[unlikely]] {
      if (!make_room()) {
        bump(rec_.counters.anomalies);
        return false;
      }
      prefetch_entries(*loaded_);
    }
    SLAB_ASSERT(agrees_with_record(), "cache and record disagree after making room");
    return true;
  }

  // An operation starts between two shared steps: none is recorded as under way. One
  // that is means a step was cut short in this process (a throw out of a step), or two
  // threads use this context at once.
  void assert_between_steps() noexcept {
    SLAB_ASSERT(depot_.intent().idle(),
                "a shared step begins while another is under way (two threads on one context?)");
  }

  // Between steps, the record names exactly what this cache holds: the loaded and
  // previous magazines by `active`, no spare, no intent, counts within K. (Debug
  // builds check it after every exchange with the depot.)
  bool agrees_with_record() noexcept {
    const std::uint32_t a = rec_.active.load(relaxed);
    const std::uint32_t l = rec_.mag[a & 1U].load(relaxed), p = rec_.mag[a ^ 1U].load(relaxed);
    return a <= 1 && l != no_magazine && p != no_magazine && &r_.mag(l) == loaded_ &&
           &r_.mag(p) == prev_ && rec_.spare.load(relaxed) == no_magazine &&
           depot_.intent().idle() && loaded_->count.load(relaxed) <= magazine_slots &&
           prev_->count.load(relaxed) <= magazine_slots;
  }

  // Frees slot idx into the loaded magazine (which has room), if the header CAS from
  // `seen` to `to` wins. `intent_gen` is the generation the free intent names (reclaim
  // settles the free as done when the header reads `to`). False, nothing done, when the
  // CAS loses.
  template <class F>
  bool free_won(std::uint32_t idx, shared_header::value seen, shared_header::value to,
                std::uint32_t intent_gen, F&& on_claimed) SLAB_STEP_NOEXCEPT {
    const std::uint32_t c = loaded_->count.load(relaxed);
    SLAB_ASSERT(c < magazine_slots, "no room in the loaded magazine after make_room");
    depot_.intent().begin(intent_op::free, idx, intent_gen);
    fault::point("free.cas");
    if (!r_.header(idx).cas(seen, to)) {
      depot_.intent().clear();
      return false;
    }
    on_claimed();
    fault::point("free.store");
    loaded_->slots[c].store(idx, relaxed); // below the count that publishes it
    fault::point("free.count");
    publish(loaded_->count, c + 1); // after the slot (reclaim reads the top entry)
    fault::point("free.clear");
    depot_.intent().clear();
    bump(rec_.counters.frees);
    return true;
  }

  // The next alloc's slot header, asked for now with intent to write. A slot freed by
  // another process comes back with its header line modified in that process's cache:
  // reading it is a cross-core miss (50-300 cycles on a 2-vCPU VM, by where the host
  // puts the vCPUs), paid by the next alloc unless the line is on its way already. With
  // carved_slot's order, the previous slot's new holder is not on that line meanwhile.
  // A hint only: a prefetch never faults, whatever index a magazine holds.
  void prefetch_header(std::uint32_t idx) noexcept { __builtin_prefetch(&r_.header(idx), 1); }
  // A magazine from the depot was filled, or drained, in another process: its lines are
  // that process's. Asked for all at once, with intent to write (nobody else touches a
  // held magazine), so that allocs and frees do not stall on them one line at a time.
  static void prefetch_entries(const magazine& m) noexcept {
    constexpr std::uint32_t per_line = 64 / sizeof(m.slots[0]);
    __builtin_prefetch(&m.count, 1);
    for (std::uint32_t i = 0; i < magazine_slots; i += per_line)
      __builtin_prefetch(&m.slots[i], 1);
  }

  bool refuse() noexcept {
    bump(rec_.counters.stale);
    return false;
  }
  void drop_top(std::uint32_t c) noexcept {
    loaded_->count.store(c - 1, relaxed);
    bump(rec_.counters.anomalies);
  }

  void swap_magazines() noexcept {
    rec_.active.store(rec_.active.load(relaxed) ^ 1U, relaxed); // one store: no order to keep
    std::swap(loaded_, prev_);
  }
  std::uint32_t loaded_id() const noexcept {
    return rec_.mag[rec_.active.load(relaxed) & 1U].load(relaxed);
  }
  // After a push of the loaded magazine: the spare becomes the loaded one.
  void replace_loaded_with_spare() SLAB_STEP_NOEXCEPT {
    const std::uint32_t s = rec_.spare.load(relaxed);
    publish(rec_.mag[rec_.active.load(relaxed) & 1U], s);
    fault::point("exchange.spare");
    publish(rec_.spare, no_magazine); // after the copy (reclaim dedupes, never loses)
    loaded_ = &r_.mag(s);
    depot_.intent().clear();
  }

  // The loaded magazine is empty: swap with a non-empty previous one, else exchange the
  // empty one for a full one from the depot, else fill it from fresh space.
  bool refill() SLAB_STEP_NOEXCEPT {
    if (prev_->count.load(relaxed) != 0) {
      swap_magazines();
      return true;
    }
    if (depot_.pop(cell_id::full) != no_magazine) {
      depot_.push(cell_id::empty, loaded_id());
      replace_loaded_with_spare();
      bump(rec_.counters.depot_gets);
      return true;
    }
    if (!depot_.carve(*loaded_)) return false;
    bump(rec_.counters.carves);
    return true;
  }

  // The loaded magazine is full: swap with a non-full previous one, else exchange a full
  // one for an empty one from the depot.
  bool make_room() SLAB_STEP_NOEXCEPT {
    if (prev_->count.load(relaxed) != magazine_slots) {
      swap_magazines();
      return true;
    }
    if (depot_.pop(cell_id::empty) == no_magazine) return false; // the magazine budget forbids it
    depot_.push(cell_id::full, loaded_id());
    replace_loaded_with_spare();
    bump(rec_.counters.depot_puts);
    return true;
  }

  R& r_;
  context_record& rec_;
  std::uint32_t me_;
  magazine* loaded_ = nullptr;
  magazine* prev_ = nullptr;
  depot<R> depot_;
};

} // namespace slab::core
