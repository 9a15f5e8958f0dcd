// observe: a read-only look at shmd's pools, shared by slabctl and the tests.
//
//   slabctl::observer o(socket);                 // connect, observer_hello, welcome
//   slabctl::pool_watch w(o, "orders");          // observe: read-only fds, mapped PROT_READ
//   slabctl::audit_outcome a = slabctl::settled_audit(w);
//
// Nothing here can change a pool: shmd hands an observer segment fds reopened O_RDONLY,
// and every mapping is PROT_READ, so a bug that would need a write is a crash (SIGSEGV),
// never a repaired or damaged pool. No context is registered, so observing costs the
// pool nothing and a monitoring user that may not allocate can still look.
//
// Errors are slabctl::failure, carrying the exit code slabctl ends with (exit_code
// below, documented in docs/slabctl.md) and a message that says what, where and why.
// Header-only, so that the tests' pool_view uses it without another library.
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <slab/core/audit.hpp>
#include <slab/core/shared_layout.hpp>
#include <slab/error.hpp>
#include <slab/mapped/pool_map.hpp>
#include <slab/platform/ipc.hpp>
#include <slab/proto/codec.hpp>
#include <slab/proto/protocol.hpp>

namespace slabctl {

namespace proto = slab::proto;
namespace platform = slab::platform;
namespace core = slab::core;

/// slabctl's exit codes, one per kind of outcome a script may want to tell apart.
enum class exit_code : int {
  ok = 0,            ///< done; audit clean; inspect: the key is live
  violations = 1,    ///< audit: a violation persisted while the pool held still
  usage = 2,         ///< bad command line
  no_daemon = 3,     ///< nothing answers at the socket, or shmd went away
  permission = 4,    ///< the socket or shmd refused this user
  unknown_pool = 5,  ///< shmd has no such pool
  stale_key = 6,     ///< inspect: the key names no live value (freed, maybe reused)
  malformed_key = 7, ///< inspect: not a key at all (not a number, even generation, beyond the pool)
  inconclusive = 8,  ///< audit: the pool never held still long enough to judge
  failure = 9,       ///< anything else: protocol or ABI mismatch, an OS call failed
};

/// What every slabctl operation throws: a message for a person, a code for a script.
class failure : public std::runtime_error {
public:
  failure(exit_code code, const std::string& what) : std::runtime_error(what), code_(code) {}
  [[nodiscard]] exit_code code() const noexcept { return code_; }

private:
  exit_code code_;
};

/// The socket: an explicit path, else $SHMD_SOCKET, else the default.
inline std::string default_socket_path() {
  const char* env = std::getenv(proto::socket_env);
  return env != nullptr && *env != '\0' ? std::string(env) : std::string(proto::default_socket);
}

inline exit_code exit_code_of(slab::errc e) {
  switch (e) {
  case slab::errc::permission_denied: return exit_code::permission;
  case slab::errc::not_found: return exit_code::unknown_pool;
  case slab::errc::no_daemon: return exit_code::no_daemon;
  default: return exit_code::failure;
  }
}

/// An observer's connection to shmd: one request, one answer at a time.
class observer {
public:
  explicit observer(std::string socket, std::chrono::milliseconds timeout = std::chrono::seconds(5))
      : path_(std::move(socket)) {
    auto fd = platform::connect_seqpacket(path_);
    if (!fd) {
      const int e = fd.error().err;
      const std::string why = "(connect: " + std::string(std::strerror(e)) + ")";
      if (e == EACCES || e == EPERM) {
        throw failure(exit_code::permission,
                      "slabctl: cannot reach shmd at " + path_ + " " + why +
                          "; this user may not open the socket or its directory");
      }
      throw failure(exit_code::no_daemon,
                    "slabctl: no shmd at " + path_ + " " + why + "; is shmd running?");
    }
    sock_ = std::move(fd.value());
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(sock_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    proto::observer_hello h;
    h.pid = static_cast<std::uint32_t>(::getpid());
    proto::set_text(h.comm, "slabctl");
    send(h);
    std::vector<platform::unique_fd> fds;
    welcome_ = expect<proto::welcome>(fds, "hello");
  }

  [[nodiscard]] const std::string& socket() const noexcept { return path_; }
  [[nodiscard]] const proto::welcome& welcome() const noexcept { return welcome_; }
  [[nodiscard]] std::uint32_t pool_count() const noexcept { return welcome_.pools; }

  /// The pool named `pool` (or, if empty, number `index`): shmd's record of it and the
  /// read-only fds [control, (meta, data) per tier from first_tier].
  proto::observed observe(std::string_view pool, std::uint32_t index, std::uint32_t first_tier,
                          std::vector<platform::unique_fd>& fds) {
    proto::observe_req q;
    proto::set_text(q.pool, pool);
    q.index = index;
    q.first_tier = first_tier;
    send(q);
    const proto::observed r = expect<proto::observed>(fds, "observe");
    if (fds.size() != 1 + 2 * std::size_t{r.tiers}) {
      throw failure(exit_code::failure, "slabctl: shmd at " + path_ + " sent " +
                                            std::to_string(fds.size()) + " fds for " +
                                            std::to_string(r.tiers) + " tier(s)");
    }
    return r;
  }

  /// Who holds the pool's contexts, as shmd knows it.
  std::vector<proto::client_entry> clients(std::string_view pool) {
    std::vector<proto::client_entry> out;
    for (std::uint32_t first = 0;;) {
      proto::clients_req q;
      proto::set_text(q.pool, pool);
      q.first = first;
      send(q);
      std::vector<platform::unique_fd> fds;
      const proto::clients_msg r = expect<proto::clients_msg>(fds, "clients");
      const std::uint32_t n = std::min(r.count, proto::clients_msg::max_entries);
      out.insert(out.end(), r.entries, r.entries + n);
      first += n;
      if (n == 0 || first >= r.total) return out;
    }
  }

private:
  template <class M> void send(const M& m) {
    if (!platform::send_message(sock_.get(), &m, sizeof m)) {
      throw failure(exit_code::no_daemon,
                    "slabctl: shmd at " + path_ + " went away (send failed); is shmd running?");
    }
  }

  template <class M> M expect(std::vector<platform::unique_fd>& fds, const char* what) {
    alignas(8) std::byte buf[proto::max_msg];
    auto n = platform::receive_message(sock_.get(), buf, sizeof buf, fds);
    if (!n) {
      const int e = n.error().err;
      throw failure(exit_code::no_daemon,
                    "slabctl: shmd at " + path_ + " did not answer " + what + " (" +
                        (e == EAGAIN || e == EWOULDBLOCK ? std::string("timed out")
                                                         : std::string(std::strerror(e))) +
                        ")");
    }
    if (n.value() == 0) {
      throw failure(exit_code::no_daemon,
                    "slabctl: shmd at " + path_ + " closed the connection at " + what +
                        " (it stopped, or it is an older shmd without observer support: see "
                        "its log)");
    }
    // The protocol's one decoder reads the answer (proto/codec.hpp); a refusal keeps
    // shmd's code, which picks the exit code.
    try {
      return proto::expect<M>(proto::packet(buf, n.value()), "shmd at " + path_);
    } catch (const slab::error& e) {
      throw failure(exit_code_of(e.code()), std::string("slabctl: ") + e.what());
    }
  }

  std::string path_;
  platform::unique_fd sock_;
  proto::welcome welcome_{};
};

/// One pool mapped read-only through an observer, which must outlive it. Tiers that
/// appear later are fetched (observe from the first missing tier) as the pool_map asks.
class pool_watch {
public:
  /// By name; or by number (0 .. pool_count - 1) with an empty name.
  pool_watch(observer& o, std::string_view name, std::uint32_t index = 0) : obs_(o) {
    std::vector<platform::unique_fd> fds;
    info_ = obs_.observe(name, index, 0, fds);
    name_ = std::string(proto::get_text(info_.pool));
    auto m = slab::mapped::pool_map::attach(std::move(fds[0]), /*writable=*/false);
    if (!m) {
      throw failure(exit_code::failure,
                    "slabctl: pool '" + name_ + "': read-only attach: " + m.error().what);
    }
    map_ = std::move(m.value());
    map_tiers(0, fds);
    map_->fetch_tiers = [this](unsigned first) { return fetch(first); };
  }
  pool_watch(const pool_watch&) = delete;
  pool_watch& operator=(const pool_watch&) = delete;

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  slab::mapped::pool_map& map() noexcept { return *map_; }
  /// shmd's record of the pool as of the last observe (refresh() renews it).
  [[nodiscard]] const proto::observed& daemon_info() const noexcept { return info_; }

  /// Maps every tier published so far; false if one could not be fetched.
  bool map_all() {
    const std::uint64_t ready = map_->state().ready_slots.load(std::memory_order_acquire);
    return ready == 0 || map_->has_slot(static_cast<std::uint32_t>(ready - 1));
  }
  /// Asks shmd again: its growth record, and any tier not mapped yet.
  void refresh() {
    std::vector<platform::unique_fd> fds;
    info_ = obs_.observe(name_, 0, map_->mapped_tiers(), fds);
    map_tiers(map_->mapped_tiers(), fds);
  }

private:
  void map_tiers(unsigned first, std::vector<platform::unique_fd>& fds) {
    for (std::size_t i = 1; i + 1 < fds.size(); i += 2) {
      const auto t = static_cast<unsigned>(first + (i - 1) / 2);
      if (t < map_->mapped_tiers()) continue; // mapped meanwhile
      if (platform::status s = map_->map_tier(t, fds[i].get(), fds[i + 1].get()); !s) {
        throw failure(exit_code::failure, "slabctl: pool '" + name_ + "': tier " +
                                              std::to_string(t) + ": " + s.error().what);
      }
    }
  }
  bool fetch(unsigned first) {
    try {
      std::vector<platform::unique_fd> fds;
      info_ = obs_.observe(name_, 0, first, fds);
      map_tiers(first, fds);
      return true;
    } catch (const failure&) {
      return false;
    }
  }

  observer& obs_;
  std::string name_;
  proto::observed info_{};
  std::unique_ptr<slab::mapped::pool_map> map_;
};

/// Records that should hold nothing: a free record (never used, or reclaimed: reclaim
/// hands every magazine on), and `own` (a context that never built a cache). The core
/// audit does not look at them; the next context given such a record would inherit
/// what it names.
inline std::vector<std::string> idle_record_problems(slab::mapped::pool_map& m,
                                                     std::uint32_t own = core::no_context) {
  std::vector<std::string> out;
  for (std::uint32_t c = 0; c < m.context_count(); ++c) {
    core::context_record& rec = m.context(c);
    const bool is_free = rec.state.load() == static_cast<std::uint32_t>(core::context_state::free);
    if (!is_free && c != own) continue;
    const std::string who = "context " + std::to_string(c) + (is_free ? " (free)" : " (idle)");
    for (const std::uint32_t mag : {rec.mag[0].load(), rec.mag[1].load(), rec.spare.load()}) {
      if (mag != core::no_magazine) out.push_back(who + " names magazine " + std::to_string(mag));
    }
    if (rec.intent.op.load() != 0) out.push_back(who + " has an intent set");
  }
  return out;
}

/// Everything that moves when any context or shmd does something: the depot cells'
/// sequence numbers, the published tiers, every record's state, intent and counters.
/// Two equal fingerprints around an audit pass mean nobody did anything in between
/// that the counters show (cache hits included: every alloc and free counts).
struct pool_fingerprint {
  std::vector<std::uint64_t> words;
  friend bool operator==(const pool_fingerprint&, const pool_fingerprint&) = default;

  static pool_fingerprint of(slab::mapped::pool_map& m) {
    pool_fingerprint f;
    for (std::uint32_t c = 0; c < core::cell_count; ++c)
      f.words.push_back(m.state().cells[c].peek().seq);
    f.words.push_back(m.info().tiers_published.load());
    f.words.push_back(m.magazine_count());
    f.words.push_back(m.state().ready_slots.load());
    f.words.push_back(m.info().reclaims.load());
    for (std::uint32_t c = 0; c < m.context_count(); ++c) {
      const core::context_record& r = m.context(c);
      const core::context_counters& k = r.counters;
      f.words.insert(f.words.end(),
                     {r.state.load(), r.incarnation.load(), r.intent.op.load(), r.intent.seq.load(),
                      k.allocs.load(), k.frees.load(), k.depot_gets.load(), k.depot_puts.load(),
                      k.carves.load(), k.stale.load()});
    }
    return f;
  }
};

/// The verdict of an audit of a pool that may be in use.
enum class verdict { clean, violations, inconclusive };

struct audit_outcome {
  verdict result = verdict::inconclusive;
  core::audit_report report;     ///< the last quiet pass (or the last pass, if none was)
  std::vector<std::string> idle; ///< idle_record_problems of that pass
  unsigned passes = 0, quiet_passes = 0;
  std::chrono::milliseconds took{0};
  [[nodiscard]] std::vector<std::string> problems() const {
    std::vector<std::string> all = report.problems;
    all.insert(all.end(), idle.begin(), idle.end());
    return all;
  }
};

struct audit_options {
  std::chrono::milliseconds timeout{10000}; ///< give up ("inconclusive") after this
  unsigned confirm = 3; ///< quiet passes with the same problems before reporting them
  std::uint32_t own = core::no_context; ///< a record of the caller's, expected idle
  std::chrono::milliseconds pause{5};   ///< between passes
};

/// The full audit of a pool that clients may be using. An instant snapshot is impossible
/// without stopping them, so: a pass counts only if nothing moved while it ran (equal
/// fingerprints before and after); a clean quiet pass is a clean pool; problems are
/// reported only when `confirm` quiet passes in a row find the same ones (a context
/// caught between two stores of a step shows a transient problem, which its next
/// operation moves on from). A pool that never holds still is "inconclusive".
inline audit_outcome settled_audit(pool_watch& w, const audit_options& opt = {}) {
  using clock = std::chrono::steady_clock;
  audit_outcome out;
  const auto t0 = clock::now();
  std::vector<std::string> last;
  unsigned same = 0;
  for (;;) {
    w.map_all();
    const pool_fingerprint before = pool_fingerprint::of(w.map());
    core::audit_report rep = core::audit(w.map());
    std::vector<std::string> idle = idle_record_problems(w.map(), opt.own);
    const pool_fingerprint after = pool_fingerprint::of(w.map());
    ++out.passes;
    const bool quiet = before == after;
    if (quiet || out.quiet_passes == 0) {
      out.report = rep;
      out.idle = idle;
    }
    if (quiet) {
      ++out.quiet_passes;
      const std::vector<std::string> now = out.problems();
      if (now.empty()) {
        out.result = verdict::clean;
        break;
      }
      same = now == last ? same + 1 : 1;
      last = now;
      if (same >= opt.confirm) {
        out.result = verdict::violations;
        break;
      }
    } else {
      same = 0;
      last.clear();
    }
    if (clock::now() - t0 >= opt.timeout) {
      out.result = verdict::inconclusive;
      break;
    }
    std::this_thread::sleep_for(opt.pause);
  }
  out.took = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t0);
  return out;
}

} // namespace slabctl
