// pool_owner's growth: a new tier is prepared and offered a chunk at a time, one chunk
// per round of the worker (design-choices.md, "Growing a shared pool a chunk at a time").
#include <bit>
#include <chrono>
#include <string>

#include <slab/core/handover.hpp>
#include <slab/error.hpp>

#include "log.hpp"
#include "pool_detail.hpp"
#include "pool_owner.hpp"

namespace shmd {
namespace {

namespace core = slab::core;
namespace platform = slab::platform;
using pool_detail::describe_tier;
using pool_detail::errc_of;
using pool_detail::remedy;

} // namespace

void pool_owner::add_tier(unsigned t) {
  slab::mapped::pool_map& m = *map_;
  auto segs = m.create_tier(t);
  if (!segs) {
    throw slab::error(errc_of(segs.error().cause),
                      "pool '" + cfg_.name + "': tier " + std::to_string(t) + ": " +
                          segs.error().what + remedy(segs.error(), &m, t));
  }
  {
    std::lock_guard<std::mutex> g(tiers_mu_);
    tiers_.push_back(std::move(segs.value()));
  }
  // Its fds to clients first, so that whoever sees one of its slots offered can map it.
  m.info().tiers_published.store(t + 1, std::memory_order_release);
  const slab::proto::tier_info& ti = m.info().tiers[t];
  if ((ti.flags & slab::proto::tier_fallback) != 0 && !warned_fallback_) {
    warned_fallback_ = true;
    log_warning("pool '" + cfg_.name + "': tier " + std::to_string(t) +
                " is on normal pages: hugepages = \"prefer\" and none were available "
                "(reserve them with vm.nr_hugepages); said once per pool");
  }
  offer(m.mapped_slots());
}

// Offers the prepared slots from ready_slots up to `to`: their magazines to the depot,
// then the slots themselves (ready_slots), in that order. A daemon that dies in between
// leaves a state adopt() completes.
void pool_owner::offer(std::uint64_t to) {
  slab::mapped::pool_map& m = *map_;
  const slab::proto::pool_geometry& geo = m.geometry();
  const std::uint64_t from = ready_slots();
  if (to <= from) return;
  const auto first_mag =
      static_cast<std::uint32_t>(geo.extra_magazines + from / core::magazine_slots);
  const auto end_mag = static_cast<std::uint32_t>(geo.extra_magazines + to / core::magazine_slots);
  m.state().magazines.store(end_mag, std::memory_order_release);
  core::handover<slab::mapped::pool_map>(*own_).donate(first_mag, end_mag - 1);
  m.state().ready_slots.store(to, std::memory_order_release);
  const unsigned t = m.mapped_tiers() - 1;
  const slab::proto::tier_info& ti = m.info().tiers[t];
  if (to == ti.first_slot + ti.slots) {
    log_info("pool '" + cfg_.name + "': tier " + std::to_string(t) +
             " ready: " + describe_tier(ti));
  }
}

bool pool_owner::growing() const noexcept {
  slab::mapped::pool_map& m = *map_;
  const slab::proto::tier_info& last = m.info().tiers[m.mapped_tiers() - 1];
  return m.state().ready_slots.load(std::memory_order_acquire) < last.first_slot + last.slots;
}

// Prepares and offers the next chunk of the last tier. Throws slab::error when it cannot
// be prepared; what was offered stays, and the next call tries the same chunk again.
void pool_owner::next_chunk() {
  slab::mapped::pool_map& m = *map_;
  const unsigned t = m.mapped_tiers() - 1;
  const std::uint64_t from = m.mapped_slots();
  const std::uint64_t to = m.chunk_end(from);
  int meta = -1, data = -1;
  {
    std::lock_guard<std::mutex> g(tiers_mu_);
    meta = tiers_[t].meta.get();
    data = tiers_[t].data.get();
  }
  const std::uint64_t ns_before = m.info().tiers[t].prepare_ns; // prepare_slots adds to it
  const platform::status s = m.prepare_slots(meta, data, to);
  if (!s) {
    throw slab::error(errc_of(s.error().cause),
                      "pool '" + cfg_.name + "': tier " + std::to_string(t) + ", slots " +
                          std::to_string(from) + " to " + std::to_string(to) + ": " +
                          s.error().what + remedy(s.error(), &m, t));
  }
  offer(to);
  log_debug("pool '" + cfg_.name + "': tier " + std::to_string(t) + ": slots " +
            std::to_string(from) + " to " + std::to_string(to) + " offered, prepared in " +
            std::to_string((m.info().tiers[t].prepare_ns - ns_before) / 1000) + " us");
}

bool pool_owner::maybe_grow(bool urgent) {
  slab::mapped::pool_map& m = *map_;
  const unsigned next = m.mapped_tiers();
  const bool unfinished = growing();
  if (!unfinished && next >= m.geometry().tier_count()) return false;
  const std::uint64_t ready = ready_slots();
  const auto threshold = static_cast<std::uint64_t>(cfg_.grow_at * static_cast<double>(ready));
  if (!unfinished && urgent && live_estimate() < threshold && !dry()) {
    // A client asks when its allocation found nothing; one that asks anyway (a bug, or
    // a hostile local user) must not make shmd lock tier after tier of an idle pool.
    log_debug("pool '" + cfg_.name + "': a client's grow request ignored: the pool is not " +
              "dry (below grow_at, with fresh slots or full magazines left)");
    urgent = false;
  }
  if (!unfinished && !urgent && live_estimate() < threshold) return false;
  // failed_growths_ counts the calls since growth first failed. The next attempts come
  // 1, 2, 4, ... 1024 calls later (the worker calls about every millisecond), then every
  // 1024th: a lasting shortage costs an attempt a second, not a thousand.
  unsigned n = 0;
  if (failed_growths_ != 0) {
    n = failed_growths_++;
    if (n % 1024 != 0 && !std::has_single_bit(n)) return false;
  }
  try {
    // One chunk per call: the worker reclaims between chunks, and calls again at once
    // while growing() (worker::has_work).
    if (unfinished) {
      next_chunk();
    } else {
      add_tier(next);
    }
    map_->info().growth_failed.store(0, std::memory_order_relaxed);
    if (n != 0) {
      log_notice("pool '" + cfg_.name + "': growing again: tier " +
                 std::to_string(m.mapped_tiers() - 1) + " offered up to " +
                 std::to_string(ready_slots()) + " slots");
    }
    failed_growths_ = 0;
    return !growing();
  } catch (const slab::error& e) {
    map_->info().growth_failed.store(static_cast<std::uint32_t>(e.code()),
                                     std::memory_order_relaxed);
    if (n == 0) {
      failed_growths_ = 1;
      log_error(std::string(e.what()) + "; the pool stays at " + std::to_string(ready_slots()) +
                " slots meanwhile (a client that runs dry gets errc::exhausted after its "
                "grow_wait); retrying, at most once a second");
    } else if (n % (64 * 1024) == 0) {
      log_error(std::string(e.what()) + " (still failing; the pool stays at " +
                std::to_string(ready_slots()) + " slots)");
    }
    std::lock_guard<std::mutex> g(failures_mu_);
    ++failures_.count;
    failures_.last_unix_ns =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
    failures_.last = e.what();
    return false;
  }
}

bool pool_owner::dry() noexcept {
  core::pool_state& st = map_->state();
  const std::uint64_t fresh = st.cell(core::cell_id::fresh).peek().value;
  const bool no_full = st.cell(core::cell_id::full).peek().value == core::no_magazine;
  return no_full && fresh + core::magazine_slots > ready_slots();
}

pool_owner::growth_failures pool_owner::failures() const {
  std::lock_guard<std::mutex> g(failures_mu_);
  return failures_;
}

} // namespace shmd
