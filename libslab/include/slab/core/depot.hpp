// depot<R>: one context's steps on the pool's shared cells (shared_layout.hpp): pop and
// push of whole magazines on the FULL and EMPTY stacks, and the carve of K never-used
// slots from the fresh cursor. Each step is one wide_cell transition (wide_cell.hpp)
// under an intent (intent.hpp), so that reclaim can decide whether a dead context's CAS
// happened.
//
// Invariant: every magazine id is in exactly one of the FULL stack (count == K), the
// EMPTY stack (count == 0), or one context's record (mag[0], mag[1], spare); a
// magazine's owner stamp names the context holding it, and no_owner in the depot, but
// for the windows below, which reclaim knows (ownership.hpp).
//
// Each step's stores in order, with the kill points between them and what a death there
// leaves (fault.hpp names the points; the torture tests kill at every one):
//
//   pop    intent {pop, top, seq} | pop.cas | CAS | pop.record | stamp := me |
//          pop.stamped | spare := m | pop.recorded
//            before the CAS nothing moved; after it the record's won pop names m, which
//            reclaim puts into spare if it is not there yet, whatever the stamp says.
//   push   intent {push, m, seq} | m.next := top | push.cas | CAS | push.done |
//          stamp cleared (unless a popper has stamped it already)
//            after the CAS m is the depot's: reclaim drops it from the dead record.
//   carve  intent {carve, cursor, seq} | carve.cas | CAS | carve.fill | K slots |
//          carve.count | count := K (release) | intent cleared
//            after the CAS the K slots are this context's: reclaim writes them into the
//            loaded magazine if its count is still 0.
//
// Pop and push leave their intent set: the caller clears it once the magazine is where
// the record says it is, or replaces it with the next step's (intent_writer::replace).
#pragma once

#include <algorithm>
#include <cstdint>

#include <slab/core/check.hpp>
#include <slab/core/fault.hpp>
#include <slab/core/intent.hpp>
#include <slab/core/region.hpp>
#include <slab/core/shared_layout.hpp>
#include <slab/core/wide_cell.hpp>

namespace slab::core {

/// The slot a carve from `first` puts at position `pos` of the magazine. Allocs take
/// positions from the top down; this order makes consecutive allocs walk the carved
/// range's header lines in turn (slots first, first+8, first+16, ..., first+1, ...), so
/// that the line an alloc writes is not the one the previous slot's new holder is
/// reading or freeing in another process at that moment (8 headers share a line).
constexpr std::uint32_t carved_slot(std::uint32_t first, std::uint32_t pos) noexcept {
  constexpr std::uint32_t per_line = 64 / sizeof(shared_header);
  constexpr std::uint32_t lines = magazine_slots / per_line;
  static_assert(magazine_slots % per_line == 0, "a carve covers whole header lines");
  const std::uint32_t nth = magazine_slots - 1 - pos; // the nth alloc takes it
  return first + (nth % lines) * per_line + nth / lines;
}

template <region R> class depot {
public:
  depot(R& r, context_record& rec, std::uint32_t me) noexcept
      : r_(r), rec_(rec), me_(me), intent_(rec.intent) {}

  /// Pops a magazine from stack c into the record's spare (which must be empty) and
  /// stamps it this context's. no_magazine when the stack is empty, or when its head
  /// names no magazine (a corrupt head: the audit reports it).
  std::uint32_t pop(cell_id c) SLAB_STEP_NOEXCEPT {
    SLAB_ASSERT(rec_.spare.load(relaxed) == no_magazine, "pop into a spare that is taken");
    wide_cell& cell = r_.state().cell(c);
    const intent_op op = c == cell_id::full ? intent_op::pop_full : intent_op::pop_empty;
    cell_value seen = cell.load();
    for (;;) {
      if (seen.value == no_magazine || !r_.has_magazine(seen.value)) {
        intent_.abandon(); // a lost CAS may have recorded the pop: it never happened
        return no_magazine;
      }
      notify(c, seen);
      intent_.replace(op, seen.value, seen.seq);
      const std::uint32_t next = r_.mag(seen.value).next.load(relaxed); // checked by the CAS
      fault::point("pop.cas");
      const std::uint32_t m = seen.value;
      if (cell.cas(seen, {next, me_, seen.seq + 1})) {
        fault::point("pop.record");
        publish(r_.mag(m).owner, stamp_of(me_)); // after the CAS (rule 2)
        fault::point("pop.stamped");
        publish(rec_.spare, m); // after the stamp: a recorded magazine is stamped
        fault::point("pop.recorded");
        return m;
      }
    }
  }

  /// Pushes magazine m, which this context holds, onto stack c.
  void push(cell_id c, std::uint32_t m) SLAB_STEP_NOEXCEPT { push_chain(c, m, m); }

  /// Pushes the chain first -> ... -> last (linked through next, held by nobody else)
  /// with one CAS: a death leaves all of it published or none.
  void push_chain(cell_id c, std::uint32_t first, std::uint32_t last) SLAB_STEP_NOEXCEPT {
    wide_cell& cell = r_.state().cell(c);
    const intent_op op = c == cell_id::full ? intent_op::push_full : intent_op::push_empty;
    magazine& tail = r_.mag(last);
    std::uint32_t stamp = r_.mag(first).owner.load(relaxed); // a single push's: its holder's
    cell_value seen = cell.load();
    for (;;) {
      notify(c, seen);
      intent_.replace(op, first, seen.seq);
      tail.next.store(seen.value, relaxed); // before the CAS, which publishes it (rule 2)
      fault::point("push.cas");
      if (cell.cas(seen, {first, me_, seen.seq + 1})) {
        fault::point("push.done");
        // In the depot now: clear the stamp, unless a popper already put its own there.
        r_.mag(first).owner.compare_exchange_strong(stamp, no_owner, relaxed);
        return;
      }
    }
  }

  /// Fills `into`, this context's empty loaded magazine, with K never-used slots from the
  /// fresh cursor, and clears the intent. False when the ready tiers have fewer than K
  /// fresh slots left (the daemon has not published the next tier yet).
  bool carve(magazine& into) SLAB_STEP_NOEXCEPT {
    SLAB_ASSERT(into.count.load(relaxed) == 0, "carve into a magazine that is not empty");
    pool_state& st = r_.state();
    wide_cell& cell = st.cell(cell_id::fresh);
    const std::uint64_t limit = st.ready_slots.load(std::memory_order_acquire);
    cell_value seen = cell.load();
    for (;;) {
      const std::uint64_t start = seen.value;
      if (start + magazine_slots > limit) {
        intent_.abandon(); // a lost CAS may have recorded the carve: it never happened
        return false;
      }
      notify(cell_id::fresh, seen);
      intent_.replace(intent_op::carve, seen.value, seen.seq);
      fault::point("carve.cas");
      const auto end = static_cast<std::uint32_t>(start + magazine_slots);
      if (cell.cas(seen, {end, me_, seen.seq + 1})) break;
    }
    prefetch_headers(seen.value, limit);
    fault::point("carve.fill");
    for (std::uint32_t i = 0; i < magazine_slots; ++i) // below the count
      into.slots[i].store(carved_slot(static_cast<std::uint32_t>(seen.value), i), relaxed);
    fault::point("carve.count");
    publish(into.count, magazine_slots); // after the slots it covers
    intent_.clear();
    return true;
  }

  intent_writer& intent() noexcept { return intent_; }

private:
  // Step 1 of every wide_cell transition: tell the previous winner it won.
  void notify(cell_id c, const cell_value& seen) noexcept {
    if (seen.winner < r_.context_count()) {
      fetch_max(r_.context(seen.winner).won[static_cast<std::uint32_t>(c)], seen.seq);
    }
  }

  // Fresh slots' headers are cold lines (DRAM), and every alloc reads its slot's. Asks
  // for the carved range's lines and the next range's (this context's likely next carve,
  // when it is growing), so those misses overlap here instead of stalling allocs one by
  // one. A hint only: a prefetch never faults, even past what this process has mapped.
  void prefetch_headers(std::uint64_t first, std::uint64_t limit) noexcept {
    constexpr std::uint64_t per_line = 64 / sizeof(shared_header);
    const std::uint64_t end = std::min(first + 2 * std::uint64_t{magazine_slots}, limit);
    for (std::uint64_t i = first; i < end; i += per_line)
      __builtin_prefetch(&r_.header(static_cast<std::uint32_t>(i)), 1);
  }

  R& r_;
  context_record& rec_;
  std::uint32_t me_;
  intent_writer intent_;
};

} // namespace slab::core
