// The input format of fuzz_control, shared with the seed generator (make_control_seeds):
//
//   byte 0        who connects: bits 0-1 pick the uid, bits 2-3 the gid, from
//                 {shmd's own, 0 (root), 65534 (nobody), 1000}
//   then, repeated until the input ends:
//   byte          n, the length of the next packet (0 is an empty packet)
//   n bytes       the packet, delivered to shmd as one SOCK_SEQPACKET message
//
// A packet cut short by the end of the input is delivered as far as it goes. The pid
// is always 0: shmd then reclaims a dropped connection's contexts at once instead of
// watching a process through its pidfd.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace fuzz {

inline constexpr std::uint32_t id_choices[4] = {~std::uint32_t{0}, 0, 65534, 1000}; // ~0: own

struct control_input {
  std::uint8_t who = 0;
  std::vector<std::span<const std::uint8_t>> packets;
};

inline control_input split_input(std::span<const std::uint8_t> in) {
  control_input out;
  if (in.empty()) return out;
  out.who = in[0];
  std::size_t at = 1;
  while (at < in.size()) {
    const std::size_t n = in[at++];
    const std::size_t take = n < in.size() - at ? n : in.size() - at;
    out.packets.push_back(in.subspan(at, take));
    at += take;
  }
  return out;
}

/// The inverse, for the seed generator: `who`, then each packet behind its length byte.
template <class... M> std::string join_packets(std::uint8_t who, const M&... msgs) {
  std::string s(1, static_cast<char>(who));
  const auto add = [&s](const auto& m) {
    static_assert(sizeof m < 256, "a packet's length must fit its length byte");
    s += static_cast<char>(sizeof m);
    s.append(reinterpret_cast<const char*>(&m), sizeof m);
  };
  (add(msgs), ...);
  return s;
}

} // namespace fuzz
