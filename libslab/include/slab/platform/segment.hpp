// Shared segments: memory that several processes map, named by a file descriptor.
// Same contract as platform.hpp: errors are values naming the resource, nothing prints.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <slab/platform/platform.hpp>

namespace slab::platform {

/// An owned file descriptor (closed on destruction; movable).
class unique_fd {
public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(o.release()) {}
  unique_fd& operator=(unique_fd&& o) noexcept;
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd();
  [[nodiscard]] int get() const noexcept { return fd_; }
  int release() noexcept {
    const int f = fd_;
    fd_ = -1;
    return f;
  }
  explicit operator bool() const noexcept { return fd_ >= 0; }

private:
  int fd_ = -1;
};

struct segment {
  unique_fd fd;
  std::size_t bytes = 0;     ///< size of the segment (a multiple of page_size)
  std::size_t page_size = 0; ///< page size in force
  bool huge = false;
  std::string fallback; ///< why `prefer` fell back to normal pages, else empty
};

/// Page size a segment of this policy would use if hugepages are there.
[[nodiscard]] std::size_t huge_page_size() noexcept;

/// Where segments live. A named segment is a file that outlives the process that made
/// it (a restarted daemon adopts it); an anonymous one is a memfd that lives as long as
/// someone holds or maps it.
struct segment_store {
  std::string normal_dir; ///< tmpfs directory for normal-page segments; empty: memfds
  std::string huge_dir;   ///< hugetlbfs directory for hugepage segments; empty: memfds
};

/// The first hugetlbfs mount point in /proc/mounts (default page size), or "".
[[nodiscard]] std::string find_hugetlbfs_mount();

/// Creates a shared segment of at least `bytes`, rounded up to the page size in force,
/// zero-filled: a file `name` in the store's directory for its page size, created
/// exclusively (an existing one is never overwritten), or a memfd sealed against
/// shrinking and growing when that directory is empty. With hugepages asked for, the
/// hugepages are reserved now (a mapping is made and dropped), so `require` fails here,
/// not at a later first touch.
[[nodiscard]] result<segment> create_segment(const std::string& name, std::size_t bytes,
                                             page_policy policy, const segment_store& store = {});

/// Opens an existing named segment (the hugepage directory first, then the normal one).
/// ENOENT when neither holds it.
[[nodiscard]] result<segment> open_segment(const std::string& name, const segment_store& store);
/// Removes a named segment from both directories; true if one was there.
bool remove_segment(const std::string& name, const segment_store& store) noexcept;

/// Reserves `bytes` of address space (PROT_NONE, no memory), aligned to `align` (a
/// power of two; bytes a multiple of the normal page size).
[[nodiscard]] result<void*> reserve_range(std::size_t bytes, std::size_t align);
void release_range(void* addr, std::size_t bytes) noexcept;

/// Maps [offset, offset + bytes) of fd, shared. At `at` (which must lie inside a range
/// from reserve_range; replaced in place) or anywhere when `at` is null. `populate`
/// builds this process's page tables now (MAP_POPULATE) so the first touch of each
/// page is not a minor fault on the hot path; it never writes.
[[nodiscard]] result<void*> map_segment(int fd, std::size_t offset, std::size_t bytes, void* at,
                                        bool writable, bool populate);
/// Puts PROT_NONE address space back over [addr, addr + bytes) of a reservation.
void unmap_segment(void* addr, std::size_t bytes, bool keep_reserved) noexcept;

/// Binds a fresh mapping to `node` (if >= 0), faults every page in and mlocks it (if
/// `lock`). Only for memory nobody has written yet: it writes a zero in every page.
[[nodiscard]] status prepare_fresh(void* addr, std::size_t bytes, std::size_t page_size,
                                   int numa_node, bool lock);

/// Gives the file's pages to [offset, offset + bytes) now (fallocate), so that a full
/// tmpfs or hugetlbfs is an ENOSPC naming the file (`what`), never a SIGBUS at a first
/// touch. A tmpfs with too little room is refused before allocating, so that a retried
/// growth never fills it to the brim for everyone else on it. (Not hugetlbfs: there the
/// mapping already holds a reservation of its pages, which its free count leaves out.)
/// A file system without fallocate is not an error: the faults decide there.
[[nodiscard]] status allocate_file(int fd, std::uint64_t offset, std::uint64_t bytes,
                                   const std::string& what, bool huge);

/// Fresh memory of a new segment, mapped at addr from [offset, offset + bytes) of fd,
/// made ready in the one order that keeps every promise: bound to `node` (if >= 0)
/// before any page exists (mbind moves nothing already placed, and the file's pages
/// follow the mapping's policy), the pages allocated in the file, then faulted in and
/// locked. Errors name the segment (`what`).
[[nodiscard]] status prepare_new_range(void* addr, int fd, std::uint64_t offset,
                                       std::uint64_t bytes, std::size_t page, int node,
                                       const std::string& what, bool huge);

/// Faults [addr, addr + bytes) of a shared mapping into this process's page tables
/// without changing a byte (MADV_POPULATE_WRITE or _READ; touching each page where the
/// kernel predates them). The pages must exist in the segment already. addr is
/// page-aligned; bytes is rounded up to whole pages.
[[nodiscard]] status populate(void* addr, std::size_t bytes, std::size_t page, bool writable);

/// The same file as fd, opened anew read-only (through /proc/self/fd): whoever receives
/// it can map it PROT_READ only (an mprotect to write fails with EACCES).
[[nodiscard]] result<unique_fd> reopen_read_only(int fd);

/// Size of the file behind fd (fstat).
[[nodiscard]] result<std::uint64_t> fd_size(int fd);

} // namespace slab::platform
