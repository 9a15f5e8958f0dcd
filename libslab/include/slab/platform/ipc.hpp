// The control socket's system calls: SOCK_SEQPACKET Unix sockets, file descriptors
// passed with SCM_RIGHTS, peer credentials. Errors are values (platform.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <slab/platform/platform.hpp>
#include <slab/platform/segment.hpp>

namespace slab::platform {

struct peer_credentials {
  std::uint32_t pid = 0, uid = 0, gid = 0;
};

/// Listens on `path` (SOCK_SEQPACKET, non-blocking, close-on-exec), replacing a stale
/// socket file left by a dead daemon but never a live one or any other kind of file.
[[nodiscard]] result<unique_fd> listen_seqpacket(const std::string& path, unsigned mode);
/// Connects to `path` (blocking, close-on-exec).
[[nodiscard]] result<unique_fd> connect_seqpacket(const std::string& path);
[[nodiscard]] result<unique_fd> accept_seqpacket(int listen_fd);
[[nodiscard]] result<peer_credentials> peer_of(int fd);

/// Sends one message with `fds` attached. Never blocks longer than the socket does.
[[nodiscard]] status send_message(int fd, const void* data, std::size_t bytes,
                                  std::span<const int> fds = {});
/// Receives one message (up to `cap` bytes) and any fds sent with it (close-on-exec).
/// Returns the message length; 0 means the peer closed the connection.
[[nodiscard]] result<std::size_t> receive_message(int fd, void* data, std::size_t cap,
                                                  std::vector<unique_fd>& fds);

/// A pidfd for `pid` (readable once the process has exited), or an error on kernels
/// without pidfd_open.
[[nodiscard]] result<unique_fd> open_pidfd(std::uint32_t pid);

} // namespace slab::platform
