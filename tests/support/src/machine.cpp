#include <slabtest/machine.hpp>

#include <fstream>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <slab/platform/platform.hpp>

namespace slabtest {

namespace {
constexpr const char* nr_hugepages = "/proc/sys/vm/nr_hugepages";
constexpr const char* overcommit = "/proc/sys/vm/nr_overcommit_hugepages";
constexpr const char* lock_path = "/tmp/slab-test-hugepages.lock";
} // namespace

bool is_root() noexcept { return ::geteuid() == 0; }

std::uint64_t read_number(const std::string& path) {
  std::ifstream in(path);
  std::uint64_t v = 0;
  in >> v;
  return v;
}

bool write_number(const std::string& path, std::uint64_t v) {
  std::ofstream out(path);
  out << v << '\n';
  out.flush();
  return static_cast<bool>(out);
}

hugepage_reserve::hugepage_reserve(std::uint64_t n) {
  lock_ = fd_handle(::open(lock_path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644));
  if (lock_.get() >= 0) ::flock(lock_.get(), LOCK_EX);
  const auto now = slab::platform::query_hugepages();
  if (now.page_size == 0) {
    why_ = "the kernel has no hugetlb support";
  } else if (n == 0 && now.total == 0 && read_number(overcommit) == 0) {
    return; // already none: no change needed, root or not
  } else if (!is_root()) {
    why_ = "changing vm.nr_hugepages needs root";
  } else {
    set(n);
  }
}

hugepage_reserve::~hugepage_reserve() {
  if (changed_) write_number(nr_hugepages, previous_);
  // Closing lock_ releases the flock.
}

void hugepage_reserve::set(std::uint64_t n) {
  if (read_number(overcommit) != 0) {
    why_ = "vm.nr_overcommit_hugepages is not 0: surplus hugepages would blur the test";
    return;
  }
  previous_ = read_number(nr_hugepages);
  changed_ = true;
  if (!write_number(nr_hugepages, n) || slab::platform::query_hugepages().available() != n)
    why_ = "could not get exactly " + std::to_string(n) + " free hugepages (in use elsewhere?)";
}

} // namespace slabtest
