// make_control_seeds DIR: writes fuzz_control's seed corpus (tests/fuzz/corpus/control/)
// in its input format (control_input.hpp): the requests a client and an observer send,
// in valid orders, and a few malformed ones. Run once when the protocol changes; the
// files are committed.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <slab/proto/protocol.hpp>

#include "control_input.hpp"

namespace {

namespace proto = slab::proto;

template <class M> M named(const char* pool) {
  M m;
  proto::set_text(m.pool, pool);
  return m;
}

proto::hello hello() {
  proto::hello h;
  proto::set_text(h.comm, "seed");
  return h;
}

proto::observer_hello observer_hello() {
  proto::observer_hello h;
  proto::set_text(h.comm, "slabctl");
  return h;
}

proto::open_req open(const char* pool, std::uint32_t size = 64, std::uint32_t align = 8) {
  auto o = named<proto::open_req>(pool);
  o.type_size = size;
  o.type_align = align;
  return o;
}

proto::close_req close(std::uint32_t ctx) {
  auto c = named<proto::close_req>("fuzz");
  c.context = ctx;
  return c;
}

std::vector<std::pair<std::string, std::string>> seeds() {
  using fuzz::join_packets;
  const std::uint8_t own = 0, nobody = 2 | (2 << 2);
  auto wrong_abi = hello();
  wrong_abi.h.abi = static_cast<std::uint16_t>(proto::abi_version + 1);
  auto bad_magic = hello();
  bad_magic.h.magic = 0;
  auto observe_by_index = named<proto::observe_req>("");
  observe_by_index.index = 0;
  std::string truncated = join_packets(own, hello(), open("fuzz"));
  truncated.resize(truncated.size() - 3);
  return {
      {"hello", join_packets(own, hello())},
      {"hello-twice", join_packets(own, hello(), hello())},
      {"open", join_packets(own, hello(), open("fuzz"))},
      {"open-close", join_packets(own, hello(), open("fuzz"), close(1))},
      {"open-close-reopen", join_packets(own, hello(), open("fuzz"), close(1), open("fuzz"))},
      {"open-all-contexts", join_packets(own, hello(), open("fuzz"), open("fuzz"), open("fuzz"),
                                         open("fuzz"), open("fuzz"))},
      {"open-unknown-pool", join_packets(own, hello(), open("nope"))},
      {"open-too-big", join_packets(own, hello(), open("fuzz", 4096, 8))},
      {"tiers", join_packets(own, hello(), open("fuzz"), named<proto::tiers_req>("fuzz"))},
      {"grow", join_packets(own, hello(), open("fuzz"), named<proto::grow_req>("fuzz"))},
      {"close-not-held", join_packets(own, hello(), close(3))},
      {"observe", join_packets(own, observer_hello(), named<proto::observe_req>("fuzz"))},
      {"observe-by-index", join_packets(own, observer_hello(), observe_by_index)},
      {"clients", join_packets(own, hello(), open("fuzz"), observer_hello(),
                               named<proto::clients_req>("fuzz"))},
      {"observer-clients", join_packets(own, observer_hello(), named<proto::clients_req>("fuzz"))},
      {"observer-opens", join_packets(own, observer_hello(), open("fuzz"))},
      {"client-observes", join_packets(own, hello(), named<proto::observe_req>("fuzz"))},
      {"nobody-hello", join_packets(nobody, hello())},
      {"nobody-observer", join_packets(nobody, observer_hello())},
      {"no-hello-first", join_packets(own, open("fuzz"))},
      {"wrong-abi", join_packets(own, wrong_abi)},
      {"bad-magic", join_packets(own, bad_magic)},
      {"truncated-open", truncated},
      {"short-packet", std::string("\0\3SLA", 5)},
      {"empty-packet", std::string("\0\0", 2)},
  };
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_control_seeds DIR\n");
    return 1;
  }
  for (const auto& [name, bytes] : seeds()) {
    const std::string path = std::string(argv[1]) + "/" + name;
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::fprintf(stderr, "make_control_seeds: cannot write %s\n", path.c_str());
      return 1;
    }
  }
  return 0;
}
