// pool_view: a read-only look at a pool from the test process, for the audit after a
// storm and for watching shmd reclaim contexts.
//
// It speaks the control protocol itself (hello, open, tiers) over its own connection,
// attaches the pool's control segment read-only (PROT_READ, like slabctl) and maps
// every published tier the same way. The open registers one context for the view; it is
// never used (no cache is built on it, so it holds no magazine) and is closed when the
// view goes. Nothing here can change the pool: a bug that needs a write shows up as a
// crash, not as a repaired pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <slab/core/audit.hpp>
#include <slab/core/shared_layout.hpp>
#include <slab/error.hpp>
#include <slab/platform/ipc.hpp>
#include <slab/platform/pool_map.hpp>
#include <slab/proto/protocol.hpp>

#include "daemon_fixture.hpp"

namespace slabtest {

namespace proto = slab::proto;
namespace platform = slab::platform;
namespace core = slab::core;

/// One raw control connection: sends a message, reads one answer and its fds.
class raw_connection {
public:
  explicit raw_connection(const std::string& socket) {
    auto fd = platform::connect_seqpacket(socket);
    if (!fd) throw std::runtime_error("raw connect to " + socket + ": " + fd.error().what);
    sock_ = std::move(fd.value());
    timeval tv{5, 0}; // every answer within 5 s, or the test fails instead of hanging
    ::setsockopt(sock_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
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
  /// The next message as M; throws if it is anything else (an error_msg's text included).
  template <class M> M expect(std::vector<platform::unique_fd>& fds) {
    const std::vector<char> b = receive(fds);
    M m;
    if (b.size() == sizeof(proto::error_msg)) {
      proto::error_msg e;
      std::memcpy(&e, b.data(), sizeof e);
      if (e.h.type == static_cast<std::uint16_t>(proto::msg_type::error)) {
        throw slab::error(static_cast<slab::errc>(e.code), std::string(proto::get_text(e.text)));
      }
    }
    if (b.size() != sizeof m) {
      throw std::runtime_error("raw: answer of " + std::to_string(b.size()) + " bytes, expected " +
                               std::to_string(sizeof m));
    }
    std::memcpy(&m, b.data(), sizeof m);
    if (m.h.type != M{}.h.type) throw std::runtime_error("raw: unexpected answer type");
    return m;
  }
  void hello() {
    proto::hello h;
    h.pid = static_cast<std::uint32_t>(::getpid());
    proto::set_text(h.comm, "pool_view");
    send(h);
    std::vector<platform::unique_fd> fds;
    (void)expect<proto::welcome>(fds);
  }

private:
  platform::unique_fd sock_;
};

class pool_view {
public:
  pool_view(const std::string& socket, std::string_view pool) : conn_(socket), name_(pool) {
    conn_.hello();
    proto::open_req o;
    proto::set_text(o.pool, pool);
    o.type_size = 1;
    o.type_align = 1;
    conn_.send(o);
    std::vector<platform::unique_fd> fds;
    const proto::opened r = conn_.expect<proto::opened>(fds);
    if (fds.size() != 1 + 2 * std::size_t{r.tiers}) throw std::runtime_error("opened: fd count");
    ctx_ = r.context;
    auto m = platform::pool_map::attach(std::move(fds[0]), /*writable=*/false);
    if (!m) throw std::runtime_error("read-only attach: " + m.error().what);
    map_ = std::move(m.value());
    map_tiers(0, fds, 1);
    map_->fetch_tiers = [this](unsigned first) { return fetch(first); };
  }
  ~pool_view() {
    try {
      proto::close_req c;
      proto::set_text(c.pool, name_);
      c.context = ctx_;
      conn_.send(c);
      std::vector<platform::unique_fd> fds;
      (void)conn_.expect<proto::closed>(fds);
    } catch (...) { // the daemon may be gone already
    }
  }
  pool_view(const pool_view&) = delete;
  pool_view& operator=(const pool_view&) = delete;

  platform::pool_map& map() noexcept { return *map_; }
  [[nodiscard]] std::uint32_t own_context() const noexcept { return ctx_; }

  /// Maps every tier published so far.
  bool map_all() {
    const std::uint64_t ready = map_->state().ready_slots.load();
    return ready == 0 || map_->has_slot(static_cast<std::uint32_t>(ready - 1));
  }

  /// Client context records (not the daemon's 0, not the view's own) that are not free.
  std::vector<std::uint32_t> busy_client_contexts() {
    std::vector<std::uint32_t> busy;
    for (std::uint32_t c = 1; c < map_->context_count(); ++c) {
      if (c == ctx_) continue;
      if (map_->context(c).state.load() != static_cast<std::uint32_t>(core::context_state::free))
        busy.push_back(c);
    }
    return busy;
  }
  /// What the audit does not look at: records that should hold nothing. A free record
  /// (never used, or reclaimed: reclaim hands every magazine on) and the view's own
  /// (no cache was ever built on it) must name no magazine and no unfinished step;
  /// otherwise the next context given that record would inherit what it names.
  std::vector<std::string> idle_record_problems() {
    std::vector<std::string> out;
    for (std::uint32_t c = 0; c < map_->context_count(); ++c) {
      core::context_record& rec = map_->context(c);
      const bool is_free =
          rec.state.load() == static_cast<std::uint32_t>(core::context_state::free);
      if (!is_free && c != ctx_) continue;
      const std::string who = "context " + std::to_string(c) + (is_free ? " (free)" : " (view)");
      for (const std::uint32_t m : {rec.mag[0].load(), rec.mag[1].load(), rec.spare.load()}) {
        if (m != core::no_magazine) out.push_back(who + " names magazine " + std::to_string(m));
      }
      if (rec.intent.op.load() != 0) out.push_back(who + " has an intent set");
    }
    return out;
  }

  /// Waits until shmd has reclaimed every client context (all records free but ours).
  bool wait_reclaimed(milliseconds timeout = 10s) {
    return eventually([&] { return busy_client_contexts().empty(); }, timeout);
  }

  /// The audit, on a quiescent pool: it is repeated until nothing moved while it ran (the
  /// depot cells' sequence numbers, the published tiers and the daemon's own intent are
  /// the same before and after), so that growth finishing in the background cannot
  /// produce a half-seen state. A pool that never settles within `timeout` fails.
  core::audit_report audit(milliseconds timeout = 10s) {
    core::audit_report rep;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      map_all();
      const snapshot before = snap();
      rep = core::audit(*map_);
      const snapshot after = snap();
      if (before == after && before.daemon_intent == 0) return rep;
      if (std::chrono::steady_clock::now() >= deadline) {
        rep.problems.push_back("the pool did not settle for the audit");
        return rep;
      }
      std::this_thread::sleep_for(5ms);
    }
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
  struct snapshot {
    std::uint64_t seq[core::cell_count]{};
    std::uint32_t tiers = 0, magazines = 0, daemon_intent = 0;
    std::uint64_t ready = 0;
    friend bool operator==(const snapshot&, const snapshot&) = default;
  };
  snapshot snap() {
    snapshot s;
    for (std::uint32_t c = 0; c < core::cell_count; ++c)
      s.seq[c] = map_->state().cells[c].peek().seq;
    s.tiers = map_->info().tiers_published.load();
    s.magazines = map_->magazine_count();
    s.ready = map_->state().ready_slots.load();
    s.daemon_intent = map_->context(0).intent.op.load();
    return s;
  }

  bool map_tiers(unsigned first, std::vector<platform::unique_fd>& fds, std::size_t from) {
    for (std::size_t i = from; i + 1 < fds.size(); i += 2) {
      const auto t = static_cast<unsigned>(first + (i - from) / 2);
      if (!map_->map_tier(t, fds[i].get(), fds[i + 1].get())) return false;
    }
    return true;
  }
  bool fetch(unsigned first) {
    try {
      proto::tiers_req q;
      proto::set_text(q.pool, name_);
      q.first = first;
      conn_.send(q);
      std::vector<platform::unique_fd> fds;
      const proto::tiers_msg r = conn_.expect<proto::tiers_msg>(fds);
      return r.first == first && map_tiers(first, fds, 0);
    } catch (const std::exception&) {
      return false;
    }
  }

  raw_connection conn_;
  std::string name_;
  std::uint32_t ctx_ = 0;
  std::unique_ptr<platform::pool_map> map_;
};

} // namespace slabtest
