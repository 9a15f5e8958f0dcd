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

/// Largest message; receive buffers are this big.
inline constexpr std::size_t max_msg = 512;
/// Most fds in one message: the control segment and a pair per tier.
inline constexpr std::size_t max_fds = 1 + 2 * core::max_tiers;

template <class M> constexpr void check_msg() {
  static_assert(std::is_trivially_copyable_v<M> && sizeof(M) <= max_msg);
}

} // namespace slab::proto
