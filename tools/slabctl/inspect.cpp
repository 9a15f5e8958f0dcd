// slabctl inspect POOL KEY: whether a key is live, where its slot is, and its bytes.
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <slab/core/tier.hpp>
#include <slab/key.hpp>
#include <slab/observer.hpp>

#include "cli.hpp"

namespace slabctl {
namespace {

std::uint64_t parse_key(const std::string& s) {
  const bool hex = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  const std::string digits = hex ? s.substr(2) : s;
  const char* allowed = hex ? "0123456789abcdefABCDEF" : "0123456789";
  if (digits.empty() || digits.find_first_not_of(allowed) != std::string::npos ||
      digits.size() > (hex ? 16U : 20U)) {
    throw failure(exit_code::malformed_key,
                  "slabctl: '" + s + "' is not a key: a key is a 64-bit number, decimal or 0x hex");
  }
  errno = 0;
  const unsigned long long v = std::strtoull(digits.c_str(), nullptr, hex ? 16 : 10);
  if (errno == ERANGE)
    throw failure(exit_code::malformed_key, "slabctl: '" + s + "' does not fit in 64 bits");
  return v;
}

std::string hex_dump(const unsigned char* p, std::size_t n) {
  std::string out;
  char line[128];
  for (std::size_t off = 0; off < n; off += 16) {
    int k = std::snprintf(line, sizeof line, "  %06zx ", off);
    std::string ascii;
    for (std::size_t i = 0; i < 16; ++i) {
      if (off + i < n) {
        k +=
            std::snprintf(line + k, sizeof line - static_cast<std::size_t>(k), " %02x", p[off + i]);
        const unsigned char c = p[off + i];
        ascii += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '.';
      } else {
        k += std::snprintf(line + k, sizeof line - static_cast<std::size_t>(k), "   ");
      }
      if (i == 7) k += std::snprintf(line + k, sizeof line - static_cast<std::size_t>(k), " ");
    }
    out += std::string(line) + "  |" + ascii + "|\n";
  }
  return out;
}

// What inspect shows of one slot, read from the read-only mapping.
struct slot_view {
  std::string pool;
  std::uint64_t raw = 0;
  std::string keyhex; ///< "0x0000000100000005"
  slab::key key;
  std::uint32_t generation = 0; ///< the slot generation the key names (its salt removed)
  slab::core::tier_pos pos;
  slab::core::shared_header::value header;
  bool live = false;
  std::uint64_t data_offset = 0;
  std::uint32_t stride = 0, slot_size = 0;
  const unsigned char* payload = nullptr;
  std::string state;
};

// A key that cannot name a slot of this pool at all: exit_code::malformed_key.
void check_shape(const slot_view& v, std::uint64_t max_slots) {
  if (!v.key.plausible()) {
    throw failure(exit_code::malformed_key,
                  "slabctl: " + v.keyhex + " is not a key: its generation " +
                      std::to_string(v.key.generation()) +
                      " is even, and every key carries an odd one (key 0 is never valid)");
  }
  if (v.key.index() >= max_slots) {
    throw failure(exit_code::malformed_key, "slabctl: " + v.keyhex + " is not a key of pool '" +
                                                v.pool + "': index " +
                                                std::to_string(v.key.index()) + " is past its " +
                                                std::to_string(max_slots) + " slots at most");
  }
}

// The slot's place and state; its index is published and mapped.
void read_slot(slot_view& v, slab::mapped::pool_map& m) {
  const slab::proto::pool_header& h = m.info();
  const std::uint32_t i = v.key.index();
  v.pos = m.geometry().geo.locate(i);
  v.header = m.header(i).load();
  // A key carries its pool's salt in its generation half (proto::key_salt): the slot
  // generation it names is that half XOR the salt; another pool's key names another.
  v.generation = v.key.generation() ^ slab::proto::key_salt(h.identity);
  v.live = v.header.gen == v.generation;
  v.data_offset = std::uint64_t{v.pos.offset} * h.stride;
  v.stride = h.stride;
  v.slot_size = h.slot_size;
  v.payload = static_cast<const unsigned char*>(m.payload(i));
  const std::string gen = " (generation " + std::to_string(v.header.gen) + ")";
  if (v.live) {
    v.state = "live";
  } else if (slab::core::gen_live(v.header.gen)) {
    v.state = "stale: the slot holds a newer value" + gen;
  } else {
    v.state = "stale: the slot is free" + gen;
  }
}

void print_json(const slot_view& v) {
  const std::vector<unsigned> bytes(v.payload, v.payload + v.slot_size);
  std::cout << nlohmann::json{{"pool", v.pool},
                              {"key", v.raw},
                              {"index", v.key.index()},
                              {"generation", v.generation},
                              {"live", v.live},
                              {"slot_generation", v.header.gen},
                              {"last_context", v.header.aux},
                              {"tier", v.pos.tier},
                              {"offset_in_tier", v.pos.offset},
                              {"data_offset", v.data_offset},
                              {"stride", v.stride},
                              {"slot_size", v.slot_size},
                              {"state", v.state},
                              {"bytes", bytes}}
                   .dump(2)
            << "\n";
}

void print_text(const slot_view& v) {
  std::printf("pool '%s', key %s: index %u, generation %u\n", v.pool.c_str(), v.keyhex.c_str(),
              v.key.index(), v.generation);
  std::printf("  %s\n", v.state.c_str());
  std::printf("  tier %u, slot %u of the tier, data segment offset %" PRIu64 " (0x%" PRIx64
              "), stride %u\n",
              v.pos.tier, v.pos.offset, v.data_offset, v.data_offset, v.stride);
  std::printf("  last changed by context %u\n", v.header.aux);
  std::printf("  %u payload bytes:\n%s", v.slot_size, hex_dump(v.payload, v.slot_size).c_str());
}

} // namespace

int cmd_inspect(const options& o) {
  if (o.args.size() != 2) usage_error("inspect takes POOL KEY");
  slot_view v;
  v.raw = parse_key(o.args[1]);
  v.key = slab::key::from_raw(v.raw);
  char keyhex[32];
  std::snprintf(keyhex, sizeof keyhex, "0x%016" PRIx64, v.raw);
  v.keyhex = keyhex;
  slab::observe::observer obs(o.socket);
  slab::observe::pool_watch w(obs, o.args[0]);
  w.map_all();
  v.pool = w.name();
  slab::mapped::pool_map& m = w.map();
  check_shape(v, m.info().max_slots);
  const std::uint64_t ready = m.state().ready_slots.load();
  if (v.key.index() >= ready || !m.has_slot(v.key.index())) {
    std::fprintf(stderr,
                 "slabctl: key %s is stale: pool '%s' has published %" PRIu64
                 " slots and index %u is not among them\n",
                 keyhex, v.pool.c_str(), ready, v.key.index());
    return static_cast<int>(exit_code::stale_key);
  }
  read_slot(v, m);
  if (o.json) {
    print_json(v);
  } else {
    print_text(v);
  }
  return v.live ? 0 : static_cast<int>(exit_code::stale_key);
}

} // namespace slabctl
