// gateway: creates N orders in the shared `orders` pool and writes each order's key, as a
// raw 64-bit integer, to standard output for the engine. Usage: gateway [N] (default
// 100000). Exits non-zero with shmd's message when it cannot attach.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

#include <slab/client.hpp>

#include "order.hpp"

int main(int argc, char** argv) {
  const std::uint64_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100000;
  try {
    slab::client c = slab::client::connect();
    slab::pool<demo::order> orders = c.open<demo::order>("orders");
    for (std::uint64_t i = 0; i < n; ++i) {
      demo::order o{};
      o.id = i + 1;
      o.client_ts_ns =
          static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
      o.price_ticks = 10000 + static_cast<std::int64_t>(i % 200) - 100;
      o.quantity = 100 + static_cast<std::uint32_t>(i % 9) * 100;
      o.s = (i & 1) != 0 ? demo::side::sell : demo::side::buy;
      std::memcpy(o.symbol, "ACME", 5);
      o.checksum = demo::checksum_of(o);
      const slab::key k = orders.emplace(o);
      const std::uint64_t raw = k.raw();
      if (std::fwrite(&raw, sizeof raw, 1, stdout) != 1) {
        std::fprintf(stderr, "gateway: the engine went away after %llu orders\n",
                     static_cast<unsigned long long>(i));
        return 1;
      }
    }
    std::fflush(stdout);
    const slab::pool_stats s = orders.stats();
    std::fprintf(
        stderr, "gateway: created %llu orders; pool '%s' has %llu live of %llu ready slots\n",
        static_cast<unsigned long long>(n), s.name.c_str(), static_cast<unsigned long long>(s.live),
        static_cast<unsigned long long>(s.ready_slots));
  } catch (const slab::error& e) {
    std::fprintf(stderr, "gateway: %s (%s)\n", e.what(),
                 std::string(slab::to_string(e.code())).c_str());
    return 1;
  }
  return 0;
}
