// The real-process test fixture: a shmd started from the build tree in a fresh temporary
// directory, and child processes forked from the test.
//
//   slabtest::daemon d;                               // config written, shmd started, READY=1
//   slabtest::exit_status st = slabtest::run_in_child([&] {
//     slab::client c = slab::client::connect(d.socket_path());
//     ...
//     return 0;                                       // the child's exit code
//   });
//   EXPECT_TRUE(st.ok()) << st.describe();
//
// Readiness is what systemd would see: the fixture stands in for the service manager,
// binds a datagram socket, passes its path in NOTIFY_SOCKET and waits for READY=1.
// Each daemon has its own segment_dir (a fresh directory on /dev/shm), so that no two
// tests, or two runs, share or adopt each other's pools; shmd's stderr goes to a file
// in the temporary directory (stderr_text()). A forked child and shmd die with the test
// process (PR_SET_PDEATHSIG) should it crash.
// Every wait is bounded: a daemon that never gets ready, a child that hangs, a daemon
// that ignores SIGTERM, each ends in a failure (and SIGKILL), never in a stuck test.
//
// Children: the test process must hold no slab::client while it forks (a child would
// share its control socket), and should have no threads running (the child of a
// threaded process may inherit a held lock). A child reports through its exit code and
// its stderr (which ctest shows); CHILD_CHECK turns a failed condition into both.
#pragma once

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <new>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <slab/error.hpp>

#ifndef SHMD_BINARY
#error "SHMD_BINARY must name the shmd executable (tests/client/CMakeLists.txt defines it)"
#endif

namespace slabtest {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

inline const char* shmd_binary() noexcept { return SHMD_BINARY; }

[[noreturn]] inline void fail_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

/// `binary`, or a copy of it that any user may execute. Tests that drop to another user
/// (nobody) exec binaries of the build tree, which may sit below a directory only its
/// owner can enter (a clone in a `mktemp -d` directory is 0700). The copies live in one
/// directory under the system's temporary directory, removed when the process that made
/// it exits.
inline std::string executable_for_anyone(const std::string& binary) {
  namespace fs = std::filesystem;
  bool reachable = true;
  for (fs::path p = fs::path(binary).parent_path(); reachable && !p.empty(); p = p.parent_path()) {
    struct stat st {};
    reachable = ::stat(p.c_str(), &st) == 0 && (st.st_mode & S_IXOTH) != 0;
    if (p == p.root_path()) break;
  }
  if (reachable) return binary;
  struct copies {
    fs::path dir;
    pid_t owner = ::getpid();
    copies() {
      dir = fs::temp_directory_path() / ("slabtest-bin." + std::to_string(owner));
      fs::create_directories(dir);
      fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec);
    }
    copies(const copies&) = delete;
    copies& operator=(const copies&) = delete;
    ~copies() {
      std::error_code ec;
      if (::getpid() == owner) fs::remove_all(dir, ec);
    }
  };
  static copies c;
  const fs::path copy = c.dir / fs::path(binary).filename();
  if (!fs::exists(copy)) {
    fs::copy_file(binary, copy);
    fs::permissions(copy, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
  }
  return copy.string();
}

// ---------------------------------------------------------------------------------------
// Files and directories.

/// A fresh directory (mkdtemp, mode 0700) under `base` (default $TMPDIR or /tmp),
/// removed with its contents on destruction.
class temp_dir {
public:
  explicit temp_dir(std::string base = {}) {
    if (base.empty()) {
      const char* env = std::getenv("TMPDIR");
      base = env != nullptr && *env != '\0' ? env : "/tmp";
    }
    std::string tmpl = base + "/slabtest.XXXXXX";
    // Socket paths inside must fit sun_path (107 bytes); fall back to /tmp if TMPDIR is deep.
    if (tmpl.size() > 60) tmpl = "/tmp/slabtest.XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) fail_errno("mkdtemp " + tmpl);
    path_ = buf.data();
  }
  ~temp_dir() {
    if (owner_ != ::getpid()) return; // a forked child must not remove the parent's dir
    std::error_code ec;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] std::string file(std::string_view name) const {
    return path_ + "/" + std::string(name);
  }

private:
  std::string path_;
  pid_t owner_ = ::getpid();
};

inline void write_file(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

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

// ---------------------------------------------------------------------------------------
// Child processes.

/// How a child ended.
struct exit_status {
  int raw = 0;
  bool timed_out = false; ///< it did not end in time and was killed (SIGKILL)

  [[nodiscard]] bool exited() const noexcept { return !timed_out && WIFEXITED(raw); }
  [[nodiscard]] int code() const noexcept { return exited() ? WEXITSTATUS(raw) : -1; }
  [[nodiscard]] bool signaled() const noexcept { return !timed_out && WIFSIGNALED(raw); }
  [[nodiscard]] int signal() const noexcept { return signaled() ? WTERMSIG(raw) : 0; }
  [[nodiscard]] bool ok() const noexcept { return code() == 0; }
  [[nodiscard]] std::string describe() const {
    if (timed_out) return "did not finish in time (killed)";
    if (WIFEXITED(raw)) return "exited with code " + std::to_string(WEXITSTATUS(raw));
    if (WIFSIGNALED(raw)) {
      return "killed by signal " + std::to_string(WTERMSIG(raw)) + " (" +
             ::strsignal(WTERMSIG(raw)) + ")";
    }
    return "ended with wait status " + std::to_string(raw);
  }
};

/// In a forked child: be killed when the test process dies (a crashed test must not
/// leave a shmd or a stopped client behind).
inline void die_with(pid_t parent) noexcept {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(95); // the parent died before prctl
}

/// Waits for `pid` to end; SIGKILLs it after `timeout`.
inline exit_status wait_for_exit(pid_t pid, milliseconds timeout) {
  exit_status st;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const pid_t r = ::waitpid(pid, &st.raw, WNOHANG);
    if (r == pid) return st;
    if (r < 0 && errno != EINTR) fail_errno("waitpid " + std::to_string(pid));
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(1ms);
  }
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &st.raw, 0) < 0 && errno == EINTR) {}
  st.timed_out = true;
  return st;
}

/// A failed CHILD_CHECK: fork_child's handler prints it and exits with code 97.
struct child_failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void child_fail(const char* file, int line, const char* expr,
                                    const std::string& detail) {
  std::string s = std::string(file) + ":" + std::to_string(line) + ": check failed: " + expr;
  if (!detail.empty()) s += " (" + detail + ")";
  throw child_failure(s);
}

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
  /// Forks; the child runs body() (returning its exit code) and _exits. A
  /// slab::error escaping body exits 98, any other exception 97, after a line on stderr.
  template <class F> static child spawn(F&& body) {
    std::fflush(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) fail_errno("fork");
    if (pid == 0) {
      die_with(parent);
      int rc = 96;
      try {
        rc = std::forward<F>(body)();
      } catch (const slab::error& e) {
        std::fprintf(stderr, "[child %d] slab::error %s: %s\n", static_cast<int>(::getpid()),
                     std::string(slab::to_string(e.code())).c_str(), e.what());
        rc = 98;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "[child %d] %s\n", static_cast<int>(::getpid()), e.what());
        rc = 97;
      } catch (...) {
        std::fprintf(stderr, "[child %d] unknown exception\n", static_cast<int>(::getpid()));
        rc = 97;
      }
      std::fflush(nullptr);
      ::_exit(rc);
    }
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
  exit_status wait(milliseconds timeout = 20s) {
    if (pid_ <= 0) throw std::logic_error("child already reaped");
    const exit_status st = wait_for_exit(pid_, timeout);
    pid_ = -1;
    return st;
  }
  void signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  /// Waits until the child is stopped (after SIGSTOP). False if it ended or took too long.
  bool wait_stopped(milliseconds timeout = 5s) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      siginfo_t si{};
      if (::waitid(P_PID, static_cast<id_t>(pid_), &si, WSTOPPED | WNOHANG | WNOWAIT) == 0 &&
          si.si_pid == pid_) {
        return si.si_code == CLD_STOPPED || si.si_code == CLD_TRAPPED;
      }
      std::this_thread::sleep_for(1ms);
    }
    return false;
  }

private:
  explicit child(pid_t pid) : pid_(pid) {}
  void reap_now() noexcept {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int s = 0;
    while (::waitpid(pid_, &s, 0) < 0 && errno == EINTR) {}
    pid_ = -1;
  }
  pid_t pid_ = -1;
};

/// Runs body() in a forked child and waits for it (killed after `timeout`).
template <class F> exit_status run_in_child(F&& body, milliseconds timeout = 20s) {
  return child::spawn(std::forward<F>(body)).wait(timeout);
}

// ---------------------------------------------------------------------------------------
// Memory and pipes shared with children.

/// n objects of T in an anonymous MAP_SHARED mapping: made before fork, the same
/// memory (at the same address) in the parent and every child. T must be usable
/// across processes (atomics, plain data).
template <class T> class shared_array {
public:
  explicit shared_array(std::size_t n = 1) : n_(n) {
    void* p = ::mmap(nullptr, bytes(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) fail_errno("mmap shared_array");
    data_ = static_cast<T*>(p);
    for (std::size_t i = 0; i < n_; ++i)
      ::new (&data_[i]) T();
  }
  ~shared_array() { ::munmap(data_, bytes()); }
  shared_array(const shared_array&) = delete;
  shared_array& operator=(const shared_array&) = delete;

  T& operator[](std::size_t i) noexcept { return data_[i]; }
  T* get() noexcept { return data_; }
  T& operator*() noexcept { return data_[0]; }
  T* operator->() noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return n_; }

private:
  [[nodiscard]] std::size_t bytes() const noexcept { return (n_ * sizeof(T) + 4095) / 4096 * 4096; }
  std::size_t n_;
  T* data_ = nullptr;
};

/// A barrier for processes (or threads) in shared memory: round r is passed once
/// `parties` callers have arrived r + 1 times. Spins (yielding now and then) so that the
/// parties leave it together; gives up after `timeout` (returns false).
class spin_barrier {
public:
  bool arrive_and_wait(std::uint64_t parties, std::uint64_t round, milliseconds timeout = 10s) {
    arrived_.fetch_add(1);
    const std::uint64_t target = parties * (round + 1);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (std::uint64_t spins = 1; arrived_.load() < target; ++spins) {
      if (spins % 64 == 0) std::this_thread::yield();
      if (spins % 4096 == 0 && std::chrono::steady_clock::now() >= deadline) return false;
    }
    return true;
  }

private:
  std::atomic<std::uint64_t> arrived_{0};
};

/// A file descriptor closed on destruction.
class fd_handle {
public:
  fd_handle() = default;
  explicit fd_handle(int fd) noexcept : fd_(fd) {}
  fd_handle(fd_handle&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  fd_handle& operator=(fd_handle&& o) noexcept {
    if (this != &o) {
      close();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~fd_handle() { close(); }
  [[nodiscard]] int get() const noexcept { return fd_; }
  void close() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

private:
  int fd_ = -1;
};

/// A pipe. After fork, each side closes the end it does not use, so that the reader sees
/// EOF once every writer is gone.
struct pipe_pair {
  fd_handle read_end, write_end;
  pipe_pair() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) fail_errno("pipe2");
    read_end = fd_handle(fds[0]);
    write_end = fd_handle(fds[1]);
  }
};

inline bool write_all(int fd, const void* data, std::size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

/// Reads exactly n bytes; false on EOF or error (also when EOF comes mid-object).
inline bool read_all(int fd, void* data, std::size_t n) {
  auto* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

template <class T> bool send_value(int fd, const T& v) { return write_all(fd, &v, sizeof v); }
template <class T> bool receive_value(int fd, T& v) { return read_all(fd, &v, sizeof v); }

// ---------------------------------------------------------------------------------------
// The daemon.

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
  /// Mode of the temporary directory that holds the socket (0711 lets other uids reach
  /// the socket, which shmd creates 0666, so that shmd's own check decides).
  unsigned dir_mode = 0700;
  /// segment_dir for shmd: unset, a fresh directory on tmpfs (/dev/shm) that goes with
  /// the fixture, so that no two tests (or runs) share or adopt each other's pools; ""
  /// for anonymous memfds.
  std::optional<std::string> segment_dir;
  /// Keep reading the notify socket after READY=1 (see notifications()). Off, it is
  /// closed once shmd is ready: sd_notify blocks on a full datagram queue (10 by
  /// default, one STATUS= a second), which would stall shmd's worker in a long test.
  bool keep_notify = false;
  /// hugepage_dir for shmd: "" (the default) makes hugepage segments memfds.
  std::string hugepage_dir;
  /// Run shmd as this uid (and gid) instead of the test's, with no supplementary groups
  /// (needs root). The fixture gives the segment directory it makes to that uid; the
  /// socket's directory must let it in and write (dir_mode 0777).
  std::optional<std::uint32_t> run_as;
  /// RLIMIT_MEMLOCK (soft and hard) for shmd, in bytes. Root ignores it (CAP_IPC_LOCK):
  /// combine with run_as.
  std::optional<std::uint64_t> memlock_limit;
};

inline std::string toml_list(const std::vector<std::uint32_t>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i)
    s += (i != 0 ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

/// The TOML text of a config with socket `socket` and segments in `segment_dir`.
inline std::string config_text(const daemon_cfg& cfg, const std::string& socket,
                               const std::string& segment_dir) {
  std::ostringstream o;
  o << "[daemon]\n"
    << "socket = \"" << socket << "\"\n"
    << "segment_dir = \"" << segment_dir << "\"\n"
    << "hugepage_dir = \"" << cfg.hugepage_dir << "\"\n"
    << "log_level = \"" << cfg.log_level << "\"\n"
    << "allow_uids = " << toml_list(cfg.allow_uids) << "\n"
    << "allow_gids = " << toml_list(cfg.allow_gids) << "\n";
  for (const pool_cfg& p : cfg.pools) {
    o << "\n[[pool]]\n"
      << "name = \"" << p.name << "\"\n"
      << "slot_size = " << p.slot_size << "\n"
      << "capacity = " << p.capacity << "\n"
      << "max_capacity = " << p.max_capacity << "\n"
      << "contexts = " << p.contexts << "\n"
      << "hugepages = \"" << p.hugepages << "\"\n"
      << "grow_at = " << p.grow_at << "\n";
    if (p.numa_node) o << "numa_node = " << *p.numa_node << "\n";
    if (!p.mode.empty()) o << "mode = \"" << p.mode << "\"\n";
  }
  return o.str();
}

/// A bound datagram socket standing in for systemd's notify socket.
class notify_socket {
public:
  explicit notify_socket(std::string path) : path_(std::move(path)) {
    fd_ = fd_handle(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (fd_.get() < 0) fail_errno("socket(AF_UNIX, SOCK_DGRAM)");
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path_.size() >= sizeof a.sun_path) throw std::runtime_error("notify path too long");
    std::memcpy(a.sun_path, path_.c_str(), path_.size() + 1);
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      fail_errno("bind " + path_);
  }
  ~notify_socket() { close(); }
  notify_socket(const notify_socket&) = delete;
  notify_socket& operator=(const notify_socket&) = delete;

  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] bool open() const noexcept { return fd_.get() >= 0; }

  /// Waits up to `timeout` for one datagram; appends it to `got`. False on timeout.
  bool receive(std::vector<std::string>& got, milliseconds timeout) {
    if (!open()) return false;
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char buf[4096];
    const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0) return false;
    got.emplace_back(buf, static_cast<std::size_t>(n));
    return true;
  }
  /// Everything queued now.
  void drain(std::vector<std::string>& got) {
    while (receive(got, 0ms)) {}
  }
  void close() noexcept {
    if (!open()) return;
    fd_.close();
    ::unlink(path_.c_str());
  }

private:
  std::string path_;
  fd_handle fd_;
};

/// How a run of shmd to its end went (run_shmd).
struct shmd_run {
  exit_status status;
  std::string out, err;
  std::vector<std::string> notifications; ///< what it sent to NOTIFY_SOCKET
  [[nodiscard]] bool said_ready() const {
    for (const std::string& n : notifications) {
      if (contains(n, "READY=1")) return true;
    }
    return false;
  }
};

namespace detail {

/// fork + exec shmd with stdout/stderr to files, stdin from /dev/null, NOTIFY_SOCKET set
/// (or unset), and optionally as another user and under an RLIMIT_MEMLOCK.
inline pid_t start_shmd(const std::vector<std::string>& args, const std::string& out_path,
                        const std::string& err_path, const std::string& notify_path,
                        std::optional<std::uint32_t> run_as = std::nullopt,
                        std::optional<std::uint64_t> memlock_limit = std::nullopt) {
  fd_handle out(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  fd_handle err(::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (out.get() < 0 || err.get() < 0) fail_errno("open " + err_path);
  std::vector<std::string> argv_s{run_as ? executable_for_anyone(shmd_binary())
                                         : std::string(shmd_binary())};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_s)
    argv.push_back(s.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) fail_errno("fork");
  if (pid == 0) {
    die_with(parent);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull < 0 || ::dup2(devnull, 0) < 0 || ::dup2(out.get(), 1) < 0 ||
        ::dup2(err.get(), 2) < 0) {
      ::_exit(126);
    }
    ::unsetenv("JOURNAL_STREAM"); // plain "shmd: level: text" lines, never journal prefixes
    ::unsetenv("LISTEN_FDS");
    if (notify_path.empty())
      ::unsetenv("NOTIFY_SOCKET");
    else
      ::setenv("NOTIFY_SOCKET", notify_path.c_str(), 1);
    if (memlock_limit) {
      const rlimit rl{static_cast<rlim_t>(*memlock_limit), static_cast<rlim_t>(*memlock_limit)};
      if (::setrlimit(RLIMIT_MEMLOCK, &rl) != 0) {
        std::perror("setrlimit(RLIMIT_MEMLOCK)");
        ::_exit(124);
      }
    }
    if (run_as) {
      const auto id = static_cast<uid_t>(*run_as);
      if (::setgroups(0, nullptr) != 0 || ::setgid(id) != 0 || ::setuid(id) != 0) {
        std::perror("dropping to another uid");
        ::_exit(125);
      }
      die_with(parent); // a change of uid cleared it
    }
    ::execv(argv[0], argv.data());
    std::fprintf(stderr, "exec %s: %s\n", argv[0], std::strerror(errno));
    ::_exit(127);
  }
  return pid;
}

} // namespace detail

/// Runs shmd with `args` until it exits (SIGKILL after `timeout`); for exit codes and
/// messages. `dir` holds its output files and notify socket.
inline shmd_run run_shmd(const temp_dir& dir, const std::vector<std::string>& args,
                         milliseconds timeout = 10s,
                         std::optional<std::uint32_t> run_as = std::nullopt,
                         std::optional<std::uint64_t> memlock_limit = std::nullopt) {
  static int serial = 0;
  const std::string tag = "run" + std::to_string(++serial);
  notify_socket notify(dir.file(tag + ".notify"));
  if (run_as) ::chmod(notify.path().c_str(), 0666);
  const pid_t pid = detail::start_shmd(args, dir.file(tag + ".out"), dir.file(tag + ".err"),
                                       notify.path(), run_as, memlock_limit);
  shmd_run r;
  r.status = wait_for_exit(pid, timeout);
  notify.drain(r.notifications);
  r.out = read_file(dir.file(tag + ".out"));
  r.err = read_file(dir.file(tag + ".err"));
  return r;
}

/// A running shmd with its own config, socket and log in a fresh temporary directory.
class daemon {
public:
  explicit daemon(daemon_cfg cfg = {}) : cfg_(std::move(cfg)) {
    ::chmod(dir_.path().c_str(), static_cast<mode_t>(cfg_.dir_mode));
    socket_ = dir_.file("shmd.sock");
    config_ = dir_.file("shmd.toml");
    if (!cfg_.segment_dir) {
      segments_.emplace("/dev/shm");
      cfg_.segment_dir = segments_->path();
      if (cfg_.run_as && ::chown(segments_->path().c_str(), static_cast<uid_t>(*cfg_.run_as),
                                 static_cast<gid_t>(*cfg_.run_as)) != 0) {
        fail_errno("chown " + segments_->path());
      }
    }
    write_file(config_, config_text(cfg_, socket_, *cfg_.segment_dir));
    start();
  }

  /// Starts shmd again on the same config, socket and segments after it exited (a test
  /// that killed it): it adopts the pools the previous one left. Waits for READY=1.
  void restart() {
    if (pid_ > 0) throw std::logic_error("restart of a running shmd");
    exited_.reset();
    ready_ = false;
    ++runs_;
    start();
  }

private:
  std::string err_file(unsigned run) const {
    return dir_.file(run == 0 ? "shmd.err" : "shmd." + std::to_string(run) + ".err");
  }

  void start() {
    notify_.emplace(dir_.file("notify" + std::to_string(runs_) + ".sock"));
    if (cfg_.run_as) ::chmod(notify_->path().c_str(), 0666);
    pid_ = detail::start_shmd({"--config", config_}, dir_.file("shmd.out"), err_file(runs_),
                              notify_->path(), cfg_.run_as, cfg_.memlock_limit);
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    // Only this run's notifications count: notes_ keeps every run's, and a restarted
    // shmd is not ready because the previous one once was.
    const std::size_t first_note = notes_.size();
    for (;;) {
      notify_->receive(notes_, 20ms);
      for (std::size_t i = first_note; i < notes_.size(); ++i) {
        if (contains(notes_[i], "READY=1")) ready_ = true;
      }
      if (ready_) break;
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        exited_ = exit_status{st, false};
        pid_ = -1;
        throw std::runtime_error("shmd ended before READY=1 (" + exited_->describe() +
                                 "); its stderr:\n" + stderr_text());
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        stop(0ms);
        throw std::runtime_error("shmd sent no READY=1 within 20 s; its stderr:\n" + stderr_text());
      }
    }
    if (!cfg_.keep_notify) notify_->close();
  }

public:
  /// Stops shmd if the test has not; an unclean stop (a crash, a sanitizer report at
  /// exit, no exit within the grace time) fails the test that owns the fixture.
  ~daemon() {
    if (owner_ != ::getpid() || pid_ <= 0) return;
    const exit_status st = stop();
    if (!st.ok()) {
      ADD_FAILURE() << "shmd did not stop cleanly on SIGTERM: " << st.describe()
                    << "; its stderr:\n"
                    << stderr_text();
    }
  }
  daemon(const daemon&) = delete;
  daemon& operator=(const daemon&) = delete;

  [[nodiscard]] const std::string& socket_path() const noexcept { return socket_; }
  [[nodiscard]] const std::string& config_path() const noexcept { return config_; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] const temp_dir& dir() const noexcept { return dir_; }
  [[nodiscard]] const daemon_cfg& config() const noexcept { return cfg_; }
  [[nodiscard]] bool running() const noexcept { return pid_ > 0; }
  /// Everything shmd wrote to stderr so far (over every restart).
  [[nodiscard]] std::string stderr_text() const {
    std::string all;
    for (unsigned r = 0; r <= runs_; ++r)
      all += read_file(err_file(r));
    return all;
  }

  /// Waits until shmd's stderr contains `needle`.
  [[nodiscard]] bool wait_for_log(std::string_view needle, milliseconds timeout = 10s) const {
    return eventually([&] { return contains(stderr_text(), needle); }, timeout);
  }

  /// What shmd sent to its notify socket so far (READY=1, STATUS=..., STOPPING=1); with
  /// keep_notify, reads what is queued now.
  std::vector<std::string> notifications() {
    if (notify_ && notify_->open()) notify_->drain(notes_);
    return notes_;
  }

  /// Sends `sig` to the daemon.
  void signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }

  /// Waits for shmd to exit on its own (after a signal the test sent); SIGKILL after
  /// `timeout`.
  exit_status wait_exit(milliseconds timeout = 5s) {
    if (pid_ > 0) {
      exited_ = wait_for_exit(pid_, timeout);
      pid_ = -1;
      if (notify_ && notify_->open()) notify_->drain(notes_);
    }
    return exited_.value_or(exit_status{});
  }

  /// SIGTERM, then SIGKILL if it has not exited after `grace`. Returns how it ended (the
  /// first time; later calls return the same).
  exit_status stop(milliseconds grace = 5s) {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      exited_ = wait_for_exit(pid_, grace);
      pid_ = -1;
      if (notify_ && notify_->open()) notify_->drain(notes_);
    }
    return exited_.value_or(exit_status{});
  }

private:
  daemon_cfg cfg_;
  temp_dir dir_;
  std::optional<temp_dir> segments_;
  std::string socket_, config_;
  std::optional<notify_socket> notify_;
  std::vector<std::string> notes_;
  unsigned runs_ = 0; // restarts so far
  pid_t pid_ = -1;
  pid_t owner_ = ::getpid();
  bool ready_ = false;
  std::optional<exit_status> exited_;
};

} // namespace slabtest
