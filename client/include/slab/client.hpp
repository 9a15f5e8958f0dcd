// slab::client and slab::pool<T>: slabs shared across processes through shmd.
//
//   slab::client c = slab::client::connect();            // $SHMD_SOCKET or /run/shmd/shmd.sock
//   slab::pool<Order> orders = c.open<Order>("orders");  // checks T fits the pool's slots
//   slab::key k = orders.emplace(42, 100.5);
//   Order* o = orders.get(k);                            // in any attached process
//   bool gone = orders.erase(k);                         // false when stale, in any process
//   std::optional<Order> o = orders.take(k);             // moved out and erased, in one step
//
// A pool<T> is one context of the pool: its own cache of free slots in shared memory.
// Use it from one thread at a time; open the pool again for another thread. Keys are
// valid in every process attached to the pool (pass them as key.raw()).
//
// The hot path (a cache hit) is a few loads and stores in this process's cache and the
// slot's header: no lock, no system call, no allocation. Reaching a tier this process
// has not mapped yet asks shmd for its segments once.
//
// T lives in shared memory: it must not hold pointers into one process's memory, and
// its destructor runs in whichever process erases it (exactly once, however many race).
//
// Handles (slab/handles.hpp) work here too, as process-local owners:
//   slab::pool_unique_slot<Order> u = orders.make_unique(42, 100.5);  // erased when u dies
//   slab::pool_shared_slot<Order> s = orders.make_shared(7, 99.0);    // by the last copy
// They own the value in this process only. Another process holding the key can still
// erase it; the handle's own erase is then refused (the generation check), and its
// pointer must not be used. A process that dies leaves its handles' values live, like
// every value of a dead client (other processes may hold their keys). shared_slot's
// count is this process's: a count in shared memory would need each holder's references
// recorded per process so that shmd could drop a dead holder's share, which costs every
// copy a shared write; that is not worth it when a key can be passed around for free.
//
// A pool with mode = "arena" in shmd's config never frees a slot: open it with
// client::open_arena<T>, whose get skips the generation check and has no erase.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <slab/core/cache.hpp>
#include <slab/core/slot_header.hpp>
#include <slab/error.hpp>
#include <slab/handles.hpp>
#include <slab/key.hpp>
#include <slab/mapped/pool_map.hpp>

namespace slab {

struct client_options {
  /// How long emplace waits for shmd to add a tier when the pool has run dry, before it
  /// throws errc::exhausted. Growth runs ahead of demand; this only covers a burst that
  /// outruns it.
  std::chrono::milliseconds grow_wait{500};
  /// How long a request to shmd may take before errc::no_daemon.
  std::chrono::milliseconds request_timeout{5000};
  /// Map each tier shmd adds as soon as it is offered, from a background thread of this
  /// client (it wakes every map_ahead_interval, reads one counter per open pool, and
  /// sleeps again), so that no allocation ever maps memory: mapping a tier populates
  /// its page tables, milliseconds for a large one. Off: a tier is mapped by the first
  /// operation that reaches it, on that operation's time.
  bool map_ahead = true;
  std::chrono::milliseconds map_ahead_interval{1};
  /// The user shmd runs as. The client maps memory only from a daemon running as root,
  /// as this process's user, or as this user (checked on the socket, SO_PEERCRED), and
  /// refuses any other with errc::permission_denied: whoever can bind the socket path
  /// would otherwise receive this process's values. Empty: SHMD_USER, else "shmd" (the
  /// package's user).
  std::string daemon_user{};
};

/// What a pool looks like from here (read from shared memory, no round trip).
struct pool_stats {
  std::string name;
  std::uint32_t slot_size = 0;
  std::uint64_t ready_slots = 0; ///< slots shmd has prepared and offered
  std::uint64_t max_slots = 0;   ///< the ceiling for growth
  std::uint64_t live = 0; ///< allocations minus frees, all contexts (approximate while running)
  unsigned tiers = 0;
  bool hugepages = false; ///< every tier's data on hugepages
  bool fell_back = false; ///< `prefer` fell back to normal pages somewhere
  bool arena = false;     ///< mode = "arena": nothing is ever erased
};

namespace detail {

class session;

/// One context of one pool, without the type: what pool<T> wraps.
class raw_pool {
public:
  raw_pool(std::shared_ptr<session> s, std::shared_ptr<mapped::pool_map> map, std::uint32_t ctx,
           client_options opt);
  raw_pool(const raw_pool&) = delete;
  raw_pool& operator=(const raw_pool&) = delete;
  ~raw_pool();

  /// A free slot, marked live; waits up to grow_wait for growth, then throws exhausted.
  /// The cache hit is inline; waiting for growth is not.
  key alloc() {
    const key k = cache_.alloc();
    return salted(k ? k : alloc_slow());
  }
  /// The same without throwing: nullopt when no slot could be had in grow_wait.
  std::optional<key> try_alloc() noexcept {
    const key k = cache_.alloc();
    if (k) return salted(k);
    const std::optional<key> g = wait_for_growth();
    return g ? std::optional<key>(salted(*g)) : std::nullopt;
  }
  /// Two-phase allocation (core::cache::claim): a slot taken and recorded as claimed in
  /// claims[entry] of this context's record until commit_claim (live from then on) or
  /// abandon_claim, so that shmd gives it back if this process dies first. Waits for growth like
  /// alloc; throws exhausted when no slot came, or when claim_slots claims of this context are
  /// pending.
  key claim(std::uint32_t& entry);
  void commit_claim(std::uint32_t entry, key k) noexcept { cache_.commit_claim(entry, salted(k)); }
  void abandon_claim(std::uint32_t entry, key k) noexcept {
    cache_.abandon_claim(entry, salted(k));
  }
  /// Payload address of a live key, or nullptr.
  void* get(key k) noexcept {
    const std::uint32_t idx = k.index();
    mapped::pool_map& m = *map_;
    if (!m.has_slot(idx)) return nullptr;
    const std::uint32_t g = m.header(idx).gen(std::memory_order_acquire);
    if (g != (k.generation() ^ m.geometry().key_salt) || !core::gen_live(g)) return nullptr;
    return m.payload(idx);
  }
  /// An arena's get: the payload of a mapped slot, or nullptr; no generation check.
  void* get_unchecked(key k) noexcept {
    const std::uint32_t idx = k.index();
    return map_->has_slot(idx) ? map_->payload(idx) : nullptr;
  }
  template <class F> bool free(key k, F&& on_claimed) noexcept {
    return cache_.free(salted(k), std::forward<F>(on_claimed));
  }
  /// free, for an on_claimed that reads the value: its line is asked for before the
  /// header's, so that both transfers overlap instead of following one another.
  template <class F> bool free_reading(key k, F&& on_claimed) noexcept {
    if (map_->has_slot(k.index())) __builtin_prefetch(map_->payload(k.index()), 0);
    return cache_.free(salted(k), std::forward<F>(on_claimed));
  }
  void* payload(std::uint32_t idx) noexcept { return map_->payload(idx); }
  [[nodiscard]] pool_stats stats() const;
  [[nodiscard]] std::uint32_t slot_size() const noexcept { return map_->info().slot_size; }
  [[nodiscard]] std::uint32_t context() const noexcept { return ctx_; }
  [[nodiscard]] bool arena() const noexcept { return map_->info().mode == proto::mode_arena; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  /// The pool's key salt (proto::key_salt): what this pool's keys carry XORed into
  /// their generation half, so that a key of another pool misses here.
  [[nodiscard]] std::uint32_t salt() const noexcept { return salt_; }
  mapped::pool_map& map() noexcept { return *map_; }
  /// The count cells of this process's shared_slots, one per slot index: a private
  /// anonymous range of max_slots cells, reserved on first use and touched only where
  /// used. Throws slab::error(out_of_memory) when it cannot be reserved.
  core::slot_header* share_cells();

private:
  /// Retries alloc (or claim into *claim_entry) while shmd grows the pool, up to grow_wait.
  std::optional<key> wait_for_growth(std::uint32_t* claim_entry = nullptr) noexcept;
  [[noreturn]] void throw_exhausted() const;
  key alloc_slow();
  /// A core key as this pool hands it out, and a key handed in as the core knows it:
  /// the same XOR of the generation half with the salt, either way.
  [[nodiscard]] key salted(key k) const noexcept {
    return key::from_raw(k.raw() ^ (std::uint64_t{salt_} << 32)); // one xor with a constant
  }

  std::shared_ptr<session> session_;
  std::shared_ptr<mapped::pool_map> map_;
  std::uint32_t salt_;
  std::string name_;
  std::uint32_t ctx_;
  client_options opt_;
  core::cache<mapped::pool_map> cache_;
  core::slot_header* cells_ = nullptr; // share_cells(), mapped on first use
  std::size_t cells_bytes_ = 0;
};

} // namespace detail

template <class T> class arena_pool;

template <class T> class pool {
  static_assert(std::is_object_v<T> && !std::is_const_v<T>);

public:
  using value_type = T;

  /// Constructs a T in a free slot. Throws slab::error(exhausted) when the pool has no
  /// free slot and cannot grow (at max_capacity, or shmd did not keep up within
  /// grow_wait); what T's constructor throws propagates and the slot goes back.
  template <class... Args> key emplace(Args&&... args) {
    return construct(raw_->alloc(), std::forward<Args>(args)...);
  }
  /// Like emplace, nullopt instead of the exhausted error.
  template <class... Args> std::optional<key> try_emplace(Args&&... args) {
    const std::optional<key> k = raw_->try_alloc();
    if (!k) return std::nullopt;
    return construct(*k, std::forward<Args>(args)...);
  }
  /// The value named by k, or nullptr when k is stale (erased in any process), out of
  /// range or 0.
  [[nodiscard]] T* get(key k) noexcept { return std::launder(static_cast<T*>(raw_->get(k))); }
  /// Destroys the value and frees its slot. False when k is stale or another process
  /// erased it first: of racing erases exactly one succeeds and runs the destructor.
  bool erase(key k) noexcept {
    return raw_->free(k, [&] { std::launder(static_cast<T*>(raw_->payload(k.index())))->~T(); });
  }
  /// Moves the value named by k out and erases it: what a consumer does with a value it
  /// was handed. nullopt when k is stale or another process erased it first (of racing
  /// takes and erases, exactly one succeeds). Across processes it costs one transfer of
  /// the value's line and its header's, overlapped; get then erase costs two in a row.
  std::optional<T> take(key k) noexcept requires std::is_nothrow_move_constructible_v<T> {
    std::optional<T> out;
    raw_->free_reading(k, [&] {
      T* v = std::launder(static_cast<T*>(raw_->payload(k.index())));
      out.emplace(std::move(*v));
      v->~T();
    });
    return out;
  }
  [[nodiscard]] pool_stats stats() const { return raw_->stats(); }

  /// emplace, owned in this process by a move-only handle that erases when it dies.
  template <class... Args> unique_slot<T, pool> make_unique(Args&&... args) {
    const key k = emplace(std::forward<Args>(args)...);
    return unique_slot<T, pool>(this, k, value_at(k));
  }
  /// emplace, owned by handles counted in this process; the last one erases.
  template <class... Args> shared_slot<T, pool> make_shared(Args&&... args) {
    core::slot_header* const cells = raw_->share_cells(); // before the value: may throw
    const key k = emplace(std::forward<Args>(args)...);
    core::slot_header* const c = cells + k.index();
    c->gen = k.generation();
    c->aux = 1;
    return shared_slot<T, pool>(this, k, value_at(k), c);
  }

  /// Two-phase allocation: a slot reserved now, constructed by the guard's write(args...),
  /// which returns its key (key() tells it before). A guard dropped unwritten gives the
  /// slot back, and so does shmd if this process dies first (the claim is recorded in
  /// this context's record). At most core::claim_slots (4) claims pending per pool<T>;
  /// throws slab::error(exhausted) beyond that, or when the pool has no slot (as emplace).
  claim_guard<T, pool> claim() {
    std::uint32_t entry = 0;
    const key k = raw_->claim(entry);
    return claim_guard<T, pool>(this, k, entry);
  }

private:
  friend class client;
  friend class arena_pool<T>;
  friend class claim_guard<T, pool>;
  template <class, class> friend class unique_slot;
  template <class, class> friend class shared_slot;
  explicit pool(std::unique_ptr<detail::raw_pool> raw) : raw_(std::move(raw)) {}

  T* value_at(key k) noexcept { return std::launder(static_cast<T*>(raw_->payload(k.index()))); }
  // claim_guard's hooks; the token is the claim's entry in this context's record. If T's
  // constructor throws, the slot stays claimed (the guard gives it back when it dies).
  template <class... Args> void fill_claim(key k, std::uint64_t entry, Args&&... args) {
    ::new (raw_->payload(k.index())) T(std::forward<Args>(args)...);
    core::fault::point("claim.write");
    raw_->commit_claim(static_cast<std::uint32_t>(entry), k);
  }
  void drop_claim(key k, std::uint64_t entry) noexcept {
    raw_->abandon_claim(static_cast<std::uint32_t>(entry), k);
  }
  // shared_slot's hook (handles.hpp): this process's count cell of k's slot.
  core::slot_header* share_cell(key k) { return raw_->share_cells() + k.index(); }

  template <class... Args> key construct(key k, Args&&... args) {
    void* p = raw_->payload(k.index());
    try {
      ::new (p) T(std::forward<Args>(args)...);
    } catch (...) {
      raw_->free(k, [] {});
      throw;
    }
    return k;
  }

  std::unique_ptr<detail::raw_pool> raw_;
};

/// Handles over a pool, owned in this process (see the top of this file).
template <class T> using pool_unique_slot = unique_slot<T, pool<T>>;
template <class T> using pool_shared_slot = shared_slot<T, pool<T>>;

/// A pool with mode = "arena": values are never erased, so a key this pool handed out
/// (in any process) never goes stale and get reads the value without checking the
/// generation. A reference stays valid as long as this process maps the pool (while an
/// arena_pool or pool of it is open here). Opened with client::open_arena<T>.
///
/// No erase, and no destructor ever runs: T must be trivially destructible. get does no
/// acquire of its own: a key must reach another process through something that orders
/// memory (a pipe, a socket, an atomic store-release / load-acquire), as keys do anyway.
/// get of an index never handed out returns the slot's bytes as they are (zero, or a
/// value being written): it only refuses indices past the pool's mapped tiers.
template <class T> class arena_pool {
  static_assert(std::is_trivially_destructible_v<T>,
                "arena_pool<T>: values are never destroyed, so T must be trivially destructible");

public:
  using value_type = T;

  /// As pool<T>::emplace (exhausted when the pool is at max_capacity or shmd lags).
  template <class... Args> key emplace(Args&&... args) {
    return p_.emplace(std::forward<Args>(args)...);
  }
  template <class... Args> std::optional<key> try_emplace(Args&&... args) {
    return p_.try_emplace(std::forward<Args>(args)...);
  }
  /// Constructs a T and returns a reference valid for as long as the pool is mapped here.
  template <class... Args> T& alloc(Args&&... args) {
    return *p_.value_at(emplace(std::forward<Args>(args)...));
  }
  /// The value of a key handed out by this pool in any process; nullptr past the mapped
  /// tiers. No generation check (see above).
  [[nodiscard]] T* get(key k) noexcept {
    return std::launder(static_cast<T*>(p_.raw_->get_unchecked(k)));
  }
  [[nodiscard]] pool_stats stats() const { return p_.stats(); }

private:
  friend class client;
  explicit arena_pool(pool<T> p) : p_(std::move(p)) {}
  pool<T> p_;
};

class client {
public:
  /// Connects to shmd at $SHMD_SOCKET, else /run/shmd/shmd.sock. Throws slab::error:
  /// no_daemon (nothing listening), permission_denied (the daemon refused this uid/gid,
  /// or the socket's permissions did), abi_mismatch, protocol.
  static client connect(client_options opt = {});
  static client connect(const std::string& socket_path, client_options opt = {});

  /// Attaches a new context of pool `name` for values of type T. Throws slab::error:
  /// not_found, type_mismatch (T larger or more aligned than the pool's slots),
  /// exhausted (every context of the pool attached), no_daemon, not_supported (the pool
  /// is an arena: open_arena).
  template <class T> pool<T> open(std::string_view name) {
    return pool<T>(open_raw(name, sizeof(T), alignof(T), proto::mode_slab));
  }
  /// The same for a pool with mode = "arena"; not_supported for any other pool.
  template <class T> arena_pool<T> open_arena(std::string_view name) {
    return arena_pool<T>(pool<T>(open_raw(name, sizeof(T), alignof(T), proto::mode_arena)));
  }
  /// Untyped: a context of pool `name`, of either mode (raw_pool::arena() tells).
  std::unique_ptr<detail::raw_pool> open_raw(std::string_view name, std::size_t size,
                                             std::size_t align);
  /// The same, refusing (not_supported) a pool whose mode is not `mode`.
  std::unique_ptr<detail::raw_pool> open_raw(std::string_view name, std::size_t size,
                                             std::size_t align, std::uint32_t mode);

  [[nodiscard]] std::uint32_t daemon_pid() const noexcept;
  [[nodiscard]] const std::string& socket_path() const noexcept;

private:
  client(std::shared_ptr<detail::session> s, client_options opt)
      : session_(std::move(s)), opt_(std::move(opt)) {}
  std::shared_ptr<detail::session> session_;
  client_options opt_;
};

/// The socket path connect() uses: $SHMD_SOCKET if set and non-empty, else the default.
std::string default_socket_path();

} // namespace slab
