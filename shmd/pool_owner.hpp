// pool_owner: the daemon's side of one pool. Creates it, grows it ahead of demand,
// registers contexts, and reclaims the contexts of clients that died.
//
// Threads: the main (I/O) thread registers contexts and hands out tier fds; the worker
// thread grows and reclaims. The worker alone uses the daemon's context in the pool
// (record 0), as a context must be used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <slab/core/cache.hpp>
#include <slab/mapped/pool_map.hpp>

#include "config.hpp"

namespace shmd {

class pool_owner {
public:
  /// Adopts the pool a previous daemon left in `store` (named segments), or creates it
  /// with its first tier (mapped, bound, prefaulted, locked). Throws slab::error naming
  /// the pool and what failed (hugepages, mlock, NUMA, memory, segments that do not
  /// match the config).
  static std::unique_ptr<pool_owner> open(const pool_config& cfg,
                                          const slab::platform::segment_store& store);

  /// Contexts an adopted pool's records name whose processes were alive at adoption:
  /// the server watches them (pidfd: control::watch_orphans, clients.cpp) and reclaims each when
  /// its process exits.
  struct orphan {
    std::uint32_t ctx, pid;
  };
  std::vector<orphan> take_orphans() { return std::move(orphans_); }

  [[nodiscard]] const std::string& name() const noexcept { return cfg_.name; }
  [[nodiscard]] const pool_config& config() const noexcept { return cfg_; }
  slab::mapped::pool_map& map() noexcept { return *map_; }

  // ---- main thread ----
  /// Takes a free context record for a client (pid); nullopt when all are in use.
  std::optional<std::uint32_t>
  attach_context(std::uint32_t pid,
                 slab::core::context_role role = slab::core::context_role::client);
  /// Calls f(fds) with the (meta, data) fds of tiers [first, published), in order.
  template <class F> void with_tier_fds(unsigned first, F&& f) {
    std::lock_guard<std::mutex> g(tiers_mu_);
    std::vector<int> fds;
    for (unsigned t = first; t < tiers_.size(); ++t) {
      fds.push_back(tiers_[t].meta.get());
      fds.push_back(tiers_[t].data.get());
    }
    f(fds);
  }

  // ---- worker thread ----
  /// Prepares and offers one chunk: the next of a tier offered in part, or the first of
  /// the next tier when live slots reach grow_at of the ready ones or when `urgent` (a
  /// client ran dry). Returns true when that completed a tier.
  bool maybe_grow(bool urgent);
  /// The last tier is offered in part.
  [[nodiscard]] bool growing() const noexcept;
  /// Nothing left to hand out but what contexts cache: no full magazine in the depot and
  /// less than a magazine of fresh slots. A client's grow request counts only then.
  [[nodiscard]] bool dry() noexcept;
  /// growing(), and its last chunk did not fail: maybe_grow has more to do at once
  /// (after a failure it retries on its back-off, from the worker's ticks).
  [[nodiscard]] bool more_to_offer() const noexcept { return failed_growths_ == 0 && growing(); }
  /// Gives back everything context `ctx` held; its owner is dead or has detached.
  void reclaim(std::uint32_t ctx);

  /// Allocations minus frees over every context, past and present.
  [[nodiscard]] std::uint64_t live_estimate() noexcept;
  [[nodiscard]] std::uint64_t ready_slots() noexcept;

  /// Tiers that could not be added since this shmd started, and why the last one failed
  /// (for observers: slabctl status). Any thread.
  struct growth_failures {
    std::uint32_t count = 0;
    std::uint64_t last_unix_ns = 0;
    std::string last;
  };
  [[nodiscard]] growth_failures failures() const;

private:
  explicit pool_owner(pool_config cfg) : cfg_(std::move(cfg)) {}
  void add_tier(unsigned t);
  void offer(std::uint64_t to);
  void next_chunk();
  void adopt(std::vector<slab::mapped::tier_segments> tiers);
  std::uint32_t reclaim_old_daemon_records(); ///< adopt: returns the helper record it used
  unsigned sort_client_records();             ///< adopt: returns the records reclaimed
  void check_matches_config() const;
  void reclaim_record(std::uint32_t ctx, slab::core::cache<slab::mapped::pool_map>& by);
  /// Resets the live estimate to the number of live slot headers (after a corrupt record).
  void recount_live();

  pool_config cfg_;
  std::unique_ptr<slab::mapped::pool_map> map_;
  std::optional<slab::core::cache<slab::mapped::pool_map>> own_; // context 0
  std::mutex tiers_mu_;
  // Which records shmd handed out and has not reclaimed (quarantined ones forever). The
  // shared state field says the same, but a client can scribble over it: a record it
  // zeroed must not look free to the next client before shmd has reclaimed it.
  std::mutex records_mu_;
  std::vector<bool> assigned_;
  void set_assigned(std::uint32_t ctx, bool assigned);
  std::vector<slab::mapped::tier_segments> tiers_;
  unsigned failed_growths_ = 0;
  mutable std::mutex failures_mu_;
  growth_failures failures_;
  bool warned_fallback_ = false;
  std::vector<orphan> orphans_;
};

/// "orders, quotes": the pools' names in config order, for messages.
[[nodiscard]] std::string pool_names(const std::vector<std::unique_ptr<pool_owner>>& pools);

} // namespace shmd
