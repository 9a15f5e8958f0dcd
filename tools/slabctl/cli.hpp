// slabctl's command line and its verbs: cli.cpp reads the command line and runs a verb;
// verbs.cpp (status, metrics, audit, top) and inspect.cpp carry them out. Verbs, options
// and exit codes: docs/slabctl.md (and `slabctl --help`).
#pragma once

#include <string>
#include <vector>

#include "exit_codes.hpp"

namespace slabctl {

struct options {
  std::string socket;
  std::string verb;
  std::vector<std::string> args;
  bool json = false;
  bool numa_check = true;
  double interval = 1.0;
  double timeout = 10.0;
};

/// A bad command line: exit_code::usage, with a pointer to --help.
[[noreturn]] void usage_error(const std::string& what);

/// Runs o.verb; returns the exit code. Errors are thrown: failure, or slab::error from
/// the client library (cli.cpp maps both to exit codes).
int run_verb(const options& o);

int cmd_status(const options& o);
int cmd_metrics(const options& o);
int cmd_audit(const options& o);
int cmd_inspect(const options& o);

} // namespace slabctl
