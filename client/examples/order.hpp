// The order record the gateway and the engine share: plain data, no pointers, so it
// means the same thing in every process that maps the pool.
#pragma once

#include <cstdint>

namespace demo {

enum class side : std::uint8_t { buy, sell };
enum class status : std::uint8_t { open, filled };

struct order {
  std::uint64_t id;
  std::uint64_t client_ts_ns;
  std::int64_t price_ticks;
  std::uint32_t quantity;
  std::uint32_t filled_quantity;
  side s;
  status st;
  char symbol[14];
  std::uint64_t checksum; ///< of the fields above, so the engine can tell a torn or stale read
};
static_assert(sizeof(order) <= 128, "fits the bundled config's 128-byte slots");

inline std::uint64_t checksum_of(const order& o) {
  std::uint64_t h = 0x9E3779B97F4A7C15ULL;
  for (std::uint64_t v :
       {o.id, o.client_ts_ns, static_cast<std::uint64_t>(o.price_ticks), std::uint64_t{o.quantity},
        std::uint64_t{static_cast<std::uint8_t>(o.s)}}) {
    h = (h ^ v) * 0x100000001B3ULL;
  }
  return h;
}

} // namespace demo
