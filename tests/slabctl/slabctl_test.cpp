// slabctl against a real shmd: every verb's output checked against a pool whose contents
// the test knows (a child process allocated them and holds them), the JSON validated
// against docs/slabctl-status.schema.json, the metrics parsed as the exposition format,
// top driven in a tmux pane and its screen read back, and the error cases (no daemon,
// unknown pool, stale and malformed keys, no permission, a corrupt pool) each with its
// exit code. slabctl runs as its own process (fork + exec), as an operator would run it.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <slab/client.hpp>
#include <slab/observer.hpp>

#include <slabtest/daemon.hpp>
#include <slabtest/pool_view.hpp>

#ifndef SLABCTL_BINARY
#error "SLABCTL_BINARY must name the slabctl executable (tests/slabctl/CMakeLists.txt)"
#endif
#ifndef SLAB_SOURCE_DIR
#error "SLAB_SOURCE_DIR must name the source tree"
#endif

namespace {

using nlohmann::json;
using slabtest::contains;
using slabtest::daemon;
using slabtest::daemon_cfg;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------
// Running slabctl.

struct run_result {
  int code = -1;
  std::string out, err;
};

/// Runs slabctl with `args` (as `uid` if given; needs root) and waits for it.
run_result run_slabctl(const std::vector<std::string>& args,
                       std::optional<std::uint32_t> uid = {}) {
  slabtest::temp_dir dir;
  slabtest::program p;
  p.binary = SLABCTL_BINARY;
  p.args = args;
  p.out_path = dir.file("out");
  p.err_path = dir.file("err");
  p.run_as = uid;
  const slabtest::program_result r = slabtest::run_program(p, 60s);
  return {r.status.code(), r.out, r.err};
}

/// The words of `text`, split at whitespace.
std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string w; in >> w;)
    out.push_back(w);
  return out;
}

bool has_word(const std::string& text, const std::string& w) {
  const std::vector<std::string> all = words(text);
  return std::find(all.begin(), all.end(), w) != all.end();
}

/// A Prometheus metric or label name: [a-zA-Z_:][a-zA-Z0-9_:]* (no ':' in labels).
std::size_t name_length(const std::string& s, std::size_t at, bool label) {
  std::size_t i = at;
  const auto ok = [&](char c, bool first) {
    return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_' || (!label && c == ':') ||
           (!first && std::isdigit(static_cast<unsigned char>(c)) != 0);
  };
  while (i < s.size() && ok(s[i], i == at))
    ++i;
  return i - at;
}

/// A sample line `name{label="value",...} number`: its name, and the line up to the value.
bool parse_sample(const std::string& line, std::string& name, std::string& series, double& v) {
  const std::size_t n = name_length(line, 0, false);
  if (n == 0) return false;
  name = line.substr(0, n);
  std::size_t i = n;
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      const std::size_t l = name_length(line, i, true);
      if (l == 0 || line.compare(i + l, 2, "=\"") != 0) return false;
      i += l + 2;
      while (i < line.size() && line[i] != '"')
        i += line[i] == '\\' ? 2U : 1U;
      if (i >= line.size()) return false;
      ++i; // the closing quote
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return false;
    ++i; // '}'
  }
  if (i >= line.size() || line[i] != ' ') return false;
  series = line.substr(0, i);
  const std::string value = line.substr(i + 1);
  std::size_t used = 0;
  try {
    v = std::stod(value, &used);
  } catch (const std::exception&) {
    return false;
  }
  return used == value.size();
}

std::string describe(const run_result& r) {
  return "exit " + std::to_string(r.code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

json status_json(const daemon& d) {
  const run_result r = run_slabctl({"--socket", d.socket_path(), "status", "--json"});
  EXPECT_EQ(r.code, 0) << describe(r);
  return json::parse(r.out);
}

// ---------------------------------------------------------------------------------------
// A client that allocates `n` values and holds them until told to go.

constexpr std::uint64_t pattern = 0x1122334455667788ULL;

struct holder {
  slabtest::shared_array<std::uint64_t> keys;
  slabtest::pipe_pair ready, go;
  std::optional<slabtest::child> proc;

  holder(const daemon& d, std::size_t n, const char* name = "gateway-7") : keys(n) {
    const std::string socket = d.socket_path();
    proc.emplace(slabtest::child::spawn([&, socket, n, name] {
      ready.read_end.close();
      go.write_end.close();
      ::prctl(PR_SET_NAME, name);
      slab::client c = slab::client::connect(socket);
      slab::pool<std::uint64_t> p = c.open<std::uint64_t>("test");
      for (std::size_t i = 0; i < n; ++i)
        keys[i] = p.emplace(pattern + i).raw();
      const char one = 1;
      slabtest::send_value(ready.write_end.get(), one);
      char cmd = 0;
      while (slabtest::receive_value(go.read_end.get(), cmd)) {
        if (cmd == 'e') { // erase the first key, then say so
          CHILD_CHECK(p.erase(slab::key::from_raw(keys[0])));
          slabtest::send_value(ready.write_end.get(), one);
        }
      }
      return 0;
    }));
    ready.write_end.close();
    go.read_end.close();
    char b = 0;
    if (!slabtest::receive_value(ready.read_end.get(), b)) throw std::runtime_error("holder died");
  }
  void erase_first() {
    const char cmd = 'e';
    slabtest::send_value(go.write_end.get(), cmd);
    char b = 0;
    if (!slabtest::receive_value(ready.read_end.get(), b)) throw std::runtime_error("holder died");
  }
  slabtest::exit_status finish() {
    go.write_end.close();
    return proc->wait();
  }
};

// ---------------------------------------------------------------------------------------
// A small JSON Schema checker: type (one or a list), const, enum, required, properties,
// additionalProperties: false, items, minimum, maximum. What the status schema uses.

bool has_type(const json& v, const std::string& t) {
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "string") return v.is_string();
  if (t == "integer") return v.is_number_integer();
  if (t == "number") return v.is_number();
  if (t == "boolean") return v.is_boolean();
  if (t == "null") return v.is_null();
  return false;
}

void validate(const json& v, const json& schema, const std::string& path,
              std::vector<std::string>& errors) {
  if (schema.contains("type")) {
    const json& t = schema["type"];
    bool ok = false;
    if (t.is_string()) ok = has_type(v, t.get<std::string>());
    for (const json& one : t.is_array() ? t : json::array())
      ok = ok || has_type(v, one.get<std::string>());
    if (!ok) {
      errors.push_back(path + ": " + v.dump() + " is not of type " + t.dump());
      return;
    }
  }
  if (schema.contains("const") && v != schema["const"])
    errors.push_back(path + ": expected " + schema["const"].dump());
  if (schema.contains("enum")) {
    const json& e = schema["enum"];
    if (std::find(e.begin(), e.end(), v) == e.end())
      errors.push_back(path + ": " + v.dump() + " not in " + e.dump());
  }
  if (v.is_number() && schema.contains("minimum") &&
      v.get<double>() < schema["minimum"].get<double>())
    errors.push_back(path + ": below minimum");
  if (v.is_number() && schema.contains("maximum") &&
      v.get<double>() > schema["maximum"].get<double>())
    errors.push_back(path + ": above maximum");
  if (v.is_object()) {
    for (const json& r : schema.value("required", json::array()))
      if (!v.contains(r.get<std::string>())) errors.push_back(path + ": missing " + r.dump());
    const json props = schema.value("properties", json::object());
    for (const auto& [k, sub] : v.items()) {
      if (props.contains(k)) {
        validate(sub, props[k], path + "." + k, errors);
      } else if (schema.contains("additionalProperties") && !schema["additionalProperties"]) {
        errors.push_back(path + ": unexpected property " + k);
      }
    }
  }
  if (v.is_array() && schema.contains("items")) {
    for (std::size_t i = 0; i < v.size(); ++i)
      validate(v[i], schema["items"], path + "[" + std::to_string(i) + "]", errors);
  }
}

json load_schema() {
  return json::parse(
      slabtest::read_file(std::string(SLAB_SOURCE_DIR) + "/docs/slabctl-status.schema.json"));
}

const json* find_pool(const json& status, const std::string& name) {
  for (const json& p : status["pools"])
    if (p["name"] == name) return &p;
  return nullptr;
}

// ---------------------------------------------------------------------------------------
// status

TEST(slabctl_status, numbers_are_what_was_allocated_and_json_fits_its_schema) {
  daemon d;
  holder h(d, 1000);
  const json s = status_json(d);
  std::vector<std::string> errors;
  validate(s, load_schema(), "$", errors);
  EXPECT_TRUE(errors.empty()) << errors.front() << "\n" << s.dump(2);
  const json* p = find_pool(s, "test");
  ASSERT_NE(p, nullptr) << s.dump(2);
  EXPECT_EQ((*p)["live"], 1000);
  EXPECT_EQ((*p)["capacity"], 4096);
  EXPECT_EQ((*p)["slot_size"], 64);
  EXPECT_EQ((*p)["counters"]["allocs"], 1000);
  EXPECT_EQ((*p)["counters"]["frees"], 0);
  const json& f = (*p)["free"];
  EXPECT_EQ(f["depot"].get<std::uint64_t>() + f["caches"].get<std::uint64_t>() +
                f["never_used"].get<std::uint64_t>() + 1000U,
            4096U);
  EXPECT_EQ(f["never_used"].get<std::uint64_t>() % 32, 0U); // carved by whole magazines
  EXPECT_DOUBLE_EQ((*p)["occupancy"].get<double>(), 1000.0 / 4096.0);
  ASSERT_EQ((*p)["tiers"].size(), 1U);
  EXPECT_EQ((*p)["tiers"][0]["live"], 1000);
  EXPECT_EQ((*p)["tiers"][0]["mlocked"], true);
  // The holder's context: shmd knows its process name and that it is connected.
  bool found = false;
  for (const json& c : (*p)["contexts"]) {
    if (c["pid"] != h.proc->pid()) continue;
    found = true;
    EXPECT_EQ(c["process"], "gateway-7");
    EXPECT_EQ(c["link"], "connected");
    EXPECT_EQ(c["alive"], true);
    EXPECT_EQ(c["allocs"], 1000);
    EXPECT_LE(c["cached"].get<std::uint64_t>(), 3U * 32U);
  }
  EXPECT_TRUE(found) << s.dump(2);
  EXPECT_EQ(s["daemon"]["pid"], d.pid());
  const auto started = s["daemon"]["started_unix_ns"].get<std::uint64_t>();
  EXPECT_LE(started, s["taken_unix_ns"].get<std::uint64_t>());
  EXPECT_GT(started, s["taken_unix_ns"].get<std::uint64_t>() - 120'000'000'000ULL); // this run

  // The table says the same.
  const run_result t = run_slabctl({"--socket", d.socket_path(), "status"});
  ASSERT_EQ(t.code, 0) << describe(t);
  EXPECT_TRUE(contains(t.out, "pool 'test': 64-byte slots")) << t.out;
  // The row under "capacity live free: depot caches never used occupancy max capacity".
  const std::size_t row = t.out.find('\n', t.out.find("  capacity")) + 1;
  const std::vector<std::string> cells = words(t.out.substr(row, t.out.find('\n', row) - row));
  ASSERT_EQ(cells.size(), 7U) << t.out;
  EXPECT_EQ(cells[0], "4096");
  EXPECT_EQ(cells[1], "1000");
  EXPECT_EQ(std::stoull(cells[2]) + std::stoull(cells[3]) + std::stoull(cells[4]), 3096U);
  EXPECT_EQ(cells[5], "24.4%");
  EXPECT_TRUE(contains(t.out, "gateway-7")) << t.out;
  EXPECT_TRUE(h.finish().ok());
}

TEST(slabctl_status, growth_events_appear_with_their_tier) {
  daemon d;
  holder h(d, 3500); // past grow_at (0.75 of 4096): shmd adds tier 1
  ASSERT_TRUE(
      slabtest::eventually([&] { return status_json(d)["pools"][0]["tiers"].size() == 2; }, 10s));
  const json p = status_json(d)["pools"][0];
  EXPECT_EQ(p["capacity"], 8192);
  EXPECT_EQ(p["live"], 3500);
  ASSERT_EQ(p["growth"]["events"].size(), 1U);
  EXPECT_EQ(p["growth"]["events"][0]["tier"], 1);
  EXPECT_EQ(p["growth"]["events"][0]["slots"], 4096);
  EXPECT_GT(p["growth"]["events"][0]["prepare_ns"].get<std::uint64_t>(), 0U);
  EXPECT_EQ(p["growth"]["failures"], 0);
  EXPECT_EQ(p["tiers"][0]["live"].get<std::uint64_t>() + p["tiers"][1]["live"].get<std::uint64_t>(),
            3500U);
  EXPECT_TRUE(h.finish().ok());
}

// ---------------------------------------------------------------------------------------
// metrics

TEST(slabctl_metrics, exposition_parses_and_says_what_was_allocated) {
  daemon d;
  holder h(d, 1000);
  const run_result r = run_slabctl({"--socket", d.socket_path(), "metrics"});
  ASSERT_EQ(r.code, 0) << describe(r);
  // Every line: a HELP or TYPE comment, another comment, or `name{labels} value`.
  std::map<std::string, std::string> types;
  std::map<std::string, double> values;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      const std::vector<std::string> w = words(line);
      ASSERT_GE(w.size(), 4U) << line;
      ASSERT_EQ(name_length(w[2], 0, false), w[2].size()) << line;
      if (w[1] == "TYPE") {
        EXPECT_TRUE(w[3] == "gauge" || w[3] == "counter") << line;
        EXPECT_EQ(types.count(w[2]), 0U) << "TYPE twice: " << line;
        types[w[2]] = w[3];
      }
      continue;
    }
    if (line.rfind('#', 0) == 0) continue;
    std::string name, series;
    double v = 0;
    ASSERT_TRUE(parse_sample(line, name, series, v)) << "not a sample: " << line;
    EXPECT_EQ(types.count(name), 1U) << "sample before its TYPE: " << line;
    if (name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0) {
      EXPECT_EQ(types[name], "counter") << line;
    }
    EXPECT_EQ(values.count(series), 0U) << "series twice: " << line;
    values[series] = v;
  }
  EXPECT_EQ(values["slab_shmd_up"], 1);
  EXPECT_EQ(values["slab_pool_live_slots{pool=\"test\"}"], 1000);
  EXPECT_EQ(values["slab_pool_capacity_slots{pool=\"test\"}"], 4096);
  EXPECT_EQ(values["slab_pool_allocs_total{pool=\"test\"}"], 1000);
  EXPECT_EQ(values["slab_tier_live_slots{pool=\"test\",tier=\"0\"}"], 1000);
  EXPECT_EQ(values["slab_pool_free_slots{pool=\"test\",where=\"depot\"}"] +
                values["slab_pool_free_slots{pool=\"test\",where=\"caches\"}"] +
                values["slab_pool_free_slots{pool=\"test\",where=\"never_used\"}"],
            4096 - 1000);
  EXPECT_EQ(values["slab_pool_contexts{pool=\"test\",state=\"active\"}"], 2); // shmd + holder
  EXPECT_TRUE(h.finish().ok());
}

TEST(slabctl_metrics, shmd_down_is_still_an_exposition) {
  slabtest::temp_dir dir;
  const run_result r = run_slabctl({"--socket", dir.file("none.sock"), "metrics"});
  EXPECT_EQ(r.code, 3) << describe(r);
  EXPECT_TRUE(contains(r.out, "\nslab_shmd_up 0\n")) << r.out;
}

// ---------------------------------------------------------------------------------------
// --config FILE: the socket from shmd's config, read by slabctl itself

TEST(slabctl_config, the_socket_comes_from_shmds_config) {
  daemon d;
  const run_result r = run_slabctl({"--config", d.config_path(), "status", "--json"});
  ASSERT_EQ(r.code, 0) << describe(r);
  EXPECT_EQ(json::parse(r.out)["daemon"]["socket"], d.socket_path());
}

TEST(slabctl_config, a_config_without_a_socket_means_the_default_one) {
  slabtest::temp_dir dir;
  slabtest::write_file(dir.file("shmd.toml"), "[daemon]\nlog_level = \"info\"\n");
  ::unsetenv("SHMD_SOCKET");
  const run_result r = run_slabctl({"--config", dir.file("shmd.toml"), "status"});
  EXPECT_EQ(r.code, 3) << describe(r); // nothing runs there in a test
  EXPECT_TRUE(contains(r.err, std::string("no shmd at ") + slab::proto::default_socket)) << r.err;
}

TEST(slabctl_config, a_malformed_config_is_a_usage_error_with_its_place) {
  slabtest::temp_dir dir;
  const std::string file = dir.file("shmd.toml");
  slabtest::write_file(file, "[daemon]\nsocket = \"/run/x.sock\"\nbroken = [1, 2\n");
  run_result r = run_slabctl({"--config", file, "status"});
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "slabctl: --config: " + file + ":")) << r.err;
  EXPECT_TRUE(contains(r.err, "TOML syntax error")) << r.err;

  slabtest::write_file(file, "[daemon]\nsocket = 42\n");
  r = run_slabctl({"--config", file, "status"});
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, file + ":2:10: [daemon]: socket must be a string")) << r.err;

  slabtest::write_file(file, "[daemon]\nsocket = \"relative.sock\"\n");
  r = run_slabctl({"--config", file, "status"});
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "must be an absolute path")) << r.err;

  slabtest::write_file(file, "[daemon]\nsocket = \"/" + std::string(120, 'x') + "\"\n");
  r = run_slabctl({"--config", file, "status"});
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "at most 107 bytes")) << r.err;

  r = run_slabctl({"--config", dir.file("missing.toml"), "status"});
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "missing.toml")) << r.err;
}

// ---------------------------------------------------------------------------------------
// inspect

TEST(slabctl_inspect, live_key_shows_tier_offset_and_bytes_stale_key_says_so) {
  daemon d;
  holder h(d, 100);
  const slab::key k = slab::key::from_raw(h.keys[5]);
  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(k.raw()));
  run_result r = run_slabctl({"--socket", d.socket_path(), "inspect", "test", hex});
  ASSERT_EQ(r.code, 0) << describe(r);
  EXPECT_TRUE(contains(r.out, "index " + std::to_string(k.index()))) << r.out;
  EXPECT_TRUE(contains(r.out, "\n  live\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "tier 0, slot " + std::to_string(k.index()))) << r.out;
  // pattern + 5, little-endian, at the start of the payload.
  EXPECT_TRUE(contains(r.out, "000000  8d 77 66 55 44 33 22 11")) << r.out;

  // The same key in decimal, as JSON: every byte of the slot.
  r = run_slabctl(
      {"--socket", d.socket_path(), "inspect", "--json", "test", std::to_string(k.raw())});
  ASSERT_EQ(r.code, 0) << describe(r);
  const json j = json::parse(r.out);
  EXPECT_EQ(j["live"], true);
  EXPECT_EQ(j["data_offset"], std::uint64_t{k.index()} * 64U);
  ASSERT_EQ(j["bytes"].size(), 64U);
  EXPECT_EQ(j["bytes"][0], 0x8d);

  // Erased: the key is stale (exit 6), whatever the slot holds now.
  const slab::key first = slab::key::from_raw(h.keys[0]);
  h.erase_first();
  r = run_slabctl({"--socket", d.socket_path(), "inspect", "test", std::to_string(first.raw())});
  EXPECT_EQ(r.code, 6) << describe(r);
  EXPECT_TRUE(contains(r.out, "stale")) << r.out;
  EXPECT_TRUE(h.finish().ok());
}

TEST(slabctl_inspect, malformed_keys_and_unknown_pools_have_their_exit_codes) {
  daemon d;
  const std::string sock = d.socket_path();
  run_result r = run_slabctl({"--socket", sock, "inspect", "test", "banana"});
  EXPECT_EQ(r.code, 7) << describe(r);
  EXPECT_TRUE(contains(r.err, "'banana' is not a key")) << r.err;
  r = run_slabctl({"--socket", sock, "inspect", "test", "0x200000005"}); // generation 2: even
  EXPECT_EQ(r.code, 7) << describe(r);
  EXPECT_TRUE(contains(r.err, "generation 2 is even")) << r.err;
  r = run_slabctl({"--socket", sock, "inspect", "test", "0"});
  EXPECT_EQ(r.code, 7) << describe(r);
  r = run_slabctl({"--socket", sock, "inspect", "test", "0x1fffffffe"}); // index past max
  EXPECT_EQ(r.code, 7) << describe(r);
  EXPECT_TRUE(contains(r.err, "past its")) << r.err;
  r = run_slabctl({"--socket", sock, "inspect", "test", "0x10000f000"}); // not published yet
  EXPECT_EQ(r.code, 6) << describe(r);
  r = run_slabctl({"--socket", sock, "inspect", "nosuch", "0x100000000"});
  EXPECT_EQ(r.code, 5) << describe(r);
  EXPECT_TRUE(contains(r.err, "no pool named 'nosuch'")) << r.err;
  r = run_slabctl({"--socket", sock, "status", "nosuch"});
  EXPECT_EQ(r.code, 5) << describe(r);
  r = run_slabctl({"--socket", sock, "frobnicate"});
  EXPECT_EQ(r.code, 2) << describe(r);
  r = run_slabctl({"--socket", sock, "status", "--interval", "x"});
  EXPECT_EQ(r.code, 2) << describe(r);
}

// ---------------------------------------------------------------------------------------
// audit

TEST(slabctl_audit, clean_pool_is_clean_with_the_counts_the_test_knows) {
  daemon d;
  holder h(d, 1000);
  run_result r = run_slabctl({"--socket", d.socket_path(), "audit", "--json"});
  ASSERT_EQ(r.code, 0) << describe(r);
  const json j = json::parse(r.out);
  EXPECT_EQ(j["result"], "clean");
  EXPECT_EQ(j["pools"][0]["live"], 1000);
  EXPECT_EQ(j["pools"][0]["problems"].size(), 0U);
  r = run_slabctl({"--socket", d.socket_path(), "audit"});
  EXPECT_EQ(r.code, 0) << describe(r);
  EXPECT_TRUE(contains(r.out, "pool 'test': clean")) << r.out;
  EXPECT_TRUE(h.finish().ok());
}

TEST(slabctl_audit, churning_clients_never_make_a_violation) {
  daemon d;
  slabtest::shared_array<std::atomic<bool>> stop(1);
  std::vector<slabtest::child> kids;
  for (int i = 0; i < 2; ++i) {
    const std::string socket = d.socket_path();
    kids.push_back(slabtest::child::spawn([&, socket] {
      slab::client c = slab::client::connect(socket);
      slab::pool<std::uint64_t> p = c.open<std::uint64_t>("test");
      std::vector<slab::key> held;
      for (std::uint64_t n = 0; !stop[0].load(); ++n) {
        held.push_back(p.emplace(n));
        if (held.size() > 300) {
          CHILD_CHECK(p.erase(held[n % held.size()]));
          held.erase(held.begin() + static_cast<long>(n % held.size()));
        }
      }
      return 0;
    }));
  }
  const run_result r =
      run_slabctl({"--socket", d.socket_path(), "audit", "--timeout", "2", "--json"});
  stop[0].store(true);
  for (auto& k : kids)
    EXPECT_TRUE(k.wait().ok());
  // Clean if it caught a quiet moment, inconclusive if not; never a violation.
  EXPECT_TRUE(r.code == 0 || r.code == 8) << describe(r);
  const json j = json::parse(r.out);
  EXPECT_NE(j["result"], "violations");
  // Quiet now: clean.
  const run_result after = run_slabctl({"--socket", d.socket_path(), "audit"});
  EXPECT_EQ(after.code, 0) << describe(after);
}

// A client caught in the middle of a recorded step (stopped, or descheduled on a loaded
// machine) holds still as well as a broken pool does: the audit waits for it and says
// inconclusive, never violation; once the step is over, the pool is clean.
TEST(slabctl_audit, a_client_in_the_middle_of_a_step_is_not_a_violation) {
  daemon d;
  slabtest::raw_connection conn(d.socket_path());
  conn.hello();
  std::vector<slab::platform::unique_fd> fds;
  const auto opened = conn.open("test", 8, 8, fds);
  auto m = slab::mapped::pool_map::attach(std::move(fds[0]), /*writable=*/true);
  ASSERT_TRUE(m.ok()) << m.error().what;
  std::atomic<std::uint32_t>& op = m.value()->context(opened.context).intent.op;
  op.store(static_cast<std::uint32_t>(slab::core::intent_op::carve)); // as a carve leaves it
  const run_result mid =
      run_slabctl({"--socket", d.socket_path(), "audit", "--timeout", "1", "--json"});
  EXPECT_EQ(mid.code, 8) << describe(mid);
  EXPECT_EQ(json::parse(mid.out)["result"], "inconclusive") << mid.out;
  op.store(static_cast<std::uint32_t>(slab::core::intent_op::none)); // the step ends
  const run_result after = run_slabctl({"--socket", d.socket_path(), "audit"});
  EXPECT_EQ(after.code, 0) << describe(after);
}

TEST(slabctl_audit, a_corrupt_pool_is_a_violation_with_exit_1) {
  if (::geteuid() != 0) GTEST_SKIP() << "writes into shmd's segment files (root)";
  slabtest::temp_dir segments("/dev/shm");
  daemon_cfg cfg;
  cfg.segment_dir = segments.path();
  daemon d(cfg);
  holder h(d, 100);
  EXPECT_TRUE(h.finish().ok()); // its 100 values stay live; its cache goes to the depot
  // Mark a slot that sits free in a magazine as live: "live and in a free list".
  slab::observe::observer obs(d.socket_path());
  slab::observe::pool_watch w(obs, "test");
  ASSERT_TRUE(slabtest::eventually(
      [&] {
        for (std::uint32_t c = 1; c < w.map().context_count(); ++c)
          if (w.map().context(c).state.load() != 0) return false;
        return true;
      },
      10s));
  const std::uint64_t used = w.map().state().cell(slab::core::cell_id::fresh).peek().value;
  std::uint32_t victim = slab::core::no_index;
  for (std::uint32_t i = 0; i < used && victim == slab::core::no_index; ++i) {
    if (w.map().header(i).gen() == 0) victim = i; // carved into a magazine, never handed out
  }
  ASSERT_NE(victim, slab::core::no_index);
  const int fd = ::open((segments.path() + "/test.t0.meta").c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  void* meta = ::mmap(nullptr, 4096 * 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(meta, MAP_FAILED);
  static_cast<std::uint32_t*>(meta)[2 * victim] += 1; // gen in the low half of the header word
  ::munmap(meta, 4096 * 8);
  ::close(fd);
  const run_result r = run_slabctl({"--socket", d.socket_path(), "audit", "--json"});
  EXPECT_EQ(r.code, 1) << describe(r);
  const json j = json::parse(r.out);
  EXPECT_EQ(j["result"], "violations");
  bool named = false;
  for (const json& p : j["pools"][0]["problems"])
    named = named || contains(p.get<std::string>(), "slot " + std::to_string(victim) + " is live");
  EXPECT_TRUE(named) << r.out;
  const run_result text = run_slabctl({"--socket", d.socket_path(), "audit"});
  EXPECT_EQ(text.code, 1);
  EXPECT_TRUE(contains(text.out, "violation: slot " + std::to_string(victim))) << text.out;
}

// ---------------------------------------------------------------------------------------
// Errors: no daemon, permission

TEST(slabctl_errors, no_daemon_says_so_with_exit_3) {
  slabtest::temp_dir dir;
  const std::string sock = dir.file("shmd.sock");
  for (const char* verb : {"status", "audit", "top"}) {
    const run_result r = run_slabctl({"--socket", sock, verb});
    EXPECT_EQ(r.code, 3) << verb << ": " << describe(r);
    if (std::string(verb) != "top") {
      EXPECT_TRUE(contains(r.err, "slabctl: no shmd at " + sock +
                                      " (connect: No such file or directory); is shmd running?"))
          << r.err;
    }
  }
  // $SHMD_SOCKET is the default.
  ::setenv("SHMD_SOCKET", sock.c_str(), 1);
  const run_result r = run_slabctl({"status"});
  ::unsetenv("SHMD_SOCKET");
  EXPECT_EQ(r.code, 3);
  EXPECT_TRUE(contains(r.err, sock)) << r.err;
}

TEST(slabctl_errors, permission_denied_and_the_monitor_list) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run slabctl as another uid";
  daemon_cfg cfg;
  cfg.dir_mode = 0711; // the socket is reachable: shmd's lists decide
  daemon d(cfg);
  run_result r = run_slabctl({"--socket", d.socket_path(), "status"}, 65534U);
  EXPECT_EQ(r.code, 4) << describe(r);
  EXPECT_TRUE(contains(r.err, "permission denied: uid 65534")) << r.err;
  EXPECT_TRUE(contains(r.err, "monitor_uids")) << r.err;
  // monitor_uids lets nobody observe, read-only, but still not use the pool.
  d.stop();
  std::string text = slabtest::read_file(d.config_path());
  text.insert(text.find("[daemon]\n") + 9, "monitor_uids = [65534]\n");
  slabtest::write_file(d.config_path(), text);
  d.restart();
  r = run_slabctl({"--socket", d.socket_path(), "status", "--json"}, 65534U);
  ASSERT_EQ(r.code, 0) << describe(r);
  EXPECT_EQ(json::parse(r.out)["pools"][0]["name"], "test");
  r = run_slabctl({"--socket", d.socket_path(), "audit"}, 65534U);
  EXPECT_EQ(r.code, 0) << describe(r);
  const slabtest::exit_status st = slabtest::run_in_child([&] {
    CHILD_CHECK(::setgroups(0, nullptr) == 0 && ::setgid(65534) == 0 && ::setuid(65534) == 0);
    try {
      slab::client c = slab::client::connect(d.socket_path());
      (void)c.open<std::uint64_t>("test");
    } catch (const slab::error& e) {
      CHILD_CHECK(e.code() == slab::errc::permission_denied);
      return 0;
    }
    return 1;
  });
  EXPECT_TRUE(st.ok()) << st.describe();
}

// The read-only mapping cannot be made writable: the fds shmd gives observers are O_RDONLY.
TEST(slabctl_observe, observer_mappings_cannot_be_made_writable) {
  daemon d;
  slab::observe::observer obs(d.socket_path());
  std::vector<slab::platform::unique_fd> fds;
  const slab::proto::observed r = obs.observe("test", 0, 0, fds);
  ASSERT_EQ(r.tiers, 1U);
  for (const auto& fd : fds) {
    EXPECT_EQ(::fcntl(fd.get(), F_GETFL) & O_ACCMODE, O_RDONLY);
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    EXPECT_EQ(p, MAP_FAILED);
    EXPECT_EQ(errno, EACCES);
  }
  // Observing registers no context.
  slab::observe::pool_watch w(obs, "test");
  for (std::uint32_t c = 1; c < w.map().context_count(); ++c)
    EXPECT_EQ(w.map().context(c).state.load(), 0U) << "context " << c;
}

// ---------------------------------------------------------------------------------------
// top, in a tmux pane

class tmux {
public:
  // A server of its own per instance: the previous one may still be shutting down.
  tmux() : sock_("slabctl-test-" + std::to_string(::getpid()) + "-" + std::to_string(++serial)) {}
  ~tmux() {
    (void)run({"kill-server"});
    const char* dir = std::getenv("TMUX_TMPDIR");
    ::unlink(((dir != nullptr && *dir != '\0' ? std::string(dir) : std::string("/tmp")) + "/tmux-" +
              std::to_string(::getuid()) + "/" + sock_)
                 .c_str());
  }
  tmux(const tmux&) = delete;
  tmux& operator=(const tmux&) = delete;

  int run(const std::vector<std::string>& args) const {
    std::string cmd = "tmux -L " + sock_;
    for (const std::string& a : args)
      cmd += " '" + a + "'";
    return std::system((cmd + " >/dev/null 2>&1").c_str());
  }
  std::string screen() const {
    std::string out;
    FILE* f = ::popen(("tmux -L " + sock_ + " capture-pane -p -t top 2>/dev/null").c_str(), "r");
    if (f == nullptr) return out;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
      out.append(buf, n);
    ::pclose(f);
    return out;
  }

private:
  static inline int serial = 0;
  std::string sock_;
};

bool have_tmux() { return std::system("command -v tmux >/dev/null 2>&1") == 0; }

void top_quits_on(const std::string& key, const std::string& key_name) {
  daemon d;
  holder h(d, 1000);
  tmux t;
  const std::string cmd = std::string(SLABCTL_BINARY) + " --socket " + d.socket_path() +
                          " top --interval 0.2; echo TOP-EXITED $?; stty -a; sleep 60";
  ASSERT_EQ(t.run({"new-session", "-d", "-s", "top", "-x", "160", "-y", "40", cmd}), 0);
  ASSERT_TRUE(slabtest::eventually(
      [&] {
        const std::string s = t.screen();
        return contains(s, "test") && contains(s, "live 1000 of 4096");
      },
      10s))
      << t.screen();
  const std::string live = t.screen();
  EXPECT_TRUE(contains(live, "q quits")) << live;
  EXPECT_TRUE(contains(live, "tier 0")) << live;
  EXPECT_TRUE(contains(live, "24.4%")) << live;
  ASSERT_EQ(t.run({"send-keys", "-t", "top", key}), 0);
  // Wait for the shell's next commands to have printed too (stty -a's flags).
  ASSERT_TRUE(slabtest::eventually(
      [&] {
        const std::string s = t.screen();
        return contains(s, "TOP-EXITED") && contains(s, "icanon") && contains(s, "echoctl");
      },
      10s))
      << key_name << ":\n"
      << t.screen();
  const std::string after = t.screen();
  EXPECT_TRUE(contains(after, "TOP-EXITED 0")) << after;
  // The main screen is back (top's frame is gone) and the terminal is cooked again.
  EXPECT_FALSE(contains(after, "q quits")) << after;
  EXPECT_TRUE(has_word(after, "icanon")) << after;
  EXPECT_TRUE(has_word(after, "echo")) << after;
  EXPECT_FALSE(has_word(after, "-icanon")) << after;
  EXPECT_TRUE(h.finish().ok());
}

TEST(slabctl_top, shows_the_pool_and_quits_on_q) {
  if (!have_tmux()) GTEST_SKIP() << "tmux is not installed";
  top_quits_on("q", "q");
}

TEST(slabctl_top, quits_cleanly_on_ctrl_c) {
  if (!have_tmux()) GTEST_SKIP() << "tmux is not installed";
  top_quits_on("C-c", "Ctrl-C");
}

} // namespace
