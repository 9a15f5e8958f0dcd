// One control connection to shmd (connection.hpp).
#include "connection.hpp"

#include <cerrno>
#include <cstring>
#include <utility>

#include <slab/error.hpp>

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

} // namespace

connection::connection(std::string path, std::chrono::milliseconds timeout)
    : path_(std::move(path)), sock_(connected(path_)), timeout_(timeout) {
  if (platform::status s = platform::set_receive_timeout(sock_.get(), timeout); !s)
    throw error(errc::system, "shmd at " + path_ + ": " + s.error().what);
}

std::optional<connection> connection::try_connect(const std::string& path,
                                                  std::chrono::milliseconds timeout) noexcept {
  try {
    return connection(path, timeout);
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
