// locked_backing: slab::slab's tiers from map_anonymous (hugepages, NUMA, prefault,
// mlock), with platform errors turned into slab::error.
#include <slab/platform/locked_backing.hpp>

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <new>
#include <utility>

#include <slab/error.hpp>

namespace slab::platform {
namespace {

errc to_errc(sys_cause c) noexcept {
  switch (c) {
  case sys_cause::invalid_argument: return errc::invalid_argument;
  case sys_cause::memory: return errc::out_of_memory;
  case sys_cause::hugepages: return errc::hugepages;
  case sys_cause::numa: return errc::numa;
  case sys_cause::mlock: return errc::mlock;
  case sys_cause::other: break;
  }
  return errc::system;
}

void stderr_sink(const std::string& msg) {
  std::fprintf(stderr, "slab: warning: %s\n", msg.c_str());
}

} // namespace

locked_backing::locked_backing(map_options opt, warning_sink warn)
    : opt_(opt), warn_(warn ? std::move(warn) : warning_sink(stderr_sink)) {}

// A moved-from backing owns no block, so its destructor cannot unmap a tier that now
// belongs to the slab it was moved into.
locked_backing::locked_backing(locked_backing&& o) noexcept
    : opt_(o.opt_), warn_(std::move(o.warn_)), fell_back_(o.fell_back_), maps_(std::move(o.maps_)) {
  o.maps_.clear();
}

locked_backing& locked_backing::operator=(locked_backing&& o) noexcept {
  if (this != &o) {
    release();
    opt_ = o.opt_;
    warn_.swap(o.warn_); // swap: std::function's move assignment is not noexcept everywhere
    fell_back_ = o.fell_back_;
    maps_ = std::move(o.maps_);
    o.maps_.clear();
  }
  return *this;
}

locked_backing::~locked_backing() { release(); }

void* locked_backing::allocate(std::size_t bytes, std::size_t align) {
  try {
    maps_.reserve(maps_.size() + 1); // so remembering the block below cannot throw
  } catch (const std::bad_alloc&) {
    throw error(errc::out_of_memory, "slab: locked_backing: no memory to track a new tier");
  }
  map_options o = opt_;
  o.align = std::max(o.align, align);
  result<mapping> m = map_anonymous(bytes, o);
  if (!m) throw error(to_errc(m.error().cause), "slab: locked_backing: " + m.error().what);
  maps_.push_back(std::move(m.value()));
  const mapping& got = maps_.back();
  if (!got.fallback.empty() && !fell_back_) {
    fell_back_ = true; // warn once per backing: every later tier would say the same
    if (warn_) {
      warn_("a " + std::to_string(got.bytes) +
            "-byte tier uses normal pages, not hugepages (later ones are not reported): " +
            got.fallback);
    }
  }
  return got.addr;
}

void locked_backing::deallocate(void* p, std::size_t /*bytes*/, std::size_t /*align*/) noexcept {
  // The remembered mapping, not `bytes`, gives the length: it was rounded up to the page
  // size in force, which only the mapping knows.
  const auto it =
      std::find_if(maps_.begin(), maps_.end(), [p](const mapping& m) { return m.addr == p; });
  assert(it != maps_.end() && "deallocate of a block this backing did not allocate");
  if (it == maps_.end()) return;
  unmap(*it);
  maps_.erase(it);
}

void locked_backing::release() noexcept {
  for (const mapping& m : maps_)
    unmap(m);
  maps_.clear();
}

} // namespace slab::platform
