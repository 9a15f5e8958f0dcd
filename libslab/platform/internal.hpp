// Helpers shared by the platform part's translation units (not installed).
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>

#include <sys/stat.h>
#include <unistd.h>

#include <slab/platform/platform.hpp>

namespace slab::platform::detail {

inline std::string errno_text(int e) { return std::generic_category().message(e); }

/// "4 KiB", "2 MiB", "1536 KiB": exact, so a message never hides a rounding.
inline std::string format_bytes(std::uint64_t n) {
  static constexpr std::string_view units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  std::size_t u = 0;
  while (u + 1 < std::size(units) && n >= 1024 && n % 1024 == 0) {
    n /= 1024;
    ++u;
  }
  return std::to_string(n) + " " + std::string(units[u]);
}

inline std::string format_limit(std::uint64_t n) {
  return n == std::numeric_limits<std::uint64_t>::max() ? "unlimited" : format_bytes(n);
}

/// Rounds n up to a multiple of the power of two `unit`; 0 when that overflows.
inline std::size_t round_up(std::size_t n, std::size_t unit) noexcept {
  if (n > std::numeric_limits<std::size_t>::max() - (unit - 1)) return 0;
  return (n + unit - 1) & ~(unit - 1);
}

inline bool is_pow2(std::size_t n) noexcept { return n != 0 && (n & (n - 1)) == 0; }

inline sys_error fail(int err, std::string what, sys_cause cause) {
  return sys_error{err, std::move(what), cause};
}

/// "(owner uid U, mode 0MMM)", for messages about a file or directory.
inline std::string owner_and_mode(const struct stat& st) {
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return "(owner uid " + std::to_string(st.st_uid) + ", mode " + mode + ")";
}

/// A file shmd opened that must be its own (a lock file, a segment): a regular file of
/// this process's effective uid (any uid without `own_only`). An error naming `path`,
/// its owner and mode otherwise.
inline status check_own_file(int fd, const std::string& path, const char* what,
                             bool own_only = true) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    return fail(e, "fstat of " + path + ": " + errno_text(e), sys_cause::other);
  }
  if (!S_ISREG(st.st_mode))
    return fail(EPERM, std::string(what) + " " + path + " is not a regular file; not using it",
                sys_cause::invalid_argument);
  if (own_only && st.st_uid != ::geteuid()) {
    return fail(EPERM,
                std::string(what) + " " + path + " " + owner_and_mode(st) +
                    " belongs to another user than this shmd's (uid " +
                    std::to_string(::geteuid()) + "), who could have written into it; not using it",
                sys_cause::invalid_argument);
  }
  return ok_t{};
}

inline std::string describe_pool(const hugepage_info& h) {
  return "HugePages_Total " + std::to_string(h.total) + ", HugePages_Free " +
         std::to_string(h.free) + ", HugePages_Rsvd " + std::to_string(h.reserved) +
         "; reserve more with vm.nr_hugepages";
}

} // namespace slab::platform::detail
