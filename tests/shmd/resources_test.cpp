// shmd on a hostile machine, end to end with a real shmd: no hugepages, too few for
// growth, an RLIMIT_MEMLOCK too low, a full tmpfs or hugetlbfs, a NUMA node that does not
// exist, a segment directory shmd may not write. What must hold in each case: a start
// that cannot succeed fails before listening, with a message that names the pool, the
// resource and the fix, and leaves no file behind; a growth that cannot succeed leaves
// shmd serving and the pool consistent at its size, and a client that runs dry gets
// errc::exhausted. docs/troubleshooting.md lists the same cases for operators.
//
// Most cases change the machine (vm.nr_hugepages, mounts, another uid) and need root,
// which CI has; without it they skip and say why. Every change is undone by a RAII
// guard, whatever the test's outcome; mounts are made in a private mount namespace of
// the test process, so that even a crashed test leaves none on the host.
// SLABTEST_SHOW_LOG=1 prints shmd's log of each refused growth (the messages the
// troubleshooting page quotes).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <slab/client.hpp>
#include <slab/platform/platform.hpp>

#include <slabtest/checks.hpp>
#include <slabtest/daemon.hpp>
#include <slabtest/ledger.hpp>
#include <slabtest/machine.hpp>
#include <slabtest/pool_view.hpp>

namespace {

using namespace std::chrono_literals;
using slabtest::contains;
using slabtest::daemon;
using slabtest::daemon_cfg;
using slabtest::exit_status;
using slabtest::run_in_child;
using slabtest::shmd_run;
using slabtest::temp_dir;

constexpr std::uint32_t nobody = 65534;
constexpr std::uint64_t KiB = 1024;

using slabtest::is_root;

// ---- machine state, changed for one test and restored --------------------------------

using slabtest::hugepage_reserve;

/// Mounts from here on stay in this process (and its children): a test that dies
/// leaves no mount on the host. Once per process; false when it cannot (the mounts are
/// then still undone by scratch_mount, just not if the test crashes).
bool private_mounts() {
  static const bool done = ::unshare(CLONE_NEWNS) == 0 &&
                           ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
  return done;
}

/// A file system of `type` mounted with `options` on a fresh directory, unmounted after.
class scratch_mount {
public:
  scratch_mount(const std::string& type, const std::string& options) {
    if (!is_root()) {
      why_ = "mounting a " + type + " needs root";
      return;
    }
    (void)private_mounts();
    if (::mount(type.c_str(), dir_.path().c_str(), type.c_str(), 0, options.c_str()) != 0) {
      why_ = "mount -t " + type + " -o " + options + ": " + std::strerror(errno);
      return;
    }
    mounted_ = true;
  }
  ~scratch_mount() {
    if (mounted_) ::umount2(dir_.path().c_str(), MNT_DETACH);
  }
  scratch_mount(const scratch_mount&) = delete;
  scratch_mount& operator=(const scratch_mount&) = delete;

  [[nodiscard]] bool ok() const { return mounted_; }
  [[nodiscard]] const std::string& why() const { return why_; }
  [[nodiscard]] const std::string& path() const { return dir_.path(); }
  /// Bytes free on it (for tmpfs: what shmd left of its size).
  [[nodiscard]] std::uint64_t free_bytes() const {
    struct statvfs v {};
    if (::statvfs(dir_.path().c_str(), &v) != 0) return 0;
    return std::uint64_t{v.f_bavail} * v.f_frsize;
  }

private:
  temp_dir dir_; // removed after the unmount (members go after the destructor's body)
  bool mounted_ = false;
  std::string why_;
};

#define NEED(guard)                                                                                \
  if (!(guard).ok()) GTEST_SKIP() << (guard).why()

// ---- what a failed start must leave --------------------------------------------------

/// Files in `dir` but shmd's lock file: the segments a run left behind.
std::vector<std::string> segment_files(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name != ".shmd.lock") files.push_back(name);
  }
  return files;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v)
    s += (s.empty() ? "" : ", ") + x;
  return s.empty() ? "(none)" : s;
}

/// A directory for one run_shmd: config, socket and logs, reachable by `nobody` too.
struct run_dir {
  temp_dir dir;
  std::string socket = dir.file("shmd.sock");
  std::string config = dir.file("shmd.toml");
  explicit run_dir(bool open_to_all = false) {
    if (open_to_all) ::chmod(dir.path().c_str(), 01777); // sticky: shmd's socket stays its own
  }
  shmd_run run(const daemon_cfg& cfg, const std::string& segment_dir,
               std::optional<std::uint32_t> as = std::nullopt,
               std::optional<std::uint64_t> memlock = std::nullopt) {
    slabtest::write_file(config, slabtest::config_text(cfg, socket, segment_dir));
    ::chmod(config.c_str(), 0644);
    return slabtest::run_shmd(dir, {"--config", config}, 20s, as, memlock);
  }
};

/// A start that cannot succeed: exit code 2 (could not start), never ready, no socket,
/// no segment file in any of `dirs`, and a message that says everything in `says`.
void expect_refused_start(const shmd_run& r, const std::string& socket,
                          const std::vector<std::string>& dirs,
                          const std::vector<std::string>& says) {
  EXPECT_EQ(r.status.code(), 2) << r.status.describe() << "\n" << r.err;
  EXPECT_FALSE(r.said_ready());
  EXPECT_FALSE(std::filesystem::exists(socket)) << "a socket was left at " << socket;
  for (const std::string& d : dirs)
    EXPECT_TRUE(segment_files(d).empty()) << "left in " << d << ": " << joined(segment_files(d));
  for (const std::string& s : says)
    EXPECT_TRUE(contains(r.err, s)) << "no \"" << s << "\" in:\n" << r.err;
  EXPECT_FALSE(contains(r.err, "Sanitizer")) << r.err;
}

daemon_cfg one_pool(const std::string& hugepages, std::uint64_t capacity,
                    std::uint64_t max_capacity = 1U << 20) {
  daemon_cfg cfg;
  cfg.pools[0].hugepages = hugepages;
  cfg.pools[0].capacity = capacity;
  cfg.pools[0].max_capacity = max_capacity;
  return cfg;
}

/// What a pool takes to start, in bytes, as a probe shmd (its segments in /dev/shm,
/// nothing limited) makes it: the control segment and tier 0's meta and data segments.
/// Both follow the magazine size K (core::magazine_slots): the control segment holds
/// the magazines beyond one per K slots, a meta segment one per K of its slots.
struct start_bytes {
  std::uint64_t control = 0, tier0 = 0;
};
start_bytes to_start(const daemon_cfg& cfg) {
  daemon probe(cfg);
  slabtest::pool_view v(probe.socket_path(), "test");
  const slab::proto::pool_header& h = v.map().info();
  return {h.control_bytes, h.tiers[0].meta_bytes + h.tiers[0].data_bytes};
}

/// A size as shmd's messages write it: "344 KiB", "1 MiB" (in the largest unit that
/// divides it).
std::string bytes_text(std::uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  std::size_t u = 0;
  for (; u + 1 < std::size(units) && n >= 1024 && n % 1024 == 0; ++u)
    n /= 1024;
  return std::to_string(n) + " " + units[u];
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

// ---- a pool that cannot grow ---------------------------------------------------------

struct stats_seen {
  std::uint64_t ready = 0;
  unsigned tiers = 0;
  bool hugepages = false, fell_back = false;
};

/// In a child: fills the pool's `ready` slots (keys into `keys`), then finds it dry:
/// try_emplace gives nullopt and emplace throws errc::exhausted, each after grow_wait.
/// Every value still reads back. The pool stays at `ready` slots throughout.
int fill_until_exhausted(const std::string& socket, std::uint64_t ready,
                         slabtest::shared_array<std::uint64_t>& keys) {
  slab::client c = slab::client::connect(socket, {.grow_wait = 200ms});
  slab::pool<slabtest::stamp> p = c.open<slabtest::stamp>("test");
  CHILD_CHECK_MSG(p.stats().ready_slots == ready, "ready " << p.stats().ready_slots);
  for (std::uint32_t i = 0; i < ready; ++i)
    keys[i] = slabtest::allocate(p, 0, i).raw();
  CHILD_CHECK(!p.try_emplace(std::uint64_t{1} << 40).has_value());
  try {
    (void)p.emplace(std::uint64_t{1} << 41);
    CHILD_CHECK_MSG(false, "emplace in a dry pool did not throw");
  } catch (const slab::error& e) {
    CHILD_CHECK_MSG(e.code() == slab::errc::exhausted, slab::to_string(e.code())
                                                           << ": " << e.what());
    // shmd tried, failed and recorded why in the pool's header: the client says so.
    CHILD_CHECK_MSG(contains(e.what(), "shmd cannot add a tier ("), e.what());
  }
  CHILD_CHECK_MSG(p.stats().ready_slots == ready, "ready " << p.stats().ready_slots);
  for (std::uint32_t i = 0; i < ready; ++i) {
    const slabtest::stamp* s = p.get(slab::key::from_raw(keys[i]));
    CHILD_CHECK_MSG(s != nullptr && s->key == keys[i], "value " << i << " lost");
  }
  return 0;
}

/// In a child: shmd still serves after the failed growths: a new client connects, frees
/// every value and allocates again.
int still_serves(const std::string& socket, std::uint64_t n,
                 slabtest::shared_array<std::uint64_t>& keys) {
  slab::client c = slab::client::connect(socket, {.grow_wait = 200ms});
  slab::pool<slabtest::stamp> p = c.open<slabtest::stamp>("test");
  for (std::uint32_t i = 0; i < n; ++i)
    slabtest::check_and_erase(p, slab::key::from_raw(keys[i]));
  const slab::key k = slabtest::allocate(p, 1, 0);
  slabtest::check_and_erase(p, k);
  return 0;
}

/// The whole story of a growth that fails: shmd keeps serving at `ready` slots, logs
/// `why` once with the pool's size, clients see exhausted, nothing is lost, the audit is
/// clean before and after the values are freed, and shmd stops cleanly (the fixture).
void expect_growth_refused(daemon& d, std::uint64_t ready, const std::vector<std::string>& why) {
  slabtest::with_ledger ledger(ready + 64);
  slabtest::shared_array<std::uint64_t> keys(ready);
  const exit_status st =
      run_in_child([&] { return fill_until_exhausted(d.socket_path(), ready, keys); }, 60s);
  ASSERT_TRUE(st.ok()) << st.describe() << "\n" << d.stderr_text();
  ASSERT_TRUE(d.wait_for_log("the pool stays at " + std::to_string(ready) + " slots"))
      << d.stderr_text();
  const std::string log = d.stderr_text();
  if (std::getenv("SLABTEST_SHOW_LOG") != nullptr) std::fputs(log.c_str(), stdout);
  for (const std::string& s : why)
    EXPECT_TRUE(contains(log, s)) << "no \"" << s << "\" in:\n" << log;
  EXPECT_EQ(count_of(log, "the pool stays at"), 1U) << "a lasting failure is logged once:\n" << log;
  EXPECT_FALSE(contains(log, "tier 1 ready")) << log;
  slabtest::expect_clean_audit(d, ready);
  const exit_status st2 = run_in_child([&] { return still_serves(d.socket_path(), ready, keys); });
  EXPECT_TRUE(st2.ok()) << st2.describe() << "\n" << d.stderr_text();
  slabtest::expect_clean_audit(d, 0);
  EXPECT_TRUE(d.running());
}

/// In a child: allocates `n` values, enough for shmd to add tier 1 ahead of demand,
/// and reports the stats once tier 1 is there.
stats_seen grow_and_look(const std::string& socket, std::uint32_t n) {
  slabtest::shared_array<stats_seen> seen;
  const exit_status st = run_in_child([&] {
    slab::client c = slab::client::connect(socket);
    slab::pool<std::uint64_t> p = c.open<std::uint64_t>("test");
    for (std::uint32_t i = 0; i < n; ++i)
      (void)p.emplace(std::uint64_t{i});
    CHILD_CHECK(slabtest::eventually([&] { return p.stats().tiers >= 2; }, 10s));
    const slab::pool_stats s = p.stats();
    *seen = {s.ready_slots, s.tiers, s.hugepages, s.fell_back};
    return 0;
  });
  EXPECT_TRUE(st.ok()) << st.describe();
  return *seen;
}

// ---- hugepages -----------------------------------------------------------------------

TEST(resources_hugepages, require_without_any_refuses_to_start_naming_the_fix) {
  hugepage_reserve none(0);
  NEED(none);
  temp_dir segments("/dev/shm");
  run_dir rd;
  const shmd_run r = rd.run(one_pool("require", 4096), segments.path());
  // 4096 slots of 64 bytes, rounded up to whole hugepages: one 2 MiB page.
  expect_refused_start(r, rd.socket, {segments.path()},
                       {"pool 'test'", "2 MiB hugepages", "HugePages_Total 0",
                        "needs 1 free hugepage of 2 MiB", "vm.nr_hugepages",
                        "60-shmd-hugepages.conf", "hugepages = \"prefer\""});
  // Nothing of the failed start can be mistaken for a pool by the next one.
  daemon_cfg off = one_pool("off", 4096);
  off.segment_dir = segments.path();
  daemon d(off);
  EXPECT_FALSE(contains(d.stderr_text(), "adopted")) << d.stderr_text();
}

TEST(resources_hugepages, prefer_without_any_falls_back_warns_once_and_clients_see_it) {
  hugepage_reserve none(0);
  NEED(none);
  daemon d(one_pool("prefer", 4096)); // tier 0: 32768 slots, a whole hugepage of them
  const stats_seen s = grow_and_look(d.socket_path(), 30000);
  ASSERT_TRUE(d.wait_for_log("tier 1 ready")) << d.stderr_text();
  EXPECT_EQ(s.tiers, 2U);
  EXPECT_TRUE(s.fell_back);
  EXPECT_FALSE(s.hugepages);
  const std::string log = d.stderr_text();
  EXPECT_EQ(count_of(log, "is on normal pages"), 1U) << "warned once per pool:\n" << log;
  EXPECT_TRUE(contains(log, "pool 'test': tier 0 is on normal pages")) << log;
  EXPECT_TRUE(contains(log, "tier 1 ready: 32768 slots")) << log;
  EXPECT_FALSE(contains(log, "on hugepages")) << log;
}

TEST(resources_hugepages, require_with_too_few_for_growth_keeps_serving_at_its_size) {
  hugepage_reserve one(1); // tier 0's slots take it; tier 1 finds none
  NEED(one);
  daemon d(one_pool("require", 32768));
  ASSERT_TRUE(contains(d.stderr_text(), "tier 0 ready: 32768 slots")) << d.stderr_text();
  ASSERT_TRUE(contains(d.stderr_text(), "on hugepages")) << d.stderr_text();
  expect_growth_refused(d, 32768,
                        {"pool 'test': tier 1:", "HugePages_Free 0", "needs 1 free hugepage "});
  EXPECT_TRUE(segment_files(*d.config().segment_dir).size() == 2)
      << "control and tier 0's meta only: " << joined(segment_files(*d.config().segment_dir));
}

TEST(resources_hugepages, prefer_with_too_few_for_growth_falls_back_for_the_new_tier) {
  hugepage_reserve one(1);
  NEED(one);
  daemon d(one_pool("prefer", 32768));
  const stats_seen s = grow_and_look(d.socket_path(), 30000);
  ASSERT_TRUE(d.wait_for_log("tier 1 ready")) << d.stderr_text();
  const std::string log = d.stderr_text();
  EXPECT_TRUE(contains(log, "tier 0 ready: 32768 slots")) << log;
  EXPECT_EQ(count_of(log, "on hugepages"), 1U) << "tier 0 only:\n" << log;
  EXPECT_TRUE(contains(log, "tier 1 is on normal pages")) << log;
  EXPECT_EQ(count_of(log, "is on normal pages"), 1U) << log;
  EXPECT_TRUE(s.fell_back);
  EXPECT_FALSE(s.hugepages); // not every tier
}

// ---- RLIMIT_MEMLOCK ------------------------------------------------------------------

/// VmLck of a process, in bytes.
std::uint64_t locked_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmLck:", 0) == 0) return std::stoull(line.substr(6)) * KiB;
  }
  return 0;
}

/// The clients of a shmd running as nobody trust it (SHMD_USER) while this lives.
struct trusting_nobody {
  trusting_nobody() { ::setenv("SHMD_USER", "nobody", 1); }
  ~trusting_nobody() { ::unsetenv("SHMD_USER"); }
  trusting_nobody(const trusting_nobody&) = delete;
  trusting_nobody& operator=(const trusting_nobody&) = delete;
};

daemon_cfg as_nobody(daemon_cfg cfg, std::uint64_t memlock) {
  cfg.run_as = nobody;
  cfg.memlock_limit = memlock;
  cfg.dir_mode = 0711;  // the directory is nobody's (run_as); the test's clients reach it
  cfg.allow_uids = {0}; // the test's clients
  return cfg;
}

TEST(resources_mlock, limit_too_low_for_the_first_tier_refuses_to_start) {
  if (!is_root()) GTEST_SKIP() << "needs root to run shmd as another uid (root ignores the limit)";
  // Room for the control segment and 64 KiB more: tier 0 (256 KiB of slots) does not fit.
  const start_bytes need = to_start(one_pool("off", 4096));
  const std::uint64_t limit = need.control + 64 * KiB;
  ASSERT_LT(limit, need.control + need.tier0);
  temp_dir segments("/dev/shm");
  ASSERT_EQ(::chown(segments.path().c_str(), nobody, nobody), 0);
  run_dir rd(true);
  const shmd_run r = rd.run(one_pool("off", 4096), segments.path(), nobody, limit);
  expect_refused_start(r, rd.socket, {segments.path()},
                       {"pool 'test'", "mlock of", "RLIMIT_MEMLOCK is " + bytes_text(limit),
                        "LimitMEMLOCK=infinity", "ulimit -l", "CAP_IPC_LOCK",
                        "bytes locked to start"});
}

TEST(resources_mlock, limit_enough_for_the_first_tier_only_keeps_serving) {
  if (!is_root()) GTEST_SKIP() << "needs root to run shmd as another uid (root ignores the limit)";
  const trusting_nobody trust; // the clients below use a shmd that runs as nobody
  rlimit hard{};
  ASSERT_EQ(::getrlimit(RLIMIT_MEMLOCK, &hard), 0);
  std::uint64_t first_tier = 0; // what shmd locks to start
  {
    // Without CAP_SYS_RESOURCE the hard limit is as high as it goes: enough for 350 KiB.
    daemon probe(as_nobody(one_pool("off", 4096), hard.rlim_max));
    first_tier = locked_bytes(probe.pid());
  }
  ASSERT_GT(first_tier, 256 * KiB) << "tier 0's 256 KiB of slots are locked";
  // Tier 1 (another 4096 slots: 256 KiB of them) does not fit in 128 KiB more.
  daemon d(as_nobody(one_pool("off", 4096), first_tier + 128 * KiB));
  EXPECT_EQ(locked_bytes(d.pid()), first_tier);
  expect_growth_refused(
      d, 4096,
      {"pool 'test': tier 1:", "RLIMIT_MEMLOCK is", "LimitMEMLOCK=infinity", "bytes locked"});
  EXPECT_EQ(locked_bytes(d.pid()), first_tier) << "a failed tier leaves nothing locked";
}

// ---- full file systems ----------------------------------------------------------------

std::string tmpfs_options(std::uint64_t size) {
  return "size=" + std::to_string(size / KiB) + "k,mode=0700";
}

TEST(resources_full_tmpfs, first_tier_that_does_not_fit_refuses_to_start) {
  if (!is_root()) GTEST_SKIP() << "mounting a tmpfs needs root";
  // The control segment fits, and 128 KiB more: tier 0 (256 KiB of slots) does not.
  const start_bytes need = to_start(one_pool("off", 4096));
  const std::uint64_t size = need.control + 128 * KiB;
  ASSERT_LT(size, need.control + need.tier0);
  scratch_mount fs("tmpfs", tmpfs_options(size));
  NEED(fs);
  run_dir rd;
  const shmd_run r = rd.run(one_pool("off", 4096), fs.path());
  expect_refused_start(r, rd.socket, {fs.path()},
                       {"pool 'test'", "ENOSPC", "No space left on device", fs.path() + "/test.t0.",
                        "free of " + bytes_text(size)});
  EXPECT_EQ(fs.free_bytes(), size) << "everything shmd allocated there is given back";
}

TEST(resources_full_tmpfs, growth_that_does_not_fit_keeps_serving) {
  if (!is_root()) GTEST_SKIP() << "mounting a tmpfs needs root";
  // Control + tier 0 fit, and 128 KiB more: tier 1 (another 256 KiB of slots) does not.
  const start_bytes need = to_start(one_pool("off", 4096));
  const std::uint64_t size = need.control + need.tier0 + 128 * KiB;
  scratch_mount fs("tmpfs", tmpfs_options(size));
  NEED(fs);
  daemon_cfg cfg = one_pool("off", 4096);
  cfg.segment_dir = fs.path();
  daemon d(cfg);
  const std::uint64_t free_at_start = fs.free_bytes();
  expect_growth_refused(
      d, 4096,
      {"pool 'test': tier 1:", "ENOSPC", fs.path() + "/test.t1.", "free of " + bytes_text(size)});
  EXPECT_EQ(fs.free_bytes(), free_at_start) << "failed tiers leave no pages behind";
  EXPECT_EQ(segment_files(fs.path()).size(), 3U) << joined(segment_files(fs.path()));
}

// A tier is prepared and offered a chunk at a time (pool_map::chunk_end: 4 MiB of
// payloads). Here tier 2 (131072 slots: two chunks of 65536) has room on its tmpfs for
// its first chunk only: shmd offers that chunk, logs why the second cannot come, and
// keeps serving at the 196608 slots it has; a client fills them all, then finds the pool
// dry; nothing is lost.
TEST(resources_full_tmpfs, a_tier_that_fits_in_part_is_offered_as_far_as_it_goes) {
  if (!is_root()) GTEST_SKIP() << "mounting a tmpfs needs root";
  constexpr std::uint64_t chunk = 65536, tier0 = 65536;
  const daemon_cfg probe_cfg = one_pool("off", tier0, 4 * tier0);
  std::uint64_t control = 0, t2_meta = 0, t2_data = 0;
  {
    // A probe grows to tier 2 unhindered: the sizes of everything it makes.
    daemon probe(probe_cfg);
    const exit_status st = run_in_child([&] {
      slab::client c = slab::client::connect(probe.socket_path());
      slab::pool<std::uint64_t> p = c.open<std::uint64_t>("test");
      for (std::uint64_t i = 0; i < 3 * chunk; ++i)
        (void)p.emplace(i);
      return 0;
    });
    ASSERT_TRUE(st.ok()) << st.describe();
    slabtest::pool_view v(probe.socket_path(), "test");
    const slab::proto::pool_header& h = v.map().info();
    ASSERT_EQ(h.tiers_published.load(), 3U);
    ASSERT_EQ(h.tiers[2].slots, 2 * chunk);
    control = h.control_bytes + h.tiers[0].meta_bytes + h.tiers[0].data_bytes +
              h.tiers[1].meta_bytes + h.tiers[1].data_bytes;
    t2_meta = h.tiers[2].meta_bytes;
    t2_data = h.tiers[2].data_bytes;
  }
  // Room for tier 2's first half (its first chunk's headers, magazines and payloads,
  // with a page to spare), not for its second.
  const std::uint64_t size = control + (t2_meta + t2_data) / 2 + 64 * KiB;
  scratch_mount fs("tmpfs", tmpfs_options(size));
  NEED(fs);
  daemon_cfg cfg = probe_cfg;
  cfg.segment_dir = fs.path();
  daemon d(cfg);
  constexpr std::uint64_t offered = tier0 * 2 + chunk;
  slabtest::shared_array<std::uint64_t> keys(offered);
  const exit_status st = run_in_child(
      [&] {
        slab::client c = slab::client::connect(d.socket_path(), {.grow_wait = 200ms});
        slab::pool<std::uint64_t> p = c.open<std::uint64_t>("test");
        std::uint64_t n = 0;
        while (const std::optional<slab::key> k = p.try_emplace(n)) {
          CHILD_CHECK_MSG(n < offered, "more slots than shmd could prepare");
          keys[n++] = k->raw();
        }
        CHILD_CHECK_MSG(n == offered, "filled " << n << " of " << offered);
        CHILD_CHECK_MSG(p.stats().ready_slots == offered, "ready " << p.stats().ready_slots);
        CHILD_CHECK(p.stats().tiers == 3);
        for (std::uint64_t i = 0; i < n; ++i) {
          const std::uint64_t* v = p.get(slab::key::from_raw(keys[i]));
          CHILD_CHECK_MSG(v != nullptr && *v == i, "value " << i << " lost");
        }
        return 0;
      },
      120s);
  ASSERT_TRUE(st.ok()) << st.describe() << "\n" << d.stderr_text();
  ASSERT_TRUE(d.wait_for_log("the pool stays at " + std::to_string(offered) + " slots"))
      << d.stderr_text();
  const std::string log = d.stderr_text();
  EXPECT_TRUE(contains(log, "tier 2, slots " + std::to_string(offered) + " to " +
                                std::to_string(offered + chunk)))
      << log;
  EXPECT_TRUE(contains(log, "ENOSPC")) << log;
  EXPECT_FALSE(contains(log, "tier 2 ready")) << log;
  slabtest::expect_clean_audit(d, offered);
  EXPECT_TRUE(d.running());
}

TEST(resources_full_hugetlbfs, first_tier_that_does_not_fit_refuses_to_start) {
  hugepage_reserve four(4); // the machine has them; the mount allows one
  NEED(four);
  scratch_mount fs("hugetlbfs", "size=2M,pagesize=2M,mode=0700");
  NEED(fs);
  temp_dir segments("/dev/shm");
  run_dir rd;
  daemon_cfg cfg = one_pool("require", 65536); // 4 MiB of slots: two hugepages
  cfg.hugepage_dir = fs.path();
  const shmd_run r = rd.run(cfg, segments.path());
  expect_refused_start(r, rd.socket, {segments.path(), fs.path()},
                       {"pool 'test'", fs.path() + "/test.t0.data", "4 MiB of 2 MiB hugepages",
                        "has 1 of its 1 pages free", "needs 2 free hugepages"});
  EXPECT_EQ(slab::platform::query_hugepages().free, 4U) << "no hugepage stays taken";
}

TEST(resources_full_hugetlbfs, growth_beyond_the_mount_keeps_serving_with_require) {
  hugepage_reserve four(4);
  NEED(four);
  scratch_mount fs("hugetlbfs", "size=2M,pagesize=2M,mode=0700");
  NEED(fs);
  daemon_cfg cfg = one_pool("require", 32768); // tier 0: one hugepage, all the mount has
  cfg.hugepage_dir = fs.path();
  daemon d(cfg);
  expect_growth_refused(
      d, 32768, {"pool 'test': tier 1:", fs.path() + "/test.t1.data", "has 0 of its 1 pages free"});
  EXPECT_EQ(segment_files(fs.path()), std::vector<std::string>{"test.t0.data"});
  EXPECT_EQ(slab::platform::query_hugepages().free, 3U);
}

TEST(resources_full_hugetlbfs, growth_beyond_the_mount_falls_back_with_prefer) {
  hugepage_reserve four(4);
  NEED(four);
  scratch_mount fs("hugetlbfs", "size=2M,pagesize=2M,mode=0700");
  NEED(fs);
  daemon_cfg cfg = one_pool("prefer", 32768);
  cfg.hugepage_dir = fs.path();
  daemon d(cfg);
  const stats_seen s = grow_and_look(d.socket_path(), 30000);
  ASSERT_TRUE(d.wait_for_log("tier 1 ready")) << d.stderr_text();
  EXPECT_TRUE(contains(d.stderr_text(), "tier 1 is on normal pages")) << d.stderr_text();
  EXPECT_TRUE(s.fell_back);
  EXPECT_TRUE(std::filesystem::exists(*d.config().segment_dir + "/test.t1.data"));
}

// ---- NUMA and permissions --------------------------------------------------------------

TEST(resources_numa, a_node_that_does_not_exist_refuses_to_start_naming_the_nodes) {
  if (slab::platform::numa_node_count() > 7) GTEST_SKIP() << "this machine has a node 7";
  temp_dir segments("/dev/shm");
  run_dir rd;
  daemon_cfg cfg = one_pool("off", 4096);
  cfg.pools[0].numa_node = 7;
  const shmd_run r = rd.run(cfg, segments.path());
  expect_refused_start(r, rd.socket, {segments.path()},
                       {"pool 'test'", "NUMA node 7 does not exist", "this machine has",
                        "set numa_node to a node that exists"});
}

TEST(resources_permissions, a_segment_dir_shmd_may_not_write_refuses_to_start) {
  if (!is_root()) GTEST_SKIP() << "needs root to run shmd as another uid";
  temp_dir segments("/dev/shm");
  ::chmod(segments.path().c_str(), 0755); // root's: nobody may enter, not write
  run_dir rd(true);
  const shmd_run r = rd.run(one_pool("off", 4096), segments.path(), nobody);
  // Root's directory is not nobody's: refused before shmd tries to write there.
  expect_refused_start(r, rd.socket, {segments.path()},
                       {"refusing segment directory " + segments.path(), "owner uid 0",
                        "belongs to another user than this shmd's (uid 65534)", "chown -R"});
  // Nor a directory it would have to create in one it may not write.
  const shmd_run r2 = rd.run(one_pool("off", 4096), segments.path() + "/sub", nobody);
  expect_refused_start(r2, rd.socket, {},
                       {"cannot create segment directory " + segments.path() + "/sub",
                        "Permission denied", "uid 65534"});
}

} // namespace
