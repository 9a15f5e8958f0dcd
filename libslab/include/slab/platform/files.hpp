// Files and directories: reading a small file whole, creating a directory, and holding a
// lock on a file for as long as a process runs. Same contract as platform.hpp: nothing
// throws, errors are values carrying errno and a message that names the path and what
// was being done to it, nothing prints.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <slab/platform/platform.hpp>
#include <slab/platform/segment.hpp>

namespace slab::platform {

/// The whole of the file at `path`, read until its end. `what` names the file in error
/// messages: `cannot open <what> "<path>": <reason>`, `cannot read <what> ...`. A file
/// longer than `max_bytes` is refused with EFBIG (`<what> "<path>" is larger than 16
/// MiB`): the caller expects a configuration, not whatever the path happens to name.
[[nodiscard]] result<std::string> read_file(const std::string& path, std::size_t max_bytes,
                                            std::string_view what = "file");

/// mkdir(path, mode). A directory that already exists is not an error (whatever its
/// mode: the caller checks ownership where that matters).
[[nodiscard]] status make_directory(const std::string& path, unsigned mode);

/// The names in directory `path` (not "." or ".."), in no particular order.
[[nodiscard]] result<std::vector<std::string>> list_directory(const std::string& path);

/// Whether `path` is a directory only this process's user controls: not a symbolic
/// link, owned by its effective uid, writable by neither its group nor others. An error
/// (sys_cause::invalid_argument) naming the directory, its owner and mode otherwise:
/// whoever else controls it could plant files, links or whole pools there.
[[nodiscard]] status check_private_directory(const std::string& path);

/// An exclusive lock on a file (flock), held while this object lives. The kernel drops it
/// when the process exits however it exits, so a lock never outlives its holder.
class file_lock {
public:
  file_lock() = default;
  [[nodiscard]] bool held() const noexcept { return static_cast<bool>(fd_); }

private:
  friend result<file_lock> lock_file(const std::string& path, bool own_only);
  explicit file_lock(unique_fd fd) noexcept : fd_(std::move(fd)) {}
  unique_fd fd_;
};

/// Opens `path` (close-on-exec, never through a symbolic link, refused unless it is a
/// regular file) and locks it without waiting. With `own_only` it must be this
/// process's user's, and is created (mode 0600) if missing; without, a missing file is
/// a lock nobody holds (an unheld file_lock comes back) and nothing is created. Errors: EWOULDBLOCK
/// when another process holds the lock; otherwise the errno of the open or the flock, the message
/// saying which ("cannot open <path>: ...").
[[nodiscard]] result<file_lock> lock_file(const std::string& path, bool own_only = true);

} // namespace slab::platform
