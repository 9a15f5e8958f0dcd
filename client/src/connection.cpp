// One control connection to shmd (connection.hpp).
#include "connection.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include <slab/error.hpp>
#include <slab/platform/process.hpp>

namespace slab::detail {
namespace {

platform::unique_fd connected(const std::string& path) {
  auto fd = platform::connect_seqpacket(path);
  if (fd) return std::move(fd.value());
  const int e = fd.error().err;
  const std::string why = "(connect: " + std::string(std::strerror(e)) + ")";
  if (e == EACCES || e == EPERM) {
    throw error(errc::permission_denied, "cannot reach shmd at " + path + " " + why +
                                             "; this user may not open the socket or its "
                                             "directory");
  }
  throw error(errc::no_daemon, "no shmd at " + path + " " + why +
                                   "; is shmd running? (the path comes from SHMD_SOCKET or "
                                   "the default)");
}

// The user shmd runs as, besides root and this process's own: `named`, else SHMD_USER,
// else the package's "shmd". Its uid, or nullopt when the default names nobody here; a
// user named on purpose must exist.
std::optional<std::uint32_t> daemon_uid(const std::string& named, std::string& who) {
  const char* env = std::getenv(proto::daemon_user_env);
  const bool chosen = !named.empty() || (env != nullptr && *env != '\0');
  who = !named.empty() ? named
        : chosen       ? std::string(env)
                       : std::string(proto::default_daemon_user);
  const platform::result<std::optional<std::uint32_t>> uid = platform::user_id(who);
  if (!uid) throw error(errc::system, "looking up shmd's user: " + uid.error().what);
  if (!uid.value() && chosen) {
    throw error(errc::invalid_argument,
                "shmd's user '" + who + "' (from " +
                    (named.empty() ? std::string(proto::daemon_user_env)
                                   : std::string("client_options::daemon_user")) +
                    ") is no user on this machine");
  }
  return uid.value();
}

// The process listening at `path` must run as root, as this process's user, or as shmd's
// user: anyone else who could bind the path (a world-writable socket directory, a
// replaced socket) would otherwise be handed this process's values.
void check_daemon(int fd, const std::string& path, const std::string& daemon_user) {
  const platform::result<platform::peer_credentials> peer = platform::peer_of(fd);
  if (!peer) throw error(errc::system, "shmd at " + path + ": " + peer.error().what);
  const std::uint32_t uid = peer.value().uid, me = platform::own_effective_uid();
  if (uid == 0 || uid == me) return;
  std::string who;
  const std::optional<std::uint32_t> daemon = daemon_uid(daemon_user, who);
  if (daemon && uid == *daemon) return;
  throw error(errc::permission_denied,
              "refusing shmd at " + path + ": the process listening there (pid " +
                  std::to_string(peer.value().pid) + ") runs as uid " + std::to_string(uid) +
                  ", not root, this process's uid " + std::to_string(me) + " or shmd's user '" +
                  who + "'" +
                  (daemon ? " (uid " + std::to_string(*daemon) + ")" : " (no such user)") +
                  "; another user may have taken the socket path. If shmd runs as another "
                  "user, name it in " +
                  proto::daemon_user_env + " or client_options::daemon_user");
}

} // namespace

connection::connection(std::string path, std::chrono::milliseconds timeout,
                       const std::string& daemon_user)
    : path_(std::move(path)), sock_(connected(path_)), timeout_(timeout) {
  check_daemon(sock_.get(), path_, daemon_user);
  if (platform::status s = platform::set_receive_timeout(sock_.get(), timeout); !s)
    throw error(errc::system, "shmd at " + path_ + ": " + s.error().what);
}

std::optional<connection> connection::try_connect(const std::string& path,
                                                  std::chrono::milliseconds timeout,
                                                  const std::string& daemon_user) noexcept {
  try {
    return connection(path, timeout, daemon_user);
  } catch (...) {
    return std::nullopt;
  }
}

bool connection::send(const void* msg, std::size_t bytes) noexcept {
  return platform::send_message(sock_.get(), msg, bytes).ok();
}

std::size_t connection::receive(std::byte* buf, std::size_t cap,
                                std::vector<platform::unique_fd>& fds) {
  auto n = platform::receive_message(sock_.get(), buf, cap, fds);
  if (n) return n.value();
  const int e = n.error().err;
  if (e == EAGAIN || e == EWOULDBLOCK) {
    // The answer may still come, and would be read as the answer to the next request:
    // let this connection go. The next request reconnects (contexts stay this process's).
    sock_ = platform::unique_fd();
    throw error(errc::no_daemon, "shmd at " + path_ + " did not answer within " +
                                     std::to_string(timeout_.count()) + " ms");
  }
  return 0; // reset or broken: as good as closed
}

void connection::throw_closed(const char* during) const {
  throw error(errc::no_daemon, "shmd at " + path_ + " closed the connection at " + during +
                                   " (it stopped, or it is an older shmd: see its log)");
}

} // namespace slab::detail
