// Turning a platform call's error value into the daemon's exception, for the calls whose
// failure means shmd cannot run at all (its event loop's descriptors).
#pragma once

#include <string>
#include <utility>

#include <slab/error.hpp>
#include <slab/platform/platform.hpp>

namespace shmd {

/// The value of `r`, or slab::error(errc::system) with the platform's message.
template <class T> T checked(slab::platform::result<T> r) {
  if (!r) throw slab::error(slab::errc::system, r.error().what);
  return std::move(r.value());
}

} // namespace shmd
