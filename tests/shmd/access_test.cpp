// shmd's access rules (shmd/access.hpp): who may use pools (the allow lists, or shmd's own
// uid and group when both are empty) and who may observe them (root, clients, and the
// monitor lists), by primary or supplementary group.
#include <gtest/gtest.h>

#include "shmd/access.hpp"

namespace {

constexpr slab::platform::peer_credentials shmd_itself{1, 500, 600};

shmd::access_policy policy(std::vector<std::uint32_t> allow_uids,
                           std::vector<std::uint32_t> allow_gids,
                           std::vector<std::uint32_t> monitor_uids = {},
                           std::vector<std::uint32_t> monitor_gids = {}) {
  shmd::daemon_config cfg;
  cfg.allow_uids = std::move(allow_uids);
  cfg.allow_gids = std::move(allow_gids);
  cfg.monitor_uids = std::move(monitor_uids);
  cfg.monitor_gids = std::move(monitor_gids);
  return shmd::access_policy(cfg, shmd_itself);
}

TEST(shmd_access, empty_allow_lists_admit_shmds_own_uid_and_group_only) {
  const shmd::access_policy p = policy({}, {});
  EXPECT_TRUE(p.may_use_pools({500, 1, {}}));
  EXPECT_TRUE(p.may_use_pools({1000, 600, {}}));        // primary group
  EXPECT_TRUE(p.may_use_pools({1000, 1000, {7, 600}})); // supplementary group
  EXPECT_FALSE(p.may_use_pools({1000, 1000, {7}}));
  EXPECT_FALSE(p.may_use_pools({0, 0, {}})) << "root is no client unless listed";
}

TEST(shmd_access, allow_lists_replace_shmds_own_identity) {
  const shmd::access_policy p = policy({1000}, {27});
  EXPECT_TRUE(p.may_use_pools({1000, 1000, {}}));
  EXPECT_TRUE(p.may_use_pools({1001, 27, {}}));
  EXPECT_TRUE(p.may_use_pools({1001, 1001, {27}}));
  EXPECT_FALSE(p.may_use_pools({500, 600, {}})) << "shmd's own uid is not implied any more";
}

TEST(shmd_access, observers_are_root_clients_and_the_monitor_lists) {
  const shmd::access_policy p = policy({1000}, {}, {2000}, {30});
  EXPECT_TRUE(p.may_observe({0, 0, {}}));
  EXPECT_TRUE(p.may_observe({1000, 1000, {}})) << "a client may observe";
  EXPECT_TRUE(p.may_observe({2000, 2000, {}}));
  EXPECT_TRUE(p.may_observe({2001, 30, {}}));
  EXPECT_TRUE(p.may_observe({2001, 2001, {30}}));
  EXPECT_FALSE(p.may_observe({2001, 2001, {31}}));
  EXPECT_FALSE(p.may_use_pools({2000, 30, {}})) << "monitors never use pools";
}

} // namespace
