// The structures a pool keeps in shared memory, independent of where they are mapped.
// Everything here is fixed-width, pointer-free and position-independent; ids and
// indices stand where a single-process design would hold pointers.
//
//   pool_state      one per pool: the depot (two magazine stacks) and the fresh cursor
//   context_record  one per attached context: its two magazines, its intent, its pending
//                   claims, counters
//   magazine        K free slot indices; a context's cache is two of them (Bonwick)
//   shared_header   one per slot (slot_header.hpp): generation and last-transition owner
//
// Who writes what:
//   magazine.count/slots   only the magazine's owner (a context, or nobody while it sits
//                          in the depot); published to the next owner by the depot CAS.
//   magazine.next          whoever pushes it, before the push CAS.
//   magazine.owner         the context that popped it, right after the pop CAS; cleared
//                          (by CAS, from the stamp it had) right after the push CAS.
//   context_record         its owner, except won[] (any context, fetch-max; wide_cell.hpp)
//                          and state (the daemon). Its intent: intent.hpp, which also
//                          states the order in which every shared step's stores land.
//   pool_state cells       any context, by wide_cell CAS only.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include <slab/core/intent.hpp>
#include <slab/core/wide_cell.hpp>

namespace slab::core {

/// Slots per magazine (K). Magazines move between a context and the depot as a whole,
/// so a context touches the depot once per K allocations or frees at most.
inline constexpr std::uint32_t magazine_slots = 256;
inline constexpr std::uint32_t no_magazine = 0xFFFFFFFFU;
inline constexpr std::uint32_t no_context = 0xFFFFFFFFU;

/// A magazine's owner stamp: the context that holds it, plus one; 0 while it sits in the
/// depot or has never been taken (fresh segments are zero-filled). Reclaim trusts a dead
/// context's record to name a magazine only when the magazine's stamp names that
/// context too (or the record's won pop explains why it does not yet), so a scribbled
/// record cannot make the daemon hand out a magazine another context holds, or one that
/// sits in the depot, a second time.
inline constexpr std::uint32_t stamp_of(std::uint32_t ctx) noexcept { return ctx + 1; }
inline constexpr std::uint32_t no_owner = 0;

// Line-aligned: a magazine's first line (count, and the bottom entries) is its holder's,
// written on every alloc and free. Packed at 1036 bytes, it shared a line with the
// previous magazine's top entries, which another process fills while this one drains:
// in the cross-process handoff, the last dozen allocs of every magazine and the frees
// beside them waited for that line (bench/pool_latency, handoff A's p99 63-80 cycles
// packed, 43 aligned; rte_mempool's 41).
struct alignas(64) magazine {
  std::atomic<std::uint32_t> next{no_magazine}; ///< link while in a depot stack
  std::atomic<std::uint32_t> count{0};          ///< valid entries in slots[0, count)
  std::atomic<std::uint32_t> owner{no_owner};   ///< stamp_of(holder), or no_owner
  std::atomic<std::uint32_t> slots[magazine_slots]{};
};
static_assert(sizeof(magazine) ==
              (std::size_t{12} + std::size_t{4} * magazine_slots + 63) / 64 * 64);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

/// The wide cells of a pool, by number (context_record::won is indexed by it).
enum class cell_id : std::uint32_t { full = 0, empty = 1, fresh = 2 };
inline constexpr std::size_t cell_count = 3;

/// One pool's shared state. The stacks hold magazine ids; `fresh` holds the first slot
/// index never handed out (it only grows, so its value alone never repeats).
struct alignas(64) pool_state {
  wide_cell cells[cell_count];                           ///< indexed by cell_id
  alignas(64) std::atomic<std::uint64_t> ready_slots{0}; ///< slots in tiers mapped and offered
  std::atomic<std::uint64_t> max_slots{0};               ///< the ceiling for growth
  std::atomic<std::uint32_t> contexts{0};                ///< context records in the table
  std::atomic<std::uint32_t> magazines{0};               ///< magazine ids handed out so far

  wide_cell& cell(cell_id c) noexcept { return cells[static_cast<std::uint32_t>(c)]; }
  const wide_cell& cell(cell_id c) const noexcept { return cells[static_cast<std::uint32_t>(c)]; }
};

enum class context_state : std::uint32_t {
  free = 0,    ///< record unused
  active,      ///< owned by a live context
  dead,        ///< owner died; the daemon is reclaiming it
  quarantined, ///< reclaim found it corrupt; left alone and reported
};

/// Who a record belongs to: a client's context, or a daemon's helper (a temporary
/// context shmd uses to reclaim its own record when it adopts a pool). A restarted
/// daemon reclaims a dead daemon's helpers and records in the order their reclaims
/// nest: a record left mid-reclaim (dead) after its reclaimer.
enum class context_role : std::uint32_t { client = 0, daemon_helper = 1 };

/// Per-context counters, written only by the owner with relaxed stores (a plain add on
/// a line the owner already holds), summed by readers.
struct context_counters {
  std::atomic<std::uint64_t> allocs{0};
  std::atomic<std::uint64_t> frees{0};
  std::atomic<std::uint64_t> depot_gets{0}; ///< full magazines taken from the depot
  std::atomic<std::uint64_t> depot_puts{0}; ///< full magazines given to the depot
  std::atomic<std::uint64_t> carves{0};     ///< magazines filled from fresh space
  std::atomic<std::uint64_t> stale{0};      ///< refused frees (stale key, double free)
  std::atomic<std::uint64_t> anomalies{0};  ///< corrupt entries met and refused
};
static_assert(sizeof(context_counters) <= 64);

/// Two-phase allocations a context may have pending at once (cache::claim).
inline constexpr std::uint32_t claim_slots = 4;

struct alignas(64) context_record {
  // Line 0: the owner's hot fields.
  std::atomic<std::uint32_t> mag[2]{{no_magazine}, {no_magazine}}; ///< the cache
  std::atomic<std::uint32_t> active{0};          ///< mag[active] is loaded, the other previous
  std::atomic<std::uint32_t> spare{no_magazine}; ///< a third magazine during an exchange
  intent_record intent;
  /// Claimed slots not yet written: the raw key each will have, 0 when unused. Written
  /// before the slot is published live, cleared once the value is written (or the slot
  /// freed), so that reclaim frees what a dead context claimed and never wrote.
  std::atomic<std::uint64_t> claims[claim_slots]{};
  // Line 1: the owner's counters.
  alignas(64) context_counters counters;
  // Line 2: written by others (notifications) and by the daemon.
  alignas(64) std::atomic<std::uint64_t> won[cell_count]{};
  std::atomic<std::uint32_t> state{0}; ///< context_state
  std::atomic<std::uint32_t> pid{0};
  std::atomic<std::uint64_t> incarnation{0}; ///< bumped each time the record is reused
  std::atomic<std::uint32_t> role{0};        ///< context_role, set by whoever attached it
};
static_assert(sizeof(context_record) == 192);
static_assert(offsetof(context_record, counters) == 64);
static_assert(offsetof(context_record, won) == 128);

} // namespace slab::core
