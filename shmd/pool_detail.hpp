// Helpers shared by pool_owner's files (pool_owner.cpp: creation, adoption, contexts and
// reclaim; pool_growth.cpp: growth a chunk at a time).
#pragma once

#include <string>

#include <slab/error.hpp>
#include <slab/mapped/pool_map.hpp>
#include <slab/platform/platform.hpp>

namespace shmd::pool_detail {

/// The slab::errc for a platform failure's cause.
slab::errc errc_of(slab::platform::sys_cause c);
/// What the operator can change about a failure to map a pool's memory; the platform's
/// message says what failed. `m` is null when the pool has no map yet.
std::string remedy(const slab::platform::sys_error& e, slab::mapped::pool_map* m, unsigned t);
/// "1048576 slots, 142.0 MiB on hugepages, mlocked, prepared in 10.8 ms", for the log.
std::string describe_tier(const slab::proto::tier_info& ti);

} // namespace shmd::pool_detail
