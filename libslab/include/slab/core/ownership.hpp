// ownership: who holds a magazine, decided from shared memory alone while every other
// context keeps running. Reclaim asks before it trusts a dead record's word that a
// magazine was the dead context's: a record scribbled over (or torn by its death) must
// never make the daemon hand out a magazine that another context or the depot holds.
//
// The evidence, strongest first:
//   - a magazine's owner stamp (shared_layout.hpp) names its holder;
//   - a context's won step (its intent, plus transition_won on the cell it names) says
//     that a pop or push happened even when the stamp or the record was not yet
//     rewritten;
//   - a stable walk of the depot stacks and of every record says nobody else has it.
// Read-only: nothing here writes shared memory.
#pragma once

#include <atomic>
#include <cstdint>

#include <slab/core/intent.hpp>
#include <slab/core/region.hpp>
#include <slab/core/shared_layout.hpp>
#include <slab/core/wide_cell.hpp>

namespace slab::core {

/// Did context `who`'s CAS on cell c, which observed seq s, happen? (wide_cell.hpp)
template <region R>
bool transition_won(R& r, std::uint32_t who, cell_id c, std::uint64_t s) noexcept {
  const cell_value now = r.state().cell(c).load();
  if (now.seq <= s) return false;
  if (now.seq == s + 1 && now.winner == who) return true;
  return observe(r.context(who).won[static_cast<std::uint32_t>(c)]) == s + 1;
}

template <region R> class ownership {
public:
  /// Questions about magazines a dead context's record names, asked by the context
  /// `actor` (the reclaimer, itself possibly a restarted daemon's record).
  ownership(R& r, std::uint32_t dead, std::uint32_t actor) noexcept
      : r_(r), dead_(dead), actor_(actor) {}

  /// Does record `rec` name m in one of its fields? Spare first: an exchange copies it
  /// into a mag field before clearing it, so m cannot slip past the reader.
  static bool holds(const context_record& rec, std::uint32_t m) noexcept {
    return observe(rec.spare) == m || observe(rec.mag[0]) == m || observe(rec.mag[1]) == m;
  }

  /// Is magazine m, named by the dead record, really the dead context's? Its stamp names
  /// the context, except in two windows a death can leave open:
  ///  - the record's own won pop of m (`won_pop`), before the stamp: the stamp is still
  ///    the depot's (none), or that of a pusher that died before clearing it;
  ///  - a reclaimer that stamped a dead context's magazine as its own (give_magazine)
  ///    and died before pushing it.
  /// Anything else is held by someone else, or sits in the depot.
  bool owned(std::uint32_t m, std::uint32_t won_pop) const noexcept {
    const std::uint32_t st = observe(r_.mag(m).owner);
    if (st == stamp_of(dead_)) return true;
    if (m == won_pop) return won_pop_is_ours(m, st);
    if (st == no_owner) return false;
    return reclaimer_left_it(m, st - 1);
  }

  /// m is in neither depot stack and no context but the dead one holds it, read while
  /// neither stack moved (a magazine changes hands between contexts only through the
  /// stacks). False when that cannot be shown (a depot that keeps moving, a corrupt
  /// link): then m is left alone, which at worst leaks it, never hands it out twice.
  bool nobody_else_has(std::uint32_t m) const noexcept {
    for (int attempt = 0; attempt < 64; ++attempt) {
      const cell_value f = r_.state().cell(cell_id::full).peek();
      const cell_value e = r_.state().cell(cell_id::empty).peek();
      bool ok = true;
      bool found = in_stack(f.value, m, ok) || in_stack(e.value, m, ok);
      if (!found && ok) found = held_elsewhere(m);
      if (r_.state().cell(cell_id::full).peek().seq == f.seq &&
          r_.state().cell(cell_id::empty).peek().seq == e.seq) {
        return ok && !found;
      }
    }
    return false;
  }

private:
  // A stamp naming context c, which does not hold m: a reclaimer that stamped a dead
  // context's magazine (give_magazine) and died before pushing it. Not a running
  // context (but the actor, a restarted daemon's record), and not one that pushed m
  // since.
  bool reclaimer_left_it(std::uint32_t m, std::uint32_t c) const noexcept {
    if (c >= r_.context_count()) return false;
    const context_record& o = r_.context(c);
    if (holds(o, m)) return false;
    const auto cs = static_cast<context_state>(observe(o.state));
    if (cs == context_state::active && c != actor_) return false;
    return !won_push_of(c, m);
  }
  // The record's won pop of m, cut short before its stamp: the stamp is still the
  // depot's (none), or that of a pusher that has not cleared it yet (its won push of m),
  // or a dead reclaimer's. A forged won pop would name a magazine someone else has: m
  // must be in no depot stack and held by nobody, as a stable walk shows.
  bool won_pop_is_ours(std::uint32_t m, std::uint32_t st) const noexcept {
    if (st != no_owner && !won_push_of(st - 1, m) && !reclaimer_left_it(m, st - 1)) return false;
    return nobody_else_has(m);
  }
  bool won_push_of(std::uint32_t c, std::uint32_t m) const noexcept {
    return won_step_of(c, m, intent_op::push_full, intent_op::push_empty);
  }
  // Another context's won pop of m, between its CAS and its stamp.
  bool won_pop_of(std::uint32_t c, std::uint32_t m) const noexcept {
    return won_step_of(c, m, intent_op::pop_full, intent_op::pop_empty);
  }
  // Context c's intent is `on_full` or `on_empty` of magazine m, and its CAS happened.
  // Reads op, arg, seq and op again (intent.hpp): a live context may be moving on.
  bool won_step_of(std::uint32_t c, std::uint32_t m, intent_op on_full,
                   intent_op on_empty) const noexcept {
    if (c >= r_.context_count()) return false;
    const context_record& o = r_.context(c);
    const auto op = static_cast<intent_op>(observe(o.intent.op));
    if (op != on_full && op != on_empty) return false;
    const std::uint32_t arg = observe(o.intent.arg);
    const std::uint64_t seq = observe(o.intent.seq);
    if (arg != m || observe(o.intent.op) != static_cast<std::uint32_t>(op))
      return false; // the intent changed while it was read
    return transition_won(r_, c, op == on_full ? cell_id::full : cell_id::empty, seq);
  }
  // Does any other context hold m (in its fields, or in a won pop not yet recorded)?
  // A context whose won push gave m away no longer holds it, whatever its fields say.
  bool held_elsewhere(std::uint32_t m) const noexcept {
    for (std::uint32_t c = 0; c < r_.context_count(); ++c) {
      if (c == dead_ || won_push_of(c, m)) continue;
      if (holds(r_.context(c), m) || won_pop_of(c, m)) return true;
    }
    return false;
  }
  // Walks the stack from `head`, bounded by the magazine count; `ok` turns false on a
  // link that names no magazine or a walk longer than there are magazines (a cycle).
  bool in_stack(std::uint32_t head, std::uint32_t m, bool& ok) const noexcept {
    const std::uint32_t n = r_.magazine_count();
    std::uint32_t x = head;
    for (std::uint32_t steps = 0; ok && x != no_magazine; ++steps) {
      ok = steps <= n && x < n && r_.has_magazine(x);
      if (ok && x == m) return true;
      if (ok) x = observe(r_.mag(x).next);
    }
    return false;
  }

  R& r_;
  std::uint32_t dead_;
  std::uint32_t actor_;
};

} // namespace slab::core
