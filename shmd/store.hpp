// The segment store: the directories a pool's segments live in as files (so that they
// outlive shmd and a restarted one adopts them), created if missing and locked for this
// process.
//
// One shmd per segment directory: a second one would adopt the pools of the first while
// it runs them (take over its own context, record 0, reclaim its clients' records). So
// each directory holds a lock file (.shmd.lock) that shmd locks before it opens any pool
// and holds until it exits; the kernel drops the lock however it exits.
#pragma once

#include <string>
#include <vector>

#include <slab/platform/files.hpp>
#include <slab/platform/segment.hpp>

#include "config.hpp"

namespace shmd {

struct segment_store {
  slab::platform::segment_store dirs;           ///< what pool_owner and pool_map are given
  std::vector<slab::platform::file_lock> locks; ///< one per directory; keep while pools run
};

/// The directories the config names (segment_dir, hugepage_dir; "auto" resolved to the
/// first hugetlbfs mount), each created if missing (mode 0700: only shmd opens segment
/// files; clients get their fds over the socket) and locked. Throws slab::error(system)
/// saying what to change: another shmd holds the lock, or shmd's user may not write there.
/// What the store is opened for: serving pools (directories and lock files must be
/// this user's alone), or removing them (`shmd --destroy`, often run as root on
/// directories of shmd's user: only the lock is taken, no link is followed).
enum class store_use { serve, destroy };
[[nodiscard]] segment_store open_store(const daemon_config& cfg, store_use use = store_use::serve);

/// Logs a notice for every pool whose segments are in the store's directories but
/// whose name is not in the config (a pool dropped from it): its memory stays taken
/// until `shmd --destroy NAME`. Returns those names.
std::vector<std::string> report_unconfigured(const segment_store& store, const daemon_config& cfg);

} // namespace shmd
