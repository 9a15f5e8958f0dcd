#include <slabtest/shmd.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SHMD_BINARY
#error "SHMD_BINARY must name the shmd executable (tests/support/CMakeLists.txt defines it)"
#endif

namespace slabtest {

const char* shmd_binary() noexcept { return SHMD_BINARY; }

// ---- configuration ----------------------------------------------------------------

namespace {

std::string toml_list(const std::vector<std::uint32_t>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i)
    s += (i != 0 ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

} // namespace

std::string config_text(const daemon_cfg& cfg, const std::string& socket,
                        const std::string& segment_dir) {
  std::ostringstream o;
  o << "[daemon]\n"
    << "socket = \"" << socket << "\"\n"
    << "segment_dir = \"" << segment_dir << "\"\n"
    << "hugepage_dir = \"" << cfg.hugepage_dir << "\"\n"
    << "log_level = \"" << cfg.log_level << "\"\n"
    << "allow_uids = " << toml_list(cfg.allow_uids) << "\n"
    << "allow_gids = " << toml_list(cfg.allow_gids) << "\n";
  if (cfg.max_connections_per_uid)
    o << "max_connections_per_uid = " << *cfg.max_connections_per_uid << "\n";
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

// ---- the notify socket ------------------------------------------------------------

notify_socket::notify_socket(std::string path) : path_(std::move(path)) {
  fd_ = fd_handle(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd_.get() < 0) fail_errno("socket(AF_UNIX, SOCK_DGRAM)");
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path_.size() >= sizeof a.sun_path) throw std::runtime_error("notify path too long");
  std::memcpy(a.sun_path, path_.c_str(), path_.size() + 1);
  if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    fail_errno("bind " + path_);
}

bool notify_socket::receive(std::vector<notification>& got, milliseconds timeout) {
  if (!open()) return false;
  pollfd p{fd_.get(), POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
  char buf[4096];
  const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
  if (n < 0) return false;
  const auto at = std::chrono::steady_clock::now();
  const std::string_view all(buf, static_cast<std::size_t>(n));
  for (std::size_t b = 0; b < all.size();) { // one datagram may carry several lines
    std::size_t e = all.find('\n', b);
    if (e == std::string_view::npos) e = all.size();
    if (e > b) got.push_back({at, std::string(all.substr(b, e - b))});
    b = e + 1;
  }
  return true;
}

void notify_socket::drain(std::vector<notification>& got) {
  while (receive(got, 0ms)) {}
}

void notify_socket::close() noexcept {
  if (!open()) return;
  fd_.close();
  ::unlink(path_.c_str());
}

// ---- starting shmd ------------------------------------------------------------------

namespace {

/// How to start one shmd.
struct launch {
  std::string binary; ///< empty: shmd_binary()
  std::vector<std::string> args;
  std::string out_path, err_path, notify_path;
  std::optional<std::uint32_t> run_as;
  std::optional<std::uint64_t> memlock_limit;
  std::optional<std::uint64_t> nofile_limit;
  std::optional<std::uint64_t> watchdog_usec;
  bool watchdog_for_another = false;
};

/// fork + exec shmd with stdout/stderr to files, stdin from /dev/null, and the
/// environment systemd would give a Type=notify service.
pid_t start_shmd(const launch& l) {
  program p;
  p.binary = l.binary.empty() ? std::string(shmd_binary()) : l.binary;
  p.args = l.args;
  p.out_path = l.out_path;
  p.err_path = l.err_path;
  p.run_as = l.run_as;
  p.env = {{"JOURNAL_STREAM", std::nullopt}, // plain "shmd: level: text", never journal prefixes
           {"LISTEN_FDS", std::nullopt},
           {"WATCHDOG_USEC", std::nullopt},
           {"WATCHDOG_PID", std::nullopt},
           {"NOTIFY_SOCKET", std::nullopt}};
  if (!l.notify_path.empty()) p.env.emplace_back("NOTIFY_SOCKET", l.notify_path);
  if (l.watchdog_usec) p.env.emplace_back("WATCHDOG_USEC", std::to_string(*l.watchdog_usec));
  p.before_exec = [&l] {
    if (l.watchdog_usec) { // for this process, as systemd sets it, unless meant for another
      const pid_t for_whom = l.watchdog_for_another ? 1 : ::getpid();
      ::setenv("WATCHDOG_PID", std::to_string(for_whom).c_str(), 1);
    }
    if (l.memlock_limit) { // before dropping privileges
      const auto limit = static_cast<rlim_t>(*l.memlock_limit);
      const rlimit rl{limit, limit};
      if (::setrlimit(RLIMIT_MEMLOCK, &rl) != 0) {
        std::perror("setrlimit(RLIMIT_MEMLOCK)");
        ::_exit(124);
      }
    }
    if (l.nofile_limit) {
      const auto limit = static_cast<rlim_t>(*l.nofile_limit);
      const rlimit rl{limit, limit};
      if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        std::perror("setrlimit(RLIMIT_NOFILE)");
        ::_exit(124);
      }
    }
  };
  return start_program(p);
}

} // namespace

bool shmd_run::said_ready() const {
  for (const notification& n : notifications) {
    if (n.text == "READY=1") return true;
  }
  return false;
}

shmd_run run_shmd(const temp_dir& dir, const std::vector<std::string>& args, milliseconds timeout,
                  std::optional<std::uint32_t> run_as, std::optional<std::uint64_t> memlock_limit) {
  static int serial = 0;
  const std::string tag = "run" + std::to_string(++serial);
  notify_socket notify(dir.file(tag + ".notify"));
  if (run_as) ::chmod(notify.path().c_str(), 0666);
  launch l;
  l.args = args;
  l.out_path = dir.file(tag + ".out");
  l.err_path = dir.file(tag + ".err");
  l.notify_path = notify.path();
  l.run_as = run_as;
  l.memlock_limit = memlock_limit;
  const pid_t pid = start_shmd(l);
  shmd_run r;
  r.status = wait_for_exit(pid, timeout);
  notify.drain(r.notifications);
  r.out = read_file(l.out_path);
  r.err = read_file(l.err_path);
  return r;
}

// ---- a running shmd -----------------------------------------------------------------

shmd_process::shmd_process(daemon_cfg cfg) : cfg_(std::move(cfg)), owner_(::getpid()) {
  ::chmod(dir_.path().c_str(), static_cast<mode_t>(cfg_.dir_mode));
  // shmd refuses a socket directory another user could write to, root's excepted.
  if (cfg_.run_as && ::chown(dir_.path().c_str(), static_cast<uid_t>(*cfg_.run_as),
                             static_cast<gid_t>(*cfg_.run_as)) != 0) {
    fail_errno("chown " + dir_.path());
  }
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

shmd_process::~shmd_process() {
  if (owned_here() && pid_ > 0) stop();
}

void shmd_process::restart() {
  if (pid_ > 0) throw std::logic_error("restart of a running shmd");
  exited_.reset();
  ++runs_;
  start();
}

std::string shmd_process::err_file(unsigned run) const {
  return dir_.file(run == 0 ? "shmd.err" : "shmd." + std::to_string(run) + ".err");
}

void shmd_process::start() {
  notify_.emplace(dir_.file("notify" + std::to_string(runs_) + ".sock"));
  if (cfg_.run_as) ::chmod(notify_->path().c_str(), 0666);
  launch l;
  l.binary = cfg_.binary;
  l.args = {"--config", config_};
  l.out_path = dir_.file("shmd.out");
  l.err_path = err_file(runs_);
  l.notify_path = notify_->path();
  l.run_as = cfg_.run_as;
  l.memlock_limit = cfg_.memlock_limit;
  l.nofile_limit = cfg_.nofile_limit;
  l.watchdog_usec = cfg_.watchdog_usec;
  l.watchdog_for_another = cfg_.watchdog_for_another;
  pid_ = start_shmd(l);
  await_ready();
  if (!cfg_.keep_notify) notify_->close();
}

void shmd_process::await_ready() {
  const auto deadline = std::chrono::steady_clock::now() + cfg_.ready_timeout;
  // Only this run's notifications count: notes_ keeps every run's, and a restarted shmd
  // is not ready because the previous one once was.
  std::size_t next = notes_.size();
  for (;;) {
    notify_->receive(notes_, 20ms);
    for (; next < notes_.size(); ++next) {
      if (notes_[next].text == "READY=1") return;
    }
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      reaped(exit_status{st, false});
      throw std::runtime_error("shmd ended before READY=1 (" + exited_->describe() +
                               "); its stderr:\n" + stderr_text());
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      stop(0ms);
      throw std::runtime_error("shmd sent no READY=1 within " +
                               std::to_string(cfg_.ready_timeout.count()) + " ms; its stderr:\n" +
                               stderr_text());
    }
  }
}

std::string shmd_process::stderr_text() const {
  std::string all;
  for (unsigned r = 0; r <= runs_; ++r)
    all += read_file(err_file(r));
  return all;
}

bool shmd_process::wait_for_log(std::string_view needle, milliseconds timeout) const {
  return eventually([&] { return contains(stderr_text(), needle); }, timeout);
}

std::vector<notification> shmd_process::notifications() {
  if (notify_ && notify_->open()) notify_->drain(notes_);
  return notes_;
}

bool shmd_process::await_notification(const std::function<bool(const std::string&)>& until,
                                      milliseconds timeout) {
  if (!notify_ || !notify_->open()) throw std::logic_error("await_notification needs keep_notify");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t next = notes_.size();
  const auto met = [&] {
    for (; next < notes_.size(); ++next) {
      if (until(notes_[next].text)) return true;
    }
    return false;
  };
  for (auto now = std::chrono::steady_clock::now(); now < deadline;
       now = std::chrono::steady_clock::now()) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - now);
    const bool got = notify_->receive(notes_, std::min(left + 1ms, milliseconds(50)));
    if (met()) return true;
    if (got) continue;
    int st = 0;
    if (pid_ > 0 && ::waitpid(pid_, &st, WNOHANG) == pid_) reaped(exit_status{st, false});
    if (pid_ <= 0) return met(); // it ended: what it sent last is queued
  }
  return false;
}

void shmd_process::signal(int sig) const {
  if (pid_ > 0) ::kill(pid_, sig);
}

exit_status shmd_process::wait_exit(milliseconds timeout) {
  if (pid_ > 0) reaped(wait_for_exit(pid_, timeout));
  return exited_.value_or(exit_status{});
}

exit_status shmd_process::stop(milliseconds grace) {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    reaped(wait_for_exit(pid_, grace));
  }
  return exited_.value_or(exit_status{});
}

void shmd_process::reaped(exit_status st) {
  exited_ = st;
  pid_ = -1;
  if (notify_ && notify_->open()) notify_->drain(notes_);
}

} // namespace slabtest
