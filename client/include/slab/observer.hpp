// observer: a read-only look at shmd's pools, for slabctl, for monitoring and for tests.
//
//   slab::observe::observer o(socket);             // connect, observer_hello, welcome
//   slab::observe::pool_watch w(o, "orders");      // read-only fds, mapped PROT_READ
//   slab::observe::audit_outcome a = slab::observe::settled_audit(w);
//
// Nothing here can change a pool: shmd hands an observer segment fds reopened O_RDONLY,
// and every mapping is PROT_READ, so a bug that would need a write is a crash (SIGSEGV),
// never a repaired or damaged pool. No context is registered, so observing costs the
// pool nothing and a monitoring user that may not allocate can still look.
//
// Errors are slab::error, as everywhere in the client library: no_daemon (nothing at
// the socket, no answer in time, shmd went away), permission_denied (the socket or
// shmd's lists refused this user), not_found (no such pool), abi_mismatch, protocol
// (an answer that is not the one asked for, a segment that does not map) and system.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <slab/core/audit.hpp>
#include <slab/core/shared_layout.hpp>
#include <slab/error.hpp>
#include <slab/mapped/pool_map.hpp>
#include <slab/platform/segment.hpp>
#include <slab/proto/protocol.hpp>

namespace slab::detail {
class connection;
}

namespace slab::observe {

/// An observer's connection to shmd: one request, one answer at a time.
class observer {
public:
  explicit observer(std::string socket,
                    std::chrono::milliseconds timeout = std::chrono::seconds(5));
  ~observer();
  observer(const observer&) = delete;
  observer& operator=(const observer&) = delete;

  [[nodiscard]] const std::string& socket() const noexcept { return path_; }
  [[nodiscard]] const proto::welcome& welcome() const noexcept { return welcome_; }
  [[nodiscard]] std::uint32_t pool_count() const noexcept { return welcome_.pools; }

  /// The pool named `pool` (or, if empty, number `index`): shmd's record of it and the
  /// read-only fds [control, (meta, data) per tier from first_tier].
  proto::observed observe(std::string_view pool, std::uint32_t index, std::uint32_t first_tier,
                          std::vector<platform::unique_fd>& fds);

  /// Who holds the pool's contexts, as shmd knows it.
  std::vector<proto::client_entry> clients(std::string_view pool);

private:
  template <class R, class Q>
  R request(const Q& q, std::vector<platform::unique_fd>& fds, const char* what);

  std::string path_;
  std::unique_ptr<detail::connection> conn_;
  proto::welcome welcome_{};
};

/// One pool mapped read-only through an observer, which must outlive it. Tiers that
/// appear later are fetched (observe from the first missing tier) as the pool_map asks.
class pool_watch {
public:
  /// By name; or by number (0 .. pool_count - 1) with an empty name.
  pool_watch(observer& o, std::string_view name, std::uint32_t index = 0);
  pool_watch(const pool_watch&) = delete;
  pool_watch& operator=(const pool_watch&) = delete;

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  mapped::pool_map& map() noexcept { return *map_; }
  /// shmd's record of the pool as of the last observe (refresh() renews it).
  [[nodiscard]] const proto::observed& daemon_info() const noexcept { return info_; }

  /// Maps every tier published so far; false if one could not be fetched.
  bool map_all();
  /// Asks shmd again: its growth record, and any tier not mapped yet.
  void refresh();

private:
  void map_tiers(unsigned first, std::vector<platform::unique_fd>& fds);
  bool fetch(unsigned first);

  observer& obs_;
  std::string name_;
  proto::observed info_{};
  std::unique_ptr<mapped::pool_map> map_;
};

/// Records that should hold nothing: a free record (never used, or reclaimed: reclaim
/// hands every magazine on), and `own` (a context that never built a cache). The core
/// audit does not look at them; the next context given such a record would inherit
/// what it names.
std::vector<std::string> idle_record_problems(mapped::pool_map& m,
                                              std::uint32_t own = core::no_context);

/// Everything that moves when any context or shmd does something: the depot cells'
/// sequence numbers, the published tiers, every record's state, intent and counters.
/// Two equal fingerprints around an audit pass mean nobody did anything in between
/// that the counters show (cache hits included: every alloc and free counts).
struct pool_fingerprint {
  std::vector<std::uint64_t> words;
  friend bool operator==(const pool_fingerprint&, const pool_fingerprint&) = default;

  static pool_fingerprint of(mapped::pool_map& m);
};

/// The verdict of an audit of a pool that may be in use.
enum class verdict { clean, violations, inconclusive };

struct audit_outcome {
  verdict result = verdict::inconclusive;
  core::audit_report report;     ///< the last quiet pass (or the last pass, if none was)
  std::vector<std::string> idle; ///< idle_record_problems of that pass
  unsigned passes = 0, quiet_passes = 0;
  std::chrono::milliseconds took{0};
  [[nodiscard]] std::vector<std::string> problems() const;
};

struct audit_options {
  std::chrono::milliseconds timeout{10000}; ///< give up ("inconclusive") after this
  unsigned confirm = 3; ///< quiet passes with the same problems before reporting them
  std::uint32_t own = core::no_context; ///< a record of the caller's, expected idle
  std::chrono::milliseconds pause{5};   ///< between passes
};

/// The full audit of a pool that clients may be using. An instant snapshot is impossible
/// without stopping them, so: a pass counts only if nothing moved while it ran (equal
/// fingerprints before and after) and no attached context was in the middle of a
/// shared step (its intent set); a clean quiet pass is a clean pool; problems are
/// reported only when `confirm` quiet passes in a row find the same ones (a context
/// caught between two stores of a step shows a transient problem, which its next
/// operation moves on from). A pool that never holds still is "inconclusive".
audit_outcome settled_audit(pool_watch& w, const audit_options& opt = {});

} // namespace slab::observe
