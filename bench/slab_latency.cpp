// slab_latency: per-operation latency of slab::slab against its peers.
//
// Workloads (each sample is one timed operation, in TSC cycles net of the timer):
//   growth_N  insert N 64-byte values into an EMPTY container, timing every insert: the
//             cost of growing, reallocation and first-touch page faults included.
//   churn_N   fill to N values (untimed), then random erase+insert: one sample is one
//             erase followed by one insert, timed as a pair. The pair is the unit a
//             steady-state user pays for (a slot freed and one taken), and timing it
//             whole keeps the timer's overhead at half the share it would have per
//             single operation. The key to erase is drawn from a seeded SplitMix64 and
//             loaded before the timed region; the new key is stored after it.
//   timer     back-to-back empty timed regions: the timer's overhead (subtracted from
//             everything, see latency.hpp) and the machine's noise floor (its tails),
//             measured in the same run as everything else.
// Peers: slab::slab (heap backing), vec_slab (Rust's slab crate: std::vector + embedded
// free list), floor (prefaulted array + unchecked LIFO free list). Each repetition runs
// every workload on every peer in turn (A B C A B C ...), so slow drifts of the machine
// hit every peer alike; the report gives each statistic's median over the repetitions
// and its range.
#include <malloc.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "latency.hpp"
#include "peers/peers.hpp"

namespace {

using peers::Payload64;

struct options {
  int cpu = -1; // -1: the last CPU this process may use
  std::size_t reps = 5;
  bool quick = false;
  bool prime = true;
  std::uint64_t seed = 42;
  std::vector<std::string> workloads; // empty: all
  std::string csv, json;
};

constexpr const char* usage = R"(usage: slab_latency [options]
Per-operation latency (TSC cycles, timer overhead subtracted) of slab::slab, vec_slab
and floor on the growth and churn workloads, pinned to one CPU.

  --cpu N         pin to CPU N (default: the last CPU this process may use)
  --reps K        repetitions, peers interleaved in each (default 5)
  --workload W    run only workload W: a full name (growth_1M) or its kind (growth,
                  churn); repeat or separate by commas for several. The timer row
                  always runs: it is the floor every other row is judged against.
  --csv FILE      also write the results as CSV (one line per statistic)
  --json FILE     also write the results as JSON (with every repetition's figures)
  --seed S        seed of the churn workload's key choices (default 42)
  --no-prime      do not fault in and free memory before each growth run (see
                  latency::prime_free_memory: on a VM with free page reporting the
                  first peer after a pause would pay host faults)
  --quick         small sizes and 1 repetition, for smoke tests (a few seconds)
  --help          this text
)";

// ---------------------------------------------------------------------------------------
// Command line

std::uint64_t parse_number(std::string_view flag, std::string_view s) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size())
    throw std::invalid_argument(std::string(flag) + ": not a number: " + std::string(s));
  return v;
}

void split_into(std::vector<std::string>& out, std::string_view list) {
  while (!list.empty()) {
    const std::size_t comma = std::min(list.find(','), list.size());
    if (comma != 0) out.emplace_back(list.substr(0, comma));
    list.remove_prefix(std::min(comma + 1, list.size()));
  }
}

// Applies one flag that takes a value.
void apply(options& o, std::string_view flag, std::string_view v) {
  if (flag == "--cpu")
    o.cpu = static_cast<int>(parse_number(flag, v));
  else if (flag == "--reps")
    o.reps = std::max<std::size_t>(1, parse_number(flag, v));
  else if (flag == "--seed")
    o.seed = parse_number(flag, v);
  else if (flag == "--workload")
    split_into(o.workloads, v);
  else if (flag == "--csv")
    o.csv = v;
  else if (flag == "--json")
    o.json = v;
  else
    throw std::invalid_argument("unknown option " + std::string(flag) + " (see --help)");
}

options parse(int argc, char** argv) {
  options o;
  bool reps_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      std::exit(0);
    }
    if (a == "--quick" || a == "--no-prime") {
      if (a == "--quick")
        o.quick = true;
      else
        o.prime = false;
      continue;
    }
    if (i + 1 >= argc) throw std::invalid_argument(std::string(a) + " needs a value");
    reps_given = reps_given || a == "--reps";
    apply(o, a, argv[++i]);
  }
  if (o.quick && !reps_given) o.reps = 1;
  return o;
}

// ---------------------------------------------------------------------------------------
// Workloads

enum class kind { growth, churn };

struct workload {
  std::string name;
  kind k;
  std::size_t n;   // values inserted (growth) or kept live (churn)
  std::size_t ops; // timed operations
};

std::string count_name(std::size_t n) {
  if (n % 1'000'000 == 0) return std::to_string(n / 1'000'000) + "M";
  if (n % 1'000 == 0) return std::to_string(n / 1'000) + "K";
  return std::to_string(n);
}

// Sizes are decimal (1M = 1,000,000) so no run ends exactly on a power-of-two boundary.
std::vector<workload> all_workloads(bool quick) {
  const std::size_t g1 = quick ? 20'000 : 1'000'000, g2 = quick ? 80'000 : 4'000'000;
  const std::size_t live = quick ? 20'000 : 1'000'000, ops = quick ? 200'000 : 10'000'000;
  return {{"growth_" + count_name(g1), kind::growth, g1, g1},
          {"growth_" + count_name(g2), kind::growth, g2, g2},
          {"churn_" + count_name(live), kind::churn, live, ops}};
}

bool selected(const workload& w, const std::vector<std::string>& want) {
  if (want.empty()) return true;
  const std::string_view kind_name = w.k == kind::growth ? "growth" : "churn";
  return std::any_of(want.begin(), want.end(),
                     [&](const std::string& s) { return s == w.name || s == kind_name; });
}

std::vector<workload> chosen_workloads(const options& o) {
  std::vector<workload> all = all_workloads(o.quick), out;
  for (const workload& w : all)
    if (selected(w, o.workloads)) out.push_back(w);
  if (out.empty()) {
    std::string names;
    for (const workload& w : all)
      names += " " + w.name;
    throw std::invalid_argument("no such workload; known: growth, churn," + names);
  }
  return out;
}

// What every measurement needs: the sample buffer, the clock's rate and overhead.
struct context {
  latency::recorder& rec;
  latency::clock_info clk;
  bool prime;
};

template <class Peer> void insert_untimed(Peer& p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    latency::keep(p.insert(peers::make_payload(i)));
}

template <class Peer> latency::stats growth(context& c, std::size_t n) {
  { // warm-up: the same code path on a throwaway container
    Peer warm(std::min<std::size_t>(n, 1 << 16));
    insert_untimed(warm, std::min<std::size_t>(n, 1 << 16));
  }
  // Room for the largest footprint: vec_slab's old and new arrays during its last copy.
  if (c.prime) latency::prime_free_memory(n * 2 * sizeof(Payload64));
  Peer p(n); // empty (the floor preallocates and prefaults n slots here, untimed)
  c.rec.clear();
  for (std::size_t i = 0; i < n; ++i) {
    const Payload64 v = peers::make_payload(i);
    c.rec.time([&] { return p.insert(v); });
  }
  return latency::summarize(c.rec.samples(), c.clk);
}

// `ops` erase+insert pairs on random live keys; timed into rec when Timed.
template <bool Timed, class Peer>
void churn_ops(Peer& p, std::vector<typename Peer::key_type>& keys, peers::splitmix64& rng,
               std::size_t ops, latency::recorder& rec) {
  for (std::size_t i = 0; i < ops; ++i) {
    const std::size_t j = rng.below(keys.size());
    const typename Peer::key_type k = keys[j];
    const Payload64 v = peers::make_payload(i);
    if constexpr (Timed) {
      keys[j] = rec.time([&] {
        p.erase(k);
        return p.insert(v);
      });
    } else {
      p.erase(k);
      keys[j] = p.insert(v);
    }
  }
}

template <class Peer>
latency::stats churn(context& c, std::size_t live, std::size_t ops, std::uint64_t seed) {
  Peer p(live);
  std::vector<typename Peer::key_type> keys = peers::fill(p, live);
  peers::splitmix64 rng(seed); // the same seed for every peer of a repetition
  churn_ops<false>(p, keys, rng, std::min<std::size_t>(ops, 100'000), c.rec); // warm-up
  c.rec.clear();
  churn_ops<true>(p, keys, rng, ops, c.rec);
  return latency::summarize(c.rec.samples(), c.clk);
}

template <class Peer> latency::stats run_one(context& c, const workload& w, std::uint64_t seed) {
  return w.k == kind::growth ? growth<Peer>(c, w.n) : churn<Peer>(c, w.n, w.ops, seed);
}

// ---------------------------------------------------------------------------------------
// Repetitions

template <class... Peers> struct peer_list {};
using all_peers =
    peer_list<peers::slab_peer, peers::slab_locked_peer, peers::vec_slab_peer, peers::floor_peer>;

// Report rows: the timer first, then each workload with each peer in run order.
template <class... Peers>
std::vector<latency::row> make_rows(const std::vector<workload>& ws, peer_list<Peers...>) {
  std::vector<latency::row> rows{{"timer", "empty", {}}};
  for (const workload& w : ws)
    (rows.push_back({w.name, std::string(Peers::name), {}}), ...);
  return rows;
}

template <class... Peers>
void run_workload(context& c, const workload& w, std::uint64_t seed, latency::row* out,
                  peer_list<Peers...>) {
  ((out->reps.push_back(run_one<Peers>(c, w, seed)), ++out), ...);
}

// The timer row's sample count: as many as the largest workload.
std::size_t timer_pairs(const options& o) { return o.quick ? 200'000 : 10'000'000; }

template <class... Peers> constexpr std::size_t count(peer_list<Peers...>) {
  return sizeof...(Peers);
}
constexpr std::size_t peer_count = count(all_peers{});

void run_rep(context& c, const options& o, const std::vector<workload>& ws, std::size_t rep,
             std::vector<latency::row>& rows, latency::run_info& info) {
  const latency::timer_result t = latency::measure_timer(c.rec, timer_pairs(o), c.clk);
  c.clk.overhead = t.overhead;
  info.overhead.push_back(t.overhead);
  rows[0].reps.push_back(t.floor);
  for (std::size_t i = 0; i < ws.size(); ++i) {
    std::fprintf(stderr, "rep %zu/%zu: %s\n", rep + 1, o.reps, ws[i].name.c_str());
    run_workload(c, ws[i], o.seed + rep, &rows[1 + i * peer_count], all_peers{});
  }
}

std::size_t samples_needed(const options& o, const std::vector<workload>& ws) {
  std::size_t n = timer_pairs(o);
  for (const workload& w : ws)
    n = std::max(n, w.ops);
  return n;
}

void write_file(const std::string& path, const latency::run_info& info,
                const std::vector<latency::row>& rows, bool json) {
  std::ofstream f(path);
  if (!f) throw std::runtime_error("cannot write " + path);
  json ? latency::write_json(f, info, rows) : latency::write_csv(f, info, rows);
}

int run(const options& o) {
  const auto t0 = std::chrono::steady_clock::now();
  // Large blocks always come fresh from mmap and go back on free. Otherwise glibc's
  // sliding mmap threshold hands repetition 2 the heap that repetition 1 already faulted
  // in, and peers would see a different (warmer) allocator in each repetition.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  latency::run_info info;
  latency::begin_run(info, "slab_latency", o.cpu, o.reps, o.quick);

  const std::vector<workload> ws = chosen_workloads(o);
  latency::recorder rec(samples_needed(o, ws));
  context c{rec, {info.tsc_hz, info.tsc_step, 0}, o.prime};
  std::vector<latency::row> rows = make_rows(ws, all_peers{});
  for (std::size_t r = 0; r < o.reps; ++r)
    run_rep(c, o, ws, r, rows, info);

  info.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  latency::print_table(std::cout, info, rows);
  if (!o.csv.empty()) write_file(o.csv, info, rows, false);
  if (!o.json.empty()) write_file(o.json, info, rows, true);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slab_latency: %s\n", e.what());
    return 2;
  }
}
