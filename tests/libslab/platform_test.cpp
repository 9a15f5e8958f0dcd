// The platform part (mmap, hugepages, mlock, NUMA, prefault) and locked_backing, tested
// by what the kernel reports afterwards: /proc/meminfo, /proc/self/status (VmLck,
// VmSize), /proc/self/smaps (KernelPageSize), mincore and move_pages.
//
// Hugepage tests change the system-wide vm.nr_hugepages and so need root; they restore
// the previous value, and take a file lock so that two test processes (ctest -j) never
// change it under each other. Without root they are skipped with the reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fcntl.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slab/error.hpp>
#include <slab/platform/locked_backing.hpp>
#include <slab/platform/platform.hpp>
#include <slab/slab.hpp>
#include <slabtest/machine.hpp>
#include <slabtest/process.hpp>

namespace sp = slab::platform;
using sp::page_policy;

namespace {

constexpr std::size_t KiB = 1024;
constexpr std::size_t MiB = 1024 * KiB;

using slabtest::is_root;
bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

std::uint64_t parse_u64(std::string_view s, int base = 10) {
  const std::size_t start = s.find_first_not_of(" \t");
  if (start == std::string_view::npos) return 0;
  s.remove_prefix(start);
  std::uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v, base);
  return v;
}

/// A "Key:   123 kB" field of /proc/self/status, in KiB (or its bare number).
std::uint64_t status_field(std::string_view key) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 &&
        line[key.size()] == ':') {
      return parse_u64(std::string_view(line).substr(key.size() + 1));
    }
  }
  return 0;
}
std::uint64_t vm_locked_kib() { return status_field("VmLck"); }
constexpr std::uint64_t in_kib(std::size_t bytes) { return bytes / KiB; } // status unit
std::uint64_t vm_size_kib() { return status_field("VmSize"); }

bool has_cap_ipc_lock() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("CapEff:", 0) == 0) {
      return ((parse_u64(std::string_view(line).substr(7), 16) >> 14) & 1) != 0; // CAP_IPC_LOCK
    }
  }
  return false;
}

/// Pages of [addr, addr+bytes) that mincore says are resident.
std::size_t resident_pages(const void* addr, std::size_t bytes) {
  const std::size_t page = sp::normal_page_size();
  std::vector<unsigned char> vec((bytes + page - 1) / page);
  if (::mincore(const_cast<void*>(addr), bytes, vec.data()) != 0) return 0;
  std::size_t n = 0;
  for (unsigned char v : vec)
    n += v & 1U;
  return n;
}
std::size_t page_count(std::size_t bytes) {
  return (bytes + sp::normal_page_size() - 1) / sp::normal_page_size();
}

/// KernelPageSize of the mapping holding p, from /proc/self/smaps (0 if not found).
std::size_t kernel_page_size_of(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  std::ifstream in("/proc/self/smaps");
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    const char c = line.empty() ? ' ' : line[0];
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) { // "start-end perms ..."
      const std::size_t dash = line.find('-');
      const std::uint64_t lo = parse_u64(std::string_view(line).substr(0, dash), 16);
      const std::uint64_t hi = parse_u64(std::string_view(line).substr(dash + 1), 16);
      inside = lo <= a && a < hi;
    } else if (inside && line.rfind("KernelPageSize:", 0) == 0) {
      return static_cast<std::size_t>(parse_u64(std::string_view(line).substr(15))) * KiB;
    }
  }
  return 0;
}

using hugepage_pool = slabtest::hugepage_reserve;

#define SLAB_NEED_POOL(pool)                                                                       \
  if (!(pool).ok()) GTEST_SKIP() << (pool).why()

/// Runs f in a forked child; its exit code (-1 if it did not exit).
template <class F> int run_in_child(F f) { return slabtest::run_in_child(f).code(); }
constexpr int child_skip = 77;

/// Fresh anonymous memory that no one has touched, for the functions that take an
/// address rather than mapping one themselves.
struct raw_region {
  explicit raw_region(std::size_t n)
      : bytes(n),
        addr(::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) {}
  ~raw_region() {
    if (addr != MAP_FAILED) ::munmap(addr, bytes);
  }
  raw_region(const raw_region&) = delete;
  raw_region& operator=(const raw_region&) = delete;
  std::size_t bytes;
  void* addr;
};

sp::map_options opts(page_policy p, bool lock = true, int node = -1) {
  sp::map_options o;
  o.hugepages = p;
  o.lock = lock;
  o.numa_node = node;
  return o;
}

/// An unmapped-on-exit result of map_anonymous, so a failing test leaks nothing.
struct mapped {
  explicit mapped(sp::result<sp::mapping> r) : res(std::move(r)) {}
  ~mapped() {
    if (res.ok()) sp::unmap(res.value());
  }
  mapped(const mapped&) = delete;
  mapped& operator=(const mapped&) = delete;
  const sp::mapping& operator*() const { return res.value(); }
  const sp::mapping* operator->() const { return &res.value(); }
  sp::result<sp::mapping> res;
};

// ---- basic facts -------------------------------------------------------------------

TEST(platform_info, normal_page_size_is_a_power_of_two) {
  const std::size_t p = sp::normal_page_size();
  EXPECT_GE(p, 4096U);
  EXPECT_EQ(p & (p - 1), 0U);
}

TEST(platform_info, query_hugepages_reflects_nr_hugepages) {
  hugepage_pool pool(8);
  SLAB_NEED_POOL(pool);
  const sp::hugepage_info h = sp::query_hugepages();
  EXPECT_EQ(h.total, 8U);
  EXPECT_EQ(h.free, 8U);
  EXPECT_EQ(h.available(), 8U);
  EXPECT_GT(h.page_size, sp::normal_page_size());
  EXPECT_EQ(h.page_size & (h.page_size - 1), 0U);
}

TEST(platform_info, memlock_limit_follows_setrlimit) {
  const int code = run_in_child([] {
    const rlimit low{256 * KiB, 256 * KiB};
    if (::setrlimit(RLIMIT_MEMLOCK, &low) != 0) return 1;
    return sp::memlock_limit() == 256 * KiB ? 0 : 2;
  });
  EXPECT_EQ(code, 0);
  rlimit now{};
  ASSERT_EQ(::getrlimit(RLIMIT_MEMLOCK, &now), 0);
  const std::uint64_t want =
      now.rlim_cur == RLIM_INFINITY ? std::numeric_limits<std::uint64_t>::max() : now.rlim_cur;
  EXPECT_EQ(sp::memlock_limit(), want);
}

// ---- map_anonymous: page policies --------------------------------------------------

TEST(platform_map_anonymous, off_maps_normal_pages_rounded_up_zeroed_and_writable) {
  mapped m(sp::map_anonymous(10000, opts(page_policy::off)));
  ASSERT_TRUE(m.res.ok()) << m.res.error().what;
  EXPECT_EQ(m->page_size, sp::normal_page_size());
  EXPECT_EQ(m->bytes % m->page_size, 0U);
  EXPECT_GE(m->bytes, 10000U);
  EXPECT_LT(m->bytes, 10000U + m->page_size);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(m->addr) % m->page_size, 0U);
  EXPECT_FALSE(m->huge);
  EXPECT_TRUE(m->locked);
  EXPECT_TRUE(m->fallback.empty());
  auto* b = static_cast<unsigned char*>(m->addr);
  for (std::size_t i = 0; i < m->bytes; ++i)
    ASSERT_EQ(b[i], 0) << "at " << i;
  b[m->bytes - 1] = 42;
  EXPECT_EQ(b[m->bytes - 1], 42);
}

TEST(platform_map_anonymous, unmap_gives_the_range_back) {
  void* addr = nullptr;
  std::size_t bytes = 0;
  {
    auto r = sp::map_anonymous(64 * KiB, opts(page_policy::off, false));
    ASSERT_TRUE(r.ok()) << r.error().what;
    addr = r.value().addr;
    bytes = r.value().bytes;
    sp::unmap(r.value());
  }
  std::vector<unsigned char> vec(page_count(bytes));
  EXPECT_EQ(::mincore(addr, bytes, vec.data()), -1);
  EXPECT_EQ(errno, ENOMEM) << "mincore answers ENOMEM for an unmapped range";
}

TEST(platform_map_anonymous, impossible_arguments_are_errors) {
  auto zero = sp::map_anonymous(0, opts(page_policy::off));
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.error().err, EINVAL);
  EXPECT_EQ(zero.error().cause, sp::sys_cause::invalid_argument);
  sp::map_options o = opts(page_policy::off);
  o.align = 3 * 4096;
  auto odd = sp::map_anonymous(4096, o);
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.error().cause, sp::sys_cause::invalid_argument);
  EXPECT_TRUE(contains(odd.error().what, "power of two")) << odd.error().what;
  auto huge =
      sp::map_anonymous(std::numeric_limits<std::size_t>::max() - 5, opts(page_policy::off));
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.error().cause, sp::sys_cause::memory);
}

TEST(platform_map_anonymous, honours_alignment_above_the_page_size) {
  for (std::size_t align : {64 * KiB, 2 * MiB, 64 * MiB}) {
    sp::map_options o = opts(page_policy::off, false);
    o.align = align;
    mapped m(sp::map_anonymous(100, o));
    ASSERT_TRUE(m.res.ok()) << m.res.error().what;
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(m->addr) % align, 0U) << "align " << align;
    EXPECT_EQ(m->bytes, sp::normal_page_size()) << "only the asked size stays mapped";
  }
}

TEST(platform_map_anonymous, over_alignment_leaves_no_address_space_behind) {
  // Each round over-reserves 1 GiB of address space; a missed trim would show in VmSize.
  const std::uint64_t before = vm_size_kib();
  sp::map_options o = opts(page_policy::off, false);
  o.align = 1024 * MiB;
  for (int i = 0; i < 64; ++i) {
    auto r = sp::map_anonymous(4096, o);
    ASSERT_TRUE(r.ok()) << r.error().what;
    sp::unmap(r.value());
  }
  EXPECT_LT(vm_size_kib(), before + in_kib(1024 * MiB)) << "VmSize grew by a GiB or more";
}

TEST(platform_map_anonymous, prefer_without_hugepages_falls_back_and_says_why) {
  hugepage_pool pool(0);
  SLAB_NEED_POOL(pool);
  mapped m(sp::map_anonymous(3 * MiB, opts(page_policy::prefer)));
  ASSERT_TRUE(m.res.ok()) << m.res.error().what;
  EXPECT_FALSE(m->huge);
  EXPECT_EQ(m->page_size, sp::normal_page_size());
  EXPECT_EQ(m->bytes, 3 * MiB);
  EXPECT_TRUE(m->locked);
  EXPECT_TRUE(contains(m->fallback, "hugepages")) << m->fallback;
  EXPECT_TRUE(contains(m->fallback, "vm.nr_hugepages")) << m->fallback;
  EXPECT_EQ(resident_pages(m->addr, m->bytes), page_count(m->bytes));
}

TEST(platform_map_anonymous, require_without_hugepages_fails_naming_hugepages) {
  hugepage_pool pool(0);
  SLAB_NEED_POOL(pool);
  const std::uint64_t before = vm_size_kib();
  auto r = sp::map_anonymous(3 * MiB, opts(page_policy::require));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().cause, sp::sys_cause::hugepages);
  EXPECT_NE(r.error().err, 0);
  EXPECT_TRUE(contains(r.error().what, "hugepages")) << r.error().what;
  EXPECT_TRUE(contains(r.error().what, "MAP_HUGETLB")) << r.error().what;
  EXPECT_TRUE(contains(r.error().what, "HugePages_Free 0")) << r.error().what;
  EXPECT_LT(vm_size_kib(), before + in_kib(3 * MiB)) << "nothing stays mapped";
}

TEST(platform_map_anonymous, require_with_reserved_hugepages_maps_prefaulted_hugepages) {
  hugepage_pool pool(64);
  SLAB_NEED_POOL(pool);
  const sp::hugepage_info before = sp::query_hugepages();
  {
    mapped m(sp::map_anonymous(3 * MiB, opts(page_policy::require)));
    ASSERT_TRUE(m.res.ok()) << m.res.error().what;
    EXPECT_TRUE(m->huge);
    EXPECT_TRUE(m->fallback.empty());
    EXPECT_EQ(m->page_size, before.page_size);
    EXPECT_EQ(m->bytes, 2 * before.page_size) << "3 MiB rounded up to whole hugepages";
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(m->addr) % before.page_size, 0U);
    EXPECT_EQ(kernel_page_size_of(m->addr), before.page_size);
    // Prefaulted: the pages left the free pool now, not at first touch.
    EXPECT_EQ(sp::query_hugepages().free, before.free - 2);
    EXPECT_EQ(resident_pages(m->addr, m->bytes), page_count(m->bytes));
  }
  EXPECT_EQ(sp::query_hugepages().free, before.free) << "unmap returns the hugepages";
}

TEST(platform_map_anonymous, prefer_with_reserved_hugepages_uses_them) {
  hugepage_pool pool(64);
  SLAB_NEED_POOL(pool);
  mapped m(sp::map_anonymous(1 * MiB, opts(page_policy::prefer)));
  ASSERT_TRUE(m.res.ok()) << m.res.error().what;
  EXPECT_TRUE(m->huge);
  EXPECT_TRUE(m->fallback.empty()) << m->fallback;
  EXPECT_EQ(kernel_page_size_of(m->addr), sp::query_hugepages().page_size);
}

TEST(platform_map_anonymous, require_with_too_few_hugepages_fails_and_keeps_the_pool) {
  hugepage_pool pool(2);
  SLAB_NEED_POOL(pool);
  const std::size_t hp = sp::query_hugepages().page_size;
  auto r = sp::map_anonymous(3 * hp, opts(page_policy::require));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().cause, sp::sys_cause::hugepages);
  EXPECT_TRUE(contains(r.error().what, "HugePages_Free 2")) << r.error().what;
  EXPECT_EQ(sp::query_hugepages().free, 2U);
}

TEST(platform_map_anonymous, huge_alignment_above_the_hugepage_size) {
  hugepage_pool pool(64);
  SLAB_NEED_POOL(pool);
  sp::map_options o = opts(page_policy::require);
  o.align = 16 * MiB;
  mapped m(sp::map_anonymous(1, o));
  ASSERT_TRUE(m.res.ok()) << m.res.error().what;
  EXPECT_TRUE(m->huge);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(m->addr) % o.align, 0U);
  EXPECT_EQ(m->bytes, m->page_size);
}

// ---- mlock -------------------------------------------------------------------------

TEST(platform_mlock, locked_mapping_raises_vmlck_until_unmapped) {
  const std::uint64_t before = vm_locked_kib();
  {
    mapped m(sp::map_anonymous(4 * MiB, opts(page_policy::off)));
    ASSERT_TRUE(m.res.ok()) << m.res.error().what;
    EXPECT_TRUE(m->locked);
    EXPECT_GE(vm_locked_kib(), before + in_kib(4 * MiB));
  }
  EXPECT_EQ(vm_locked_kib(), before);
}

TEST(platform_mlock, unlocked_mapping_leaves_vmlck_alone) {
  const std::uint64_t before = vm_locked_kib();
  mapped m(sp::map_anonymous(4 * MiB, opts(page_policy::off, false)));
  ASSERT_TRUE(m.res.ok()) << m.res.error().what;
  EXPECT_FALSE(m->locked);
  EXPECT_EQ(vm_locked_kib(), before);
}

TEST(platform_mlock, lock_locks_a_given_range) {
  raw_region r(1 * MiB);
  ASSERT_NE(r.addr, MAP_FAILED);
  const std::uint64_t before = vm_locked_kib();
  const sp::status s = sp::lock(r.addr, r.bytes);
  ASSERT_TRUE(s.ok()) << s.error().what;
  EXPECT_EQ(vm_locked_kib(), before + in_kib(r.bytes));
}

// Root has CAP_IPC_LOCK, which lets mlock ignore RLIMIT_MEMLOCK: the child lowers the
// limit, then becomes nobody (losing every capability) before mapping.
int map_under_low_memlock_limit() {
  const rlimit low{64 * KiB, 64 * KiB};
  if (::setrlimit(RLIMIT_MEMLOCK, &low) != 0) return 10;
  if (is_root()) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) return 11;
  }
  if (has_cap_ipc_lock()) return child_skip;
  if (sp::memlock_limit() != 64 * KiB) return 12;
  auto r = sp::map_anonymous(1 * MiB, opts(page_policy::off));
  if (r.ok()) return 13;
  std::fprintf(stderr, "child: %s\n", r.error().what.c_str());
  if (r.error().cause != sp::sys_cause::mlock) return 14;
  if (!contains(r.error().what, "RLIMIT_MEMLOCK is 64 KiB")) return 15;
  if (!contains(r.error().what, "mlock of 1 MiB")) return 16;
  if (!sp::map_anonymous(1 * MiB, opts(page_policy::off, false)).ok()) return 17;
  sp::locked_backing b(opts(page_policy::off));
  try {
    (void)b.allocate(1 * MiB, 64);
    return 18;
  } catch (const slab::error& e) {
    if (e.code() != slab::errc::mlock || !contains(e.what(), "RLIMIT_MEMLOCK")) return 19;
  }
  return 0;
}

TEST(platform_mlock, too_low_rlimit_memlock_is_an_error_naming_it) {
  const int code = run_in_child(map_under_low_memlock_limit);
  if (code == child_skip) GTEST_SKIP() << "cannot drop CAP_IPC_LOCK in the child";
  EXPECT_EQ(code, 0) << "see the child's exit code in map_under_low_memlock_limit";
}

// ---- prefault ----------------------------------------------------------------------

TEST(platform_prefault, faults_in_every_page) {
  raw_region r(64 * sp::normal_page_size());
  ASSERT_NE(r.addr, MAP_FAILED);
  ASSERT_EQ(resident_pages(r.addr, r.bytes), 0U) << "fresh memory starts absent";
  sp::prefault(r.addr, r.bytes, sp::normal_page_size());
  EXPECT_EQ(resident_pages(r.addr, r.bytes), 64U);
}

TEST(platform_prefault, an_unlocked_mapping_is_resident_on_return) {
  // Without mlock (which also faults pages in), prefaulting alone must do it.
  mapped m(sp::map_anonymous(8 * MiB + 123, opts(page_policy::off, false)));
  ASSERT_TRUE(m.res.ok()) << m.res.error().what;
  EXPECT_EQ(resident_pages(m->addr, m->bytes), page_count(m->bytes));
}

// ---- NUMA --------------------------------------------------------------------------

TEST(platform_numa, node_count_is_at_least_one) { EXPECT_GE(sp::numa_node_count(), 1); }

TEST(platform_numa, node_0_binds_and_every_page_is_there) {
  mapped m(sp::map_anonymous(2 * MiB, opts(page_policy::off, true, 0)));
  if (!m.res.ok() && m.res.error().err == ENOSYS) GTEST_SKIP() << m.res.error().what;
  ASSERT_TRUE(m.res.ok()) << m.res.error().what;
  auto nodes = sp::page_nodes(m->addr, m->bytes, m->page_size);
  ASSERT_TRUE(nodes.ok()) << nodes.error().what;
  ASSERT_EQ(nodes.value().size(), m->bytes / m->page_size);
  for (std::size_t i = 0; i < nodes.value().size(); ++i)
    EXPECT_EQ(nodes.value()[i], 0) << i;
}

TEST(platform_numa, node_0_with_hugepages) {
  hugepage_pool pool(64);
  SLAB_NEED_POOL(pool);
  mapped m(sp::map_anonymous(4 * MiB, opts(page_policy::require, true, 0)));
  if (!m.res.ok() && m.res.error().err == ENOSYS) GTEST_SKIP() << m.res.error().what;
  ASSERT_TRUE(m.res.ok()) << m.res.error().what;
  auto nodes = sp::page_nodes(m->addr, m->bytes, m->page_size);
  ASSERT_TRUE(nodes.ok()) << nodes.error().what;
  ASSERT_EQ(nodes.value().size(), 2U);
  for (int n : nodes.value())
    EXPECT_EQ(n, 0);
}

TEST(platform_numa, nonexistent_node_is_a_clear_error) {
  raw_region r(64 * KiB);
  ASSERT_NE(r.addr, MAP_FAILED);
  for (int node : {999, -2}) {
    const sp::status s = sp::bind_to_node(r.addr, r.bytes, node);
    ASSERT_FALSE(s.ok());
    if (s.error().err == ENOSYS) GTEST_SKIP() << s.error().what;
    EXPECT_EQ(s.error().cause, sp::sys_cause::numa);
    const std::string want =
        "NUMA node " + std::to_string(node) + " does not exist (this machine has ";
    EXPECT_TRUE(contains(s.error().what, want)) << s.error().what;
    if (sp::numa_node_count() == 1) {
      EXPECT_TRUE(contains(s.error().what, "has 1 node: 0)")) << s.error().what;
    }
  }
}

TEST(platform_numa, map_with_nonexistent_node_fails_and_leaves_nothing_mapped) {
  if (sp::numa_node_count() > 3) GTEST_SKIP() << "node 3 may exist here";
  const std::uint64_t before = vm_size_kib();
  for (int i = 0; i < 16; ++i) {
    auto r = sp::map_anonymous(1024 * MiB, opts(page_policy::off, false, 3));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().cause, sp::sys_cause::numa);
    EXPECT_TRUE(contains(r.error().what, "NUMA node 3 does not exist")) << r.error().what;
  }
  EXPECT_LT(vm_size_kib(), before + in_kib(1024 * MiB)) << "a failed map must unmap its GiB";
}

TEST(platform_numa, page_nodes_reports_absent_pages_as_negative_errno) {
  raw_region r(4 * sp::normal_page_size());
  ASSERT_NE(r.addr, MAP_FAILED);
  auto nodes = sp::page_nodes(r.addr, r.bytes, sp::normal_page_size());
  if (!nodes.ok() && nodes.error().err == ENOSYS) GTEST_SKIP() << nodes.error().what;
  ASSERT_TRUE(nodes.ok()) << nodes.error().what;
  ASSERT_EQ(nodes.value().size(), 4U);
  for (int n : nodes.value())
    EXPECT_EQ(n, -ENOENT);
}

TEST(platform_numa, page_nodes_samples_every_stride) {
  raw_region r(5 * sp::normal_page_size());
  ASSERT_NE(r.addr, MAP_FAILED);
  sp::prefault(r.addr, r.bytes, sp::normal_page_size());
  auto nodes = sp::page_nodes(r.addr, r.bytes, 2 * sp::normal_page_size());
  if (!nodes.ok() && nodes.error().err == ENOSYS) GTEST_SKIP() << nodes.error().what;
  ASSERT_TRUE(nodes.ok()) << nodes.error().what;
  EXPECT_EQ(nodes.value().size(), 3U) << "pages 0, 2 and 4";
  for (int n : nodes.value())
    EXPECT_GE(n, 0);
  auto bad = sp::page_nodes(r.addr, r.bytes, 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().cause, sp::sys_cause::invalid_argument);
}

// ---- locked_backing ----------------------------------------------------------------

static_assert(std::is_nothrow_move_constructible_v<sp::locked_backing>);
static_assert(std::is_nothrow_move_assignable_v<sp::locked_backing>);
static_assert(!std::is_copy_constructible_v<sp::locked_backing>);
static_assert(slab::backing<sp::locked_backing>);

struct warnings {
  std::vector<std::string> seen;
  sp::locked_backing::warning_sink sink() {
    return [this](const std::string& m) { seen.push_back(m); };
  }
};

using locked_slab = slab::slab<std::uint64_t, sp::locked_backing>;
constexpr std::uint64_t first_tier = 512;
constexpr std::uint64_t five_tiers = first_tier * 16; // 512 + 512 + 1024 + 2048 + 4096

std::uint64_t value_for(std::uint64_t i) { return i * 0x9E3779B97F4A7C15ULL + 7; }

/// Fills s past five tiers and checks that every value is still where its key says.
std::vector<slab::key> fill_and_check(locked_slab& s) {
  std::vector<slab::key> keys;
  std::vector<const std::uint64_t*> where;
  for (std::uint64_t i = 0; i < five_tiers; ++i) {
    keys.push_back(s.emplace(value_for(i)));
    where.push_back(s.get(keys.back()));
  }
  EXPECT_GE(s.tier_count(), 5U);
  for (std::uint64_t i = 0; i < five_tiers; ++i) {
    const std::uint64_t* v = s.get(keys[i]);
    EXPECT_EQ(v, where[i]) << "values never move";
    if (v == nullptr || *v != value_for(i)) {
      ADD_FAILURE() << "value " << i << " lost";
      break;
    }
  }
  return keys;
}

sp::locked_backing backing(page_policy p, warnings& w, int node = -1) {
  return sp::locked_backing(opts(p, true, node), w.sink());
}

TEST(platform_locked_backing, slab_grows_on_normal_pages_with_off) {
  warnings w;
  const std::uint64_t locked_before = vm_locked_kib();
  locked_slab s({.first_tier = first_tier}, backing(page_policy::off, w));
  const auto keys = fill_and_check(s);
  EXPECT_TRUE(w.seen.empty());
  EXPECT_EQ(kernel_page_size_of(s.get(keys.back())), sp::normal_page_size());
  EXPECT_GT(vm_locked_kib(), locked_before) << "tiers are mlocked";
}

TEST(platform_locked_backing, slab_falls_back_with_prefer_and_warns_once) {
  hugepage_pool pool(0);
  SLAB_NEED_POOL(pool);
  warnings w;
  locked_slab s({.first_tier = first_tier}, backing(page_policy::prefer, w));
  const auto keys = fill_and_check(s);
  ASSERT_EQ(w.seen.size(), 1U) << "one warning, however many tiers fell back";
  EXPECT_TRUE(contains(w.seen[0], "hugepages")) << w.seen[0];
  EXPECT_EQ(kernel_page_size_of(s.get(keys.back())), sp::normal_page_size());
}

TEST(platform_locked_backing, slab_uses_hugepages_with_prefer_when_reserved) {
  hugepage_pool pool(64);
  SLAB_NEED_POOL(pool);
  const sp::hugepage_info before = sp::query_hugepages();
  warnings w;
  locked_slab s({.first_tier = first_tier}, backing(page_policy::prefer, w));
  const auto keys = fill_and_check(s);
  EXPECT_TRUE(w.seen.empty()) << (w.seen.empty() ? "" : w.seen.front());
  for (std::uint64_t i : {std::uint64_t{0}, first_tier, five_tiers - 1}) {
    EXPECT_EQ(kernel_page_size_of(s.get(keys[i])), before.page_size) << "slot " << i;
  }
  EXPECT_GE(before.free - sp::query_hugepages().free, s.tier_count())
      << "each tier takes at least one hugepage, prefaulted";
}

TEST(platform_locked_backing, slab_with_require_and_no_hugepages_throws_hugepages) {
  hugepage_pool pool(0);
  SLAB_NEED_POOL(pool);
  warnings w;
  locked_slab s({.first_tier = first_tier}, backing(page_policy::require, w));
  try {
    (void)s.emplace(1U);
    FAIL() << "emplace must throw";
  } catch (const slab::error& e) {
    EXPECT_EQ(e.code(), slab::errc::hugepages);
    EXPECT_TRUE(contains(e.what(), "hugepages")) << e.what();
  }
  EXPECT_FALSE(s.try_emplace(2U).has_value());
  EXPECT_EQ(s.size(), 0U);
}

TEST(platform_locked_backing, fell_back_tracks_what_happened) {
  hugepage_pool pool(0);
  SLAB_NEED_POOL(pool);
  warnings w;
  sp::locked_backing off = backing(page_policy::off, w);
  void* p = off.allocate(64 * KiB, 64);
  EXPECT_FALSE(off.fell_back()) << "off never falls back: it never tried";
  off.deallocate(p, 64 * KiB, 64);
  sp::locked_backing prefer = backing(page_policy::prefer, w);
  EXPECT_FALSE(prefer.fell_back());
  void* a = prefer.allocate(64 * KiB, 64);
  void* b = prefer.allocate(128 * KiB, 64);
  EXPECT_TRUE(prefer.fell_back());
  EXPECT_EQ(w.seen.size(), 1U);
  prefer.deallocate(a, 64 * KiB, 64);
  prefer.deallocate(b, 128 * KiB, 64);
}

TEST(platform_locked_backing, default_sink_writes_one_line_on_stderr) {
  hugepage_pool pool(0);
  SLAB_NEED_POOL(pool);
  testing::internal::CaptureStderr();
  {
    sp::locked_backing b(opts(page_policy::prefer));
    b.deallocate(b.allocate(4096, 64), 4096, 64);
    b.deallocate(b.allocate(4096, 64), 4096, 64);
  }
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.rfind("slab: warning: ", 0), 0U) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}

TEST(platform_locked_backing, nonexistent_node_throws_numa) {
  if (sp::numa_node_count() > 999) GTEST_SKIP() << "node 999 exists here";
  warnings w;
  sp::locked_backing b = backing(page_policy::off, w, 999);
  try {
    (void)b.allocate(4096, 64);
    FAIL() << "allocate must throw";
  } catch (const slab::error& e) {
    EXPECT_EQ(e.code(), slab::errc::numa);
    EXPECT_TRUE(contains(e.what(), "NUMA node 999")) << e.what();
  }
}

TEST(platform_locked_backing, honours_alignment_and_rejects_non_powers_of_two) {
  warnings w;
  sp::locked_backing b = backing(page_policy::off, w);
  for (std::size_t align : {std::size_t{64}, 64 * KiB, 2 * MiB}) {
    void* p = b.allocate(100, align);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % align, 0U) << align;
    b.deallocate(p, 100, align);
  }
  try {
    (void)b.allocate(100, 48);
    FAIL() << "align 48 must be refused";
  } catch (const slab::error& e) {
    EXPECT_EQ(e.code(), slab::errc::invalid_argument);
  }
}

struct alignas(8192) page_sized {
  std::uint64_t v;
  explicit page_sized(std::uint64_t x) : v(x) {}
};

TEST(platform_locked_backing, slab_of_over_aligned_values) {
  warnings w;
  slab::slab<page_sized, sp::locked_backing> s({.first_tier = 4}, backing(page_policy::off, w));
  std::vector<slab::key> keys;
  for (std::uint64_t i = 0; i < 32; ++i)
    keys.push_back(s.emplace(i));
  for (std::uint64_t i = 0; i < 32; ++i) {
    const page_sized* p = s.get(keys[i]);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->v, i);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 8192, 0U);
  }
}

TEST(platform_locked_backing, destructor_unmaps_what_was_not_deallocated) {
  const std::uint64_t before = vm_locked_kib();
  {
    warnings w;
    sp::locked_backing b = backing(page_policy::off, w);
    (void)b.allocate(2 * MiB, 64);
    EXPECT_GE(vm_locked_kib(), before + in_kib(2 * MiB));
  }
  EXPECT_EQ(vm_locked_kib(), before);
}

TEST(platform_locked_backing, moves_hand_over_the_blocks) {
  const std::uint64_t before = vm_locked_kib();
  warnings w;
  sp::locked_backing a = backing(page_policy::off, w);
  void* p = a.allocate(1 * MiB, 64);
  sp::locked_backing b(std::move(a));
  sp::locked_backing c = backing(page_policy::off, w);
  c = std::move(b);
  static_cast<unsigned char*>(p)[0] = 1; // still mapped
  c.deallocate(p, 1 * MiB, 64);
  EXPECT_EQ(vm_locked_kib(), before);
}

TEST(platform_locked_backing, a_moved_slab_keeps_its_values) {
  warnings w;
  locked_slab s({.first_tier = first_tier}, backing(page_policy::off, w));
  std::vector<slab::key> keys;
  for (std::uint64_t i = 0; i < 3 * first_tier; ++i)
    keys.push_back(s.emplace(value_for(i)));
  locked_slab t(std::move(s));
  locked_slab u({.first_tier = first_tier}, backing(page_policy::off, w));
  (void)u.emplace(1U);
  u = std::move(t);
  for (std::uint64_t i = 0; i < keys.size(); ++i) {
    const std::uint64_t* v = u.get(keys[i]);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(*v, value_for(i));
  }
}

} // namespace
