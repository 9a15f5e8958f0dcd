#include <slabtest/files.hpp>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

namespace slabtest {

namespace fs = std::filesystem;

void fail_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

temp_dir::temp_dir(std::string base) : owner_(::getpid()) {
  if (base.empty()) {
    const char* env = std::getenv("TMPDIR");
    base = env != nullptr && *env != '\0' ? env : "/tmp";
  }
  std::string tmpl = base + "/slabtest.XXXXXX";
  // Socket paths inside must fit sun_path (107 bytes); fall back to /tmp if TMPDIR is deep.
  if (tmpl.size() > 60) tmpl = "/tmp/slabtest.XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) fail_errno("mkdtemp " + tmpl);
  path_ = buf.data();
}

temp_dir::~temp_dir() {
  if (owner_ != ::getpid()) return; // a forked child must not remove the parent's dir
  std::error_code ec;
  fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
  fs::remove_all(path_, ec);
}

void write_file(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

namespace {

constexpr fs::perms anyone_may_run = fs::perms::owner_all | fs::perms::group_read |
                                     fs::perms::group_exec | fs::perms::others_read |
                                     fs::perms::others_exec;

/// Every directory above `binary` lets others through.
bool reachable_by_anyone(const std::string& binary) {
  for (fs::path p = fs::path(binary).parent_path(); !p.empty(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0 || (st.st_mode & S_IXOTH) == 0) return false;
    if (p == p.root_path()) break;
  }
  return true;
}

/// The directory of copies; removed when the process that made it exits.
struct copies {
  fs::path dir;
  pid_t owner = ::getpid();
  copies() {
    dir = fs::temp_directory_path() / ("slabtest-bin." + std::to_string(owner));
    fs::create_directories(dir);
    fs::permissions(dir, anyone_may_run);
  }
  copies(const copies&) = delete;
  copies& operator=(const copies&) = delete;
  ~copies() {
    std::error_code ec;
    if (::getpid() == owner) fs::remove_all(dir, ec);
  }
};

} // namespace

std::string executable_for_anyone(const std::string& binary) {
  if (reachable_by_anyone(binary)) return binary;
  static copies c;
  const fs::path copy = c.dir / fs::path(binary).filename();
  if (!fs::exists(copy)) {
    fs::copy_file(binary, copy);
    fs::permissions(copy, anyone_may_run);
  }
  return copy.string();
}

} // namespace slabtest
