// The control protocol between shmd and its clients: fixed-size messages over a
// SOCK_SEQPACKET Unix socket (one message per packet), file descriptors beside them
// (SCM_RIGHTS). Defined once, here; both sides include it.
//
//   client                               shmd
//   hello {pid, comm}              ->    checks SO_PEERCRED against the allow-list
//                                  <-    welcome {daemon pid, version}  | error
//   open {pool, size, align of T}  ->    registers a context in the pool
//                                  <-    opened {geometry, context} + fds [control,
//                                        (meta, data) per published tier]  | error
//   tiers {pool name, first}       ->    (a tier the client has not mapped yet)
//                                  <-    tiers {first, count} + (meta, data) fds
//   grow {pool name}               ->    a nudge: the pool ran dry here; no reply
//   close {pool name, context}     ->    the context will not be used again: reclaim
//                                  <-    closed
//
// Read-only observers (slabctl): root, the allow lists' clients and the monitor lists.
// A connection greeted as an observer may send nothing else:
//   observer_hello {pid, comm}     ->    checks SO_PEERCRED against the lists above
//                                  <-    welcome  | error
//   observe {pool or index, first tier} ->  (no context is registered)
//                                  <-    observed {pool, daemon's growth record} + fds
//                                        [control, (meta, data) per tier from `first`],
//                                        each reopened O_RDONLY: mappable PROT_READ only
//   clients {pool name, first}     ->    who holds the pool's contexts, as shmd knows it
//                                  <-    clients {total, entries [first, first + count)}
//
// The observer messages were added without changing any earlier message or the shared
// layout: an older shmd drops the connection on them, and slabctl says so.
//
// Every message starts with msg_header, whose layout never changes, so that a peer of
// another ABI still reads the magic, the ABI and an error text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

#include <slab/proto/pool_layout.hpp>

namespace slab::proto {

inline constexpr std::uint32_t msg_magic = 0x534c4142U; // "SLAB"
inline constexpr const char* default_socket = "/run/shmd/shmd.sock";
inline constexpr const char* socket_env = "SHMD_SOCKET";
/// The user shmd runs as, which clients trust besides root and their own user
/// (client_options::daemon_user, else this variable, else the package's user).
inline constexpr const char* daemon_user_env = "SHMD_USER";
inline constexpr const char* default_daemon_user = "shmd";

enum class msg_type : std::uint16_t {
  hello = 1,
  welcome,
  error,
  open,
  opened,
  tiers_req,
  tiers,
  grow,
  close,
  closed,
  observer_hello,
  observe,
  observed,
  clients_req,
  clients,
};

struct msg_header {
  std::uint32_t magic = msg_magic;
  std::uint16_t abi = static_cast<std::uint16_t>(abi_version);
  std::uint16_t type = 0;
};
static_assert(sizeof(msg_header) == 8);

template <msg_type T> struct msg {
  msg_header h{msg_magic, static_cast<std::uint16_t>(abi_version), static_cast<std::uint16_t>(T)};
};

struct hello : msg<msg_type::hello> {
  std::uint32_t pid = 0;
  char comm[16]{};
};
struct welcome : msg<msg_type::welcome> {
  std::uint32_t daemon_pid = 0;
  std::uint32_t pools = 0;
  char version[32]{};
};
struct error_msg : msg<msg_type::error> {
  std::uint32_t code = 0; ///< slab::errc
  char text[244]{};
};
struct open_req : msg<msg_type::open> {
  char pool[pool_name_max]{};
  std::uint32_t type_size = 0;  ///< sizeof(T)
  std::uint32_t type_align = 0; ///< alignof(T)
};
struct opened : msg<msg_type::opened> {
  std::uint32_t pool_id = 0;
  std::uint32_t context = 0;
  std::uint32_t tiers = 0; ///< (meta, data) fd pairs after the control fd
  std::uint32_t reserved = 0;
};
// Requests after `open` name the pool rather than its id: a client that reconnects to a
// restarted shmd may meet pools in another order.
struct tiers_req : msg<msg_type::tiers_req> {
  char pool[pool_name_max]{};
  std::uint32_t first = 0;
};
struct tiers_msg : msg<msg_type::tiers> {
  std::uint32_t pool_id = 0;
  std::uint32_t first = 0;
  std::uint32_t count = 0;
};
struct grow_req : msg<msg_type::grow> {
  char pool[pool_name_max]{};
};
struct close_req : msg<msg_type::close> {
  char pool[pool_name_max]{};
  std::uint32_t context = 0;
};
struct closed : msg<msg_type::closed> {
  std::uint32_t pool_id = 0;
  std::uint32_t context = 0;
};

/// An observer's greeting: the same fields as hello.
struct observer_hello : msg<msg_type::observer_hello> {
  std::uint32_t pid = 0;
  char comm[16]{};
};
struct observe_req : msg<msg_type::observe> {
  char pool[pool_name_max]{}; ///< the pool; "" to name it by `index` instead
  std::uint32_t index = 0;    ///< 0 .. welcome::pools - 1, when `pool` is ""
  std::uint32_t first_tier = 0;
};
struct observed : msg<msg_type::observed> {
  std::uint32_t pool_id = 0;
  std::uint32_t pools = 0;           ///< pools this shmd serves
  std::uint32_t first_tier = 0;      ///< tier of the first (meta, data) pair after control
  std::uint32_t tiers = 0;           ///< (meta, data) pairs sent: tiers [first_tier, +tiers)
  std::uint32_t growth_failures = 0; ///< tiers shmd failed to add since it started
  std::uint32_t reserved = 0;
  std::uint64_t last_failure_unix_ns = 0;
  std::uint64_t daemon_started_unix_ns = 0;
  char pool[pool_name_max]{};
  char last_failure[160]{}; ///< why the last growth failed ("" if none)
};
/// How shmd knows the process behind a context.
enum class client_link : std::uint32_t {
  unknown = 0,              ///< no connection or watch names it (being reclaimed, or quarantined)
  connected = 1,            ///< its control socket is open
  exited_socket_closed = 2, ///< socket closed, process alive: watched until it exits
  adopted = 3,              ///< a previous shmd's client, alive at adoption: watched until it exits
};
struct client_entry {
  std::uint32_t context = 0;
  std::uint32_t pid = 0;
  std::uint32_t uid = 0;  ///< SO_PEERCRED at connect; 0xFFFFFFFF when not known
  std::uint32_t link = 0; ///< client_link
  char comm[16]{};        ///< the process name its hello gave ("" when not known)
};
static_assert(sizeof(client_entry) == 32);
struct clients_req : msg<msg_type::clients_req> {
  char pool[pool_name_max]{};
  std::uint32_t first = 0;
};
struct clients_msg : msg<msg_type::clients> {
  static constexpr std::uint32_t max_entries = 12;
  std::uint32_t pool_id = 0;
  std::uint32_t total = 0; ///< entries shmd has for the pool
  std::uint32_t first = 0;
  std::uint32_t count = 0; ///< valid entries below
  client_entry entries[max_entries]{};
};

/// Largest message; receive buffers are this big.
inline constexpr std::size_t max_msg = 512;
/// Most fds in one message: the control segment and a pair per tier.
inline constexpr std::size_t max_fds = 1 + 2 * core::max_tiers;

template <class M> constexpr void check_msg() {
  static_assert(std::is_trivially_copyable_v<M> && sizeof(M) <= max_msg);
}
static_assert(sizeof(observed) <= max_msg && sizeof(clients_msg) <= max_msg);
static_assert(std::is_trivially_copyable_v<observed> && std::is_trivially_copyable_v<clients_msg>);

} // namespace slab::proto
