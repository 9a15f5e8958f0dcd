// slabctl --config FILE: the socket shmd's config names, read from the file itself so
// that slabctl depends on nothing of shmd's.
#pragma once

#include <string>

namespace slabctl {

/// [daemon] socket of shmd's config at `path`, or the default socket when the key is
/// absent. What it reads is held to shmd's own rules: a file that does not parse is
/// "FILE:LINE:COLUMN: TOML syntax error: ...", and a socket that is not a string, not an
/// absolute path, or too long for a Unix socket address is an error naming the file and
/// the place. Nothing else in the file is checked: that is shmd's job. Throws
/// slab::error (errc::config).
std::string socket_from_config(const std::string& path);

} // namespace slabctl
