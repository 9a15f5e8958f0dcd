// The daemon's control plane: the socket, the clients, and the worker thread that grows
// pools and reclaims dead clients' contexts.
//
// One epoll loop serves every client without blocking on any: sockets are
// non-blocking, every request is answered at once, and a client whose socket cannot
// take an answer is disconnected rather than waited for. Growth (prefaulting hundreds
// of MiB) and reclaim run on the worker thread, never in the loop.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <slab/platform/segment.hpp>

#include "config.hpp"
#include "pool_owner.hpp"
#include "watchdog.hpp"

namespace shmd {

class server {
public:
  server(daemon_config cfg, std::vector<std::unique_ptr<pool_owner>> pools);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds the socket; throws slab::error with the path and the reason on failure.
  void listen();
  /// Runs until SIGTERM or SIGINT; returns the process exit code.
  int run();

private:
  struct context_ref {
    std::uint32_t pool, ctx;
    std::uint64_t reply_to = 0; ///< serial of a connection awaiting `closed`, 0: none
  };
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
    std::vector<context_ref> contexts;
  };

  void accept_clients();
  void on_readable(int fd);
  void on_process_exit(int pidfd);
  void watch_orphans();
  bool release_watched(std::uint32_t pid, context_ref ref);
  void handle(connection& c, const void* msg, std::size_t len);
  void handle_hello(connection& c, const void* msg, std::size_t len);
  void handle_open(connection& c, const void* msg, std::size_t len);
  void handle_tiers(connection& c, const void* msg, std::size_t len);
  void handle_close(connection& c, const void* msg, std::size_t len);
  void handle_observer_hello(connection& c, const void* msg, std::size_t len);
  void greet(connection& c, std::string_view comm, bool observer);
  void handle_observe(connection& c, const void* msg, std::size_t len);
  void handle_clients(connection& c, const void* msg, std::size_t len);
  bool may_observe(const connection& c) const;
  bool send_error(connection& c, std::uint32_t code, const std::string& text);
  void drop(int fd, const std::string& why);
  bool allowed(const connection& c) const;
  std::optional<std::uint32_t> pool_id_of(std::string_view name) const;
  void publish_status();

  // worker
  void worker_loop();
  void queue_reclaim(std::vector<context_ref> refs);
  void send_closed(); // on done_: answers the closes whose reclaim finished
  void nudge_growth(std::uint32_t pool);

  daemon_config cfg_;
  std::vector<std::unique_ptr<pool_owner>> pools_;
  slab::platform::unique_fd listen_, epoll_, signals_;
  std::map<int, connection> conns_;        // by socket fd
  std::map<int, connection> exited_watch_; // by pidfd: sockets closed, process alive
  std::uint32_t own_uid_ = 0, own_gid_ = 0;
  std::uint64_t started_unix_ns_ = 0;

  std::mutex work_mu_;
  std::condition_variable work_cv_;
  std::deque<context_ref> reclaims_;
  std::vector<context_ref> closed_; // reclaimed, `closed` still to send (main thread)
  slab::platform::unique_fd done_;  // eventfd: the worker finished a close's reclaim
  std::uint64_t next_serial_ = 1;
  std::vector<bool> urgent_;
  bool stopping_ = false;
  std::thread worker_;
  watchdog watchdog_; // WATCHDOG=1 while the main loop and the worker both make progress
};

} // namespace shmd
