// The control socket's connections and what they ask: shmd's side of the protocol
// (libslab/include/slab/proto/protocol.hpp).
//
// Every request is answered at once, from the loop thread, without blocking on any
// client: sockets are non-blocking, and a client whose socket cannot take an answer is
// dropped rather than waited for. What is slow (reclaim, growth) goes to the worker.
//
// A connection's contexts are reclaimed when it closes, once its process is gone too: a
// process that closed its socket but lives on may still be using its caches, so it is
// watched through a pidfd until it exits. Contexts that an adopted pool's records name
// (clients of a previous shmd) are watched the same way.
//
// Split by job: clients.cpp holds the connections' bookkeeping, the dispatch, the
// greetings and the client requests (hello, open, tiers, grow, close); observers.cpp the
// read-only ones (observe, clients).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <slab/platform/events.hpp>
#include <slab/platform/process.hpp>
#include <slab/platform/segment.hpp>
#include <slab/proto/codec.hpp>

#include "access.hpp"
#include "config.hpp"
#include "pool_owner.hpp"
#include "worker.hpp"

namespace shmd {

class control {
public:
  /// Poller tags at or above this one stand for fd (tag - first_fd_tag), a connection's
  /// socket or a watched pidfd; the ones below are the event loop's own.
  static constexpr std::uint64_t first_fd_tag = 2;

  /// Registers the fds it watches in `events` (tagged fd + first_fd_tag). `pools` and
  /// `work` must outlive it.
  control(const daemon_config& cfg, std::vector<std::unique_ptr<pool_owner>>& pools, worker& work,
          slab::platform::poller& events);
  control(const control&) = delete;
  control& operator=(const control&) = delete;

  /// How long a connection may stay without a hello before it is closed.
  static constexpr std::chrono::seconds hello_timeout{2};
  /// Connections of one uid (root's excepted) that have not said hello yet.
  static constexpr std::uint32_t max_ungreeted_per_uid = 16;

  /// A new connection: its socket (non-blocking) and its peer as the kernel recorded it.
  /// Refused (an error sent, then closed) past the peer uid's limits: max_ungreeted_per_uid
  /// waiting for their hello, or the config's max_connections_per_uid in all.
  void add(slab::platform::unique_fd sock, slab::platform::peer_credentials peer);
  /// Closes the connections that have not said hello within hello_timeout.
  void expire_ungreeted();
  /// Milliseconds until the next connection's hello deadline (for the loop's wait), or
  /// -1 when none waits for one.
  [[nodiscard]] int next_deadline_ms() const;
  /// Something happened on fd (tag - first_fd_tag): a message or a hang-up on a socket,
  /// or the exit of a watched process.
  void on_event(int fd);
  /// Closes a connection as if its client had hung up.
  void hang_up(int fd) { drop(fd, ""); }
  /// Watches the contexts that adopted pools' records name (once, at start).
  void watch_orphans();
  /// Answers the closes the worker has finished (worker::take_closed).
  void send_closed(const std::vector<context_ref>& done);

private:
  struct connection {
    slab::platform::unique_fd sock;
    slab::platform::unique_fd pidfd; // set once the socket closed and the process lives on
    std::uint32_t pid = 0, uid = 0, gid = 0;
    bool greeted = false;
    bool client_ok = false;   ///< greeted with hello (the allow lists): may use pools
    bool observer_ok = false; ///< greeted with observer_hello: may observe, read-only
    bool adopted = false;     ///< a previous shmd's client, watched (watch_orphans)
    std::string comm;         ///< the process name its hello gave
    std::uint64_t serial = 0; ///< unique for the daemon's life (fds are reused)
    std::chrono::steady_clock::time_point accepted; ///< hello is due hello_timeout after
    std::vector<context_ref> contexts;
  };
  /// One uid's open connections (in conns_), and how many of them await their hello.
  struct uid_load {
    std::uint32_t all = 0, ungreeted = 0;
  };

  // clients.cpp
  void on_readable(int fd);
  void on_process_exit(int pidfd);
  void watch_exit(connection c); ///< until its process exits; reclaims at once if it has
  bool release_watched(std::uint32_t pid, context_ref ref);
  void drop(int fd, const std::string& why);
  void handle(connection& c, slab::proto::packet p);
  bool admit(connection& c, const slab::proto::msg_header& h);
  void greet(connection& c, std::string_view comm, bool observer);
  void handle_greeting(connection& c, slab::proto::packet p, bool observer);
  void handle_open(connection& c, slab::proto::packet p);
  void handle_tiers(connection& c, slab::proto::packet p);
  void handle_grow(connection& c, slab::proto::packet p);
  void handle_close(connection& c, slab::proto::packet p);
  bool send_error(connection& c, slab::errc code, const std::string& text);
  void log_refusal(std::uint32_t uid, const std::string& text);
  [[nodiscard]] std::optional<std::uint32_t> pool_id_of(std::string_view name) const;
  /// The packet as request M and the pool it names; nullopt when the packet is not
  /// exactly an M or names no pool of this shmd.
  template <class M>
  [[nodiscard]] std::optional<std::uint32_t> decode_for_pool(slab::proto::packet p, M& out) const {
    if (slab::proto::decode(p, out) != slab::proto::decode_result::ok) return std::nullopt;
    return pool_id_of(slab::proto::get_text(out.pool));
  }
  [[nodiscard]] std::string pool_names() const;

  // observers.cpp
  void handle_observe(connection& c, slab::proto::packet p);
  void handle_clients(connection& c, slab::proto::packet p);
  [[nodiscard]] std::vector<slab::proto::client_entry> clients_of(std::uint32_t pool) const;

  const daemon_config& cfg_;
  std::vector<std::unique_ptr<pool_owner>>& pools_;
  worker& work_;
  slab::platform::poller& events_;
  access_policy access_;
  std::map<int, connection> conns_;        // by socket fd
  std::map<int, connection> exited_watch_; // by pidfd: sockets closed, process alive
  std::map<std::uint32_t, uid_load> load_; // by uid, of the connections in conns_
  std::uint64_t ungreeted_ = 0;            // connections in conns_ without a hello yet
  struct refusal_log {
    std::chrono::steady_clock::time_point logged_at;
    std::uint64_t unlogged = 0;
  };
  std::map<std::uint32_t, refusal_log> refusals_; // by uid
  std::uint64_t next_serial_ = 1;
  std::uint64_t started_unix_ns_ = 0;
};

} // namespace shmd
