#include "access.hpp"

#include <algorithm>

namespace shmd {
namespace {

bool listed(const std::vector<std::uint32_t>& ids, std::uint32_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

bool in_group(const peer_identity& p, std::uint32_t gid) {
  return p.gid == gid || listed(p.groups, gid);
}

bool in_any_group(const peer_identity& p, const std::vector<std::uint32_t>& gids) {
  return std::any_of(gids.begin(), gids.end(), [&](std::uint32_t g) { return in_group(p, g); });
}

} // namespace

access_policy::access_policy(const daemon_config& cfg, slab::platform::peer_credentials self)
    : allow_uids_(cfg.allow_uids), allow_gids_(cfg.allow_gids), monitor_uids_(cfg.monitor_uids),
      monitor_gids_(cfg.monitor_gids), own_uid_(self.uid), own_gid_(self.gid) {}

bool access_policy::may_use_pools(const peer_identity& p) const {
  if (allow_uids_.empty() && allow_gids_.empty()) return p.uid == own_uid_ || in_group(p, own_gid_);
  return listed(allow_uids_, p.uid) || in_any_group(p, allow_gids_);
}

bool access_policy::may_observe(const peer_identity& p) const {
  return p.uid == 0 || may_use_pools(p) || listed(monitor_uids_, p.uid) ||
         in_any_group(p, monitor_gids_);
}

} // namespace shmd
