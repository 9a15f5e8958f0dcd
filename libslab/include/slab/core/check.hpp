// check: two kinds of checking, kept apart as snmalloc keeps SNMALLOC_ASSERT apart from
// its client checks.
//
//  - SLAB_ASSERT(cond, why): an invariant of this context's own state (its cache, its
//    record as it last wrote it, the step it is in). Failing one is a bug in this
//    library or a context used by two threads at once. On in debug and sanitizer builds
//    (SLAB_CHECKS=1), compiled out of release builds: `cond` is then not evaluated, so it
//    may cost anything.
//  - Data another process wrote (a slot header, a magazine's contents, a dead context's
//    record) is never asserted on: a dying or hostile process can write anything there.
//    The core refuses it and counts it (context_counters::anomalies and ::stale, the
//    reclaim report's problems), in every build.
//
// SLAB_CHECKS defaults to on exactly when NDEBUG is not defined, like assert. The
// project's presets turn it on for the debug, asan and tsan builds. It never changes a
// type's layout: code built with and without it can share a pool and a cache object.
#pragma once

#include <cstdio>
#include <cstdlib>

#ifndef SLAB_CHECKS
#ifdef NDEBUG
#define SLAB_CHECKS 0
#else
#define SLAB_CHECKS 1
#endif
#endif

namespace slab::core::check {

inline constexpr bool enabled = SLAB_CHECKS != 0;

/// Reports a failed assertion and aborts (a core dump shows the state that broke it).
[[noreturn]] inline void fail(const char* cond, const char* why, const char* file,
                              int line) noexcept {
  std::fprintf(stderr, "%s:%d: slab invariant broken: %s (%s)\n", file, line, why, cond);
  std::fflush(stderr);
  std::abort();
}

} // namespace slab::core::check

#if SLAB_CHECKS
#define SLAB_ASSERT(cond, why)                                                                     \
  ((cond) ? static_cast<void>(0) : ::slab::core::check::fail(#cond, why, __FILE__, __LINE__))
#else
#define SLAB_ASSERT(cond, why) static_cast<void>(0)
#endif
