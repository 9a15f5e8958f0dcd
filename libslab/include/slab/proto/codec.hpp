// codec: the one place where a received packet's bytes become a typed message.
//
// A packet is untrusted whoever sent it (a client of another build, a stranger on the
// socket, a fuzzer): nothing is read from it before its length is checked, and a message
// is taken only whole, of exactly its type's size. Both sides use this file: shmd to
// read requests (decode), clients and observers to read answers (expect).
//
// msg_header's layout never changes (protocol.hpp), so a packet of another ABI is still
// recognised as ours and answered with a clear abi_mismatch; and error_msg keeps its
// layout across ABIs, so a peer's refusal is readable whatever it speaks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include <slab/error.hpp>
#include <slab/proto/protocol.hpp>

namespace slab::proto {

enum class decode_result : std::uint8_t {
  ok,
  short_message, ///< shorter than msg_header
  bad_magic,     ///< not the slab protocol
  abi_mismatch,  ///< our protocol, another ABI
  wrong_type,    ///< a valid message of another type than the one expected
  wrong_size,    ///< the expected type, but not exactly its size
};

/// What went wrong, for a log line or an error message.
constexpr std::string_view describe(decode_result r) noexcept {
  switch (r) {
  case decode_result::ok: return "ok";
  case decode_result::short_message: return "message shorter than its header";
  case decode_result::bad_magic: return "not the slab protocol (bad magic)";
  case decode_result::abi_mismatch: return "another protocol ABI";
  case decode_result::wrong_type: return "unexpected message type";
  case decode_result::wrong_size: return "message of the wrong size for its type";
  }
  return "?";
}

using packet = std::span<const std::byte>;

/// The header of a packet: ok, short_message, bad_magic or abi_mismatch. `out` holds the
/// header whenever the packet was long enough to have one.
inline decode_result read_header(packet p, msg_header& out) noexcept {
  if (p.size() < sizeof out) return decode_result::short_message;
  std::memcpy(&out, p.data(), sizeof out);
  if (out.magic != msg_magic) return decode_result::bad_magic;
  if (out.abi != abi_version) return decode_result::abi_mismatch;
  return decode_result::ok;
}

/// The packet as message M: ok only for a valid header of M's type and M's exact size.
template <class M> decode_result decode(packet p, M& out) noexcept {
  check_msg<M>();
  msg_header h{};
  if (const decode_result r = read_header(p, h); r != decode_result::ok) return r;
  if (h.type != out.h.type) return decode_result::wrong_type;
  if (p.size() != sizeof(M)) return decode_result::wrong_size;
  std::memcpy(&out, p.data(), sizeof(M));
  return decode_result::ok;
}

/// A peer's refusal (error_msg), read whatever ABI the peer speaks. Its code is the
/// peer's word only: a value this build does not know becomes errc::protocol.
inline bool decode_refusal(packet p, errc& code, std::string& text) {
  msg_header h{};
  const decode_result r = read_header(p, h);
  if (r != decode_result::ok && r != decode_result::abi_mismatch) return false;
  error_msg e;
  if (h.type != e.h.type || p.size() != sizeof e) return false;
  std::memcpy(&e, p.data(), sizeof e);
  const bool known = e.code >= static_cast<std::uint32_t>(errc::exhausted) &&
                     e.code <= static_cast<std::uint32_t>(errc::not_supported);
  code = known ? static_cast<errc>(e.code) : errc::protocol;
  text = std::string(get_text(e.text));
  return true;
}

/// For a requester: the answer as M, else slab::error: the peer's own refusal (its code
/// and text), errc::abi_mismatch, or errc::protocol. `peer` names who answered in
/// messages ("shmd at /run/shmd/shmd.sock").
template <class M> M expect(packet p, std::string_view peer) {
  errc code{};
  std::string text;
  if (decode_refusal(p, code, text)) throw error(code, text);
  M m;
  msg_header h{};
  const decode_result r = decode(p, m);
  switch (r) {
  case decode_result::ok: return m;
  case decode_result::abi_mismatch:
    (void)read_header(p, h);
    throw error(errc::abi_mismatch, std::string(peer) + " speaks protocol ABI " +
                                        std::to_string(h.abi) + ", this program ABI " +
                                        std::to_string(abi_version));
  case decode_result::wrong_type:
  case decode_result::wrong_size:
    (void)read_header(p, h);
    throw error(errc::protocol, std::string(peer) + ": unexpected answer (type " +
                                    std::to_string(h.type) + ", " + std::to_string(p.size()) +
                                    " bytes; expected type " + std::to_string(m.h.type) + ", " +
                                    std::to_string(sizeof(M)) + " bytes)");
  default:
    throw error(errc::protocol,
                std::string(peer) + ": " + std::string(describe(r)) + " in its answer");
  }
}

} // namespace slab::proto
