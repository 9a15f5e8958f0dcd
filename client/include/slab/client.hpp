// slab::client and slab::pool<T>: slabs shared across processes through shmd.
//
//   slab::client c = slab::client::connect();            // $SHMD_SOCKET or /run/shmd/shmd.sock
//   slab::pool<Order> orders = c.open<Order>("orders");  // checks T fits the pool's slots
//   slab::key k = orders.emplace(42, 100.5);
//   Order* o = orders.get(k);                            // in any attached process
//   bool gone = orders.erase(k);                         // false when stale, in any process
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
#include <slab/error.hpp>
#include <slab/key.hpp>
#include <slab/platform/pool_map.hpp>

namespace slab {

struct client_options {
  /// How long emplace waits for shmd to add a tier when the pool has run dry, before it
  /// throws errc::exhausted. Growth runs ahead of demand; this only covers a burst that
  /// outruns it.
  std::chrono::milliseconds grow_wait{500};
  /// How long a request to shmd may take before errc::no_daemon.
  std::chrono::milliseconds request_timeout{5000};
};

/// What a pool looks like from here (read from shared memory, no round trip).
struct pool_stats {
  std::string name;
  std::uint32_t slot_size = 0;
  std::uint64_t ready_slots = 0; ///< slots in published tiers
  std::uint64_t max_slots = 0;   ///< the ceiling for growth
  std::uint64_t live = 0; ///< allocations minus frees, all contexts (approximate while running)
  unsigned tiers = 0;
  bool hugepages = false; ///< every tier's data on hugepages
  bool fell_back = false; ///< `prefer` fell back to normal pages somewhere
};

namespace detail {

class session;

/// One context of one pool, without the type: what pool<T> wraps.
class raw_pool {
public:
  raw_pool(std::shared_ptr<session> s, std::shared_ptr<platform::pool_map> map, std::uint32_t ctx,
           client_options opt);
  raw_pool(const raw_pool&) = delete;
  raw_pool& operator=(const raw_pool&) = delete;
  ~raw_pool();

  /// A free slot, marked live; waits up to grow_wait for growth, then throws exhausted.
  key alloc();
  /// The same without throwing: nullopt when no slot could be had in grow_wait.
  std::optional<key> try_alloc() noexcept;
  /// Payload address of a live key, or nullptr.
  void* get(key k) noexcept {
    const std::uint32_t idx = k.index();
    platform::pool_map& m = *map_;
    if (!m.has_slot(idx)) return nullptr;
    const std::uint32_t g = m.header(idx).gen(std::memory_order_acquire);
    if (g != k.generation() || !core::gen_live(g)) return nullptr;
    return m.payload(idx);
  }
  template <class F> bool free(key k, F&& on_claimed) noexcept {
    return cache_.free(k, std::forward<F>(on_claimed));
  }
  void* payload(std::uint32_t idx) noexcept { return map_->payload(idx); }
  [[nodiscard]] pool_stats stats() const;
  [[nodiscard]] std::uint32_t slot_size() const noexcept { return map_->info().slot_size; }
  [[nodiscard]] std::uint32_t context() const noexcept { return ctx_; }
  platform::pool_map& map() noexcept { return *map_; }

private:
  std::optional<key> wait_for_growth() noexcept;

  std::shared_ptr<session> session_;
  std::shared_ptr<platform::pool_map> map_;
  std::string name_;
  std::uint32_t ctx_;
  client_options opt_;
  core::cache<platform::pool_map> cache_;
};

} // namespace detail

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
  [[nodiscard]] pool_stats stats() const { return raw_->stats(); }

private:
  friend class client;
  explicit pool(std::unique_ptr<detail::raw_pool> raw) : raw_(std::move(raw)) {}

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

class client {
public:
  /// Connects to shmd at $SHMD_SOCKET, else /run/shmd/shmd.sock. Throws slab::error:
  /// no_daemon (nothing listening), permission_denied (the daemon refused this uid/gid,
  /// or the socket's permissions did), abi_mismatch, protocol.
  static client connect(client_options opt = {});
  static client connect(const std::string& socket_path, client_options opt = {});

  /// Attaches a new context of pool `name` for values of type T. Throws slab::error:
  /// not_found, type_mismatch (T larger or more aligned than the pool's slots),
  /// exhausted (every context of the pool attached), no_daemon.
  template <class T> pool<T> open(std::string_view name) {
    return pool<T>(open_raw(name, sizeof(T), alignof(T)));
  }
  std::unique_ptr<detail::raw_pool> open_raw(std::string_view name, std::size_t size,
                                             std::size_t align);

  [[nodiscard]] std::uint32_t daemon_pid() const noexcept;
  [[nodiscard]] const std::string& socket_path() const noexcept;

private:
  client(std::shared_ptr<detail::session> s, client_options opt)
      : session_(std::move(s)), opt_(opt) {}
  std::shared_ptr<detail::session> session_;
  client_options opt_;
};

/// The socket path connect() uses: $SHMD_SOCKET if set and non-empty, else the default.
std::string default_socket_path();

} // namespace slab
