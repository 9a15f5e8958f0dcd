// The segment directory is shmd's alone. Another user can create /dev/shm/shmd before a
// hand-started shmd (or after a reboot), or plant a link or a pool file in a directory
// they may write to; shmd then must not follow the link (a root shmd would create a file
// wherever it points) nor adopt the pool (whose values and headers that user could then
// rewrite under every client). Each case: shmd refuses to start, exit code 2, with a
// message naming the directory or file, its owner and mode, and it changes nothing.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

#include <slabtest/checks.hpp>
#include <slabtest/daemon.hpp>
#include <slabtest/files.hpp>
#include <slabtest/machine.hpp>
#include <slabtest/shmd.hpp>

namespace {

using namespace std::chrono_literals;
using slabtest::contains;
using slabtest::daemon_cfg;
using slabtest::is_root;
using slabtest::shmd_run;
using slabtest::temp_dir;

constexpr std::uint32_t nobody = 65534;

/// shmd on the default one-pool config with its segments in `segments`.
shmd_run start_on(const std::string& segments) {
  temp_dir dir;
  const std::string config = dir.file("shmd.toml");
  slabtest::write_file(config,
                       slabtest::config_text(daemon_cfg{}, dir.file("shmd.sock"), segments));
  return slabtest::run_shmd(dir, {"--config", config}, 20s);
}

void expect_refused(const shmd_run& r, const std::vector<std::string>& says) {
  EXPECT_EQ(r.status.code(), 2) << r.status.describe() << "\n" << r.err;
  EXPECT_FALSE(r.said_ready()) << r.err;
  for (const std::string& s : says)
    EXPECT_TRUE(contains(r.err, s)) << "missing '" << s << "' in:\n" << r.err;
}

std::size_t entries(const std::string& dir) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++n;
  }
  return n;
}

TEST(segment_dir_trust, another_users_directory_is_refused) {
  if (!is_root()) GTEST_SKIP() << "needs root to give the directory away";
  temp_dir segments("/dev/shm");
  ASSERT_EQ(::chown(segments.path().c_str(), nobody, nobody), 0);
  expect_refused(start_on(segments.path()),
                 {"refusing segment directory " + segments.path(), "owner uid 65534",
                  "belongs to another user", "chown -R"});
  EXPECT_EQ(entries(segments.path()), 0U) << "shmd wrote into another user's directory";
}

TEST(segment_dir_trust, a_directory_others_may_write_to_is_refused) {
  temp_dir segments("/dev/shm");
  ASSERT_EQ(::chmod(segments.path().c_str(), 0777), 0);
  expect_refused(start_on(segments.path()), {"mode 0777", "writable by every user"});
  EXPECT_EQ(entries(segments.path()), 0U);
  ASSERT_EQ(::chmod(segments.path().c_str(), 0770), 0);
  expect_refused(start_on(segments.path()), {"writable by its group"});
}

TEST(segment_dir_trust, a_linked_directory_is_refused) {
  temp_dir segments("/dev/shm");
  temp_dir links;
  const std::string link = links.file("segments");
  ASSERT_EQ(::symlink(segments.path().c_str(), link.c_str()), 0);
  expect_refused(start_on(link), {"is a symbolic link"});
  EXPECT_EQ(entries(segments.path()), 0U);
}

TEST(segment_dir_trust, a_planted_lock_file_link_is_not_followed) {
  temp_dir segments("/dev/shm");
  temp_dir elsewhere;
  const std::string target = elsewhere.file("created-by-shmd");
  ASSERT_EQ(::symlink(target.c_str(), (segments.path() + "/.shmd.lock").c_str()), 0);
  expect_refused(start_on(segments.path()), {".shmd.lock", "symbolic link"});
  EXPECT_FALSE(std::filesystem::exists(target)) << "shmd followed the planted link";
}

TEST(segment_dir_trust, a_planted_pool_file_is_not_adopted) {
  if (!is_root()) GTEST_SKIP() << "needs root to plant a file of another user";
  temp_dir segments("/dev/shm");
  const std::string planted = segments.path() + "/test.control"; // the pool's control segment
  slabtest::write_file(planted, std::string(8192, 'x'));
  ASSERT_EQ(::chown(planted.c_str(), nobody, nobody), 0);
  expect_refused(start_on(segments.path()),
                 {"segment " + planted, "owner uid 65534", "belongs to another user"});
  EXPECT_EQ(slabtest::read_file(planted), std::string(8192, 'x')) << "the planted file changed";
}

TEST(segment_dir_trust, a_planted_pool_link_is_not_followed) {
  temp_dir segments("/dev/shm");
  temp_dir elsewhere;
  const std::string target = elsewhere.file("victim");
  slabtest::write_file(target, "not a pool");
  ASSERT_EQ(::symlink(target.c_str(), (segments.path() + "/test.control").c_str()), 0);
  expect_refused(start_on(segments.path()), {"test.control", "not following it"});
  EXPECT_EQ(slabtest::read_file(target), "not a pool");
}

// Removing pools is an operator's job, often done as root on the directory of shmd's
// user: --destroy takes the lock if there is one, follows no link, creates nothing.
TEST(segment_dir_trust, destroy_by_root_works_on_shmd_users_directory) {
  if (!is_root()) GTEST_SKIP() << "needs root to give the directory away";
  temp_dir segments("/dev/shm");
  ASSERT_EQ(::chown(segments.path().c_str(), nobody, nobody), 0);
  temp_dir dir;
  const std::string config = dir.file("shmd.toml");
  slabtest::write_file(config,
                       slabtest::config_text(daemon_cfg{}, dir.file("shmd.sock"), segments.path()));
  const shmd_run r = slabtest::run_shmd(dir, {"--config", config, "--destroy"}, 20s);
  EXPECT_EQ(r.status.code(), 0) << r.status.describe() << "\n" << r.err;
  EXPECT_EQ(entries(segments.path()), 0U) << "--destroy left a file of root's behind";
}

} // namespace
