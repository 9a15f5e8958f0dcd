// snapshot: what slabctl knows about a pool at one moment, read from the read-only
// mapping (counters summed, headers counted, records read) plus what only shmd knows
// (who holds each context, growth failures). Every verb but inspect renders these.
// snapshot.cpp takes them; render_text.cpp, render_json.cpp and render_metrics.cpp show
// them.
//
// While clients run, the numbers are read one after another, not at one instant: they
// are each exact for a quiet pool and close for a busy one. The free slots in the depot
// are derived (used - live - cached) so that the table always adds up to the capacity.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include <slab/observer.hpp>

namespace slabctl {

namespace core = slab::core;
namespace platform = slab::platform;
namespace proto = slab::proto;
using slab::observe::observer;
using slab::observe::pool_watch;

struct tier_snapshot {
  unsigned index = 0;
  std::uint64_t first_slot = 0, slots = 0, live = 0;
  std::uint64_t data_bytes = 0, meta_bytes = 0;
  std::uint32_t page_size = 0;
  bool huge = false, meta_huge = false, locked = false, fallback = false;
  int numa_node = -1;         ///< the node asked for; -1: none
  bool numa_verified = false; ///< shmd checked every sampled page was on it
  std::vector<int> nodes_now; ///< where sampled pages are now (move_pages), sorted, unique
  bool nodes_known = false;   ///< nodes_now is meaningful (the kernel answered)
  std::uint64_t created_unix_ns = 0, prepare_ns = 0;
};

struct context_snapshot {
  std::uint32_t id = 0;
  std::string state; ///< active, dead, quarantined
  std::uint32_t pid = 0;
  std::string process; ///< name: shmd's record, else /proc/PID/comm, else ""
  std::string link;    ///< connected, socket-closed, adopted, unknown, daemon
  bool alive = false;  ///< the process exists now
  std::uint64_t incarnation = 0;
  std::uint32_t cached = 0; ///< free slots in its magazines
  std::uint64_t allocs = 0, frees = 0, depot_gets = 0, depot_puts = 0, carves = 0, stale = 0,
                anomalies = 0;
};

struct pool_snapshot {
  std::string name;
  std::uint32_t slot_size = 0, stride = 0, align = 0;
  std::uint64_t capacity = 0; ///< slots in published tiers (ready)
  std::uint64_t max_capacity = 0;
  std::uint64_t used = 0; ///< below the fresh cursor
  std::uint64_t live = 0; ///< odd generation
  std::uint64_t free_depot = 0, free_cached = 0, never_used = 0;
  std::string page_policy;
  int numa_node = -1;
  std::uint64_t created_unix_ns = 0;
  std::uint32_t daemon_pid = 0;
  std::uint32_t context_records = 0;   ///< the table's size, record 0 (shmd's) included
  std::uint64_t allocs = 0, frees = 0; ///< since the pool was made: retired + current
  std::uint64_t depot_gets = 0, depot_puts = 0, carves = 0, stale = 0, anomalies = 0; ///< current
  std::uint64_t reclaims = 0;
  std::vector<tier_snapshot> tiers;
  std::vector<context_snapshot> contexts; ///< records not free, by id
  std::uint32_t growth_failures = 0;
  std::string last_growth_failure;
  std::uint64_t last_growth_failure_unix_ns = 0;
  std::vector<std::string> warnings;

  [[nodiscard]] double occupancy() const noexcept {
    return capacity == 0 ? 0.0 : static_cast<double>(live) / static_cast<double>(capacity);
  }
};

struct daemon_snapshot {
  std::string socket;
  std::uint32_t pid = 0;
  std::string version;
  std::uint64_t started_unix_ns = 0;
  std::uint64_t taken_unix_ns = 0;
};

/// Reads everything about one pool. `numa_check`: ask the kernel where sampled pages of
/// every tier are now (a few hundred move_pages queries per tier).
pool_snapshot take_snapshot(observer& o, pool_watch& w, bool numa_check);
daemon_snapshot take_daemon_snapshot(const observer& o);
std::uint64_t now_unix_ns();

/// `slabctl status`, as a table for people.
std::string status_text(const daemon_snapshot& d, const std::vector<pool_snapshot>& pools);
/// `slabctl status --json`: docs/slabctl-status.schema.json.
nlohmann::json status_json(const daemon_snapshot& d, const std::vector<pool_snapshot>& pools);
/// `slabctl metrics`: Prometheus text exposition format 0.0.4.
std::string metrics_text(const daemon_snapshot& d, const std::vector<pool_snapshot>& pools);
/// The metrics when shmd cannot be reached: slab_shmd_up 0 and why, as a comment.
std::string metrics_down(const std::string& why);

/// "142.0 MiB", "2.0 MiB", "4 KiB"
std::string human_bytes(std::uint64_t b);
/// "2026-11-25 10:12:34" (local time)
std::string local_time(std::uint64_t unix_ns);

} // namespace slabctl
