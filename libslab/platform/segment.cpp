// Shared segments: memfds, reserved address ranges, fixed mappings.
#include <slab/platform/segment.hpp>

#include <cerrno>
#include <fstream>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "internal.hpp"

namespace slab::platform {
namespace {

using namespace detail; // NOLINT(google-build-using-namespace): this library's own helpers

constexpr unsigned seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

// A memfd (dir empty) or a new file dir/name, exclusively.
unique_fd open_new(const std::string& dir, const std::string& name, bool huge) {
  if (dir.empty()) {
    const unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING | (huge ? MFD_HUGETLB : 0U);
    return unique_fd(::memfd_create(name.c_str(), flags));
  }
  return unique_fd(::open((dir + "/" + name).c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
}

// Removes a named segment that failed half-way: it was never offered to anyone.
struct unlink_on_fail {
  std::string path;
  bool armed = true;
  explicit unlink_on_fail(std::string p) : path(std::move(p)) {}
  unlink_on_fail(const unlink_on_fail&) = delete;
  unlink_on_fail& operator=(const unlink_on_fail&) = delete;
  ~unlink_on_fail() {
    if (armed && !path.empty()) ::unlink(path.c_str());
  }
};

// A hugetlbfs mount with a size= limit refuses a reservation beyond it however many
// hugepages are free: "; the hugetlbfs mount holding DIR has 1 of its 2 pages free".
std::string mount_room(int fd, const std::string& dir, std::size_t len) {
  struct statfs fs {};
  if (dir.empty() || ::fstatfs(fd, &fs) != 0 || fs.f_blocks == 0 || fs.f_bsize <= 0) return {};
  const auto unit = static_cast<std::uint64_t>(fs.f_bsize);
  if (std::uint64_t{fs.f_bavail} * unit >= len) return {};
  return "; the hugetlbfs mount holding " + dir + " has " + std::to_string(fs.f_bavail) +
         " of its " + std::to_string(fs.f_blocks) + " pages free (its size= option)";
}

result<segment> make_segment(const std::string& dir, const std::string& name, std::size_t bytes,
                             std::size_t page, bool huge) {
  const std::size_t len = round_up(bytes, page);
  const std::string what = "segment '" + (dir.empty() ? name : dir + "/" + name) + "' (" +
                           format_bytes(len) +
                           (huge ? " of " + format_bytes(page) + " hugepages" : "") + ")";
  unique_fd fd = open_new(dir, name, huge);
  if (!fd) {
    const int e = errno;
    return fail(e, "creating " + what + ": " + errno_text(e),
                huge ? sys_cause::hugepages : sys_cause::memory);
  }
  unlink_on_fail guard(dir.empty() ? std::string() : dir + "/" + name);
  if (::ftruncate(fd.get(), static_cast<off_t>(len)) != 0) {
    const int e = errno;
    return fail(e, "ftruncate of " + what + ": " + errno_text(e), sys_cause::memory);
  }
  if (huge) {
    // A shared hugetlb mapping reserves its pages at mmap time: try it now, so that a
    // shortage is this call's error, not a SIGBUS at some later first touch.
    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      return fail(e,
                  "reserving " + what + ": " + errno_text(e) + " (" +
                      describe_pool(query_hugepages()) + mount_room(fd.get(), dir, len) + ")",
                  sys_cause::hugepages);
    }
    ::munmap(p, len);
  }
  if (dir.empty() && ::fcntl(fd.get(), F_ADD_SEALS, seals) != 0) {
    const int e = errno;
    return fail(e, "sealing " + what + ": " + errno_text(e), sys_cause::other);
  }
  guard.armed = false;
  return segment{std::move(fd), len, page, huge, {}};
}

} // namespace

unique_fd& unique_fd::operator=(unique_fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

unique_fd::~unique_fd() {
  if (fd_ >= 0) ::close(fd_);
}

std::size_t huge_page_size() noexcept {
  static const std::size_t page = query_hugepages().page_size;
  return page;
}

result<segment> create_segment(const std::string& name, std::size_t bytes, page_policy policy,
                               const segment_store& store) {
  if (bytes == 0)
    return fail(EINVAL, "segment '" + name + "': size 0", sys_cause::invalid_argument);
  std::string why_not;
  if (policy != page_policy::off) {
    const std::size_t hp = huge_page_size();
    if (hp == 0) {
      why_not = "the kernel has no hugetlb support";
      if (policy == page_policy::require) {
        return fail(ENOTSUP, "segment '" + name + "': " + why_not, sys_cause::hugepages);
      }
    } else {
      result<segment> h = make_segment(store.huge_dir, name, bytes, hp, true);
      if (h.ok() || policy == page_policy::require) return h;
      why_not = h.error().what;
    }
  }
  result<segment> s = make_segment(store.normal_dir, name, bytes, normal_page_size(), false);
  if (s.ok()) s.value().fallback = std::move(why_not);
  return s;
}

std::string find_hugetlbfs_mount() {
  std::ifstream in("/proc/mounts");
  std::string dev, dir, type, opts;
  while (in >> dev >> dir >> type >> opts) {
    in.ignore(256, '\n');
    // Only a mount of the default size: a pagesize=1G mount would not match our rounding.
    if (type == "hugetlbfs" && (opts.find("pagesize=") == std::string::npos ||
                                opts.find("pagesize=2M") != std::string::npos ||
                                opts.find("pagesize=" + std::to_string(huge_page_size() >> 20) +
                                          "M") != std::string::npos)) {
      return dir;
    }
  }
  return {};
}

result<segment> open_segment(const std::string& name, const segment_store& store) {
  for (const bool huge : {true, false}) {
    const std::string& dir = huge ? store.huge_dir : store.normal_dir;
    if (dir.empty()) continue;
    const std::string path = dir + "/" + name;
    unique_fd fd(::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
      if (errno == ENOENT) continue;
      const int e = errno;
      return fail(e,
                  "opening segment '" + path + "': " + errno_text(e) +
                      (e == ELOOP ? " (a symbolic link: not following it)" : ""),
                  sys_cause::other);
    }
    if (status own = check_own_file(fd.get(), path, "segment"); !own) return own.error();
    result<std::uint64_t> size = fd_size(fd.get());
    if (!size) return size.error();
    const std::size_t page = huge ? huge_page_size() : normal_page_size();
    return segment{std::move(fd), static_cast<std::size_t>(size.value()), page, huge, {}};
  }
  return fail(ENOENT,
              "segment '" + name + "' not found in " + store.huge_dir + " or " + store.normal_dir,
              sys_cause::other);
}

bool remove_segment(const std::string& name, const segment_store& store) noexcept {
  bool removed = false;
  for (const std::string* dir : {&store.huge_dir, &store.normal_dir}) {
    if (!dir->empty() && ::unlink((*dir + "/" + name).c_str()) == 0) removed = true;
  }
  return removed;
}

result<void*> reserve_range(std::size_t bytes, std::size_t align) {
  if (bytes == 0 || !is_pow2(align)) {
    return fail(EINVAL, "reserve_range: size 0 or alignment not a power of two",
                sys_cause::invalid_argument);
  }
  const std::size_t span = bytes + align;
  void* res = ::mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (res == MAP_FAILED) {
    const int e = errno;
    return fail(e, "reserving " + format_bytes(bytes) + " of address space: " + errno_text(e),
                sys_cause::memory);
  }
  const auto lo = reinterpret_cast<std::uintptr_t>(res);
  const std::uintptr_t at = (lo + align - 1) & ~(std::uintptr_t{align} - 1);
  if (at > lo) ::munmap(res, at - lo);
  const std::uintptr_t end = at + bytes;
  if (lo + span > end) ::munmap(reinterpret_cast<void*>(end), lo + span - end);
  return reinterpret_cast<void*>(at);
}

void release_range(void* addr, std::size_t bytes) noexcept {
  if (addr != nullptr) ::munmap(addr, bytes);
}

result<void*> map_segment(int fd, std::size_t offset, std::size_t bytes, void* at, bool writable,
                          bool populate) {
  const int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  const int flags = MAP_SHARED | (at != nullptr ? MAP_FIXED : 0) | (populate ? MAP_POPULATE : 0);
  void* p = ::mmap(at, bytes, prot, flags, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED) {
    const int e = errno;
    return fail(e,
                "mapping " + format_bytes(bytes) + " at offset " + std::to_string(offset) +
                    " of segment fd " + std::to_string(fd) + ": " + errno_text(e),
                e == ENOMEM ? sys_cause::memory : sys_cause::other);
  }
  return p;
}

void unmap_segment(void* addr, std::size_t bytes, bool keep_reserved) noexcept {
  if (addr == nullptr) return;
  if (keep_reserved) {
    // Should this fail, the old mapping stays, inside our own reservation: nothing else
    // can be mapped there, and the caller is only giving memory back.
    (void)::mmap(addr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
                 -1, 0);
  } else {
    ::munmap(addr, bytes);
  }
}

status prepare_fresh(void* addr, std::size_t bytes, std::size_t page_size, int numa_node,
                     bool lock_it) {
  if (numa_node >= 0) {
    if (status s = bind_to_node(addr, bytes, numa_node); !s) return s;
  }
  if (::madvise(addr, bytes, MADV_POPULATE_WRITE) != 0 && errno != EINVAL) {
    const int e = errno;
    return fail(e, "faulting in " + format_bytes(bytes) + ": " + errno_text(e), sys_cause::memory);
  }
  prefault(addr, bytes, page_size);
  if (lock_it) return lock(addr, bytes);
  return ok_t{};
}

status allocate_file(int fd, std::uint64_t offset, std::uint64_t bytes, const std::string& what,
                     bool huge) {
  struct statfs fs {};
  const bool limited = ::fstatfs(fd, &fs) == 0 && fs.f_blocks != 0 && fs.f_bsize > 0 && !huge;
  const std::uint64_t unit = limited ? static_cast<std::uint64_t>(fs.f_bsize) : 0;
  const std::uint64_t room = limited ? std::uint64_t{fs.f_bavail} * unit : 0;
  int e = 0;
  if (limited && room < bytes) {
    e = ENOSPC;
  } else if (::fallocate(fd, 0, static_cast<off_t>(offset), static_cast<off_t>(bytes)) != 0) {
    e = errno;
  }
  if (e == 0 || e == EOPNOTSUPP) return ok_t{}; // no fallocate there: the faults decide
  std::string msg =
      "allocating " + format_bytes(bytes) + " of " + what + " (fallocate): " + errno_text(e);
  if (e == ENOSPC) {
    msg += " (ENOSPC: ";
    msg += limited ? "its file system has " + format_bytes(room) + " free of " +
                         format_bytes(std::uint64_t{fs.f_blocks} * unit)
                   : "its file system is full";
    msg += huge ? "; " + describe_pool(query_hugepages()) + ", or the hugetlbfs mount's size="
                : "; free space there, or enlarge it (the size= of its tmpfs mount)";
    msg += ")";
  }
  return fail(e, msg, huge ? sys_cause::hugepages : sys_cause::memory);
}

status prepare_new_range(void* addr, int fd, std::uint64_t offset, std::uint64_t bytes,
                         std::size_t page, int node, const std::string& what, bool huge) {
  if (node >= 0) {
    if (status s = bind_to_node(addr, bytes, node); !s) return s;
  }
  if (status s = allocate_file(fd, offset, bytes, what, huge); !s) return s;
  if (status s = prepare_fresh(addr, bytes, page, -1, true); !s) {
    return fail(s.error().err, what + ": " + s.error().what, s.error().cause);
  }
  return ok_t{};
}

status populate(void* addr, std::size_t bytes, std::size_t page, bool writable) {
  if (::madvise(addr, bytes, writable ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) == 0)
    return ok_t{};
  const int e = errno;
  if (e != EINVAL) {
    return fail(e, "faulting in " + format_bytes(bytes) + ": " + errno_text(e), sys_cause::memory);
  }
  if (writable) {
    prefault(addr, bytes, page); // leaves every byte as it was
  } else {
    const auto* p = static_cast<const volatile unsigned char*>(addr);
    for (std::size_t off = 0; off < bytes; off += page)
      (void)p[off];
  }
  return ok_t{};
}

result<unique_fd> reopen_read_only(int fd) {
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  unique_fd ro(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ro) {
    const int e = errno;
    return fail(e, "reopening " + path + " read-only: " + errno_text(e), sys_cause::other);
  }
  return ro;
}

result<std::uint64_t> fd_size(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    return fail(e, "fstat of fd " + std::to_string(fd) + ": " + errno_text(e), sys_cause::other);
  }
  return static_cast<std::uint64_t>(st.st_size);
}

} // namespace slab::platform
