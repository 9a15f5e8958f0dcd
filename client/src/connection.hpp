// connection: one control connection to shmd, as the client session and the observer
// both use it. Connect, give every answer a deadline, send a request, receive one answer
// and the fds that came with it, and read it with the protocol's one decoder
// (proto/codec.hpp). Internal to the client library.
//
// Who words a failure: this file, once. Connecting says whether shmd is absent or the
// socket out of reach; a request says whether shmd did not answer in time; an answer
// that is not the one asked for is proto::expect's error. What a closed connection
// means is the caller's call (the session reconnects once, the observer gives up), so
// request() reports it as a value.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <slab/platform/ipc.hpp>
#include <slab/proto/codec.hpp>
#include <slab/proto/protocol.hpp>

namespace slab::detail {

class connection {
public:
  /// Connects to shmd at `path`; every answer is then awaited at most `timeout`. Throws
  /// slab::error: permission_denied when the socket is out of this user's reach, or
  /// when the process listening there runs as anyone but root, this process's user or
  /// `daemon_user` (empty: SHMD_USER, else "shmd"); no_daemon when nothing listens there.
  connection(std::string path, std::chrono::milliseconds timeout,
             const std::string& daemon_user = {});
  /// The same, for callers that must not throw (reconnecting): nullopt on any failure.
  static std::optional<connection> try_connect(const std::string& path,
                                               std::chrono::milliseconds timeout,
                                               const std::string& daemon_user = {}) noexcept;

  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  /// Sends one message; false when the connection is gone. Never waits for an answer.
  [[nodiscard]] bool send(const void* msg, std::size_t bytes) noexcept;

  /// Sends `q` and reads its answer as R, with the fds that came with it. nullopt when
  /// the connection turned out closed (shmd stopped or restarted). Throws slab::error:
  /// no_daemon when no answer came in time, or what proto::expect throws (shmd's own
  /// refusal, abi_mismatch, protocol).
  template <class R, class Q>
  std::optional<R> request(const Q& q, std::vector<platform::unique_fd>& fds) {
    alignas(8) std::byte buf[proto::max_msg];
    // A failed send still reads: shmd may have said why before it closed (a refusal).
    (void)send(&q, sizeof q);
    const std::size_t n = receive(buf, sizeof buf, fds);
    if (n == 0) return std::nullopt;
    return proto::expect<R>(proto::packet(buf, n), "shmd at " + path_);
  }

  /// "shmd at PATH closed the connection ...": for a caller that will not reconnect.
  [[noreturn]] void throw_closed(const char* during) const;

private:
  // One answer into buf: its length, 0 when shmd closed the connection.
  std::size_t receive(std::byte* buf, std::size_t cap, std::vector<platform::unique_fd>& fds);

  std::string path_;
  platform::unique_fd sock_;
  std::chrono::milliseconds timeout_;
};

} // namespace slab::detail
