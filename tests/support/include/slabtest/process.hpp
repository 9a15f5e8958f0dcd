// Child processes for tests: how a child ended, a forked child that cannot outlive the
// test, and CHILD_CHECK for conditions checked inside a child.
//
//   slabtest::exit_status st = slabtest::run_in_child([&] {
//     slab::client c = slab::client::connect(d.socket_path());
//     CHILD_CHECK(c.pool_count() > 0);
//     return 0;                                       // the child's exit code
//   });
//   EXPECT_TRUE(st.ok()) << st.describe();
//
// The test process must hold no slab::client while it forks (a child would share its
// control socket), and should have no threads running (the child of a threaded process
// may inherit a held lock). A child reports through its exit code and its stderr (which
// ctest shows). Every wait is bounded: a child that hangs is killed (SIGKILL) and the
// status says so.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slab/error.hpp>
#include <slabtest/files.hpp>

namespace slabtest {

/// How a child ended.
struct exit_status {
  int raw = 0;
  bool timed_out = false; ///< it did not end in time and was killed (SIGKILL)

  [[nodiscard]] bool exited() const noexcept { return !timed_out && WIFEXITED(raw); }
  [[nodiscard]] int code() const noexcept { return exited() ? WEXITSTATUS(raw) : -1; }
  [[nodiscard]] bool signaled() const noexcept { return !timed_out && WIFSIGNALED(raw); }
  [[nodiscard]] int signal() const noexcept { return signaled() ? WTERMSIG(raw) : 0; }
  [[nodiscard]] bool ok() const noexcept { return code() == 0; }
  [[nodiscard]] std::string describe() const;
};

/// In a forked child: be killed when the test process dies (a crashed test must not
/// leave a shmd or a stopped client behind). Exits 95 if the parent is already gone.
void die_with(pid_t parent) noexcept;

/// Waits for `pid` to end; SIGKILLs it after `timeout`.
exit_status wait_for_exit(pid_t pid, milliseconds timeout);

/// A failed CHILD_CHECK: child::spawn's handler prints it and exits with code 97.
struct child_failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void child_fail(const char* file, int line, const char* expr,
                             const std::string& detail);

/// In a child: stop with a message on stderr and exit code 97 when `cond` is false.
#define CHILD_CHECK(cond)                                                                          \
  do {                                                                                             \
    if (!(cond)) ::slabtest::child_fail(__FILE__, __LINE__, #cond, "");                            \
  } while (0)
#define CHILD_CHECK_MSG(cond, detail)                                                              \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      std::ostringstream slabtest_detail_;                                                         \
      slabtest_detail_ << detail;                                                                  \
      ::slabtest::child_fail(__FILE__, __LINE__, #cond, slabtest_detail_.str());                   \
    }                                                                                              \
  } while (0)

/// A forked child running a function; killed and reaped on destruction if still running.
class child {
public:
  /// Forks; the child runs body() (returning its exit code) and _exits. A slab::error
  /// escaping body exits 98, any other exception 97, after a line on stderr.
  template <class F> static child spawn(F&& body) {
    const pid_t pid = fork_child();
    if (pid == 0) ::_exit(run_body(std::forward<F>(body)));
    return child(pid);
  }

  child(child&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}
  child& operator=(child&& o) noexcept {
    if (this != &o) {
      reap_now();
      pid_ = std::exchange(o.pid_, -1);
    }
    return *this;
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  ~child() { reap_now(); }

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] bool running() const noexcept { return pid_ > 0; }

  /// Waits for the child to end (SIGKILL after `timeout`).
  exit_status wait(milliseconds timeout = 20s);
  void signal(int sig) const;
  /// Waits until the child is stopped (after SIGSTOP). False if it ended or took too long.
  [[nodiscard]] bool wait_stopped(milliseconds timeout = 5s) const;

private:
  explicit child(pid_t pid) : pid_(pid) {}
  /// fork(), with stdio flushed first; in the child, die_with(the test process).
  static pid_t fork_child();
  template <class F> static int run_body(F&& body) noexcept {
    int rc = 96;
    try {
      rc = std::forward<F>(body)();
    } catch (const slab::error& e) {
      report("slab::error " + std::string(slab::to_string(e.code())) + ": " + e.what());
      rc = 98;
    } catch (const std::exception& e) {
      report(e.what());
      rc = 97;
    } catch (...) {
      report("unknown exception");
      rc = 97;
    }
    std::fflush(nullptr);
    return rc;
  }
  /// "[child <pid>] what" on stderr.
  static void report(const std::string& what) noexcept;
  void reap_now() noexcept;
  pid_t pid_ = -1;
};

/// Runs body() in a forked child and waits for it (killed after `timeout`).
template <class F> exit_status run_in_child(F&& body, milliseconds timeout = 20s) {
  return child::spawn(std::forward<F>(body)).wait(timeout);
}

/// A program to run from a child: what it is given, where its output goes.
struct program {
  std::string binary;
  std::vector<std::string> args;
  /// Its stdout and stderr, each truncated first; "" is /dev/null, and one path for both
  /// interleaves them in one file. stdin is /dev/null.
  std::string out_path, err_path;
  /// Environment changes: a value sets the variable, nullopt unsets it.
  std::vector<std::pair<std::string, std::optional<std::string>>> env;
  /// Run as this uid (and gid), with no supplementary groups (needs root); the binary
  /// then runs from a copy anyone may execute (executable_for_anyone).
  std::optional<std::uint32_t> run_as;
  /// In the child, after the redirections and env, before dropping to run_as (for
  /// limits, or variables only the child knows, such as its own pid). The caller is
  /// single-threaded, so it may allocate.
  std::function<void()> before_exec;
};

/// Forks and execs `p` (the child dies with the caller); the child's pid. A child that
/// cannot redirect exits 126, cannot drop to run_as 125, cannot exec 127.
pid_t start_program(const program& p);

/// How a program run to its end went, with what it wrote.
struct program_result {
  exit_status status;
  std::string out, err;
};

/// start_program, then waits for it (SIGKILL after `timeout`) and reads its output files.
program_result run_program(const program& p, milliseconds timeout);

} // namespace slabtest
