// engine: reads order keys (raw 64-bit integers) from standard input, finds each order
// in the shared `orders` pool, checks it, fills it and erases it. Prints what it did and
// the pool's occupancy. Exits non-zero if any key was stale or any order corrupt.
#include <cstdio>
#include <cstdlib>

#include <slab/client.hpp>

#include "order.hpp"

int main() {
  try {
    slab::client c = slab::client::connect();
    slab::pool<demo::order> orders = c.open<demo::order>("orders");
    std::uint64_t raw = 0, filled = 0, bad = 0, notional = 0;
    while (std::fread(&raw, sizeof raw, 1, stdin) == 1) {
      const slab::key k = slab::key::from_raw(raw);
      demo::order* o = orders.get(k);
      if (o == nullptr || o->checksum != demo::checksum_of(*o)) {
        ++bad;
        continue;
      }
      o->filled_quantity = o->quantity;
      o->st = demo::status::filled;
      notional += static_cast<std::uint64_t>(o->price_ticks) * o->quantity;
      if (!orders.erase(k)) ++bad;
      ++filled;
    }
    const slab::pool_stats s = orders.stats();
    std::printf("engine: filled %llu orders (notional %llu ticks), %llu bad keys\n",
                static_cast<unsigned long long>(filled), static_cast<unsigned long long>(notional),
                static_cast<unsigned long long>(bad));
    std::printf(
        "pool '%s': %llu live, %llu slots ready in %u tier(s) (max %llu), %s\n", s.name.c_str(),
        static_cast<unsigned long long>(s.live), static_cast<unsigned long long>(s.ready_slots),
        s.tiers, static_cast<unsigned long long>(s.max_slots),
        s.hugepages
            ? "on hugepages"
            : (s.fell_back ? "on normal pages (hugepages unavailable)" : "on normal pages"));
    return bad == 0 ? 0 : 2;
  } catch (const slab::error& e) {
    std::fprintf(stderr, "engine: %s (%s)\n", e.what(),
                 std::string(slab::to_string(e.code())).c_str());
    return 1;
  }
}
