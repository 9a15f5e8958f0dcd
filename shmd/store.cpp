#include "store.hpp"

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <slab/error.hpp>
#include <slab/platform/files.hpp>
#include <slab/platform/process.hpp>

#include "log.hpp"

namespace shmd {
namespace {

namespace platform = slab::platform;

// Why shmd may not use a directory, and what to change: it runs as some user, which must
// be able to write there.
slab::error dir_problem(std::string what, int err) {
  if (err == EACCES || err == EPERM || err == EROFS) {
    what += " (shmd runs as uid " + std::to_string(platform::own_effective_uid()) + ", gid " +
            std::to_string(platform::own_effective_gid()) +
            "; the directory must be writable by it: chown it to shmd's user, as the package's "
            "tmpfiles.d/shmd.conf does, or point segment_dir/hugepage_dir elsewhere)";
  }
  return slab::error(slab::errc::system, what);
}

platform::file_lock lock_segment_dir(const std::string& dir, bool own_only) {
  const std::string path = dir + "/.shmd.lock";
  platform::result<platform::file_lock> lock = platform::lock_file(path, own_only);
  if (lock) return std::move(lock.value());
  const platform::sys_error& e = lock.error();
  if (e.err == EWOULDBLOCK) {
    throw slab::error(slab::errc::system, "another shmd is using the segment directory " + dir +
                                              " (" + path + " is locked); not touching its pools");
  }
  throw dir_problem(e.what, e.err);
}

} // namespace

segment_store open_store(const daemon_config& cfg, store_use use) {
  segment_store store;
  store.dirs.normal_dir = cfg.segment_dir;
  store.dirs.huge_dir = cfg.hugepage_dir;
  if (store.dirs.huge_dir == "auto") {
    const std::string mount = platform::find_hugetlbfs_mount();
    store.dirs.huge_dir = mount.empty() ? std::string() : mount + "/shmd";
    if (mount.empty()) {
      log_info("no hugetlbfs mount: hugepage segments are memfds and do not survive a "
               "restart of shmd (mount hugetlbfs, e.g. at /dev/hugepages, to keep them)");
    }
  }
  for (const std::string* dir : {&store.dirs.normal_dir, &store.dirs.huge_dir}) {
    if (dir->empty()) continue;
    if (const platform::status made = platform::make_directory(*dir, 0700); !made) {
      throw dir_problem("cannot create segment directory " + *dir + ": " +
                            std::strerror(made.error().err),
                        made.error().err);
    }
    // Another user's directory (made before shmd, say in /dev/shm after a reboot), or
    // one others may write to, could hold pools or links that user planted.
    if (const platform::status mine = use == store_use::serve
                                          ? platform::check_private_directory(*dir)
                                          : platform::status(platform::ok_t{});
        !mine) {
      throw slab::error(slab::errc::permission_denied,
                        "refusing segment directory " + mine.error().what +
                            ". If it holds shmd's own pools from a run as another user, "
                            "chown -R it to shmd's user; otherwise remove it (or point "
                            "segment_dir/hugepage_dir elsewhere)");
    }
    store.locks.push_back(lock_segment_dir(*dir, use == store_use::serve));
  }
  return store;
}

std::vector<std::string> report_unconfigured(const segment_store& store, const daemon_config& cfg) {
  constexpr std::string_view suffix = ".control"; // one per pool (mapped/internal.hpp)
  std::vector<std::string> found;
  for (const std::string* dir : {&store.dirs.normal_dir, &store.dirs.huge_dir}) {
    if (dir->empty()) continue;
    const platform::result<std::vector<std::string>> names = platform::list_directory(*dir);
    if (!names) continue; // open_store made and checked it: nothing to add here
    for (const std::string& n : names.value()) {
      if (n.size() <= suffix.size() ||
          n.compare(n.size() - suffix.size(), suffix.size(), suffix) != 0)
        continue;
      const std::string pool = n.substr(0, n.size() - suffix.size());
      bool configured = false;
      for (const pool_config& p : cfg.pools)
        configured = configured || p.name == pool;
      if (configured) continue;
      found.push_back(pool);
      log_notice("pool '" + pool + "' has segments in " + *dir + " but is not in " + cfg.source +
                 ": left as it is, its memory stays taken; `shmd --config " + cfg.source +
                 " --destroy " + pool + "` removes it, or add it back to the config to serve it");
    }
  }
  return found;
}

} // namespace shmd
