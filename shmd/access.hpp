// Who may use shmd: the allow lists (clients, who open pools and write to them) and the
// monitor lists (observers, who map pools read-only), checked once, at a connection's
// hello. Pure: the caller gathers the peer's credentials (SO_PEERCRED, SO_PEERGROUPS)
// and this file only decides, so the rules can be read and tested in one place.
#pragma once

#include <cstdint>
#include <vector>

#include <slab/platform/process.hpp>

#include "config.hpp"

namespace shmd {

/// A connected peer as the kernel recorded it when it connected.
struct peer_identity {
  std::uint32_t uid = 0, gid = 0;
  /// Its supplementary groups: members of an allowed group (usermod -aG slab alice)
  /// usually hold it as one of these, not as their primary gid.
  std::vector<std::uint32_t> groups;
};

class access_policy {
public:
  /// `self`: shmd's own credentials, what empty allow lists stand for.
  access_policy(const daemon_config& cfg, slab::platform::peer_credentials self);

  /// A client: in allow_uids, or in allow_gids by its primary or a supplementary group;
  /// with both lists empty, of shmd's own uid or group.
  [[nodiscard]] bool may_use_pools(const peer_identity& p) const;
  /// An observer reads pools through read-only mappings: root, whoever may connect as a
  /// client (it can read everything through its own mapping anyway), and the monitor
  /// lists.
  [[nodiscard]] bool may_observe(const peer_identity& p) const;

private:
  std::vector<std::uint32_t> allow_uids_, allow_gids_, monitor_uids_, monitor_gids_;
  std::uint32_t own_uid_, own_gid_;
};

} // namespace shmd
