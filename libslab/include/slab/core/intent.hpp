// intent: what a context was about to do when it last touched shared state, and the
// crash-order contract that every shared step keeps so that reclaim can finish or undo
// it from the dead context's record.
//
// The crash-order contract
// ------------------------
// A context may be killed between any two instructions. What it leaves in shared memory
// must then be a prefix of its stores in program order, or reclaim cannot read the
// state back. The hardware keeps that order (x86-64 drains a dead process's store buffer
// in order); the language keeps it only where it is told to:
//
//  1. A store that reclaim takes as evidence that earlier stores happened is a release
//     store (`publish` below), and reclaim reads it with acquire (`observe`). Whenever
//     reclaim sees it, it then sees every store the context made before it. Examples: a
//     magazine's count after the slot written below it; an intent's op after its
//     arguments; a claimed header after its claim entry; the spare after the stamp.
//  2. A read-modify-write (a wide cell's cmpxchg16b, a slot header's CAS, both
//     sequentially consistent or acq_rel) is ordered both ways: stores before it are
//     visible first, stores after it become visible only after it.
//  3. Stores with neither between them may reach memory in either order. Every step
//     whose reclaim depends on the order of two stores has a release between them, with
//     the reason beside it; relaxed stores are left only where either order is settled
//     alike (the owner-only counters, a slot written below a count that publishes it).
//  A death at any point therefore leaves the stores before some kill point
//  (fault.hpp) and none after it: the torture tests kill at each of them.
//
// On x86-64 a release store is a plain mov and an acquire load a plain load: the
// contract costs nothing at run time, it only forbids the compiler to reorder.
//
// The intent record
// -----------------
// Before its one shared step that another context can observe half done (a CAS on a
// wide cell or a slot header, or reclaim moving a slot), a context writes the step into
// its record's intent {op, arg, seq}; after the step's last store it clears it. A
// context does one step at a time, so one intent says exactly what may be half done:
//
//   op          arg                          seq
//   pop_full    the top magazine observed    the cell's seq observed
//   pop_empty   the same                     the same
//   push_full   the magazine being pushed    the cell's seq observed
//   push_empty  the same                     the same
//   carve       the fresh cursor observed    the cell's seq observed
//   free        the slot index               the generation the key carries
//   adopt       the slot moved in (reclaim)  the magazine it comes from
//
// Writers: the owner only. Readers: reclaim (for a dead owner), and reclaim's
// ownership checks for live contexts (won_step_of), which read op, arg, seq and op again.
#pragma once

#include <atomic>
#include <cstdint>
#include <type_traits>

#include <slab/core/check.hpp>

namespace slab::core {

inline constexpr auto relaxed = std::memory_order_relaxed;

/// Rule 1's store: everything this context stored before is visible whenever this is.
template <class T> void publish(std::atomic<T>& a, std::type_identity_t<T> v) noexcept {
  a.store(v, std::memory_order_release);
}
/// Rule 1's load, for reclaim and the other readers of a record or magazine that
/// another context wrote.
template <class T> T observe(const std::atomic<T>& a) noexcept {
  return a.load(std::memory_order_acquire);
}

enum class intent_op : std::uint32_t {
  none = 0,
  pop_full,
  pop_empty,
  push_full,
  push_empty,
  carve,
  free,
  adopt,
};

struct intent_record {
  std::atomic<std::uint32_t> op{0}; ///< intent_op; written last (release)
  std::atomic<std::uint32_t> arg{0};
  std::atomic<std::uint64_t> seq{0};
};

/// The owner's writer of its intent record.
class intent_writer {
public:
  explicit intent_writer(intent_record& r) noexcept : r_(r) {}

  /// Records the step about to happen. Used when no step is under way (op is none): the
  /// hot path of free.
  void begin(intent_op op, std::uint32_t arg, std::uint64_t seq) noexcept {
    SLAB_ASSERT(idle(), "a shared step begins while another is under way (two threads on "
                        "one context?)");
    write(op, arg, seq);
  }
  /// Records the next step when the previous one may still be recorded (a CAS to retry,
  /// a pop recorded and a push to follow): the record says "none" first, which is true
  /// between two steps, so that a death half way through these stores never leaves the
  /// new op beside the old arguments.
  void replace(intent_op op, std::uint32_t arg, std::uint64_t seq) noexcept {
    if (r_.op.load(relaxed) != static_cast<std::uint32_t>(intent_op::none)) {
      r_.op.store(static_cast<std::uint32_t>(intent_op::none), relaxed); // before arg (its release)
    }
    write(op, arg, seq);
  }
  /// After the step's last store: nothing is under way.
  void clear() noexcept { publish(r_.op, static_cast<std::uint32_t>(intent_op::none)); }
  /// A step given up before its CAS won (a retry found nothing left to take): nothing is
  /// under way, whatever the lost attempt recorded. Stores only when something was.
  void abandon() noexcept {
    if (!idle()) clear();
  }

  [[nodiscard]] bool idle() const noexcept {
    return r_.op.load(relaxed) == static_cast<std::uint32_t>(intent_op::none);
  }
  [[nodiscard]] intent_op op() const noexcept {
    return static_cast<intent_op>(r_.op.load(relaxed));
  }

private:
  void write(intent_op op, std::uint32_t arg, std::uint64_t seq) noexcept {
    publish(r_.arg, arg);       // after whatever this context stored before (rule 1)
    r_.seq.store(seq, relaxed); // before op: op's release orders it
    publish(r_.op, static_cast<std::uint32_t>(op)); // last: a reader that sees op sees arg, seq
  }
  intent_record& r_;
};

} // namespace slab::core
