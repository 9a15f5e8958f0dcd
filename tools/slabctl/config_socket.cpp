// slabctl --config FILE (config_socket.hpp), with toml++ as shmd reads it.
#include "config_socket.hpp"

#include <cerrno>
#include <cstddef>
#include <fstream>
#include <sstream>
#include <string_view>
#include <system_error>

#include <toml++/toml.h>

#include <slab/error.hpp>
#include <slab/proto/protocol.hpp>

namespace slabctl {
namespace {

// sun_path less its NUL, as shmd's config.hpp has it (max_socket_path).
constexpr std::size_t max_socket_path = 107;

[[noreturn]] void fail(const std::string& path, const toml::source_position& p,
                       const std::string& what) {
  throw slab::error(slab::errc::config, path + ":" + std::to_string(p.line) + ":" +
                                            std::to_string(p.column) + ": " + what);
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    throw slab::error(slab::errc::config, "cannot open config file '" + path +
                                              "': " + std::generic_category().message(errno));
  }
  std::ostringstream text;
  text << f.rdbuf();
  return text.str();
}

std::string socket_of(const std::string& path, const toml::node& n) {
  const toml::source_position p = n.source().begin;
  const auto* v = n.as_string();
  if (v == nullptr) fail(path, p, "[daemon]: socket must be a string, an absolute path");
  const std::string& s = v->get();
  if (s.empty() || s.front() != '/') {
    fail(path, p, "[daemon]: socket must be an absolute path (starting with /), got \"" + s + "\"");
  }
  if (s.find('\0') != std::string::npos)
    fail(path, p, "[daemon]: socket must not contain a NUL character");
  if (s.size() > max_socket_path) {
    fail(path, p,
         "[daemon]: socket path must be at most " + std::to_string(max_socket_path) +
             " bytes (the size of a Unix socket address), got " + std::to_string(s.size()) +
             " bytes");
  }
  return s;
}

} // namespace

std::string socket_from_config(const std::string& path) {
  const std::string text = read_file(path);
  toml::table root;
  try {
    root = toml::parse(text, std::string_view{path});
  } catch (const toml::parse_error& e) {
    fail(path, e.source().begin, "TOML syntax error: " + std::string(e.description()));
  }
  const toml::node* daemon = root.get("daemon");
  if (daemon == nullptr) return std::string(slab::proto::default_socket);
  const toml::table* t = daemon->as_table();
  if (t == nullptr) fail(path, daemon->source().begin, "[daemon] must be a table");
  const toml::node* socket = t->get("socket");
  return socket == nullptr ? std::string(slab::proto::default_socket) : socket_of(path, *socket);
}

} // namespace slabctl
