// Files, directories and waiting, for tests and benchmarks: a temporary directory that
// goes with its owner, whole-file reads and writes, and a bounded poll.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <thread>

#include <sys/types.h>

namespace slabtest {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

/// Throws std::system_error for errno, naming `what`.
[[noreturn]] void fail_errno(const std::string& what);

/// A fresh directory (mkdtemp, mode 0700) under `base` (default $TMPDIR or /tmp),
/// removed with its contents on destruction by the process that made it (never by a
/// forked child).
class temp_dir {
public:
  explicit temp_dir(std::string base = {});
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] std::string file(std::string_view name) const {
    return path_ + "/" + std::string(name);
  }

private:
  std::string path_;
  pid_t owner_;
};

void write_file(const std::string& path, std::string_view text);
/// The whole file; "" when it cannot be read.
std::string read_file(const std::string& path);

inline bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

/// Polls `f` every few milliseconds until it returns true; false after `timeout`.
template <class F> bool eventually(F&& f, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (f()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
}

/// `binary`, or a copy of it that any user may execute. Tests that drop to another user
/// (nobody) exec binaries of the build tree, which may sit below a directory only its
/// owner can enter (a clone in a `mktemp -d` directory is 0700). The copies live in one
/// directory under the system's temporary directory, removed when the process that made
/// it exits.
std::string executable_for_anyone(const std::string& binary);

} // namespace slabtest
