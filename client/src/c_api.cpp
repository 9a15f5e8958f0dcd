// The C interface (slab/slab.h) over slab::client and detail::raw_pool. Every entry point
// catches everything: a C caller gets a code and slab_last_error(), never an exception.
#include <slab/slab.h>

#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>

#include <slab/client.hpp>
#include <slab/error.hpp>

struct slab_client {
  slab::client c;
};
struct slab_pool {
  std::unique_ptr<slab::detail::raw_pool> raw;
};

namespace {

using slab::errc;

// The C codes are slab::errc's numbers: a new errc must get its SLAB_E_* twin.
static_assert(SLAB_E_EXHAUSTED == static_cast<int>(errc::exhausted));
static_assert(SLAB_E_OUT_OF_MEMORY == static_cast<int>(errc::out_of_memory));
static_assert(SLAB_E_HUGEPAGES == static_cast<int>(errc::hugepages));
static_assert(SLAB_E_MLOCK == static_cast<int>(errc::mlock));
static_assert(SLAB_E_NUMA == static_cast<int>(errc::numa));
static_assert(SLAB_E_INVALID_ARGUMENT == static_cast<int>(errc::invalid_argument));
static_assert(SLAB_E_CONFIG == static_cast<int>(errc::config));
static_assert(SLAB_E_NO_DAEMON == static_cast<int>(errc::no_daemon));
static_assert(SLAB_E_PERMISSION_DENIED == static_cast<int>(errc::permission_denied));
static_assert(SLAB_E_ABI_MISMATCH == static_cast<int>(errc::abi_mismatch));
static_assert(SLAB_E_PROTOCOL == static_cast<int>(errc::protocol));
static_assert(SLAB_E_TYPE_MISMATCH == static_cast<int>(errc::type_mismatch));
static_assert(SLAB_E_NOT_FOUND == static_cast<int>(errc::not_found));
static_assert(SLAB_E_SYSTEM == static_cast<int>(errc::system));
static_assert(SLAB_E_NOT_SUPPORTED == static_cast<int>(errc::not_supported));
static_assert(sizeof(slab_key) == sizeof(slab::key));

thread_local std::string last_error; // NOLINT: per-thread by contract (slab_last_error)

int fail(int code, std::string what) noexcept {
  try {
    last_error = std::move(what);
  } catch (...) {
    last_error.clear(); // out of memory for the message: the code still says it
  }
  return code;
}

// Runs f, turning whatever it throws into a code and a message.
template <class F> int guarded(const char* fn, F&& f) noexcept {
  try {
    return f();
  } catch (const slab::error& e) {
    return fail(static_cast<int>(e.code()), std::string(fn) + ": " + e.what());
  } catch (const std::bad_alloc&) {
    return fail(SLAB_E_OUT_OF_MEMORY, std::string(fn) + ": out of memory");
  } catch (const std::exception& e) {
    return fail(SLAB_E_INTERNAL, std::string(fn) + ": " + e.what());
  } catch (...) {
    return fail(SLAB_E_INTERNAL, std::string(fn) + ": unknown exception");
  }
}

int null_argument(const char* fn, const char* arg) noexcept {
  return fail(SLAB_E_INVALID_ARGUMENT, std::string(fn) + ": " + arg + " is NULL");
}

// slab_free and slab_take: the arena refusal, the free, and the stale-key error.
template <class Free> int free_named(const char* fn, slab_pool* p, slab_key key, Free&& free) {
  if (p->raw->arena()) {
    return fail(SLAB_E_NOT_SUPPORTED, std::string(fn) + ": pool '" + p->raw->name() +
                                          "' is an arena (mode = \"arena\" in shmd's config): "
                                          "its slots are never freed");
  }
  if (free(slab::key::from_raw(key))) return SLAB_OK;
  return guarded(fn, [&] {
    return fail(SLAB_E_STALE, std::string(fn) + ": key " + std::to_string(key) + " (slot " +
                                  std::to_string(slab::key::from_raw(key).index()) +
                                  ") is not live in pool '" + p->raw->name() +
                                  "': freed already, in this or another process, or never valid");
  });
}

} // namespace

extern "C" {

int slab_attach(const char* socket_path, slab_client** out) {
  if (out == nullptr) return null_argument("slab_attach", "out");
  return guarded("slab_attach", [&] {
    slab::client c = socket_path != nullptr ? slab::client::connect(std::string(socket_path))
                                            : slab::client::connect();
    *out = new slab_client{std::move(c)};
    return SLAB_OK;
  });
}

void slab_detach(slab_client* c) { delete c; }

int slab_open(slab_client* c, const char* name, std::size_t size, std::size_t align,
              slab_pool** out) {
  if (c == nullptr) return null_argument("slab_open", "client");
  if (name == nullptr) return null_argument("slab_open", "name");
  if (out == nullptr) return null_argument("slab_open", "out");
  if (size == 0 || align == 0 || (align & (align - 1)) != 0) {
    return fail(SLAB_E_INVALID_ARGUMENT,
                "slab_open: pool '" + std::string(name) + "': size " + std::to_string(size) +
                    " and align " + std::to_string(align) +
                    ": the size must be at least 1 and the alignment a power of two");
  }
  return guarded("slab_open", [&] {
    *out = new slab_pool{c->c.open_raw(name, size, align)};
    return SLAB_OK;
  });
}

void slab_close(slab_pool* p) { delete p; }

int slab_alloc(slab_pool* p, slab_key* key, void** payload) {
  if (p == nullptr) return null_argument("slab_alloc", "pool");
  if (key == nullptr) return null_argument("slab_alloc", "key");
  return guarded("slab_alloc", [&] {
    const slab::key k = p->raw->alloc();
    *key = k.raw();
    if (payload != nullptr) *payload = p->raw->payload(k.index());
    return SLAB_OK;
  });
}

void* slab_get(slab_pool* p, slab_key key) {
  if (p == nullptr) return nullptr;
  return p->raw->get(slab::key::from_raw(key));
}

int slab_free(slab_pool* p, slab_key key) {
  if (p == nullptr) return null_argument("slab_free", "pool");
  return free_named("slab_free", p, key, [&](slab::key k) { return p->raw->free(k, [] {}); });
}

int slab_take(slab_pool* p, slab_key key, void* out, size_t size) {
  if (p == nullptr) return null_argument("slab_take", "pool");
  if (out == nullptr) return null_argument("slab_take", "out");
  if (size > p->raw->slot_size()) {
    return fail(SLAB_E_INVALID_ARGUMENT, "slab_take: size " + std::to_string(size) +
                                             " is more than pool '" + p->raw->name() +
                                             "' holds per slot (" +
                                             std::to_string(p->raw->slot_size()) + " bytes)");
  }
  return free_named("slab_take", p, key, [&](slab::key k) {
    return p->raw->free_reading(k, [&] { std::memcpy(out, p->raw->payload(k.index()), size); });
  });
}

int slab_stats(const slab_pool* p, slab_pool_stats* out) {
  if (p == nullptr) return null_argument("slab_stats", "pool");
  if (out == nullptr) return null_argument("slab_stats", "out");
  return guarded("slab_stats", [&] {
    const slab::pool_stats s = p->raw->stats();
    slab_pool_stats r{};
    std::strncpy(r.name, s.name.c_str(), sizeof r.name - 1);
    r.slot_size = s.slot_size;
    r.tiers = s.tiers;
    r.ready_slots = s.ready_slots;
    r.max_slots = s.max_slots;
    r.live = s.live;
    r.hugepages = s.hugepages ? 1 : 0;
    r.fell_back = s.fell_back ? 1 : 0;
    r.arena = s.arena ? 1 : 0;
    *out = r;
    return SLAB_OK;
  });
}

const char* slab_strerror(int code) {
  switch (code) {
  case SLAB_OK: return "success";
  case SLAB_E_EXHAUSTED: return "no free slot and no room to grow, or no context left";
  case SLAB_E_OUT_OF_MEMORY: return "memory could not be obtained";
  case SLAB_E_HUGEPAGES: return "hugepages were required and are not available";
  case SLAB_E_MLOCK: return "memory could not be locked";
  case SLAB_E_NUMA: return "NUMA binding or placement failed";
  case SLAB_E_INVALID_ARGUMENT: return "invalid argument";
  case SLAB_E_CONFIG: return "malformed configuration";
  case SLAB_E_NO_DAEMON: return "shmd is not running at the socket";
  case SLAB_E_PERMISSION_DENIED: return "shmd refused this process's credentials";
  case SLAB_E_ABI_MISMATCH: return "library and shmd speak different protocol versions";
  case SLAB_E_PROTOCOL: return "malformed or unexpected message from shmd";
  case SLAB_E_TYPE_MISMATCH: return "size or alignment does not fit the pool's slots";
  case SLAB_E_NOT_FOUND: return "no such pool";
  case SLAB_E_SYSTEM: return "an OS call failed";
  case SLAB_E_NOT_SUPPORTED: return "not supported by the pool's mode";
  case SLAB_E_STALE: return "the key names no live value";
  case SLAB_E_INTERNAL: return "unexpected failure inside the slab library";
  default: return "unknown slab error code";
  }
}

const char* slab_last_error(void) { return last_error.c_str(); }

} // extern "C"
