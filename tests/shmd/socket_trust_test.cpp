// Who may stand behind the control socket. shmd listens only in a directory no other
// user can write to (or a sticky one, where nobody removes another user's file), and a
// client maps memory only from a daemon running as root, as its own user or as shmd's
// configured user: otherwise a user who can bind the socket path first, or replace the
// socket, would be handed other users' values.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

#include <slab/client.hpp>
#include <slab/error.hpp>
#include <slab/observer.hpp>

#include <slabtest/checks.hpp>
#include <slabtest/daemon.hpp>
#include <slabtest/files.hpp>
#include <slabtest/machine.hpp>
#include <slabtest/shmd.hpp>

namespace {

using namespace std::chrono_literals;
using slabtest::contains;
using slabtest::daemon;
using slabtest::daemon_cfg;
using slabtest::is_root;
using slabtest::shmd_run;
using slabtest::temp_dir;

constexpr std::uint32_t nobody = 65534;

/// Runs shmd with its socket in a directory of `mode` (owned by `owner` when set).
shmd_run run_in_dir(unsigned mode, std::optional<std::uint32_t> owner = std::nullopt) {
  temp_dir dir;
  temp_dir segments("/dev/shm");
  const std::string sockdir = dir.file("run");
  EXPECT_EQ(::mkdir(sockdir.c_str(), 0700), 0);
  EXPECT_EQ(::chmod(sockdir.c_str(), static_cast<mode_t>(mode)), 0);
  if (owner) {
    EXPECT_EQ(::chown(sockdir.c_str(), *owner, *owner), 0);
  }
  const std::string config = dir.file("shmd.toml");
  slabtest::write_file(
      config, slabtest::config_text(daemon_cfg{}, sockdir + "/shmd.sock", segments.path()));
  shmd_run r = slabtest::run_shmd(dir, {"--config", config}, 20s);
  EXPECT_FALSE(std::filesystem::exists(sockdir + "/shmd.sock")) << "shmd left its socket";
  return r;
}

TEST(socket_trust, shmd_refuses_a_socket_directory_every_user_can_write) {
  const shmd_run r = run_in_dir(0777);
  EXPECT_EQ(r.status.code(), 2) << r.status.describe() << "\n" << r.err;
  EXPECT_FALSE(r.said_ready());
  for (const char* says :
       {"refusing to listen on", "mode 0777", "writable by every user", "not sticky", "chmod +t"})
    EXPECT_TRUE(contains(r.err, says)) << "missing '" << says << "' in:\n" << r.err;
}

TEST(socket_trust, shmd_refuses_a_socket_directory_its_group_can_write) {
  const shmd_run r = run_in_dir(0770);
  EXPECT_EQ(r.status.code(), 2) << r.status.describe() << "\n" << r.err;
  EXPECT_TRUE(contains(r.err, "writable by its group")) << r.err;
}

TEST(socket_trust, shmd_refuses_a_socket_directory_of_another_user) {
  if (!is_root()) GTEST_SKIP() << "needs root to give the directory away";
  const shmd_run r = run_in_dir(0755, nobody);
  EXPECT_EQ(r.status.code(), 2) << r.status.describe() << "\n" << r.err;
  EXPECT_TRUE(contains(r.err, "owner uid 65534")) << r.err;
  EXPECT_TRUE(contains(r.err, "belongs to another user")) << r.err;
}

TEST(socket_trust, shmd_serves_from_a_sticky_directory) {
  daemon_cfg cfg;
  cfg.dir_mode = 01777; // like /tmp: others may create files, never remove shmd's
  daemon d(cfg);
  slab::client c = slab::client::connect(d.socket_path());
  slab::pool<std::uint64_t> p = c.open<std::uint64_t>("test");
  const slab::key k = p.emplace(std::uint64_t{7});
  EXPECT_EQ(*p.get(k), 7U);
}

/// A real shmd running as nobody, which root's clients must not trust by default.
daemon_cfg as_nobody() {
  daemon_cfg cfg;
  cfg.run_as = nobody;
  cfg.dir_mode = 0711;  // nobody's directory; root's clients reach the socket
  cfg.allow_uids = {0}; // the test's clients
  return cfg;
}

TEST(socket_trust, a_client_refuses_a_daemon_of_another_user) {
  if (!is_root()) GTEST_SKIP() << "needs root to run shmd as another uid";
  ASSERT_EQ(::unsetenv("SHMD_USER"), 0);
  daemon d(as_nobody());
  try {
    (void)slab::client::connect(d.socket_path());
    ADD_FAILURE() << "a client connected to a daemon running as nobody";
  } catch (const slab::error& e) {
    EXPECT_EQ(e.code(), slab::errc::permission_denied) << e.what();
    for (const char* says : {"refusing shmd at", "runs as uid 65534", "SHMD_USER",
                             "client_options::daemon_user", "another user may have taken"})
      EXPECT_TRUE(contains(e.what(), says)) << "missing '" << says << "' in: " << e.what();
  }
  // The read-only observer (slabctl's) maps pools too: the same check.
  EXPECT_THROW(slab::observe::observer o(d.socket_path()), slab::error);
}

TEST(socket_trust, a_daemon_user_named_by_the_program_or_the_environment_is_trusted) {
  if (!is_root()) GTEST_SKIP() << "needs root to run shmd as another uid";
  daemon d(as_nobody());
  slab::client_options opt;
  opt.daemon_user = "nobody";
  {
    slab::client c = slab::client::connect(d.socket_path(), opt);
    slab::pool<std::uint64_t> p = c.open<std::uint64_t>("test");
    const slab::key k = p.emplace(std::uint64_t{42});
    EXPECT_EQ(*p.get(k), 42U);
    EXPECT_TRUE(p.erase(k));
  }
  ASSERT_EQ(::setenv("SHMD_USER", "nobody", 1), 0);
  {
    slab::client c = slab::client::connect(d.socket_path());
    EXPECT_NO_THROW((void)c.open<std::uint64_t>("test"));
    slab::observe::observer o(d.socket_path());
    EXPECT_EQ(o.pool_count(), 1U);
  }
  // A user named on purpose must exist: a typo is an error, not a silent default.
  ASSERT_EQ(::setenv("SHMD_USER", "no-such-user-here", 1), 0);
  try {
    (void)slab::client::connect(d.socket_path());
    ADD_FAILURE() << "connected with SHMD_USER naming nobody on this machine";
  } catch (const slab::error& e) {
    EXPECT_EQ(e.code(), slab::errc::invalid_argument) << e.what();
    EXPECT_TRUE(contains(e.what(), "'no-such-user-here' (from SHMD_USER) is no user")) << e.what();
  }
  ASSERT_EQ(::unsetenv("SHMD_USER"), 0);
}

} // namespace
