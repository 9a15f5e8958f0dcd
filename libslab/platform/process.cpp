// Processes: identity, liveness, names.
#include <slab/platform/process.hpp>

#include <cerrno>
#include <csignal>
#include <fstream>
#include <vector>

#include <grp.h>
#include <pwd.h>

#include <poll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.hpp"

namespace slab::platform {

using detail::errno_text;
using detail::fail;

peer_credentials own_credentials() noexcept {
  return {own_pid(), static_cast<std::uint32_t>(::getuid()),
          static_cast<std::uint32_t>(::getgid())};
}

std::uint32_t own_pid() noexcept { return static_cast<std::uint32_t>(::getpid()); }
std::uint32_t own_effective_uid() noexcept { return static_cast<std::uint32_t>(::geteuid()); }
std::uint32_t own_effective_gid() noexcept { return static_cast<std::uint32_t>(::getegid()); }

std::uint64_t random_u64() noexcept {
  std::uint64_t v = 0;
  if (::getrandom(&v, sizeof v, 0) == static_cast<ssize_t>(sizeof v)) return v;
  timespec t{};
  ::clock_gettime(CLOCK_REALTIME, &t);
  v = static_cast<std::uint64_t>(t.tv_nsec) ^ (static_cast<std::uint64_t>(t.tv_sec) << 30) ^
      (std::uint64_t{own_pid()} << 48) ^ reinterpret_cast<std::uintptr_t>(&v);
  v ^= v >> 33; // splitmix's finaliser: spread the few bits that differ
  v *= 0xff51afd7ed558ccdULL;
  v ^= v >> 33;
  return v;
}

std::uint64_t raise_descriptor_limit() noexcept {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return 0;
  if (r.rlim_cur < r.rlim_max) {
    rlimit want = r;
    want.rlim_cur = r.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &want) == 0) r = want;
  }
  return static_cast<std::uint64_t>(r.rlim_cur);
}

std::string process_name(std::uint32_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  std::getline(f, name);
  return name;
}

std::string own_process_name() {
  std::ifstream f("/proc/self/comm");
  std::string name;
  std::getline(f, name);
  return name.empty() ? "?" : name;
}

bool process_exists(std::uint32_t pid) noexcept {
  if (pid == 0) return false; // kill(0, 0) would ask about our own process group
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

result<unique_fd> open_pidfd(std::uint32_t pid) {
  const long fd = ::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0U);
  if (fd < 0) {
    const int e = errno;
    return fail(e, "pidfd_open(" + std::to_string(pid) + "): " + errno_text(e), sys_cause::other);
  }
  return unique_fd(static_cast<int>(fd));
}

bool pidfd_exited(int pidfd) noexcept {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0; // readable once the process has exited
}

namespace {

// One *nam_r lookup (getgrnam_r, getpwnam_r): the id of the entry called `name`,
// nullopt when there is none; the buffer grows for large entries.
template <class Entry, class Lookup, class Id>
result<std::optional<std::uint32_t>> id_by_name(const std::string& name, const char* call,
                                                Lookup lookup, Id id_of) {
  if (name.empty() || name.find('\0') != std::string::npos) return std::optional<std::uint32_t>{};
  std::vector<char> buf(1024);
  for (;;) {
    Entry entry{};
    Entry* found = nullptr;
    const int e = lookup(name.c_str(), &entry, buf.data(), buf.size(), &found);
    if (e == ERANGE && buf.size() < (std::size_t{1} << 20)) {
      buf.resize(buf.size() * 2); // a group with many members
      continue;
    }
    if (found != nullptr) return std::optional<std::uint32_t>{id_of(entry)};
    // No entry: 0, or ENOENT/ESRCH/EBADF/EPERM as some NSS modules say it.
    if (e == 0 || e == ENOENT || e == ESRCH || e == EBADF || e == EPERM)
      return std::optional<std::uint32_t>{};
    return fail(e, std::string(call) + "(\"" + name + "\"): " + errno_text(e), sys_cause::other);
  }
}

} // namespace

result<std::optional<std::uint32_t>> group_id(const std::string& name) {
  return id_by_name<::group>(name, "getgrnam_r", ::getgrnam_r,
                             [](const ::group& g) { return static_cast<std::uint32_t>(g.gr_gid); });
}

result<std::optional<std::uint32_t>> user_id(const std::string& name) {
  return id_by_name<::passwd>(name, "getpwnam_r", ::getpwnam_r, [](const ::passwd& p) {
    return static_cast<std::uint32_t>(p.pw_uid);
  });
}

} // namespace slab::platform
