// Files and directories: read_file, make_directory, lock_file.
#include <slab/platform/files.hpp>

#include <array>
#include <cerrno>
#include <string>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.hpp"

namespace slab::platform {

using detail::errno_text;
using detail::fail;

result<std::string> read_file(const std::string& path, std::size_t max_bytes,
                              std::string_view what) {
  const std::string name = std::string(what) + " \"" + path + "\"";
  const unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    const int e = errno;
    return fail(e, "cannot open " + name + ": " + errno_text(e), sys_cause::other);
  }
  std::string text;
  std::array<char, 8192> buf{};
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      const int e = errno;
      if (e == EINTR) continue;
      return fail(e, "cannot read " + name + ": " + errno_text(e), sys_cause::other);
    }
    if (n == 0) return text;
    text.append(buf.data(), static_cast<std::size_t>(n));
    if (text.size() > max_bytes) {
      return fail(EFBIG, name + " is larger than " + detail::format_bytes(max_bytes),
                  sys_cause::invalid_argument);
    }
  }
}

status make_directory(const std::string& path, unsigned mode) {
  if (::mkdir(path.c_str(), static_cast<mode_t>(mode)) != 0 && errno != EEXIST) {
    const int e = errno;
    return fail(e, "cannot create directory " + path + ": " + errno_text(e), sys_cause::other);
  }
  return ok_t{};
}

result<std::vector<std::string>> list_directory(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) {
    const int e = errno;
    return fail(e, "cannot list directory " + path + ": " + errno_text(e), sys_cause::other);
  }
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  return names;
}

status check_private_directory(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    const int e = errno;
    return fail(e, "cannot read directory " + path + ": " + errno_text(e), sys_cause::other);
  }
  const std::string what = path + " " + detail::owner_and_mode(st);
  if (S_ISLNK(st.st_mode))
    return fail(ELOOP, what + " is a symbolic link; give shmd the directory itself",
                sys_cause::invalid_argument);
  if (!S_ISDIR(st.st_mode))
    return fail(ENOTDIR, what + " is not a directory", sys_cause::invalid_argument);
  if (st.st_uid != ::geteuid()) {
    return fail(EPERM,
                what + " belongs to another user than this shmd's (uid " +
                    std::to_string(::geteuid()) + "), who could plant or rewrite pools there",
                sys_cause::invalid_argument);
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return fail(EPERM,
                what + " is writable by " +
                    ((st.st_mode & S_IWOTH) != 0 ? "every user" : "its group") +
                    ", who could plant or rewrite pools there",
                sys_cause::invalid_argument);
  }
  return ok_t{};
}

result<file_lock> lock_file(const std::string& path, bool own_only) {
  // Only the owner creates it: a lock file another user made (root's --destroy) would
  // keep the owner out later. Without own_only, a missing file means nobody holds it.
  const int create = own_only ? O_CREAT : 0;
  unique_fd fd(::open(path.c_str(), O_RDWR | create | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd && !own_only && errno == ENOENT) return file_lock();
  if (!fd) {
    const int e = errno;
    return fail(e,
                "cannot open " + path + ": " + errno_text(e) +
                    (e == ELOOP ? " (it is a symbolic link: someone planted it; remove it)" : ""),
                sys_cause::other);
  }
  if (status own = detail::check_own_file(fd.get(), path, "the lock file", own_only); !own)
    return own.error();
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    return fail(e, "cannot lock " + path + ": " + errno_text(e), sys_cause::other);
  }
  return file_lock(std::move(fd));
}

} // namespace slab::platform
