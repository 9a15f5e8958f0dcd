// handover<R>: the steps a context takes for the pool rather than for its own program,
// through its own cache and under its own intent. Growth hands a new tier's magazines
// to the depot (donate); reclaim moves a dead context's slots into the acting context's
// cache (adopt) and its whole magazines to the depot (give_magazine). The acting
// context (shmd's own, or a test's) may itself die midway: each step is recoverable
// like any other, from the actor's record.
//
//   donate  m.next links | push_chain (one CAS: all of them or none) | intent cleared
//   adopt   intent {adopt, idx, from} | slot | adopt.count | count := c+1 (release) |
//           adopt.source | source count := n-1 (release) | intent cleared
//             reclaim of the actor finds idx on top of its loaded magazine and, if the
//             source's top is still idx, finishes the move (resolve.hpp, finish_adopt).
//   give    stamp := actor (release) | give.stamped | push | field := none (release) |
//           give.clear | intent cleared
//             a death after the stamp and before the push leaves the magazine stamped by
//             an actor that does not hold it: ownership.hpp's reclaimer_left_it.
#pragma once

#include <atomic>
#include <cstdint>

#include <slab/core/cache.hpp>
#include <slab/core/check.hpp>
#include <slab/core/fault.hpp>
#include <slab/core/intent.hpp>
#include <slab/core/region.hpp>
#include <slab/core/shared_layout.hpp>

namespace slab::core {

template <region R> class handover {
public:
  /// Steps taken by the context whose cache `by` is.
  explicit handover(cache<R>& by) noexcept : by_(by) {}

  /// Growth's primitive: links magazines [first, last] (fresh, empty, owned by nobody
  /// yet) and pushes the chain onto the EMPTY stack with one CAS, so that a death
  /// leaves either all of them published or none.
  void donate(std::uint32_t first, std::uint32_t last) SLAB_STEP_NOEXCEPT {
    SLAB_ASSERT(first <= last && by_.depot_.intent().idle(), "donate out of order");
    for (std::uint32_t m = first; m < last; ++m)
      by_.r_.mag(m).next.store(m + 1, relaxed); // published by the push's CAS (rule 2)
    by_.depot_.push_chain(cell_id::empty, first, last);
    by_.depot_.intent().clear();
  }

  /// Reclaim's primitive: puts a slot that is already free (even generation, in no list
  /// but magazine `from_magazine` of a dead context) into the actor's cache, taking it
  /// off that magazine. The caller guarantees that idx exists.
  void adopt(std::uint32_t idx, std::uint32_t from_magazine) SLAB_STEP_NOEXCEPT {
    if (!by_.room_for_one()) return;
    magazine& into = *by_.loaded_;
    const std::uint32_t c = into.count.load(relaxed);
    by_.depot_.intent().begin(intent_op::adopt, idx, from_magazine);
    into.slots[c].store(idx, relaxed); // below the count that publishes it
    fault::point("adopt.count");
    publish(into.count, c + 1); // after the slot: reclaim checks the top entry
    fault::point("adopt.source");
    magazine& src = by_.r_.mag(from_magazine);
    publish(src.count, src.count.load(relaxed) - 1); // after ours: never in neither
    by_.depot_.intent().clear();
  }

  /// Reclaim's other primitive: hands magazine m, recorded in `field` of another (dead)
  /// context's record, to the depot: FULL when it holds K slots, EMPTY when none. The
  /// actor's push intent stays set until the field is cleared, so an actor that dies in
  /// between leaves a won push naming m, which reclaim honours over the stale field.
  /// False for a partial magazine (empty it with adopt first).
  bool give_magazine(std::uint32_t m, std::atomic<std::uint32_t>& field) SLAB_STEP_NOEXCEPT {
    const std::uint32_t c = by_.r_.mag(m).count.load(relaxed);
    if (c != 0 && c != magazine_slots) return false;
    publish(by_.r_.mag(m).owner, stamp_of(by_.me_)); // the actor's now (ownership.hpp)
    fault::point("give.stamped");
    by_.depot_.push(c == 0 ? cell_id::empty : cell_id::full, m);
    publish(field, no_magazine); // after the push's CAS: the record lets go last
    fault::point("give.clear");
    by_.depot_.intent().clear();
    return true;
  }

private:
  cache<R>& by_;
};

} // namespace slab::core
