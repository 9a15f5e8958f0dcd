// Files and directories: read_file, make_directory, lock_file.
#include <slab/platform/files.hpp>

#include <array>
#include <cerrno>

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

result<file_lock> lock_file(const std::string& path) {
  unique_fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) {
    const int e = errno;
    return fail(e, "cannot open " + path + ": " + errno_text(e), sys_cause::other);
  }
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    return fail(e, "cannot lock " + path + ": " + errno_text(e), sys_cause::other);
  }
  return file_lock(std::move(fd));
}

} // namespace slab::platform
