// The control socket's system calls: SOCK_SEQPACKET Unix sockets, file descriptors
// passed with SCM_RIGHTS, peer credentials. Errors are values (platform.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <slab/platform/platform.hpp>
#include <slab/platform/process.hpp>
#include <slab/platform/segment.hpp>

namespace slab::platform {

/// Whether the directory that will hold the socket `path` keeps other users from
/// replacing it: owned by root or this process's user, and not writable by group or
/// others unless sticky (a sticky directory lets nobody remove another user's file).
/// An error (sys_cause::invalid_argument) naming the directory, its owner and mode
/// otherwise, or when it cannot be read.
[[nodiscard]] status check_socket_directory(const std::string& path);
/// Listens on `path` (SOCK_SEQPACKET, non-blocking, close-on-exec), replacing a stale
/// socket file left by a dead daemon but never a live one or any other kind of file.
[[nodiscard]] result<unique_fd> listen_seqpacket(const std::string& path, unsigned mode);
/// Connects to `path` (blocking, close-on-exec).
[[nodiscard]] result<unique_fd> connect_seqpacket(const std::string& path);
[[nodiscard]] result<unique_fd> accept_seqpacket(int listen_fd);
/// Closes a connection after a last message was sent on it, so that the peer reads that
/// message rather than ECONNRESET: stops the peer sending (shutdown SHUT_RD), discards
/// what it had sent and not been read (an unread message at close resets the peer's
/// side), then closes.
void close_after_reply(unique_fd& fd) noexcept;
/// A descriptor held in reserve (/dev/null, read-only): closed when accept fails for want
/// of descriptors (EMFILE), so that the waiting connection can be taken and refused
/// instead of leaving the listening socket readable forever. Invalid if none is left.
[[nodiscard]] unique_fd open_spare_descriptor() noexcept;
[[nodiscard]] result<peer_credentials> peer_of(int fd);
/// The peer's supplementary groups as they were when it connected (SO_PEERGROUPS, Linux
/// 4.13): SO_PEERCRED carries the primary gid only, while members of an allowed group
/// usually hold it as a supplementary one. Empty when the kernel cannot tell.
[[nodiscard]] std::vector<std::uint32_t> peer_groups(int fd);
/// Makes every blocking receive on fd give up after `timeout` (SO_RCVTIMEO): EAGAIN
/// then comes back from receive_message. A timeout of zero waits forever.
[[nodiscard]] status set_receive_timeout(int fd, std::chrono::milliseconds timeout);

/// Sends one message with `fds` attached. Never blocks longer than the socket does.
[[nodiscard]] status send_message(int fd, const void* data, std::size_t bytes,
                                  std::span<const int> fds = {});
/// Receives one message (up to `cap` bytes) and any fds sent with it (close-on-exec).
/// Returns the message length; 0 means the peer closed the connection.
[[nodiscard]] result<std::size_t> receive_message(int fd, void* data, std::size_t cap,
                                                  std::vector<unique_fd>& fds);

} // namespace slab::platform
