// dead_record<R>: a dead context's record as reclaim reads and rewrites it, and the
// report of what reclaim found. Shared by the phases of reclaim (resolve.hpp,
// reclaim.hpp).
//
// Everything in the record may be garbage: its owner died mid-store, or scribbled over
// it. Reads are acquires (intent.hpp, rule 1), ids are checked against the region before
// they are followed, and whatever cannot be a state a death leaves marks the record
// corrupt (it is then quarantined, never reused). Reclaim's own stores into the record
// are releases in the order a second reclaimer, replacing one that died, reads them.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include <slab/core/intent.hpp>
#include <slab/core/region.hpp>
#include <slab/core/shared_layout.hpp>

namespace slab::core {

struct reclaim_report {
  std::uint32_t magazines = 0;       ///< whole magazines handed to the depot
  std::uint32_t slots_adopted = 0;   ///< slots moved one by one from partial magazines
  std::uint32_t rescued = 0;         ///< magazines found by their stamp after the record lost them
  std::uint32_t claims_released = 0; ///< claimed, never written slots freed
  std::string resolved;              ///< what the intent said and how it was settled
  std::vector<std::string> problems;
  /// The record said something no death can leave behind (a scribbled or torn record):
  /// it is quarantined (never reused) instead of freed. What it named that another
  /// context or the depot holds was left alone; what it held was given back.
  bool corrupt = false;
};

template <region R> class dead_record {
public:
  /// `prior`: the record's state before reclaim marked it dead (dead already: a
  /// reclaimer died on it before).
  dead_record(R& r, std::uint32_t id, context_state prior) noexcept
      : r_(r), rec_(r.context(id)), id_(id), prior_(prior) {}

  R& region() noexcept { return r_; }
  context_record& rec() noexcept { return rec_; }
  [[nodiscard]] std::uint32_t id() const noexcept { return id_; }
  [[nodiscard]] context_state prior() const noexcept { return prior_; }
  reclaim_report& report() noexcept { return rep_; }

  void problem(std::string s) {
    rep_.problems.push_back("context " + std::to_string(id_) + ": " + std::move(s));
  }
  /// A problem no death can leave behind: the record will be quarantined.
  void corrupt(std::string s) {
    rep_.corrupt = true;
    problem(std::move(s));
  }

  /// The three fields that may name a magazine the context held.
  [[nodiscard]] std::atomic<std::uint32_t>* fields(unsigned i) noexcept {
    return i == 0 ? &rec_.mag[0] : i == 1 ? &rec_.mag[1] : &rec_.spare;
  }
  static constexpr unsigned field_count = 3;

  /// The loaded magazine, when its id names one.
  magazine* loaded() noexcept {
    const std::uint32_t m = observe(rec_.mag[observe(rec_.active) & 1U]);
    return (m != no_magazine && r_.has_magazine(m)) ? &r_.mag(m) : nullptr;
  }
  [[nodiscard]] bool holds(std::uint32_t m) const noexcept {
    return observe(rec_.mag[0]) == m || observe(rec_.mag[1]) == m || observe(rec_.spare) == m;
  }
  /// Drops m from every field that names it.
  void forget(std::uint32_t m) noexcept {
    for (unsigned i = 0; i < field_count; ++i) {
      if (observe(*fields(i)) == m) publish(*fields(i), no_magazine);
    }
  }
  /// Pushes idx into the loaded magazine unless it is already its top entry (a second
  /// run of reclaim finds it there).
  void ensure_cached(std::uint32_t idx) {
    magazine* l = loaded();
    if (l == nullptr) return problem("no loaded magazine to return slot " + std::to_string(idx));
    const std::uint32_t c = observe(l->count);
    if (c > 0 && c <= magazine_slots && observe(l->slots[c - 1]) == idx) return;
    if (c >= magazine_slots)
      return problem("loaded magazine full; slot " + std::to_string(idx) + " left out");
    publish(l->slots[c], idx);
    publish(l->count, c + 1); // after the slot
  }

private:
  R& r_;
  context_record& rec_;
  std::uint32_t id_;
  context_state prior_;
  reclaim_report rep_;
};

} // namespace slab::core
