// Control-socket system calls.
#include <slab/platform/ipc.hpp>

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.hpp"

namespace slab::platform {
namespace {

using namespace detail; // NOLINT(google-build-using-namespace): this library's own helpers

result<sockaddr_un> address_of(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(a.sun_path)) {
    return fail(ENAMETOOLONG,
                "socket path '" + path + "' is empty or longer than " +
                    std::to_string(sizeof(a.sun_path) - 1) + " bytes",
                sys_cause::invalid_argument);
  }
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

sockaddr* as_sockaddr(sockaddr_un& a) noexcept { return reinterpret_cast<sockaddr*>(&a); }

// A socket file nobody listens on (its daemon died) may be replaced; anything else not.
status clear_stale_socket(const std::string& path, sockaddr_un& a) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return ok_t{}; // nothing there
  if (!S_ISSOCK(st.st_mode)) {
    return fail(EEXIST, "'" + path + "' exists and is not a socket; not replacing it",
                sys_cause::invalid_argument);
  }
  unique_fd probe(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (probe && ::connect(probe.get(), as_sockaddr(a), sizeof(a)) == 0) {
    return fail(EADDRINUSE, "another daemon is listening on '" + path + "'", sys_cause::other);
  }
  ::unlink(path.c_str());
  return ok_t{};
}

} // namespace

status check_socket_directory(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    const int e = errno;
    return fail(e, "the socket directory '" + dir + "': " + errno_text(e),
                sys_cause::invalid_argument);
  }
  const std::string what = "the socket directory '" + dir + "' " + owner_and_mode(st);
  if (!S_ISDIR(st.st_mode))
    return fail(ENOTDIR, what + " is not a directory", sys_cause::invalid_argument);
  if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
    return fail(EPERM,
                what + " belongs to another user, who could replace the socket; use a "
                       "directory of root's or of shmd's user (the package's /run/shmd)",
                sys_cause::invalid_argument);
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
    return fail(EPERM,
                what + " is writable by " +
                    ((st.st_mode & S_IWOTH) != 0 ? "every user" : "its group") +
                    " and not sticky: another user could replace the socket; use a directory "
                    "only shmd's user can write (the package's /run/shmd), or make it sticky "
                    "(chmod +t)",
                sys_cause::invalid_argument);
  }
  return ok_t{};
}

result<unique_fd> listen_seqpacket(const std::string& path, unsigned mode) {
  result<sockaddr_un> a = address_of(path);
  if (!a) return a.error();
  if (status s = clear_stale_socket(path, a.value()); !s) return s.error();
  unique_fd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    const int e = errno;
    return fail(e, "socket(AF_UNIX, SOCK_SEQPACKET): " + errno_text(e), sys_cause::other);
  }
  if (::bind(fd.get(), as_sockaddr(a.value()), sizeof(sockaddr_un)) != 0) {
    const int e = errno;
    return fail(e, "binding the control socket '" + path + "': " + errno_text(e),
                e == EACCES ? sys_cause::invalid_argument : sys_cause::other);
  }
  if (::chmod(path.c_str(), mode) != 0 || ::listen(fd.get(), 128) != 0) {
    const int e = errno;
    return fail(e, "listening on '" + path + "': " + errno_text(e), sys_cause::other);
  }
  return fd;
}

result<unique_fd> connect_seqpacket(const std::string& path) {
  result<sockaddr_un> a = address_of(path);
  if (!a) return a.error();
  unique_fd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) {
    const int e = errno;
    return fail(e, "socket(AF_UNIX, SOCK_SEQPACKET): " + errno_text(e), sys_cause::other);
  }
  if (::connect(fd.get(), as_sockaddr(a.value()), sizeof(sockaddr_un)) != 0) {
    const int e = errno;
    return fail(e, "connecting to shmd at '" + path + "': " + errno_text(e), sys_cause::other);
  }
  return fd;
}

result<unique_fd> accept_seqpacket(int listen_fd) {
  unique_fd fd(::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (!fd) {
    const int e = errno;
    return fail(e, "accept: " + errno_text(e), sys_cause::other);
  }
  return fd;
}

void close_after_reply(unique_fd& fd) noexcept {
  if (!fd) return;
  (void)::shutdown(fd.get(), SHUT_RD);
  char sink[256];
  while (::recv(fd.get(), sink, sizeof sink, MSG_DONTWAIT) > 0) {}
  fd = unique_fd();
}

unique_fd open_spare_descriptor() noexcept {
  return unique_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
}

result<peer_credentials> peer_of(int fd) {
  ucred c{};
  socklen_t len = sizeof(c);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) != 0) {
    const int e = errno;
    return fail(e, "SO_PEERCRED: " + errno_text(e), sys_cause::other);
  }
  return peer_credentials{static_cast<std::uint32_t>(c.pid), c.uid, c.gid};
}

std::vector<std::uint32_t> peer_groups(int fd) {
  std::vector<gid_t> groups(64);
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    const int rc = ::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len);
    if (rc != 0 && errno != ERANGE) return {};
    groups.resize(len / sizeof(gid_t)); // ERANGE: len is the size needed
    if (rc == 0) return {groups.begin(), groups.end()};
  }
  return {};
}

status set_receive_timeout(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
    const int e = errno;
    return fail(e, "SO_RCVTIMEO: " + errno_text(e), sys_cause::other);
  }
  return ok_t{};
}

status send_message(int fd, const void* data, std::size_t bytes, std::span<const int> fds) {
  iovec iov{const_cast<void*>(data), bytes};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(sizeof(int) * fds.size()));
    m.msg_control = control.data();
    m.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  for (;;) {
    const ssize_t n = ::sendmsg(fd, &m, MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(bytes)) return ok_t{};
    if (n < 0 && errno == EINTR) continue;
    const int e = n < 0 ? errno : EMSGSIZE;
    return fail(e, "sending on the control socket: " + errno_text(e), sys_cause::other);
  }
}

result<std::size_t> receive_message(int fd, void* data, std::size_t cap,
                                    std::vector<unique_fd>& fds) {
  iovec iov{data, cap};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 80)];
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    const int e = errno;
    return fail(e, "receiving on the control socket: " + errno_text(e), sys_cause::other);
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int f = -1;
      std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.emplace_back(f);
    }
  }
  if ((m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
    return fail(EMSGSIZE, "a control message was truncated", sys_cause::other);
  }
  return static_cast<std::size_t>(n);
}

} // namespace slab::platform
