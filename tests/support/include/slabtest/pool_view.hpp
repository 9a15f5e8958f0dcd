// pool_view: a read-only look at a pool from the test process, for the audit after a
// storm and for watching shmd reclaim contexts; and raw_connection, the control protocol
// spoken by hand, for tests that send what no client library would.
//
// pool_view observes the pool the way slabctl does (the same code: slab/observer.hpp):
// shmd hands it the segments reopened read-only, it maps them PROT_READ, and it
// registers no context. Nothing here can change the pool: a bug that needs a write shows
// up as a crash, not as a repaired pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <slab/core/audit.hpp>
#include <slab/core/shared_layout.hpp>
#include <slab/error.hpp>
#include <slab/mapped/pool_map.hpp>
#include <slab/observer.hpp>
#include <slab/platform/ipc.hpp>
#include <slab/proto/codec.hpp>
#include <slab/proto/protocol.hpp>

#include <slabtest/files.hpp>

namespace slabtest {

namespace proto = slab::proto;
namespace platform = slab::platform;
namespace core = slab::core;

/// The slot generation a key of this pool names: its generation half without the
/// pool's salt (proto::key_salt), as the slot's header holds it.
inline std::uint32_t slot_generation(slab::mapped::pool_map& m, slab::key k) {
  return k.generation() ^ proto::key_salt(m.info().identity);
}

/// One raw control connection: sends a message, reads one answer and its fds.
class raw_connection {
public:
  explicit raw_connection(const std::string& socket) {
    auto fd = platform::connect_seqpacket(socket);
    if (!fd) throw std::runtime_error("raw connect to " + socket + ": " + fd.error().what);
    sock_ = std::move(fd.value());
    // Every answer within 5 s, or the test fails instead of hanging.
    if (!platform::set_receive_timeout(sock_.get(), 5s)) throw std::runtime_error("SO_RCVTIMEO");
  }

  [[nodiscard]] int fd() const noexcept { return sock_.get(); }
  void close() noexcept { sock_ = platform::unique_fd(); }

  template <class M> void send(const M& m) {
    if (!platform::send_message(sock_.get(), &m, sizeof m))
      throw std::runtime_error("raw send failed");
  }
  /// The next message: its bytes (empty when the daemon closed the connection).
  std::vector<char> receive(std::vector<platform::unique_fd>& fds) {
    std::vector<char> buf(proto::max_msg);
    auto n = platform::receive_message(sock_.get(), buf.data(), buf.size(), fds);
    if (!n) throw std::runtime_error("raw receive: " + n.error().what);
    buf.resize(n.value());
    return buf;
  }
  /// The next message as M (proto::expect); slab::error if it is anything else (an
  /// error_msg's code and text included).
  template <class M> M expect(std::vector<platform::unique_fd>& fds) {
    const std::vector<char> b = receive(fds);
    return proto::expect<M>(std::as_bytes(std::span(b)), "raw: shmd");
  }
  void hello() {
    proto::hello h;
    h.pid = static_cast<std::uint32_t>(::getpid());
    proto::set_text(h.comm, "pool_view");
    send(h);
    std::vector<platform::unique_fd> fds;
    (void)expect<proto::welcome>(fds);
  }

  /// Opens `pool` for values of `size` and `align` bytes, as a client would: the answer,
  /// with the pool's fds in `fds` (a context registered to this connection).
  proto::opened open(std::string_view pool, std::uint32_t size, std::uint32_t align,
                     std::vector<platform::unique_fd>& fds) {
    proto::open_req o;
    proto::set_text(o.pool, pool);
    o.type_size = size;
    o.type_align = align;
    send(o);
    return expect<proto::opened>(fds);
  }

private:
  platform::unique_fd sock_;
};

/// A read-only view of one pool through shmd's observer requests (the client library's
/// observer, slab/observer.hpp, as slabctl uses it): no context is registered, the segments
/// come read-only and are mapped PROT_READ.
class pool_view {
public:
  pool_view(const std::string& socket, std::string_view pool) : obs_(socket), watch_(obs_, pool) {}
  pool_view(const pool_view&) = delete;
  pool_view& operator=(const pool_view&) = delete;

  slab::mapped::pool_map& map() noexcept { return watch_.map(); }

  /// Maps every tier published so far.
  bool map_all() { return watch_.map_all(); }

  /// Client context records (not the daemon's 0) in use or being reclaimed. A
  /// quarantined record (reclaim found it corrupt) is settled too: it stays that way.
  std::vector<std::uint32_t> busy_client_contexts() {
    std::vector<std::uint32_t> busy;
    for (std::uint32_t c = 1; c < map().context_count(); ++c) {
      const auto st = static_cast<core::context_state>(map().context(c).state.load());
      if (st == core::context_state::active || st == core::context_state::dead) busy.push_back(c);
    }
    return busy;
  }
  /// Records that should hold nothing but do (slab::observe::idle_record_problems).
  std::vector<std::string> idle_record_problems() {
    return slab::observe::idle_record_problems(map());
  }

  /// Waits until shmd has reclaimed every client context (records free or quarantined).
  bool wait_reclaimed(milliseconds timeout = 10s) {
    return eventually([&] { return busy_client_contexts().empty(); }, timeout);
  }

  /// slabctl audit's audit: passes count only when nothing moved while they ran, problems
  /// only when they persist across quiet passes. A pool that never settles within
  /// `timeout` fails ("did not settle").
  core::audit_report audit(milliseconds timeout = 10s) {
    slab::observe::audit_options opt;
    opt.timeout = timeout;
    slab::observe::audit_outcome a = slab::observe::settled_audit(watch_, opt);
    if (a.result == slab::observe::verdict::inconclusive)
      a.report.problems.push_back("the pool did not settle for the audit");
    return a.report;
  }

  /// Live slots by the headers: slots below the fresh cursor with an odd generation.
  static std::string describe(const core::audit_report& r) {
    std::ostringstream o;
    o << "ready " << r.ready << ", used " << r.used << ", live " << r.live << ", free in depot "
      << r.free_depot << ", free in caches " << r.free_cached << ", magazines " << r.magazines
      << " (full " << r.magazines_full << ", empty " << r.magazines_empty << ", held "
      << r.magazines_held << ")";
    const std::size_t shown = r.problems.size() < 20 ? r.problems.size() : 20;
    for (std::size_t i = 0; i < shown; ++i)
      o << "\n  problem: " << r.problems[i];
    if (shown < r.problems.size()) o << "\n  ... " << r.problems.size() - shown << " more";
    return o.str();
  }

private:
  slab::observe::observer obs_;
  slab::observe::pool_watch watch_;
};

} // namespace slabtest
