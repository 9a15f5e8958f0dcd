// shmd's configuration: the TOML file the daemon reads at start (packaging/shmd.toml is
// the bundled default, with every key explained).
//
//   [daemon]                          optional; every key optional
//   socket = "/run/shmd/shmd.sock"    absolute path, at most 107 bytes (sun_path)
//   allow_uids = [1000]               uids allowed to connect; empty = the daemon's own
//   allow_gids = [1000, "slab"]       groups (gids or names) allowed to connect, as a
//                                     client's primary or supplementary group; empty =
//                                     the daemon's own. Names are resolved at load: an
//                                     unknown one is an error at its line
//   monitor_uids = [1001]             uids allowed to observe read-only (slabctl's
//                                     status, top, audit, inspect, metrics) without being
//                                     clients; root always may
//   monitor_gids = ["slabmon"]        groups (gids or names) allowed to observe, like
//                                     allow_gids. Clients (allow lists) may observe too
//   log_level = "info"                debug | info | notice | warning | error
//   segment_dir = "/dev/shm/shmd"     tmpfs directory for segment files; "" = memfds
//   hugepage_dir = "auto"             hugetlbfs directory; "auto" = <mount>/shmd; "" = memfds
//
//   [[pool]]                          at least one
//   name = "orders"                   required; [a-z0-9_-], 1 to 63 chars, unique
//   slot_size = 128                   required; bytes, 1 to 1048576
//   capacity = 1048576                required; slots ready at start, >= 1
//   max_capacity = 268435456          ceiling for growth, capacity to 2^32-1
//   hugepages = "prefer"              require | prefer | off
//   numa_node = 0                     >= 0; omitted = local node
//   contexts = 64                     max attached contexts, 1 to 4096
//   grow_at = 0.75                    occupancy in (0, 1) that prepares the next tier
//   mode = "slab"                     slab | arena: an arena pool never frees a slot
//                                     (clients refuse erase; references last as long
//                                     as the pool); fixed when the pool is created
//
// The parser is strict: an unknown key at any level, a value of the wrong type or out of
// range, a missing required key, is an error. The first error found in document order
// is thrown as slab::error(errc::config) whose message reads
//   <file>:<line>:<column>: <scope>: <what is wrong and what is allowed>
// e.g. `shmd.toml:7:13: pool "orders": slot_size must be between 1 and 1048576 bytes,
// got 0`. What the parser cannot know (whether a NUMA node exists, whether hugepages
// are available) is for the daemon to check.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <slab/platform/platform.hpp>

namespace shmd {

/// Limits the parser enforces, for the daemon and the tests to refer to.
inline constexpr std::uint32_t max_slot_size = 1U << 20;         ///< 1 MiB
inline constexpr std::uint64_t max_pool_slots = 0xFFFF'FFFFU;    ///< 2^32 - 1 (32-bit index)
inline constexpr std::uint32_t max_contexts = 4096;              ///< per pool
inline constexpr std::size_t max_pool_name = 63;                 ///< bytes
inline constexpr std::size_t max_socket_path = 107;              ///< sun_path minus its NUL
inline constexpr std::uint32_t max_credential_id = 0xFFFF'FFFEU; ///< (uid_t)-1 is no id

/// A pool's `mode` (recorded in its shared header as proto::mode_slab / mode_arena).
enum class pool_mode : std::uint8_t { slab, arena };

/// One [[pool]] table.
struct pool_config {
  std::string name;             ///< [a-z0-9_-], 1..63 chars, unique across pools
  std::uint32_t slot_size{};    ///< bytes, 1 .. 1 MiB
  std::uint64_t capacity{};     ///< slots ready at start, >= 1, <= max_capacity
  std::uint64_t max_capacity{}; ///< ceiling for growth, <= 2^32-1; default = capacity
  slab::platform::page_policy hugepages = slab::platform::page_policy::prefer;
  int numa_node = -1;               ///< -1 = not set (local); else >= 0, existence unchecked
  std::uint32_t contexts = 64;      ///< max attached contexts (clients' open pools), 1..4096
  double grow_at = 0.75;            ///< occupancy in (0,1) at which the next tier is prepared
  pool_mode mode = pool_mode::slab; ///< arena: values are never erased
};

/// The whole file.
struct daemon_config {
  std::string socket = "/run/shmd/shmd.sock";
  std::vector<std::uint32_t> allow_uids; ///< empty = the daemon's own uid only
  std::vector<std::uint32_t> allow_gids; ///< empty = the daemon's own gid only; names resolved
  /// Read-only observers (the `observe` request): these, root, and whoever may connect.
  std::vector<std::uint32_t> monitor_uids;
  std::vector<std::uint32_t> monitor_gids; ///< names resolved, as allow_gids
  std::string log_level = "info";          ///< debug|info|notice|warning|error
  /// Open connections one uid may hold (root's are not counted): a user who may not
  /// use pools cannot take all of shmd's descriptors, nor can a leaking client.
  std::uint32_t max_connections_per_uid = 256;
  /// Where normal-page segments live as files that outlive the daemon (tmpfs); "" for
  /// anonymous memfds, which do not.
  std::string segment_dir = "/dev/shm/shmd";
  /// Where hugepage segments live (a hugetlbfs directory); "auto": "shmd" under the first
  /// hugetlbfs mount, or anonymous memfds when there is none; "" for memfds.
  std::string hugepage_dir = "auto";
  std::vector<pool_config> pools; ///< at least one, in document order
  std::string source;             ///< the file it came from (as given)
};

/// Reads and validates the file at `path`. Throws slab::error(errc::config): for a file
/// that cannot be opened or read, a message naming the path and the OS's reason; for
/// anything wrong inside, "<path>:<line>:<column>: ...".
[[nodiscard]] daemon_config load_config(const std::string& path);

/// The same from text; `source_name` stands for the file name in messages and in
/// daemon_config::source.
[[nodiscard]] daemon_config parse_config(std::string_view text, const std::string& source_name);

} // namespace shmd
