// The attach library: the control-socket session and the slow paths of slab::pool<T>.
#include <slab/client.hpp>

#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <slab/platform/ipc.hpp>
#include <slab/platform/process.hpp>
#include <slab/proto/protocol.hpp>

#include "connection.hpp"

namespace slab {
namespace detail {
/// The connection to shmd, shared by every pool opened through one slab::client.
/// Requests are serialized: one answer is awaited at a time.
class session : public std::enable_shared_from_this<session> {
public:
  static std::shared_ptr<session> connect(const std::string& path, const client_options& opt) {
    auto s =
        std::make_shared<session>(connection(path, opt.request_timeout, opt.daemon_user), path);
    s->timeout_ = opt.request_timeout;
    s->daemon_user_ = opt.daemon_user;
    s->map_ahead_ = opt.map_ahead;
    s->map_ahead_interval_ = opt.map_ahead_interval;
    std::vector<platform::unique_fd> fds;
    const proto::welcome w = s->request<proto::welcome>(greeting(), fds);
    s->daemon_pid_ = w.daemon_pid;
    return s;
  }

  session(connection c, std::string path) : conn_(std::move(c)), path_(std::move(path)) {}
  session(const session&) = delete;
  session& operator=(const session&) = delete;
  ~session() {
    {
      std::lock_guard<std::mutex> g(mapper_mu_);
      stop_mapper_ = true;
    }
    mapper_cv_.notify_all();
    if (!mapper_.joinable()) return;
    if (mapper_pid_ == platform::own_pid()) {
      mapper_.join();
    } else {
      mapper_.detach(); // a forked child's copy: the thread lives in the parent only
    }
  }

  struct opened_pool {
    std::shared_ptr<mapped::pool_map> map;
    std::uint32_t pool_id, context;
  };

  opened_pool open(std::string_view name, std::size_t size, std::size_t align) {
    proto::open_req o;
    proto::set_text(o.pool, name);
    o.type_size = static_cast<std::uint32_t>(size);
    o.type_align = static_cast<std::uint32_t>(align);
    std::vector<platform::unique_fd> fds;
    const proto::opened r = request<proto::opened>(o, fds);
    if (fds.size() != 1 + 2 * std::size_t{r.tiers}) protocol_error("opened: wrong number of fds");
    std::lock_guard<std::mutex> g(maps_mu_);
    std::shared_ptr<mapped::pool_map> map = maps_[r.pool_id].lock();
    if (!map) {
      auto m = mapped::pool_map::attach(std::move(fds[0]), true);
      if (!m) protocol_error("pool '" + std::string(name) + "': " + m.error().what);
      map = std::move(m.value());
      std::weak_ptr<session> self = weak_from_this();
      mapped::pool_map* raw = map.get();
      map->fetch_tiers = [self, raw, me = this](unsigned first) {
        // The mapper thread uses its session as it is: ~session joins that thread before
        // anything goes. Locking `self` there could leave the thread holding the last
        // reference, so that ~session would run on it and join itself.
        if (mapper_of_this_thread == me) return me->fetch_tiers(*raw, first);
        const std::shared_ptr<session> s = self.lock();
        return s != nullptr && s->fetch_tiers(*raw, first);
      };
      map_tiers(*map, 0, fds, 1);
      maps_[r.pool_id] = map;
      maps_changed_.fetch_add(1, std::memory_order_release);
      if (map_ahead_ && !mapper_.joinable()) {
        mapper_pid_ = platform::own_pid();
        mapper_ = std::thread([this] { map_ahead(); });
      }
    }
    return {map, r.pool_id, r.context};
  }

  // Called under the map's lock, from has_slot's slow path: never throws.
  bool fetch_tiers(mapped::pool_map& map, unsigned first) noexcept {
    try {
      proto::tiers_req q;
      proto::set_text(q.pool, proto::get_text(map.info().name));
      q.first = first;
      std::vector<platform::unique_fd> fds;
      const proto::tiers_msg r = request<proto::tiers_msg>(q, fds);
      if (r.first != first || fds.size() != 2 * std::size_t{r.count}) return false;
      return map_tiers(map, first, fds, 0);
    } catch (const error&) {
      return false;
    }
  }

  void nudge(std::string_view pool) noexcept {
    proto::grow_req g;
    proto::set_text(g.pool, pool);
    std::lock_guard<std::mutex> lk(mu_);
    if (!conn_.send(&g, sizeof g) && reconnect_locked()) (void)conn_.send(&g, sizeof g);
  }

  void close(std::string_view pool, std::uint32_t ctx) noexcept {
    try {
      proto::close_req c;
      proto::set_text(c.pool, pool);
      c.context = ctx;
      std::vector<platform::unique_fd> fds;
      (void)request<proto::closed>(c, fds);
    } catch (const error&) {
      // shmd is gone: it reclaims the context when it sees this process exit, or on restart
    }
  }

  [[nodiscard]] std::uint32_t daemon_pid() const noexcept { return daemon_pid_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

private:
  // The mapper thread (client_options::map_ahead): maps every tier shmd has offered
  // (ready_slots past what this process mapped) through the same path an operation
  // would take, so that operations find it mapped. maps_mu_ is taken only when a pool
  // was opened since the last look.
  void map_ahead() noexcept {
    mapper_of_this_thread = this;
    std::vector<std::weak_ptr<mapped::pool_map>> pools;
    unsigned seen = ~0U;
    std::unique_lock<std::mutex> lk(mapper_mu_);
    while (!stop_mapper_) {
      lk.unlock();
      if (const unsigned now = maps_changed_.load(std::memory_order_acquire); now != seen) {
        std::lock_guard<std::mutex> g(maps_mu_);
        pools.clear();
        for (const auto& [id, w] : maps_)
          pools.push_back(w);
        seen = now;
      }
      for (const auto& w : pools) {
        const std::shared_ptr<mapped::pool_map> m = w.lock();
        if (!m) continue;
        const std::uint64_t mapped = m->mapped_slots();
        if (m->state().ready_slots.load(std::memory_order_acquire) > mapped) {
          (void)m->has_slot(static_cast<std::uint32_t>(mapped)); // maps what is offered
        }
      }
      lk.lock();
      mapper_cv_.wait_for(lk, map_ahead_interval_, [this] { return stop_mapper_; });
    }
  }

  [[noreturn]] void protocol_error(const std::string& what) const {
    throw error(errc::protocol, "shmd at " + path_ + ": " + what);
  }

  bool map_tiers(mapped::pool_map& map, unsigned first, std::vector<platform::unique_fd>& fds,
                 std::size_t from) {
    for (std::size_t i = from; i + 1 < fds.size(); i += 2) {
      const auto t = static_cast<unsigned>(first + (i - from) / 2);
      if (!map.map_tier(t, fds[i].get(), fds[i + 1].get())) return false;
    }
    return true;
  }

  static proto::hello greeting() {
    proto::hello h;
    h.pid = platform::own_pid();
    proto::set_text(h.comm, platform::own_process_name());
    return h;
  }

  // Sends `q`, waits for its answer of type R; an error answer becomes slab::error. A
  // connection that turns out dead (shmd restarted) is re-established once and the
  // request sent again: requests are idempotent or harmless to repeat.
  template <class R, class Q> R request(const Q& q, std::vector<platform::unique_fd>& fds) {
    std::lock_guard<std::mutex> lk(mu_);
    for (int attempt = 0;; ++attempt) {
      if (std::optional<R> r = conn_.request<R>(q, fds)) return *r;
      if (attempt == 0 && reconnect_locked()) continue; // the daemon is gone: once, ask again
      throw error(errc::no_daemon, "shmd at " + path_ + " is gone (the control socket closed)");
    }
  }

  // Under mu_: a new connection and hello to the same path (shmd restarted). Contexts
  // opened before stay ours: the new shmd found them in shared memory.
  bool reconnect_locked() noexcept {
    try {
      std::optional<connection> c = connection::try_connect(path_, timeout_, daemon_user_);
      if (!c) return false;
      std::vector<platform::unique_fd> fds;
      const std::optional<proto::welcome> w = c->request<proto::welcome>(greeting(), fds);
      if (!w) return false;
      daemon_pid_ = w->daemon_pid;
      conn_ = std::move(*c);
      return true;
    } catch (...) {
      return false;
    }
  }

  /// The session whose mapper thread this is (null on every other thread).
  static thread_local const session* mapper_of_this_thread;

  connection conn_;
  std::string path_;
  std::chrono::milliseconds timeout_{5000};
  std::string daemon_user_; // client_options::daemon_user, for reconnecting
  std::uint32_t daemon_pid_ = 0;
  std::mutex mu_;
  std::mutex maps_mu_;
  std::map<std::uint32_t, std::weak_ptr<mapped::pool_map>> maps_;
  std::atomic<unsigned> maps_changed_{0};
  bool map_ahead_ = true;
  std::chrono::milliseconds map_ahead_interval_{1};
  std::mutex mapper_mu_;
  std::condition_variable mapper_cv_;
  bool stop_mapper_ = false;
  std::uint32_t mapper_pid_ = 0;
  std::thread mapper_; // last: started after everything it uses, joined in ~session
};

thread_local const session* session::mapper_of_this_thread = nullptr;

raw_pool::raw_pool(std::shared_ptr<session> s, std::shared_ptr<mapped::pool_map> map,
                   std::uint32_t ctx, client_options opt)
    : session_(std::move(s)), map_(std::move(map)), salt_(map_->geometry().key_salt),
      name_(proto::get_text(map_->info().name)), ctx_(ctx), opt_(std::move(opt)),
      cache_(*map_, ctx) {
  if (!cache_.ready()) {
    session_->close(name_, ctx_);
    throw error(errc::exhausted, "pool '" + std::string(proto::get_text(map_->info().name)) +
                                     "': no magazine left for a new context");
  }
}

raw_pool::~raw_pool() {
  platform::release_private(cells_, cells_bytes_);
  session_->close(name_, ctx_);
}

core::slot_header* raw_pool::share_cells() {
  if (cells_ != nullptr) return cells_;
  // One 8-byte cell per slot the pool may ever hold: virtual space only (MAP_NORESERVE);
  // a page is backed when a shared_slot first counts a slot in it.
  const std::size_t bytes =
      static_cast<std::size_t>(map_->info().max_slots) * sizeof(core::slot_header);
  auto p = platform::reserve_private(bytes);
  if (!p) {
    throw error(errc::out_of_memory,
                "pool '" + name_ + "': cannot reserve for shared_slot counts: " + p.error().what);
  }
  cells_ = static_cast<core::slot_header*>(p.value());
  cells_bytes_ = bytes;
  return cells_;
}

std::optional<key> raw_pool::wait_for_growth(std::uint32_t* claim_entry) noexcept {
  session_->nudge(name_);
  auto nudged = std::chrono::steady_clock::now();
  const auto deadline = nudged + opt_.grow_wait;
  for (unsigned round = 0;; ++round) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    // shmd grows on a request only while the pool is dry (no full magazine in the depot,
    // no fresh magazine): one that came while another context had just freed some is
    // ignored, so ask again while still waiting.
    if (now - nudged >= std::chrono::milliseconds(10)) {
      session_->nudge(name_);
      nudged = now;
    }
    if (round < 64) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    const key k = claim_entry != nullptr ? cache_.claim(*claim_entry) : cache_.alloc();
    if (k) return k;
  }
  return std::nullopt;
}

key raw_pool::claim(std::uint32_t& entry) {
  const key k = cache_.claim(entry);
  if (k) return salted(k);
  const std::string name(proto::get_text(map_->info().name));
  if (entry == core::claim_slots) {
    throw error(errc::exhausted, "pool '" + name + "': this context already has " +
                                     std::to_string(core::claim_slots) +
                                     " claims pending; write or drop one first");
  }
  if (const std::optional<key> g = wait_for_growth(&entry)) return salted(*g);
  throw_exhausted();
}

key raw_pool::alloc_slow() {
  if (const std::optional<key> k = wait_for_growth()) return *k;
  throw_exhausted();
}

void raw_pool::throw_exhausted() const {
  const core::pool_state& st = map_->state();
  const std::string name(proto::get_text(map_->info().name));
  const std::uint64_t ready = st.ready_slots.load();
  if (ready >= st.max_slots.load()) {
    throw error(errc::exhausted, "pool '" + name + "' is full: all " + std::to_string(ready) +
                                     " slots of its max_capacity are in use or cached");
  }
  if (const std::uint32_t why = map_->info().growth_failed.load(std::memory_order_relaxed)) {
    throw error(errc::exhausted, "pool '" + name + "' has no free slot: shmd cannot add a tier (" +
                                     std::string(to_string(static_cast<errc>(why))) +
                                     "; its log says why) and " + "the pool stays at " +
                                     std::to_string(ready) + " slots meanwhile");
  }
  throw error(errc::exhausted,
              "pool '" + name + "' has no free slot and shmd did not add a tier within " +
                  std::to_string(opt_.grow_wait.count()) + " ms (is shmd running?)");
}

pool_stats raw_pool::stats() const {
  const proto::pool_header& h = map_->info();
  pool_stats s;
  s.name = std::string(proto::get_text(h.name));
  s.slot_size = h.slot_size;
  s.ready_slots = map_->state().ready_slots.load();
  s.max_slots = h.max_slots;
  s.tiers = h.tiers_published.load();
  s.live = map_->live_estimate();
  s.arena = arena();
  s.hugepages = s.tiers > 0;
  for (unsigned t = 0; t < s.tiers; ++t) {
    s.hugepages = s.hugepages && (h.tiers[t].flags & proto::tier_huge) != 0;
    s.fell_back = s.fell_back || (h.tiers[t].flags & proto::tier_fallback) != 0;
  }
  return s;
}

} // namespace detail

std::string default_socket_path() {
  const char* env = std::getenv(proto::socket_env);
  return env != nullptr && *env != '\0' ? env : proto::default_socket;
}

client client::connect(client_options opt) {
  return connect(default_socket_path(), std::move(opt));
}

client client::connect(const std::string& socket_path, client_options opt) {
  std::shared_ptr<detail::session> s = detail::session::connect(socket_path, opt);
  return client(std::move(s), std::move(opt));
}

std::unique_ptr<detail::raw_pool> client::open_raw(std::string_view name, std::size_t size,
                                                   std::size_t align) {
  detail::session::opened_pool p = session_->open(name, size, align);
  const proto::pool_header& h = p.map->info();
  if (size > h.slot_size || align > h.align) {
    session_->close(name, p.context);
    throw error(errc::type_mismatch, "a type of " + std::to_string(size) + " bytes aligned to " +
                                         std::to_string(align) + " does not fit pool '" +
                                         std::string(name) + "'");
  }
  return std::make_unique<detail::raw_pool>(session_, std::move(p.map), p.context, opt_);
}

std::unique_ptr<detail::raw_pool> client::open_raw(std::string_view name, std::size_t size,
                                                   std::size_t align, std::uint32_t mode) {
  std::unique_ptr<detail::raw_pool> p = open_raw(name, size, align);
  if (p->arena() && mode != proto::mode_arena) {
    throw error(errc::not_supported,
                "pool '" + std::string(name) +
                    "' is an arena (mode = \"arena\" in shmd's config): its values are never "
                    "erased, so it cannot be opened as slab::pool<T>; use client::open_arena<T>");
  }
  if (!p->arena() && mode == proto::mode_arena) {
    throw error(errc::not_supported,
                "pool '" + std::string(name) +
                    "' is not an arena (its mode is \"slab\"): its slots are freed and "
                    "reused, so get must check generations; use client::open<T>");
  }
  return p; // the refused context closes as p goes
}

std::uint32_t client::daemon_pid() const noexcept { return session_->daemon_pid(); }
const std::string& client::socket_path() const noexcept { return session_->path(); }

} // namespace slab
