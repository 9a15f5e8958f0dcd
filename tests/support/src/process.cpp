#include <slabtest/process.hpp>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/wait.h>

namespace slabtest {

std::string exit_status::describe() const {
  if (timed_out) return "did not finish in time (killed)";
  if (WIFEXITED(raw)) return "exited with code " + std::to_string(WEXITSTATUS(raw));
  if (WIFSIGNALED(raw)) {
    return "killed by signal " + std::to_string(WTERMSIG(raw)) + " (" + ::strsignal(WTERMSIG(raw)) +
           ")";
  }
  return "ended with wait status " + std::to_string(raw);
}

void die_with(pid_t parent) noexcept {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(95); // the parent died before prctl
}

exit_status wait_for_exit(pid_t pid, milliseconds timeout) {
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

void child_fail(const char* file, int line, const char* expr, const std::string& detail) {
  std::string s = std::string(file) + ":" + std::to_string(line) + ": check failed: " + expr;
  if (!detail.empty()) s += " (" + detail + ")";
  throw child_failure(s);
}

pid_t child::fork_child() {
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) fail_errno("fork");
  if (pid == 0) die_with(parent);
  return pid;
}

void child::report(const std::string& what) noexcept {
  std::fprintf(stderr, "[child %d] %s\n", static_cast<int>(::getpid()), what.c_str());
}

exit_status child::wait(milliseconds timeout) {
  if (pid_ <= 0) throw std::logic_error("child already reaped");
  const exit_status st = wait_for_exit(pid_, timeout);
  pid_ = -1;
  return st;
}

void child::signal(int sig) const {
  if (pid_ > 0) ::kill(pid_, sig);
}

bool child::wait_stopped(milliseconds timeout) const {
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

void child::reap_now() noexcept {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int s = 0;
  while (::waitpid(pid_, &s, 0) < 0 && errno == EINTR) {}
  pid_ = -1;
}

namespace {

/// In the child: stdin from /dev/null, stdout and stderr to their files.
bool redirect(const program& p) {
  const auto open_out = [](const std::string& path) {
    return path.empty() ? ::open("/dev/null", O_WRONLY | O_CLOEXEC)
                        : ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  };
  const int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int out = open_out(p.out_path);
  const int err = p.err_path == p.out_path ? out : open_out(p.err_path);
  return in >= 0 && out >= 0 && err >= 0 && ::dup2(in, 0) >= 0 && ::dup2(out, 1) >= 0 &&
         ::dup2(err, 2) >= 0;
}

} // namespace

pid_t start_program(const program& p) {
  std::vector<std::string> argv_s{p.run_as ? executable_for_anyone(p.binary) : p.binary};
  argv_s.insert(argv_s.end(), p.args.begin(), p.args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) fail_errno("fork");
  if (pid != 0) return pid;
  die_with(parent);
  if (!redirect(p)) ::_exit(126);
  for (const auto& [name, value] : p.env) {
    if (value)
      ::setenv(name.c_str(), value->c_str(), 1);
    else
      ::unsetenv(name.c_str());
  }
  if (p.before_exec) p.before_exec();
  if (p.run_as) {
    const auto id = static_cast<uid_t>(*p.run_as);
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

program_result run_program(const program& p, milliseconds timeout) {
  program_result r;
  r.status = wait_for_exit(start_program(p), timeout);
  if (!p.out_path.empty()) r.out = read_file(p.out_path);
  if (!p.err_path.empty()) r.err = read_file(p.err_path);
  return r;
}

} // namespace slabtest
