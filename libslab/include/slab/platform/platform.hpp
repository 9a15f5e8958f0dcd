// The platform part: every OS call the project makes about memory, in one place.
//
// Contract for every function here (mimalloc's prim.h is the model):
//  - addresses are page-aligned and sizes non-zero multiples of the page size in
//    force, unless a comment says otherwise;
//  - nothing throws; a failure comes back as a sys_error value carrying errno and a
//    message that names the resource (file, size, node) and the call that failed;
//  - nothing prints: fallbacks are reported to the caller, who decides what to log.
// The core (libslab/include/slab/core) never includes this header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace slab::platform {

/// Which kind of resource ran short, so that a caller can turn a sys_error into its own
/// error codes (locked_backing: slab::errc) without parsing the message.
enum class sys_cause : std::uint8_t {
  other,            ///< anything else
  invalid_argument, ///< the caller asked for something impossible (size 0, bad alignment)
  memory,           ///< address space or memory could not be had
  hugepages,        ///< hugepages were asked for and could not be had
  numa,             ///< the NUMA node does not exist, NUMA is unavailable, or mbind failed
  mlock,            ///< mlock failed (RLIMIT_MEMLOCK, no CAP_IPC_LOCK)
};

struct sys_error {
  int err = 0;      ///< errno of the failing call (0 when the failure is not an OS error)
  std::string what; ///< "mmap of 64 MiB hugepage segment 'orders.t0': Cannot allocate memory"
  sys_cause cause = sys_cause::other;
};

/// A value or the error that prevented it.
template <class T> class result {
public:
  result(T v) : v_(std::move(v)) {}         // NOLINT(google-explicit-constructor)
  result(sys_error e) : v_(std::move(e)) {} // NOLINT(google-explicit-constructor)
  [[nodiscard]] bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  [[nodiscard]] T& value() { return std::get<0>(v_); }
  [[nodiscard]] const T& value() const { return std::get<0>(v_); }
  [[nodiscard]] const sys_error& error() const { return std::get<1>(v_); }

private:
  std::variant<T, sys_error> v_;
};
struct ok_t {};
using status = result<ok_t>;

/// What the configuration asks of hugepages for a segment.
enum class page_policy : std::uint8_t {
  require, ///< hugepages or an error
  prefer,  ///< hugepages, else normal pages with a warning
  off,     ///< normal pages
};

[[nodiscard]] std::size_t normal_page_size() noexcept;

/// The default hugepage pool as the kernel reports it (/proc/meminfo and
/// /sys/kernel/mm/hugepages). All zero when the kernel has no hugetlb support.
struct hugepage_info {
  std::size_t page_size = 0; ///< bytes of the default hugepage size (2 MiB on x86-64)
  std::uint64_t total = 0;   ///< HugePages_Total
  std::uint64_t free = 0;    ///< HugePages_Free
  std::uint64_t reserved = 0;
  std::uint64_t surplus = 0;
  /// Pages that a new mapping can still count on: free - reserved.
  [[nodiscard]] std::uint64_t available() const noexcept {
    return free > reserved ? free - reserved : 0;
  }
};
[[nodiscard]] hugepage_info query_hugepages();

/// RLIMIT_MEMLOCK of this process, in bytes (UINT64_MAX when unlimited).
[[nodiscard]] std::uint64_t memlock_limit() noexcept;

/// A block of memory obtained for a tier, with what it really got.
struct mapping {
  void* addr = nullptr;
  std::size_t bytes = 0;     ///< mapped length (rounded up to page_size)
  std::size_t page_size = 0; ///< page size in force for this mapping
  bool huge = false;         ///< backed by hugepages
  bool locked = false;       ///< mlocked
  std::string fallback;      ///< non-empty when `prefer` fell back: why
};

/// Options for map_anonymous.
struct map_options {
  page_policy hugepages = page_policy::prefer;
  bool lock = true;   ///< mlock the block; failure is an error (errc::mlock at the caller)
  int numa_node = -1; ///< bind to this node before faulting; -1: local policy
  /// Alignment of the address, a power of two. Up to the page size in force it is free;
  /// above it, address space (not memory) is over-reserved and trimmed.
  std::size_t align = 0;
};

/// Maps `bytes` (any non-zero size; rounded up to the page size in force) of private
/// anonymous memory, binds it to the requested node, prefaults every page and locks
/// it. On error nothing stays mapped. Used by locked_backing for the embedded slab.
/// Hugepages come from the default pool (vm.nr_hugepages); `require` fails with
/// sys_cause::hugepages when it is short, `prefer` then maps normal pages and says why
/// in mapping::fallback. mlock does not count hugetlb pages in VmLck (they are never
/// swapped anyway) but still checks RLIMIT_MEMLOCK.
[[nodiscard]] result<mapping> map_anonymous(std::size_t bytes, const map_options& opt);
/// Undoes map_anonymous. `m` exactly as returned.
void unmap(const mapping& m) noexcept;

/// Reserves `bytes` (any non-zero size; rounded up to the page size) of private,
/// read-write, zero-filled memory as address space only (MAP_NORESERVE): no memory is
/// taken until a page is first written, so a range sized for a pool's largest capacity
/// costs what is used of it. Not locked, not prefaulted, never shared with another
/// process: for a process's own bookkeeping beside a pool (slab::shared_slot's counts).
/// Fails with sys_cause::memory when the address space cannot be had.
[[nodiscard]] result<void*> reserve_private(std::size_t bytes);
/// Undoes reserve_private; `bytes` as it was asked for.
void release_private(void* addr, std::size_t bytes) noexcept;

/// Binds [addr, addr+bytes) to `node` (MPOL_BIND). Must precede the first touch.
/// Fails with a clear message when the node does not exist or NUMA is unavailable.
[[nodiscard]] status bind_to_node(void* addr, std::size_t bytes, int node);
/// Writes one byte in every page so that all are faulted in now, not on the hot path.
/// The write is an atomic add of zero: no byte changes, even one in use elsewhere.
void prefault(void* addr, std::size_t bytes, std::size_t page_size) noexcept;
/// mlock; the error names RLIMIT_MEMLOCK and the size asked for.
[[nodiscard]] status lock(void* addr, std::size_t bytes);

/// Number of NUMA nodes the kernel reports (1 when libnuma says NUMA is unavailable).
/// Nodes are those under /sys/devices/system/node, memoryless ones included.
[[nodiscard]] int numa_node_count() noexcept;
/// The node of each page of [addr, addr+bytes) sampled every `stride` bytes, as the
/// kernel reports it (move_pages with no target). Entries are node numbers, or
/// -errno for a page that is not present.
[[nodiscard]] result<std::vector<int>> page_nodes(const void* addr, std::size_t bytes,
                                                  std::size_t stride);

} // namespace slab::platform
