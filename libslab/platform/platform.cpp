// The platform part: every OS call about memory (mmap, mbind, mlock, move_pages,
// /proc/meminfo). See platform.hpp for the contract: errors are values, nothing prints.
#include <slab/platform/platform.hpp>

#include "internal.hpp"

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <limits>
#include <string_view>
#include <system_error>

#include <numa.h>
#include <numaif.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace slab::platform {
namespace {

using namespace detail; // NOLINT(google-build-using-namespace): this library's own helpers

// ---- /proc/meminfo ---------------------------------------------------------------

/// The number after "Key:" in a /proc/meminfo (or /proc/self/status) line, if the line
/// has that key.
bool meminfo_value(std::string_view line, std::string_view key, std::uint64_t& out) {
  if (line.size() <= key.size() || line.substr(0, key.size()) != key || line[key.size()] != ':')
    return false;
  std::string_view rest = line.substr(key.size() + 1);
  const std::size_t start = rest.find_first_not_of(" \t");
  if (start == std::string_view::npos) return false;
  rest.remove_prefix(start);
  return std::from_chars(rest.data(), rest.data() + rest.size(), out).ec == std::errc{};
}

void parse_meminfo_line(std::string_view line, hugepage_info& h) {
  std::uint64_t kib = 0;
  if (meminfo_value(line, "HugePages_Total", h.total)) return;
  if (meminfo_value(line, "HugePages_Free", h.free)) return;
  if (meminfo_value(line, "HugePages_Rsvd", h.reserved)) return;
  if (meminfo_value(line, "HugePages_Surp", h.surplus)) return;
  if (meminfo_value(line, "Hugepagesize", kib)) h.page_size = static_cast<std::size_t>(kib) * 1024;
}

// ---- mmap --------------------------------------------------------------------------

constexpr int anon_flags = MAP_PRIVATE | MAP_ANONYMOUS;
constexpr int rw = PROT_READ | PROT_WRITE;

/// Maps len bytes at an address aligned to `align` (> page). mmap only promises page
/// alignment, so reserve len + align of address space without memory (PROT_NONE,
/// MAP_NORESERVE), place the real mapping over its aligned part and give back the rest.
void* map_over_aligned(std::size_t len, std::size_t align, int flags) noexcept {
  const std::size_t span = len + align;
  void* res = ::mmap(nullptr, span, PROT_NONE, anon_flags | MAP_NORESERVE, -1, 0);
  if (res == MAP_FAILED) return MAP_FAILED;
  const auto lo = reinterpret_cast<std::uintptr_t>(res);
  const std::uintptr_t at = (lo + align - 1) & ~(std::uintptr_t{align} - 1);
  void* p = ::mmap(reinterpret_cast<void*>(at), len, rw, anon_flags | MAP_FIXED | flags, -1, 0);
  if (p == MAP_FAILED) {
    const int e = errno;
    ::munmap(res, span);
    errno = e;
    return MAP_FAILED;
  }
  if (at > lo) ::munmap(res, at - lo);
  const std::uintptr_t end = at + len;
  if (lo + span > end) ::munmap(reinterpret_cast<void*>(end), lo + span - end);
  return p;
}

/// mmap of len bytes (a multiple of page) aligned to max(page, align); errno on failure.
void* map_region(std::size_t len, std::size_t page, std::size_t align, int flags) noexcept {
  if (align <= page) return ::mmap(nullptr, len, rw, anon_flags | flags, -1, 0);
  if (len > std::numeric_limits<std::size_t>::max() - align) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  return map_over_aligned(len, align, flags);
}

result<mapping> map_huge(std::size_t bytes, std::size_t align) {
  const hugepage_info h = query_hugepages();
  if (h.page_size == 0) {
    return fail(ENOTSUP,
                "hugepages for " + format_bytes(bytes) +
                    ": the kernel has no hugetlb support (no Hugepagesize in /proc/meminfo)",
                sys_cause::hugepages);
  }
  const std::size_t len = round_up(bytes, h.page_size);
  void* p = len == 0 ? MAP_FAILED : map_region(len, h.page_size, align, MAP_HUGETLB);
  if (p == MAP_FAILED) {
    const int e = len == 0 ? ENOMEM : errno;
    return fail(e,
                "mmap of " + format_bytes(len) + " of " + format_bytes(h.page_size) +
                    " hugepages (MAP_HUGETLB): " + errno_text(e) + " (" + describe_pool(h) + ")",
                sys_cause::hugepages);
  }
  return mapping{p, len, h.page_size, true, false, {}};
}

result<mapping> map_normal(std::size_t bytes, std::size_t align) {
  const std::size_t page = normal_page_size();
  const std::size_t len = round_up(bytes, page);
  void* p = len == 0 ? MAP_FAILED : map_region(len, page, align, 0);
  if (p == MAP_FAILED) {
    const int e = len == 0 ? ENOMEM : errno;
    return fail(e, "mmap of " + format_bytes(bytes) + " of anonymous memory: " + errno_text(e),
                sys_cause::memory);
  }
  return mapping{p, len, page, false, false, {}};
}

/// Hugepages or normal pages as the policy says; a `prefer` fallback keeps the reason.
result<mapping> map_pages(std::size_t bytes, const map_options& opt) {
  std::string why_not_huge;
  if (opt.hugepages != page_policy::off) {
    result<mapping> h = map_huge(bytes, opt.align);
    if (h.ok() || opt.hugepages == page_policy::require) return h;
    why_not_huge = h.error().what;
  }
  result<mapping> m = map_normal(bytes, opt.align);
  if (m.ok()) m.value().fallback = std::move(why_not_huge);
  return m;
}

/// Faults every page in with an error instead of a signal: a hugetlb page missing on
/// the bound node would otherwise be a SIGBUS at the first touch. Kernels before 5.14
/// answer EINVAL; prefault's touch then does the work alone.
status populate(const mapping& m, int node) {
  if (::madvise(m.addr, m.bytes, MADV_POPULATE_WRITE) == 0 || errno == EINVAL) return ok_t{};
  const int e = errno;
  std::string what = "faulting in " + format_bytes(m.bytes) + (m.huge ? " of hugepages" : "");
  if (node >= 0) what += " on NUMA node " + std::to_string(node);
  return fail(e, what + " (madvise MADV_POPULATE_WRITE): " + errno_text(e),
              m.huge ? sys_cause::hugepages : sys_cause::memory);
}

/// Binding must come before the first touch: mbind does not move pages already there.
status commit(mapping& m, const map_options& opt) {
  if (opt.numa_node != -1) {
    if (status s = bind_to_node(m.addr, m.bytes, opt.numa_node); !s) return s;
  }
  if (status s = populate(m, opt.numa_node); !s) return s;
  prefault(m.addr, m.bytes, m.page_size);
  if (opt.lock) {
    if (status s = lock(m.addr, m.bytes); !s) return s;
    m.locked = true;
  }
  return ok_t{};
}

// ---- NUMA --------------------------------------------------------------------------

bool node_exists(int node) {
  return node >= 0 && node <= numa_max_node() &&
         numa_bitmask_isbitset(numa_nodes_ptr, static_cast<unsigned>(node)) != 0;
}

/// "1 node: 0", "2 nodes: 0, 1"
std::string describe_nodes() {
  std::string list;
  int n = 0;
  for (int i = 0; i <= numa_max_node(); ++i) {
    if (!node_exists(i)) continue;
    list += (n++ == 0 ? "" : ", ") + std::to_string(i);
  }
  return std::to_string(n) + (n == 1 ? " node: " : " nodes: ") + list;
}

/// Bytes this process has locked (VmLck of /proc/self/status; hugetlb pages are not
/// counted there, nor against RLIMIT_MEMLOCK beyond the one call that locks them).
std::uint64_t locked_now() {
  std::ifstream in("/proc/self/status");
  std::uint64_t kib = 0;
  for (std::string line; std::getline(in, line);) {
    if (meminfo_value(line, "VmLck", kib)) break;
  }
  return kib * 1024;
}

} // namespace

std::size_t normal_page_size() noexcept {
  static const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

hugepage_info query_hugepages() {
  hugepage_info h;
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line))
    parse_meminfo_line(line, h);
  if (h.page_size == 0) return hugepage_info{}; // no hugetlb: all zero, as documented
  return h;
}

std::uint64_t memlock_limit() noexcept {
  rlimit rl{};
  if (::getrlimit(RLIMIT_MEMLOCK, &rl) != 0) return 0;
  if (rl.rlim_cur == RLIM_INFINITY) return std::numeric_limits<std::uint64_t>::max();
  return rl.rlim_cur;
}

result<mapping> map_anonymous(std::size_t bytes, const map_options& opt) {
  if (bytes == 0) return fail(EINVAL, "map_anonymous: size 0", sys_cause::invalid_argument);
  if (opt.align != 0 && !is_pow2(opt.align)) {
    return fail(EINVAL,
                "map_anonymous: alignment " + std::to_string(opt.align) + " is not a power of two",
                sys_cause::invalid_argument);
  }
  result<mapping> m = map_pages(bytes, opt);
  if (!m) return m;
  if (status s = commit(m.value(), opt); !s) {
    unmap(m.value());
    return s.error();
  }
  return m;
}

void unmap(const mapping& m) noexcept {
  if (m.addr != nullptr) ::munmap(m.addr, m.bytes);
}

result<void*> reserve_private(std::size_t bytes) {
  if (bytes == 0) return fail(EINVAL, "reserve_private of 0 bytes", sys_cause::invalid_argument);
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    const int e = errno;
    return fail(e,
                "reserving " + format_bytes(bytes) + " of private address space: " + errno_text(e),
                sys_cause::memory);
  }
  return p;
}

void release_private(void* addr, std::size_t bytes) noexcept {
  if (addr != nullptr) ::munmap(addr, bytes);
}

status bind_to_node(void* addr, std::size_t bytes, int node) {
  const std::string what =
      "binding " + format_bytes(bytes) + " to NUMA node " + std::to_string(node);
  if (numa_available() < 0) {
    return fail(ENOSYS, what + ": NUMA is not available on this machine (numa_available() < 0)",
                sys_cause::numa);
  }
  if (!node_exists(node)) {
    return fail(EINVAL,
                "NUMA node " + std::to_string(node) + " does not exist (this machine has " +
                    describe_nodes() + ")",
                sys_cause::numa);
  }
  // A nodemask of our own rather than numa_allocate_nodemask, which exits the process
  // when out of memory. The kernel reads maxnode - 1 bits, hence the + 1 (as libnuma).
  constexpr std::size_t word_bits = sizeof(unsigned long) * 8;
  const auto bit = static_cast<std::size_t>(node);
  std::vector<unsigned long> mask(bit / word_bits + 1, 0);
  mask[bit / word_bits] |= 1UL << (bit % word_bits);
  // MPOL_MF_STRICT: fail (EIO) rather than accept pages already placed elsewhere.
  if (::mbind(addr, bytes, MPOL_BIND, mask.data(), mask.size() * word_bits + 1, MPOL_MF_STRICT) !=
      0) {
    const int e = errno;
    return fail(e, what + " (mbind MPOL_BIND): " + errno_text(e), sys_cause::numa);
  }
  return ok_t{};
}

void prefault(void* addr, std::size_t bytes, std::size_t page_size) noexcept {
  // A write fault on every page, as an atomic add of 0: the kernel faults the page in
  // for writing, and a byte another process writes meanwhile keeps its value.
  auto* p = static_cast<unsigned char*>(addr);
  for (std::size_t off = 0; off < bytes; off += page_size)
    __atomic_fetch_add(p + off, static_cast<unsigned char>(0), __ATOMIC_RELAXED);
}

status lock(void* addr, std::size_t bytes) {
  // The raw system call, not glibc's mlock: ASan and the other sanitizers intercept
  // mlock as a no-op that reports success (so that mlockall cannot pin their shadow),
  // which would make mapping::locked a lie in sanitizer builds. Locking our own range
  // is harmless to them.
  if (::syscall(SYS_mlock, addr, bytes) == 0) return ok_t{};
  const int e = errno;
  return fail(e,
              "mlock of " + format_bytes(bytes) + ": " + errno_text(e) + " (RLIMIT_MEMLOCK is " +
                  format_limit(memlock_limit()) + ", " + format_bytes(locked_now()) +
                  " of it locked already; raise it: LimitMEMLOCK=infinity in the systemd "
                  "unit, `ulimit -l unlimited` in the shell that starts the process, or grant "
                  "it CAP_IPC_LOCK)",
              sys_cause::mlock);
}

int numa_node_count() noexcept {
  if (numa_available() < 0) return 1;
  const unsigned n = numa_bitmask_weight(numa_nodes_ptr);
  return n == 0 ? 1 : static_cast<int>(n);
}

result<std::vector<int>> page_nodes(const void* addr, std::size_t bytes, std::size_t stride) {
  if (bytes == 0 || stride == 0) {
    return fail(EINVAL, "page_nodes: size and stride must be non-zero",
                sys_cause::invalid_argument);
  }
  const std::size_t n = bytes / stride + (bytes % stride != 0 ? 1 : 0);
  std::vector<void*> pages(n);
  std::vector<int> nodes(n, 0);
  // move_pages takes void** although with no target nodes it only reads the pages.
  auto* base = const_cast<unsigned char*>(static_cast<const unsigned char*>(addr));
  for (std::size_t i = 0; i < n; ++i)
    pages[i] = base + i * stride;
  if (::move_pages(0, n, pages.data(), nullptr, nodes.data(), 0) < 0) {
    const int e = errno;
    return fail(e, "move_pages (query) of " + std::to_string(n) + " pages: " + errno_text(e),
                sys_cause::numa);
  }
  return nodes;
}

} // namespace slab::platform
