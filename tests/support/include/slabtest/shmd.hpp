// shmd from the build tree, for tests and benchmarks: the one way this repository starts
// a daemon.
//
//   slabtest::daemon_cfg cfg;                         // one small pool, "test"
//   slabtest::shmd_process d(cfg);                    // config written, shmd started, READY=1
//   slab::client c = slab::client::connect(d.socket_path());
//
// Readiness is what systemd would see: the process stands in for the service manager,
// binds a datagram socket, passes its path in NOTIFY_SOCKET (with WATCHDOG_USEC and
// WATCHDOG_PID when asked) and waits for READY=1. Each daemon has its own segment_dir (a
// fresh directory on /dev/shm), so that no two tests, or two runs, share or adopt each
// other's pools; shmd's stderr goes to a file in its temporary directory (stderr_text()).
// shmd dies with the process that started it (PR_SET_PDEATHSIG) should that crash. Every
// wait is bounded: a daemon that never gets ready or ignores SIGTERM ends in an exception
// or a failed status (and SIGKILL), never in a stuck test.
//
// Tests use slabtest::daemon (daemon.hpp), which also fails the test when shmd does not
// stop cleanly; run_shmd runs shmd to its end, for exit codes and messages.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include <slabtest/files.hpp>
#include <slabtest/process.hpp>
#include <slabtest/shared.hpp>

namespace slabtest {

/// The shmd executable of this build tree.
const char* shmd_binary() noexcept;

// ---- configuration ----------------------------------------------------------------

/// One [[pool]] table. Small by default so tests stay fast.
struct pool_cfg {
  std::string name = "test";
  std::uint32_t slot_size = 64;
  std::uint64_t capacity = 4096;
  std::uint64_t max_capacity = 1U << 20;
  std::uint32_t contexts = 64;
  std::string hugepages = "off";
  double grow_at = 0.75;
  std::optional<int> numa_node; ///< unset: the key is omitted (local node)
  std::string mode;             ///< "slab" or "arena"; empty: the key is omitted (slab)
};

struct daemon_cfg {
  std::vector<pool_cfg> pools{pool_cfg{}};
  std::string log_level = "info";
  std::vector<std::uint32_t> allow_uids, allow_gids;
  std::optional<std::uint32_t> max_connections_per_uid; ///< unset: the key is omitted
  /// Mode of the temporary directory that holds the socket (0711 lets other uids reach
  /// the socket, which shmd creates 0666, so that shmd's own check decides).
  unsigned dir_mode = 0700;
  /// segment_dir for shmd: unset, a fresh directory on tmpfs (/dev/shm) that goes with
  /// the daemon, so that no two tests (or runs) share or adopt each other's pools; ""
  /// for anonymous memfds.
  std::optional<std::string> segment_dir;
  /// Keep reading the notify socket after READY=1 (see notifications()). Off, it is
  /// closed once shmd is ready: sd_notify blocks on a full datagram queue (10 by
  /// default, one STATUS= a second), which would stall shmd's worker in a long test.
  bool keep_notify = false;
  /// hugepage_dir for shmd: "" (the default) makes hugepage segments memfds.
  std::string hugepage_dir;
  /// Run shmd as this uid (and gid) instead of the caller's, with no supplementary
  /// groups (needs root). The segment directory made for it, and the socket's
  /// directory, are given to that uid (dir_mode 0711 lets the test's clients in).
  std::optional<std::uint32_t> run_as;
  /// RLIMIT_MEMLOCK (soft and hard) for shmd, in bytes. Root ignores it (CAP_IPC_LOCK):
  /// combine with run_as.
  std::optional<std::uint64_t> memlock_limit;
  /// RLIMIT_NOFILE (soft and hard) for shmd: how many descriptors it may hold.
  std::optional<std::uint64_t> nofile_limit;
  /// WATCHDOG_USEC as systemd sets it for WatchdogSec=; unset, no watchdog. WATCHDOG_PID
  /// is shmd's own pid, or pid 1 with watchdog_for_another (a watchdog not meant for it).
  std::optional<std::uint64_t> watchdog_usec;
  bool watchdog_for_another = false;
  /// How long shmd may take to send READY=1 (it prefaults its first tiers first).
  milliseconds ready_timeout = 20s;
  /// The shmd to run; empty: the one of this build tree (shmd_binary()).
  std::string binary;
};

/// The TOML text of `cfg` with socket `socket` and segments in `segment_dir`.
std::string config_text(const daemon_cfg& cfg, const std::string& socket,
                        const std::string& segment_dir);

// ---- the notify socket ------------------------------------------------------------

/// One assignment shmd sent (READY=1, STATUS=..., WATCHDOG=1, STOPPING=1), when it came.
struct notification {
  std::chrono::steady_clock::time_point at;
  std::string text;
};

/// A bound datagram socket standing in for systemd's notify socket.
class notify_socket {
public:
  explicit notify_socket(std::string path);
  ~notify_socket() { close(); }
  notify_socket(const notify_socket&) = delete;
  notify_socket& operator=(const notify_socket&) = delete;

  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] bool open() const noexcept { return fd_.get() >= 0; }

  /// Waits up to `timeout` for one datagram; appends its lines to `got`. False on
  /// timeout.
  bool receive(std::vector<notification>& got, milliseconds timeout);
  /// Everything queued now.
  void drain(std::vector<notification>& got);
  void close() noexcept;

private:
  std::string path_;
  fd_handle fd_;
};

// ---- shmd run to its end ------------------------------------------------------------

/// How a run of shmd to its end went (run_shmd).
struct shmd_run {
  exit_status status;
  std::string out, err;
  std::vector<notification> notifications; ///< what it sent to NOTIFY_SOCKET
  [[nodiscard]] bool said_ready() const;
};

/// Runs shmd with `args` until it exits (SIGKILL after `timeout`); for exit codes and
/// messages. `dir` holds its output files and notify socket.
shmd_run run_shmd(const temp_dir& dir, const std::vector<std::string>& args,
                  milliseconds timeout = 10s, std::optional<std::uint32_t> run_as = std::nullopt,
                  std::optional<std::uint64_t> memlock_limit = std::nullopt);

// ---- a running shmd -----------------------------------------------------------------

/// A running shmd with its own config, socket and log in a fresh temporary directory.
/// Stopped (SIGTERM) on destruction by the process that started it.
class shmd_process {
public:
  explicit shmd_process(daemon_cfg cfg = {});
  virtual ~shmd_process();
  shmd_process(const shmd_process&) = delete;
  shmd_process& operator=(const shmd_process&) = delete;

  /// Starts shmd again on the same config, socket and segments after it exited (a test
  /// that killed it): it adopts the pools the previous one left. Waits for READY=1.
  void restart();

  [[nodiscard]] const std::string& socket_path() const noexcept { return socket_; }
  [[nodiscard]] const std::string& config_path() const noexcept { return config_; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] const temp_dir& dir() const noexcept { return dir_; }
  [[nodiscard]] const daemon_cfg& config() const noexcept { return cfg_; }
  [[nodiscard]] bool running() const noexcept { return pid_ > 0; }
  /// Everything shmd wrote to stderr so far (over every restart).
  [[nodiscard]] std::string stderr_text() const;
  /// Waits until shmd's stderr contains `needle`.
  [[nodiscard]] bool wait_for_log(std::string_view needle, milliseconds timeout = 10s) const;

  /// What shmd sent to its notify socket so far; with keep_notify, also what is queued
  /// now.
  std::vector<notification> notifications();
  /// With keep_notify: reads notifications until one that arrives now satisfies `until`
  /// (true), `timeout` passes or shmd exits (false).
  bool await_notification(const std::function<bool(const std::string&)>& until,
                          milliseconds timeout);

  /// Sends `sig` to the daemon.
  void signal(int sig) const;
  /// Waits for shmd to exit on its own (after a signal the caller sent); SIGKILL after
  /// `timeout`.
  exit_status wait_exit(milliseconds timeout = 5s);
  /// SIGTERM, then SIGKILL if it has not exited after `grace`. Returns how it ended (the
  /// first time; later calls return the same).
  exit_status stop(milliseconds grace = 5s);

protected:
  /// The process that started shmd (a forked child's copy must not stop it).
  [[nodiscard]] bool owned_here() const noexcept { return owner_ == ::getpid(); }

private:
  [[nodiscard]] std::string err_file(unsigned run) const;
  void start();
  /// After start(): reads the notify socket until READY=1 from this run.
  void await_ready();
  /// Collects notifications and the exit status once shmd has ended.
  void reaped(exit_status st);

  daemon_cfg cfg_;
  temp_dir dir_;
  std::optional<temp_dir> segments_;
  std::string socket_, config_;
  std::optional<notify_socket> notify_;
  std::vector<notification> notes_;
  unsigned runs_ = 0; // restarts so far
  pid_t pid_ = -1;
  pid_t owner_;
  std::optional<exit_status> exited_;
};

} // namespace slabtest
