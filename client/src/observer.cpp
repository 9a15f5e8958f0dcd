// The read-only observer (slab/observer.hpp).
#include <slab/observer.hpp>

#include <algorithm>
#include <thread>
#include <utility>

#include <slab/error.hpp>
#include <slab/platform/process.hpp>

#include "connection.hpp"

namespace slab::observe {

observer::observer(std::string socket, std::chrono::milliseconds timeout)
    : path_(std::move(socket)), conn_(std::make_unique<detail::connection>(path_, timeout)) {
  proto::observer_hello h;
  h.pid = platform::own_pid();
  proto::set_text(h.comm, platform::own_process_name());
  std::vector<platform::unique_fd> fds;
  welcome_ = request<proto::welcome>(h, fds, "hello");
}

observer::~observer() = default;

// An observer does not reconnect: a closed connection ends what it was doing.
template <class R, class Q>
R observer::request(const Q& q, std::vector<platform::unique_fd>& fds, const char* what) {
  if (std::optional<R> r = conn_->request<R>(q, fds)) return *r;
  conn_->throw_closed(what);
}

proto::observed observer::observe(std::string_view pool, std::uint32_t index,
                                  std::uint32_t first_tier, std::vector<platform::unique_fd>& fds) {
  proto::observe_req q;
  proto::set_text(q.pool, pool);
  q.index = index;
  q.first_tier = first_tier;
  const proto::observed r = request<proto::observed>(q, fds, "observe");
  if (fds.size() != 1 + 2 * std::size_t{r.tiers}) {
    throw error(errc::protocol, "shmd at " + path_ + " sent " + std::to_string(fds.size()) +
                                    " fds for " + std::to_string(r.tiers) + " tier(s)");
  }
  return r;
}

std::vector<proto::client_entry> observer::clients(std::string_view pool) {
  std::vector<proto::client_entry> out;
  for (std::uint32_t first = 0;;) {
    proto::clients_req q;
    proto::set_text(q.pool, pool);
    q.first = first;
    std::vector<platform::unique_fd> fds;
    const proto::clients_msg r = request<proto::clients_msg>(q, fds, "clients");
    const std::uint32_t n = std::min(r.count, proto::clients_msg::max_entries);
    out.insert(out.end(), r.entries, r.entries + n);
    first += n;
    if (n == 0 || first >= r.total) return out;
  }
}

pool_watch::pool_watch(observer& o, std::string_view name, std::uint32_t index) : obs_(o) {
  std::vector<platform::unique_fd> fds;
  info_ = obs_.observe(name, index, 0, fds);
  name_ = std::string(proto::get_text(info_.pool));
  auto m = mapped::pool_map::attach(std::move(fds[0]), /*writable=*/false);
  if (!m) throw error(errc::protocol, "pool '" + name_ + "': read-only attach: " + m.error().what);
  map_ = std::move(m.value());
  map_tiers(0, fds);
  map_->fetch_tiers = [this](unsigned first) { return fetch(first); };
}

bool pool_watch::map_all() {
  const std::uint64_t ready = map_->state().ready_slots.load(std::memory_order_acquire);
  return ready == 0 || map_->has_slot(static_cast<std::uint32_t>(ready - 1));
}

void pool_watch::refresh() {
  std::vector<platform::unique_fd> fds;
  info_ = obs_.observe(name_, 0, map_->mapped_tiers(), fds);
  map_tiers(map_->mapped_tiers(), fds);
}

void pool_watch::map_tiers(unsigned first, std::vector<platform::unique_fd>& fds) {
  for (std::size_t i = 1; i + 1 < fds.size(); i += 2) {
    const auto t = static_cast<unsigned>(first + (i - 1) / 2);
    if (t < map_->mapped_tiers()) continue; // mapped meanwhile
    if (platform::status s = map_->map_tier(t, fds[i].get(), fds[i + 1].get()); !s) {
      throw error(errc::protocol,
                  "pool '" + name_ + "': tier " + std::to_string(t) + ": " + s.error().what);
    }
  }
}

// Called from the pool_map's slow path, which expects an answer, not an exception.
bool pool_watch::fetch(unsigned first) {
  try {
    std::vector<platform::unique_fd> fds;
    info_ = obs_.observe(name_, 0, first, fds);
    map_tiers(first, fds);
    return true;
  } catch (const error&) {
    return false;
  }
}

std::vector<std::string> idle_record_problems(mapped::pool_map& m, std::uint32_t own) {
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

pool_fingerprint pool_fingerprint::of(mapped::pool_map& m) {
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

std::vector<std::string> audit_outcome::problems() const {
  std::vector<std::string> all = report.problems;
  all.insert(all.end(), idle.begin(), idle.end());
  return all;
}

namespace {

// An attached context with a step recorded as under way: whatever the audit finds about
// the slots and magazines of that step is the step's, not the pool's, until it ends.
// (A context stopped or descheduled mid-step holds still as well as a broken pool does.)
bool a_live_step_is_under_way(mapped::pool_map& m) {
  for (std::uint32_t c = 0; c < m.context_count(); ++c) {
    const core::context_record& r = m.context(c);
    if (r.state.load() == static_cast<std::uint32_t>(core::context_state::active) &&
        r.intent.op.load() != static_cast<std::uint32_t>(core::intent_op::none))
      return true;
  }
  return false;
}

} // namespace

audit_outcome settled_audit(pool_watch& w, const audit_options& opt) {
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
    const bool quiet = before == after && !a_live_step_is_under_way(w.map());
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

} // namespace slab::observe
