// Test-only fault injection: named points between the stores of every shared step,
// where a torture test can make a context "die" (throw out of the step, or kill the
// process) and then check that reclaim puts everything back.
//
// Off unless SLAB_FAULT_INJECTION is defined for the whole program, in which case the
// points call a thread-local hook and the core's operations are no longer noexcept.
#pragma once

namespace slab::core::fault {

#ifdef SLAB_FAULT_INJECTION
inline constexpr bool enabled = true;
using hook_fn = void (*)(const char* point);
inline thread_local hook_fn hook = nullptr;
inline void point(const char* name) {
  if (hook != nullptr) hook(name);
}
#else
inline constexpr bool enabled = false;
inline void point(const char*) noexcept {}
#endif

} // namespace slab::core::fault

/// noexcept for every shared-step function, except in fault-injection builds.
#define SLAB_STEP_NOEXCEPT noexcept(!::slab::core::fault::enabled)
