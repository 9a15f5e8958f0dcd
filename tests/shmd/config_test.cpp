// shmd's configuration parser: every kind of mistake an operator can make is refused with
// a message that names the file, line, column and key; good files come back with every
// key read and every default applied; the bundled packaging/shmd.toml loads.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <unistd.h>

#include <slab/error.hpp>
#include <slab/platform/platform.hpp>

#include "shmd/config.hpp"

#ifndef SLAB_SOURCE_DIR
#error "SLAB_SOURCE_DIR must name the source tree (tests/shmd/CMakeLists.txt sets it)"
#endif

namespace {

using slab::platform::page_policy;

/// The message of the slab::error(errc::config) that parsing `text` throws; fails the
/// test (and returns "") when it throws nothing or something else.
std::string parse_error(std::string_view text, const std::string& source = "bad.toml") {
  try {
    (void)shmd::parse_config(text, source);
  } catch (const slab::error& e) {
    EXPECT_EQ(e.code(), slab::errc::config) << e.what();
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw something other than slab::error: " << e.what();
    return "";
  }
  ADD_FAILURE() << "accepted:\n" << text;
  return "";
}

constexpr std::string_view minimal_pool = "[[pool]]\nname = \"p\"\nslot_size = 8\ncapacity = 4\n";

// ---------------------------------------------------------------------------------------
// Bad configs, one row each: the text, where the error must point, what it must say.

struct bad_case {
  const char* name; // the test's name
  std::string text;
  unsigned line;
  unsigned column;
  std::string says; // a substring of the message
};

std::ostream& operator<<(std::ostream& os, const bad_case& c) { return os << c.name; }

/// A pool table with `extra` appended (one key per line), the pool's header on line 1.
std::string pool_with(std::string_view extra) {
  return "[[pool]]\nname = \"orders\"\nslot_size = 128\ncapacity = 1024\n" + std::string(extra);
}

/// A pool whose slot_size (line 3, column 13) is `value`.
std::string pool_slot_size(std::string_view value) {
  return "[[pool]]\nname = \"orders\"\nslot_size = " + std::string(value) + "\ncapacity = 1024\n";
}

const std::vector<bad_case> bad_cases = {
    // TOML syntax, positions from toml++.
    {"syntax_unterminated_string", "[daemon]\nsocket = \"/run/x\n", 2, 17,
     "TOML syntax error: Error while parsing string"},
    {"syntax_duplicate_key", pool_with("capacity = 5\n"), 5, 12,
     "TOML syntax error: Error while parsing key-value pair: cannot redefine existing integer "
     "'capacity'"},
    {"syntax_integer_beyond_64_bits", pool_with("max_capacity = 99999999999999999999\n"), 5, 36,
     "not representable in 64 bits"},
    {"syntax_missing_value", "[daemon]\nlog_level =\n", 2, 12, "TOML syntax error"},
    {"syntax_table_redefined_as_array", std::string(minimal_pool) + "[pool]\n", 5, 1,
     "TOML syntax error"},

    // Unknown keys at every level.
    {"unknown_top_level_key", "sockets = 1\n" + std::string(minimal_pool), 1, 1,
     "unknown top-level key \"sockets\" (known: daemon, pool)"},
    // A key written after a [[pool]] header belongs to that pool, as TOML says.
    {"unknown_key_after_pool_belongs_to_pool", std::string(minimal_pool) + "sockets = 1\n", 5, 1,
     "unknown key \"sockets\" in pool \"p\" (known: name, slot_size"},
    {"unknown_top_level_table", "[deamon]\nsocket = \"/x\"\n" + std::string(minimal_pool), 1, 2,
     "unknown top-level key \"deamon\" (known: daemon, pool); did you mean \"daemon\"?"},
    {"unknown_daemon_key", "[daemon]\nsocket = \"/x\"\nsockt = \"/y\"\n", 3, 1,
     "unknown key \"sockt\" in [daemon] (known: socket, allow_uids, allow_gids, monitor_uids, "
     "monitor_gids, log_level, segment_dir, hugepage_dir, max_connections_per_uid); did "
     "you mean \"socket\"?"},
    {"unknown_daemon_subtable", "[daemon.extra]\nx = 1\n", 1, 9,
     "unknown key \"extra\" in [daemon]"},
    {"unknown_pool_key", pool_with("slot_sz = 64\n"), 5, 1,
     "unknown key \"slot_sz\" in pool \"orders\" (known: name, slot_size, capacity, max_capacity, "
     "hugepages, numa_node, contexts, grow_at, mode)"},
    {"unknown_pool_key_unnamed_pool", "[[pool]]\ncolour = \"red\"\n", 2, 1,
     "unknown key \"colour\" in [[pool]] #1"},

    // [daemon] and pool of the wrong shape.
    {"daemon_not_a_table", "daemon = \"shmd\"\n" + std::string(minimal_pool), 1, 10,
     "\"daemon\" must be a table, written [daemon], got a string (\"shmd\")"},
    {"daemon_array_of_tables", "[[daemon]]\n" + std::string(minimal_pool), 1, 1,
     "got an array of tables ([[daemon]])"},
    {"pool_a_table", "[pool]\nname = \"orders\"\n", 1, 1,
     "\"pool\" must be an array of tables, one [[pool]] per pool; got a table (written [pool]"},
    {"pool_an_integer", "pool = 3\n", 1, 8, "\"pool\" must be an array of tables"},
    {"pool_element_not_a_table", "pool = [{name = \"a\", slot_size = 8, capacity = 1}, 7]\n", 1, 52,
     "pool[1] must be a table (one [[pool]] per pool), got an integer (7)"},
    {"pool_empty_array", "pool = []\n", 1, 8, "no pool defined"},
    {"no_pool", "[daemon]\nsocket = \"/run/x.sock\"\n", 1, 1,
     "no pool defined: add at least one [[pool]] table"},
    {"empty_file", "", 1, 1, "no pool defined"},

    // [daemon] values.
    {"socket_not_a_string", "[daemon]\nsocket = 5\n", 2, 10,
     "[daemon]: socket must be a string, an absolute path; got an integer (5)"},
    {"socket_relative", "[daemon]\nsocket = \"shmd.sock\"\n", 2, 10,
     "socket must be an absolute path (starting with /), got \"shmd.sock\""},
    {"socket_empty", "[daemon]\nsocket = \"\"\n", 2, 10, "socket must be an absolute path"},
    {"socket_too_long", "[daemon]\nsocket = \"/" + std::string(107, 's') + "\"\n", 2, 10,
     "socket path must be at most 107 bytes (the size of a Unix socket address), got 108"},
    {"allow_uids_not_an_array", "[daemon]\nallow_uids = 1000\n", 2, 14,
     "allow_uids must be an array of integers (each a uid between 0 and 4294967294), got an "
     "integer (1000)"},
    {"allow_uids_negative", "[daemon]\nallow_uids = [1000, -1]\n", 2, 21,
     "allow_uids[1] must be a uid between 0 and 4294967294, got -1"},
    {"allow_uids_name_not_number", "[daemon]\nallow_uids = [\"alice\"]\n", 2, 15,
     "allow_uids[0] must be an integer, a uid between 0 and 4294967294, got a string (\"alice\")"},
    {"allow_gids_beyond_range", "[daemon]\nallow_gids = [4294967295]\n", 2, 15,
     "allow_gids[0] must be a gid between 0 and 4294967294, got 4294967295"},
    // The read-only observers' lists, read like the allow lists.
    {"monitor_uids_not_an_array", "[daemon]\nmonitor_uids = 0\n", 2, 16,
     "monitor_uids must be an array of integers (each a uid between 0 and 4294967294), got an "
     "integer (0)"},
    {"monitor_uids_group_name", "[daemon]\nmonitor_uids = [\"root\"]\n", 2, 17,
     "monitor_uids[0] must be an integer, a uid between 0 and 4294967294, got a string (\"root\")"},
    {"monitor_gids_negative", "[daemon]\nmonitor_gids = [0, -5]\n", 2, 20,
     "monitor_gids[1] must be a gid between 0 and 4294967294, got -5"},
    {"monitor_gids_unknown_group", "[daemon]\nmonitor_gids = [\"no-such-group-here\"]\n", 2, 17,
     "monitor_gids[0]: no group named \"no-such-group-here\" on this machine"},
    {"log_level_unknown", "[daemon]\nlog_level = \"verbose\"\n", 2, 13,
     "log_level must be one of: debug, info, notice, warning, error; got \"verbose\""},
    {"log_level_not_a_string", "[daemon]\nlog_level = 3\n", 2, 13,
     "log_level must be a string, one of: debug, info, notice, warning, error; got an integer"},
    {"segment_dir_relative", "[daemon]\nsegment_dir = \"shm/x\"\n", 2, 15,
     "segment_dir must be an absolute directory path, or \"\", got \"shm/x\""},
    {"segment_dir_not_a_string", "[daemon]\nsegment_dir = 1\n", 2, 15,
     "segment_dir must be a string, an absolute directory path, or \"\"; got an integer"},
    {"hugepage_dir_auto_only_for_hugepages", "[daemon]\nsegment_dir = \"auto\"\n", 2, 15,
     "segment_dir must be an absolute directory path"},
    {"hugepage_dir_relative", "[daemon]\nhugepage_dir = \"x\"\n", 2, 16,
     "hugepage_dir must be an absolute directory path, or \"\" or \"auto\", got \"x\""},

    // Missing required keys: at the pool's table header.
    {"missing_name", "[daemon]\n\n[[pool]]\nslot_size = 8\ncapacity = 4\n", 3, 1,
     "[[pool]] #1: missing required key \"name\""},
    {"missing_slot_size", "[[pool]]\nname = \"orders\"\ncapacity = 4\n", 1, 1,
     "pool \"orders\": missing required key \"slot_size\" (bytes per slot, 1 to 1048576)"},
    {"missing_capacity", std::string(minimal_pool) + "\n[[pool]]\nname = \"b\"\nslot_size = 8\n", 6,
     1, "pool \"b\": missing required key \"capacity\""},
    {"missing_in_inline_table", "pool = [ { name = \"a\", capacity = 1 } ]\n", 1, 10,
     "pool \"a\": missing required key \"slot_size\""},

    // Names.
    {"name_not_a_string", "[[pool]]\nname = 7\n", 2, 8,
     "[[pool]] #1: name must be a string of a-z, 0-9, _ and - (1 to 63 characters), got an "
     "integer (7)"},
    {"name_empty", "[[pool]]\nname = \"\"\n", 2, 8, "name must not be empty"},
    {"name_uppercase", "[[pool]]\nname = \"Orders\"\n", 2, 8,
     "name must use only a-z, 0-9, _ and -, got \"Orders\" (\"O\" at character 1)"},
    {"name_with_slash", "[[pool]]\nname = \"a/b\"\n", 2, 8, "(\"/\" at character 2)"},
    {"name_too_long", "[[pool]]\nname = \"" + std::string(64, 'n') + "\"\n", 2, 8,
     "name must be at most 63 characters, got 64"},
    {"name_duplicate", std::string(minimal_pool) + "[[pool]]\nname = \"p\"\n", 6, 8,
     "[[pool]] #2: duplicate pool name \"p\", already used at bad.toml:2:8; pool names must be "
     "unique"},

    // Sizes.
    {"slot_size_zero", pool_slot_size("0"), 3, 13,
     "pool \"orders\": slot_size must be between 1 and 1048576 bytes, got 0"},
    {"slot_size_beyond_1mib", pool_slot_size("1048577"), 3, 13,
     "slot_size must be between 1 and 1048576 bytes, got 1048577"},
    {"slot_size_negative", pool_slot_size("-8"), 3, 13,
     "slot_size must be between 1 and 1048576 bytes, got -8"},
    {"slot_size_float", pool_slot_size("128.0"), 3, 13,
     "slot_size must be an integer between 1 and 1048576 bytes, got a float (128.0)"},
    {"slot_size_string", pool_slot_size("\"128\""), 3, 13,
     "slot_size must be an integer between 1 and 1048576 bytes, got a string (\"128\")"},
    {"slot_size_boolean", pool_slot_size("true"), 3, 13, "got a boolean (true)"},
    {"capacity_zero", "[[pool]]\nname = \"p\"\nslot_size = 8\ncapacity = 0\n", 4, 12,
     "pool \"p\": capacity must be between 1 and 4294967295 slots, got 0"},
    {"capacity_negative", "[[pool]]\nname = \"p\"\nslot_size = 8\ncapacity = -1\n", 4, 12,
     "capacity must be between 1 and 4294967295 slots, got -1"},
    {"capacity_beyond_2_32", "[[pool]]\nname = \"p\"\nslot_size = 8\ncapacity = 4294967296\n", 4,
     12, "capacity must be between 1 and 4294967295 slots, got 4294967296"},
    {"capacity_above_max_capacity", pool_with("max_capacity = 1000\n"), 4, 12,
     "capacity must not exceed max_capacity (1000 at line 5), got 1024"},
    {"max_capacity_beyond_2_32", pool_with("max_capacity = 4294967296\n"), 5, 16,
     "max_capacity must be between 1 and 4294967295 slots, got 4294967296"},
    {"max_capacity_zero", pool_with("max_capacity = 0\n"), 5, 16,
     "max_capacity must be between 1 and 4294967295 slots, got 0"},
    {"max_capacity_float", pool_with("max_capacity = 1e6\n"), 5, 16,
     "max_capacity must be an integer between 1 and 4294967295 slots, got a float (1e+06)"},
    {"max_connections_zero", "[daemon]\nmax_connections_per_uid = 0\n", 2, 27,
     "[daemon]: max_connections_per_uid must be between 1 and 1000000, got 0"},
    {"max_connections_text", "[daemon]\nmax_connections_per_uid = \"many\"\n", 2, 27,
     "max_connections_per_uid must be an integer between 1 and 1000000, got a string (\"many\")"},
    {"contexts_zero", pool_with("contexts = 0\n"), 5, 12,
     "contexts must be between 1 and 4096 contexts, got 0"},
    {"contexts_beyond_4096", pool_with("contexts = 4097\n"), 5, 12,
     "contexts must be between 1 and 4096 contexts, got 4097"},
    {"grow_at_zero", pool_with("grow_at = 0.0\n"), 5, 11,
     "grow_at must be greater than 0 and less than 1 (an occupancy such as 0.75), got 0.0"},
    {"grow_at_one", pool_with("grow_at = 1.0\n"), 5, 11,
     "grow_at must be greater than 0 and less than 1"},
    {"grow_at_integer_one", pool_with("grow_at = 1\n"), 5, 11,
     "grow_at must be greater than 0 and less than 1 (an occupancy such as 0.75), got 1"},
    {"grow_at_above_one", pool_with("grow_at = 1.5\n"), 5, 11, "got 1.5"},
    {"grow_at_negative", pool_with("grow_at = -0.25\n"), 5, 11, "got -0.25"},
    {"grow_at_nan", pool_with("grow_at = nan\n"), 5, 11, "got nan"},
    {"grow_at_string", pool_with("grow_at = \"75%\"\n"), 5, 11,
     "grow_at must be a number greater than 0 and less than 1 (an occupancy such as 0.75), got a "
     "string (\"75%\")"},

    // Page policy and NUMA.
    {"hugepages_unknown", pool_with("hugepages = \"always\"\n"), 5, 13,
     "pool \"orders\": hugepages must be one of: require, prefer, off; got \"always\""},
    {"hugepages_boolean", pool_with("hugepages = true\n"), 5, 13,
     "hugepages must be a string, one of: require, prefer, off; got a boolean (true)"},
    {"numa_node_negative", pool_with("numa_node = -1\n"), 5, 13,
     "numa_node must be a node number >= 0 (omit the key for the local node), got -1"},
    {"numa_node_beyond_int", pool_with("numa_node = 2147483648\n"), 5, 13,
     "numa_node must be between 0 and 2147483647, got 2147483648"},
    {"numa_node_string", pool_with("numa_node = \"0\"\n"), 5, 13,
     "numa_node must be an integer, a node number >= 0"},

    // Pool mode.
    {"mode_unknown", pool_with("mode = \"bump\"\n"), 5, 8,
     "pool \"orders\": mode must be one of: slab, arena; got \"bump\""},
    {"mode_uppercase", pool_with("mode = \"Arena\"\n"), 5, 8,
     "mode must be one of: slab, arena; got \"Arena\""},
    {"mode_boolean", pool_with("mode = true\n"), 5, 8,
     "mode must be a string, one of: slab, arena; got a boolean (true)"},

    // Errors in later pools and inline tables point at the right place; the first error in
    // document order wins.
    {"second_pool_bad", std::string(minimal_pool) + "\n[[pool]]\nname = \"b\"\nslot_size = 0\n", 8,
     13, "pool \"b\": slot_size must be between 1 and 1048576 bytes, got 0"},
    {"inline_pool_bad_value", "pool = [ { name = \"a\", slot_size = 8, capacity = 0 } ]\n", 1, 50,
     "pool \"a\": capacity must be between 1 and 4294967295 slots, got 0"},
    {"first_error_in_document_order", pool_with("contexts = 0\nbogus = 1\n"), 5, 12,
     "contexts must be between"},
    {"control_characters_escaped", "[[pool]]\nname = \"a\\u0007b\"\n", 2, 8,
     "got \"a\\x07b\" (\"\\x07\" at character 2)"},
};

class config_bad_row : public ::testing::TestWithParam<bad_case> {};

TEST_P(config_bad_row, refused_with_file_line_column_and_reason) {
  const bad_case& c = GetParam();
  const std::string msg = parse_error(c.text);
  const std::string where =
      "bad.toml:" + std::to_string(c.line) + ":" + std::to_string(c.column) + ": ";
  EXPECT_EQ(msg.rfind(where, 0), 0U)
      << "message: " << msg << "\nexpected it to start with " << where << "\ntext:\n"
      << c.text;
  EXPECT_NE(msg.find(c.says), std::string::npos)
      << "message: " << msg << "\nexpected to contain: " << c.says;
}

INSTANTIATE_TEST_SUITE_P(rows, config_bad_row, ::testing::ValuesIn(bad_cases),
                         [](const ::testing::TestParamInfo<bad_case>& i) {
                           return std::string(i.param.name);
                         });

TEST(config_bad, rows_texts_are_distinct) {
  // A guard on the table itself: a copy-pasted row would test nothing new.
  for (std::size_t i = 0; i < bad_cases.size(); ++i) {
    for (std::size_t j = i + 1; j < bad_cases.size(); ++j) {
      EXPECT_NE(bad_cases[i].text, bad_cases[j].text)
          << bad_cases[i].name << " and " << bad_cases[j].name;
    }
  }
}

TEST(config_bad, message_uses_the_source_name) {
  const std::string msg = parse_error("[daemon]\nlog_level = \"loud\"\n", "/etc/shmd/shmd.toml");
  EXPECT_EQ(msg.rfind("/etc/shmd/shmd.toml:2:13: [daemon]: log_level", 0), 0U) << msg;
}

TEST(config_bad, load_config_names_the_path_in_positions) {
  // The same checks when the text comes from a file: the message names the path.
  const auto path = std::filesystem::temp_directory_path() /
                    ("shmd_config_test_" + std::to_string(::getpid()) + ".toml");
  {
    std::ofstream out(path);
    out << pool_with("grow_at = 2.0\n");
  }
  try {
    (void)shmd::load_config(path.string());
    ADD_FAILURE() << "accepted grow_at = 2.0";
  } catch (const slab::error& e) {
    EXPECT_EQ(e.code(), slab::errc::config);
    EXPECT_EQ(std::string(e.what()).rfind(path.string() + ":5:11: pool \"orders\": grow_at", 0), 0U)
        << e.what();
  }
  std::filesystem::remove(path);
}

// ---------------------------------------------------------------------------------------
// Good configs.

TEST(config_good, minimal_file_takes_every_default) {
  const shmd::daemon_config cfg = shmd::parse_config(minimal_pool, "min.toml");
  EXPECT_EQ(cfg.source, "min.toml");
  EXPECT_EQ(cfg.socket, "/run/shmd/shmd.sock");
  EXPECT_TRUE(cfg.allow_uids.empty());
  EXPECT_TRUE(cfg.allow_gids.empty());
  EXPECT_TRUE(cfg.monitor_uids.empty());
  EXPECT_TRUE(cfg.monitor_gids.empty());
  EXPECT_EQ(cfg.log_level, "info");
  EXPECT_EQ(cfg.max_connections_per_uid, 256U);
  ASSERT_EQ(cfg.pools.size(), 1U);
  const shmd::pool_config& p = cfg.pools[0];
  EXPECT_EQ(p.name, "p");
  EXPECT_EQ(p.slot_size, 8U);
  EXPECT_EQ(p.capacity, 4U);
  EXPECT_EQ(p.max_capacity, 4U); // defaults to capacity
  EXPECT_EQ(p.hugepages, page_policy::prefer);
  EXPECT_EQ(p.numa_node, -1);
  EXPECT_EQ(p.contexts, 64U);
  EXPECT_EQ(p.grow_at, 0.75);
}

TEST(config_good, every_key_is_read) {
  const shmd::daemon_config cfg = shmd::parse_config(R"(# every key, none at its default
[daemon]
socket = "/tmp/test/shmd.sock"   # a comment
allow_uids = [0, 1000, 4294967294]
allow_gids = [27]
monitor_uids = [65534]
monitor_gids = ["root", 4]
log_level = "debug"
max_connections_per_uid = 1000000

[[pool]]
grow_at = 0.5
contexts = 4096
numa_node = 1
hugepages = "require"
max_capacity = 4294967295
capacity = 1_000
slot_size = 0x100
name = "md-book_2"
)",
                                                     "all.toml");
  EXPECT_EQ(cfg.socket, "/tmp/test/shmd.sock");
  EXPECT_EQ(cfg.allow_uids, (std::vector<std::uint32_t>{0, 1000, 4294967294U}));
  EXPECT_EQ(cfg.allow_gids, (std::vector<std::uint32_t>{27}));
  EXPECT_EQ(cfg.monitor_uids, (std::vector<std::uint32_t>{65534}));
  EXPECT_EQ(cfg.monitor_gids, (std::vector<std::uint32_t>{0, 4}));
  EXPECT_EQ(cfg.log_level, "debug");
  EXPECT_EQ(cfg.max_connections_per_uid, 1000000U);
  ASSERT_EQ(cfg.pools.size(), 1U);
  const shmd::pool_config& p = cfg.pools[0];
  EXPECT_EQ(p.name, "md-book_2");
  EXPECT_EQ(p.slot_size, 256U);
  EXPECT_EQ(p.capacity, 1000U);
  EXPECT_EQ(p.max_capacity, 4294967295U);
  EXPECT_EQ(p.hugepages, page_policy::require);
  EXPECT_EQ(p.numa_node, 1);
  EXPECT_EQ(p.contexts, 4096U);
  EXPECT_EQ(p.grow_at, 0.5);
}

TEST(config_good, several_pools_in_document_order) {
  // Names deliberately out of alphabetical order: toml++ keeps keys sorted, the parser
  // must not; [daemon] after the pools is fine too.
  const shmd::daemon_config cfg = shmd::parse_config(R"(
[[pool]]
name = "zeta"
slot_size = 64
capacity = 10
hugepages = "off"

[[pool]]
name = "alpha"
slot_size = 1048576
capacity = 1
max_capacity = 8
numa_node = 0

[[pool]]
name = "m"
slot_size = 1
capacity = 4294967295
contexts = 1
grow_at = 0.999

[daemon]
log_level = "error"
)",
                                                     "three.toml");
  EXPECT_EQ(cfg.log_level, "error");
  ASSERT_EQ(cfg.pools.size(), 3U);
  EXPECT_EQ(cfg.pools[0].name, "zeta");
  EXPECT_EQ(cfg.pools[0].slot_size, 64U);
  EXPECT_EQ(cfg.pools[0].capacity, 10U);
  EXPECT_EQ(cfg.pools[0].max_capacity, 10U);
  EXPECT_EQ(cfg.pools[0].hugepages, page_policy::off);
  EXPECT_EQ(cfg.pools[0].numa_node, -1);

  EXPECT_EQ(cfg.pools[1].name, "alpha");
  EXPECT_EQ(cfg.pools[1].slot_size, shmd::max_slot_size);
  EXPECT_EQ(cfg.pools[1].capacity, 1U);
  EXPECT_EQ(cfg.pools[1].max_capacity, 8U);
  EXPECT_EQ(cfg.pools[1].numa_node, 0);
  EXPECT_EQ(cfg.pools[1].hugepages, page_policy::prefer);

  EXPECT_EQ(cfg.pools[2].name, "m");
  EXPECT_EQ(cfg.pools[2].slot_size, 1U);
  EXPECT_EQ(cfg.pools[2].capacity, shmd::max_pool_slots);
  EXPECT_EQ(cfg.pools[2].max_capacity, shmd::max_pool_slots);
  EXPECT_EQ(cfg.pools[2].contexts, 1U);
  EXPECT_EQ(cfg.pools[2].grow_at, 0.999);
}

TEST(config_good, boundary_names_and_socket_length_are_accepted) {
  const std::string name63(63, 'a');
  const std::string socket107 = "/" + std::string(106, 's');
  const shmd::daemon_config cfg = shmd::parse_config(
      "[daemon]\nsocket = \"" + socket107 + "\"\nallow_uids = []\n[[pool]]\nname = \"" + name63 +
          "\"\nslot_size = 8\ncapacity = 4\n[[pool]]\nname = \"0_-9\"\nslot_size = 8\n"
          "capacity = 4\n",
      "edge.toml");
  EXPECT_EQ(cfg.socket, socket107);
  EXPECT_TRUE(cfg.allow_uids.empty());
  ASSERT_EQ(cfg.pools.size(), 2U);
  EXPECT_EQ(cfg.pools[0].name, name63);
  EXPECT_EQ(cfg.pools[1].name, "0_-9");
}

TEST(config_good, inline_tables_and_dotted_keys_are_the_same_config) {
  const shmd::daemon_config cfg = shmd::parse_config(
      "daemon.socket = \"/x.sock\"\n"
      "daemon.allow_gids = [5]\n"
      "pool = [ { name = \"a\", slot_size = 8, capacity = 2, hugepages = \"require\" },\n"
      "         { name = \"b\", slot_size = 16, capacity = 3, max_capacity = 6 } ]\n",
      "inline.toml");
  EXPECT_EQ(cfg.socket, "/x.sock");
  EXPECT_EQ(cfg.allow_gids, (std::vector<std::uint32_t>{5}));
  ASSERT_EQ(cfg.pools.size(), 2U);
  EXPECT_EQ(cfg.pools[0].name, "a");
  EXPECT_EQ(cfg.pools[0].hugepages, page_policy::require);
  EXPECT_EQ(cfg.pools[1].name, "b");
  EXPECT_EQ(cfg.pools[1].slot_size, 16U);
  EXPECT_EQ(cfg.pools[1].max_capacity, 6U);
}

TEST(config_good, each_log_level_and_page_policy_is_accepted) {
  for (const char* level : {"debug", "info", "notice", "warning", "error"}) {
    const auto cfg = shmd::parse_config(
        "[daemon]\nlog_level = \"" + std::string(level) + "\"\n" + std::string(minimal_pool), "l");
    EXPECT_EQ(cfg.log_level, level);
  }
  const std::pair<const char*, page_policy> policies[] = {{"require", page_policy::require},
                                                          {"prefer", page_policy::prefer},
                                                          {"off", page_policy::off}};
  for (const auto& [text, policy] : policies) {
    const auto cfg =
        shmd::parse_config(pool_with("hugepages = \"" + std::string(text) + "\"\n"), "h");
    EXPECT_EQ(cfg.pools.at(0).hugepages, policy) << text;
  }
}

TEST(config_good, pool_mode_defaults_to_slab_and_accepts_arena) {
  EXPECT_EQ(shmd::parse_config(minimal_pool, "m").pools.at(0).mode, shmd::pool_mode::slab);
  EXPECT_EQ(shmd::parse_config(pool_with("mode = \"slab\"\n"), "m").pools.at(0).mode,
            shmd::pool_mode::slab);
  EXPECT_EQ(shmd::parse_config(pool_with("mode = \"arena\"\n"), "m").pools.at(0).mode,
            shmd::pool_mode::arena);
}

// ---------------------------------------------------------------------------------------
// Files.

const std::string bundled = std::string(SLAB_SOURCE_DIR) + "/packaging/shmd.toml";

TEST(config_load, bundled_default_loads) {
  const shmd::daemon_config cfg = shmd::load_config(bundled);
  EXPECT_EQ(cfg.source, bundled);
  EXPECT_EQ(cfg.socket, "/run/shmd/shmd.sock");
  EXPECT_EQ(cfg.log_level, "info");
  EXPECT_TRUE(cfg.allow_uids.empty());
  EXPECT_TRUE(cfg.allow_gids.empty());
  ASSERT_EQ(cfg.pools.size(), 1U);
  const shmd::pool_config& p = cfg.pools[0];
  EXPECT_EQ(p.name, "orders");
  EXPECT_EQ(p.slot_size, 128U);
  EXPECT_EQ(p.capacity, 1048576U);
  EXPECT_EQ(p.max_capacity, 16777216U);
  EXPECT_EQ(p.hugepages, page_policy::prefer);
  EXPECT_EQ(p.numa_node, -1);
  EXPECT_EQ(p.contexts, 64U);
  EXPECT_EQ(p.grow_at, 0.75);
}

TEST(config_load, bundled_default_explains_every_key) {
  // An operator reads this file first: every key line follows a comment line.
  std::ifstream in(bundled);
  ASSERT_TRUE(in) << bundled;
  std::string line;
  std::string previous;
  int keys = 0;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const bool is_key =
        !line.empty() && line[0] != '#' && line[0] != '[' && line.find('=') != std::string::npos;
    if (is_key) {
      ++keys;
      const bool commented =
          (!previous.empty() && previous[0] == '#') || line.find('#') != std::string::npos;
      EXPECT_TRUE(commented) << bundled << ":" << lineno << ": no comment explains: " << line;
    }
    previous = line;
  }
  EXPECT_GE(keys, 10); // socket, allow_uids, allow_gids, log_level, and 7 pool keys
}

TEST(config_load, missing_file_names_the_path_and_the_reason) {
  const std::string path = "/nonexistent-dir-shmd-test/shmd.toml";
  try {
    (void)shmd::load_config(path);
    ADD_FAILURE() << "loaded a file that does not exist";
  } catch (const slab::error& e) {
    EXPECT_EQ(e.code(), slab::errc::config);
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::strerror(ENOENT)), std::string::npos) << msg;
    EXPECT_NE(msg.find("cannot open"), std::string::npos) << msg;
  }
}

TEST(config_load, unreadable_file_names_the_path_and_the_reason) {
  // A directory opens but cannot be read (EISDIR), root or not.
  const std::string path = std::filesystem::temp_directory_path().string();
  try {
    (void)shmd::load_config(path);
    ADD_FAILURE() << "loaded a directory";
  } catch (const slab::error& e) {
    EXPECT_EQ(e.code(), slab::errc::config);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cannot read config file \"" + path + "\""), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::strerror(EISDIR)), std::string::npos) << msg;
  }
}

TEST(config_load, permission_denied_names_the_reason) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads any file; EACCES cannot be provoked";
  const auto path = std::filesystem::temp_directory_path() /
                    ("shmd_config_noperm_" + std::to_string(::getpid()) + ".toml");
  {
    std::ofstream out(path);
    out << minimal_pool;
  }
  std::filesystem::permissions(path, std::filesystem::perms::none);
  try {
    (void)shmd::load_config(path.string());
    ADD_FAILURE() << "read a file with mode 000";
  } catch (const slab::error& e) {
    EXPECT_NE(std::string(e.what()).find(std::strerror(EACCES)), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

// ---------------------------------------------------------------------------------------
// Characters toml++ 3.3 cannot test as whitespace (shmd/toml_guard.hpp). Found by
// fuzz_config: for most code points in U+00A1..U+0499, U+2D6E..U+3167 and U+FBB6..U+FEFE,
// where toml++ expects whitespace, it reached __builtin_unreachable() (undefined
// behaviour) instead of an error. shmd refuses them there, and only there.

TEST(config_unsafe_characters, outside_strings_they_are_a_syntax_error_at_their_place) {
  EXPECT_EQ(parse_error("x = 20e\u0423ta\n"),
            "bad.toml:1:8: TOML syntax error: unexpected character U+0423 outside a string or "
            "comment");
  EXPECT_EQ(parse_error(std::string(minimal_pool) + "a.\u00e9 = 1\n")
                .rfind("bad.toml:5:3: TOML syntax error: unexpected character U+00E9", 0),
            0U);
  EXPECT_EQ(parse_error("[daemon]\n\u3001 = 1\n").rfind("bad.toml:2:1: TOML syntax error", 0), 0U);
  EXPECT_EQ(parse_error("\ufeef").rfind("bad.toml:1:1: TOML syntax error", 0), 0U);
}

TEST(config_unsafe_characters, after_a_backslash_in_a_multi_line_string_they_ask_for_an_escape) {
  const std::string msg = parse_error("[daemon]\nsocket = \"\"\"\\\n  \u00a7\"\"\"\n");
  EXPECT_EQ(msg.rfind("bad.toml:3:3: the character U+00A7 after a backslash in a "
                      "multi-line string",
                      0),
            0U)
      << msg;
  EXPECT_NE(msg.find("write it as an escape (\\u00A7)"), std::string::npos) << msg;
  EXPECT_EQ(parse_error("[daemon]\nsocket = \"\"\"\\\u0430\"\"\"\n").rfind("bad.toml:2:14: ", 0),
            0U);
  // toml++ skips whitespace after a line-ending backslash, non-ASCII whitespace too
  // (U+FEFF, U+00A0, U+3000, ...), and tests each character it passes. Found by
  // fuzz_config: a byte-order mark, then U+FDBF.
  const std::string skipped =
      parse_error("[daemon]\nsocket = \"\"\"\\\r\n\ufeff\u00a0\u3000\ufdbf\"\"\"\n");
  EXPECT_EQ(skipped.rfind("bad.toml:3:4: the character U+FDBF after a backslash", 0), 0U)
      << skipped;
  const std::string fuzzed = parse_error("\"\"\"]]\\\r\n\xef\xbb\xbf\xef\xb6\xbf\x15"
                                         "D\\\\\\\\*\\D\\");
  EXPECT_NE(fuzzed.find("U+FDBF"), std::string::npos) << fuzzed;
}

TEST(config_unsafe_characters, in_comments_and_strings_they_are_read_as_ever) {
  const shmd::daemon_config cfg = shmd::parse_config(
      "# caf\u00e9, \u041f\u0440\u0438\u0432\u0435\u0442 \u3007\n"
      "[daemon]\nsocket = \"/run/\u0441\u043e\u043a\u0435\u0442.sock\" # \u00a7\n"
      "segment_dir = '/dev/shm/\u00e9'\n"
      "hugepage_dir = \"\"\"/\u00e9\\u00e9\"\"\"\n" +
          std::string(minimal_pool),
      "utf8.toml");
  EXPECT_EQ(cfg.socket, "/run/\u0441\u043e\u043a\u0435\u0442.sock");
  EXPECT_EQ(cfg.segment_dir, "/dev/shm/\u00e9");
  EXPECT_EQ(cfg.hugepage_dir, "/\u00e9\u00e9");
  ASSERT_EQ(cfg.pools.size(), 1U);
  // In arrays and inline tables too: the error is the parser's own, past the guard.
  EXPECT_NE(parse_error("[daemon]\nallow_gids = [0, \"\u0433\u0440\u043f\"]\n")
                .find("allow_gids[1]: no group named \"\u0433\u0440\u043f\""),
            std::string::npos);
  EXPECT_NE(parse_error("pool = [{name = \"\u00e9\", slot_size = 8, capacity = 4}] # \u00e9\n")
                .find("name must use only a-z, 0-9, _ and -"),
            std::string::npos);
}

// ---------------------------------------------------------------------------------------
// allow_gids by name: the packaged setup names groups ("slab"), resolved at load.

TEST(config_group_names, names_and_numbers_mix_in_document_order) {
  // "root" is gid 0 on every Linux system.
  const shmd::daemon_config cfg = shmd::parse_config(
      "[daemon]\nallow_gids = [\"root\", 27]\n" + std::string(minimal_pool), "g.toml");
  EXPECT_EQ(cfg.allow_gids, (std::vector<std::uint32_t>{0, 27}));
}

TEST(config_group_names, unknown_name_is_an_error_at_its_line) {
  const std::string msg = parse_error("[daemon]\nallow_gids = [5, \"no-such-group-shmd-test\"]\n" +
                                      std::string(minimal_pool));
  EXPECT_EQ(msg.rfind("bad.toml:2:18: [daemon]: allow_gids[1]: no group named "
                      "\"no-such-group-shmd-test\" on this machine",
                      0),
            0U)
      << msg;
}

TEST(config_group_names, empty_name_and_wrong_types_are_refused) {
  EXPECT_NE(parse_error("[daemon]\nallow_gids = [\"\"]\n")
                .find("allow_gids[0] must be a group name or a gid, got \"\""),
            std::string::npos);
  EXPECT_NE(parse_error("[daemon]\nallow_gids = [true]\n")
                .find("allow_gids[0] must be an integer, a gid between 0 and 4294967294, or a "
                      "group name, got a boolean (true)"),
            std::string::npos);
  EXPECT_NE(parse_error("[daemon]\nallow_gids = \"slab\"\n")
                .find("allow_gids must be an array of integers or strings (each a gid between 0 "
                      "and 4294967294 or a group name), got a string (\"slab\")"),
            std::string::npos);
}

TEST(config_group_names, uids_stay_numeric) {
  // Only groups take names: a uid list naming a user is still refused (rows above).
  EXPECT_NE(parse_error("[daemon]\nallow_uids = [\"root\"]\n").find("must be an integer"),
            std::string::npos);
}

} // namespace
