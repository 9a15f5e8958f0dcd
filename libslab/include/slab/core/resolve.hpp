// resolve: reclaim's first phase. A dead context's intent names the one shared step that
// may be half done (intent.hpp); wide_cell.hpp says how a CAS's outcome is decided after
// its author died. The outcome is written into the record's own fields (a popped
// magazine into spare, a pushed one out of the fields, carved or freed slots into the
// loaded magazine), so that afterwards the fields alone say exactly what the context
// held. The fields are then checked against the magazines' stamps (ownership.hpp):
// what the record names but does not own is dropped from it, untouched.
//
// Every case is safe to run twice: a reclaimer that dies midway is itself reclaimed,
// and the next one resolves the same intent again from what the first one left.
#pragma once

#include <cstdint>
#include <string>

#include <slab/core/dead_record.hpp>
#include <slab/core/intent.hpp>
#include <slab/core/ownership.hpp>
#include <slab/core/region.hpp>
#include <slab/core/shared_layout.hpp>
#include <slab/core/slot_header.hpp>

namespace slab::core {

template <region R> class intent_resolver {
public:
  intent_resolver(dead_record<R>& d, const ownership<R>& own) noexcept
      : d_(d), r_(d.region()), own_(own) {}

  void run() {
    context_record& rec = d_.rec();
    op_ = static_cast<intent_op>(observe(rec.intent.op));
    arg_ = observe(rec.intent.arg);
    seq_ = observe(rec.intent.seq);
    // A won push or pop is settled before the fields are checked, so that they no
    // longer name a magazine pushed away, and a popped one is known to be owned.
    const std::uint32_t won_pop = settle_depot_step();
    verify_fields(won_pop);
    switch (op_) {
    case intent_op::none: d_.report().resolved = "no step under way"; break;
    case intent_op::push_full:
    case intent_op::push_empty: break;
    case intent_op::pop_full:
    case intent_op::pop_empty: record_won_pop(won_pop); break;
    case intent_op::carve: finish_carve(); break;
    case intent_op::free: finish_free(); break;
    case intent_op::adopt: finish_adopt(); break;
    default: d_.corrupt("unknown intent " + std::to_string(static_cast<std::uint32_t>(op_)));
    }
  }

private:
  // A push or pop: did its CAS happen? A won push gave the magazine to the depot (or to
  // its next owner): forgotten here, its stamp cleared if it is still the dead one's.
  // Returns the magazine of a won pop, else no_magazine.
  std::uint32_t settle_depot_step() {
    const bool push = op_ == intent_op::push_full || op_ == intent_op::push_empty;
    const bool pop = op_ == intent_op::pop_full || op_ == intent_op::pop_empty;
    if (!push && !pop) return no_magazine;
    const bool full = op_ == intent_op::push_full || op_ == intent_op::pop_full;
    const bool won = transition_won(r_, d_.id(), full ? cell_id::full : cell_id::empty, seq_) &&
                     (push || r_.has_magazine(arg_));
    d_.report().resolved = std::string(push ? "push" : "pop") + " of magazine " +
                           std::to_string(arg_) + (won ? ": won" : ": lost");
    if (!won) return no_magazine;
    if (pop) return arg_;
    d_.forget(arg_);
    if (r_.has_magazine(arg_)) {
      std::uint32_t st = stamp_of(d_.id());
      r_.mag(arg_).owner.compare_exchange_strong(st, no_owner, relaxed);
    }
    return no_magazine;
  }

  // Keeps in the record only magazines that are the dead context's. A magazine named
  // here that another context or the depot holds is dropped from the record, untouched.
  void verify_fields(std::uint32_t won_pop) {
    for (const unsigned i : {2U, 0U, 1U}) { // spare first: it may repeat a mag field
      std::atomic<std::uint32_t>& f = *d_.fields(i);
      const std::uint32_t m = observe(f);
      if (m == no_magazine) continue;
      if (!r_.has_magazine(m)) {
        d_.corrupt("magazine id " + std::to_string(m) + " does not exist; dropped");
      } else if (!own_.owned(m, won_pop)) {
        report_not_owned(m);
      } else {
        continue;
      }
      publish(f, no_magazine);
    }
  }
  void report_not_owned(std::uint32_t m) {
    const std::uint32_t st = observe(r_.mag(m).owner);
    const std::string where =
        st == no_owner ? std::string("the depot") : "context " + std::to_string(st - 1);
    // A reclaimer that died after pushing it leaves it named here: it went to the
    // depot, and perhaps on to another context since.
    if (d_.prior() == context_state::dead) {
      d_.problem("magazine " + std::to_string(m) + " was given back already (" + where +
                 " holds it now); forgotten");
    } else {
      d_.corrupt("names magazine " + std::to_string(m) + ", which " + where + " holds; left alone");
    }
  }

  // A won pop cut short before the magazine reached the spare field.
  void record_won_pop(std::uint32_t won_pop) {
    if (won_pop == no_magazine || d_.holds(won_pop)) return;
    if (!own_.owned(won_pop, won_pop)) {
      d_.corrupt("won pop of magazine " + std::to_string(won_pop) + " that is not its own");
    } else if (observe(d_.rec().spare) == no_magazine) {
      publish(d_.rec().spare, won_pop);
    } else {
      d_.corrupt("won a pop but its spare field is taken");
    }
  }

  // A won carve: the K slots go into the loaded magazine, if it has not got them yet.
  void finish_carve() {
    const bool won = transition_won(r_, d_.id(), cell_id::fresh, seq_);
    d_.report().resolved =
        std::string("carve at ") + std::to_string(arg_) + (won ? ": won" : ": lost");
    magazine* l = d_.loaded();
    if (!won || l == nullptr || observe(l->count) != 0) return;
    if (!never_used(arg_)) {
      d_.corrupt("won carve at " + std::to_string(arg_) + " names used or invalid slots");
      return;
    }
    for (std::uint32_t i = 0; i < magazine_slots; ++i)
      publish(l->slots[i], carved_slot(arg_, i));
    publish(l->count, magazine_slots); // after the slots
  }

  // The K slots a won carve took: aligned, below the cursor, never used by anyone.
  bool never_used(std::uint32_t first) noexcept {
    if (first % magazine_slots != 0) return false;
    if (std::uint64_t{first} + magazine_slots > r_.state().cell(cell_id::fresh).peek().value)
      return false;
    for (std::uint32_t i = 0; i < magazine_slots; ++i) {
      // {0, 0}: not even claimed (a claim leaves the generation but names its context)
      if (!r_.has_slot(first + i) || r_.header(first + i).load() != shared_header::value{0, 0})
        return false;
    }
    return true;
  }

  // A free whose header CAS happened: the slot goes into the loaded magazine.
  void finish_free() {
    const auto g = static_cast<std::uint32_t>(seq_);
    const bool won =
        r_.has_slot(arg_) && r_.header(arg_).load() == shared_header::value{g + 1, d_.id()};
    d_.report().resolved =
        std::string("free of slot ") + std::to_string(arg_) + (won ? ": done" : ": not done");
    if (won) d_.ensure_cached(arg_);
  }

  // The dead context was itself a reclaimer, moving slot arg out of magazine seq of a
  // context it was reclaiming (dead, its magazine stamped so): anything else is not a
  // reclaimer's step, and writing another context's magazine would corrupt it.
  void finish_adopt() {
    d_.report().resolved = std::string("adopt of slot ") + std::to_string(arg_);
    magazine* l = d_.loaded();
    const auto src_id = static_cast<std::uint32_t>(seq_);
    if (l == nullptr || seq_ >= no_magazine || !r_.has_magazine(src_id)) return;
    magazine& src = r_.mag(src_id);
    const std::uint32_t owner = observe(src.owner);
    if (owner == no_owner || owner - 1 >= r_.context_count() ||
        static_cast<context_state>(observe(r_.context(owner - 1).state)) == context_state::active) {
      d_.corrupt("adopt intent names magazine " + std::to_string(src_id) +
                 ", which no dead context holds; ignored");
      return;
    }
    const std::uint32_t lc = observe(l->count), sc = observe(src.count);
    const bool copied = lc > 0 && lc <= magazine_slots && observe(l->slots[lc - 1]) == arg_;
    if (copied && sc > 0 && sc <= magazine_slots && observe(src.slots[sc - 1]) == arg_) {
      publish(src.count, sc - 1);
    }
  }

  dead_record<R>& d_;
  R& r_;
  const ownership<R>& own_;
  intent_op op_ = intent_op::none;
  std::uint32_t arg_ = 0;
  std::uint64_t seq_ = 0;
};

} // namespace slab::core
