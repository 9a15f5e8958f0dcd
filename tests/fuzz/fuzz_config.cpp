// fuzz_config: shmd's configuration parser (shmd::parse_config) on arbitrary bytes. The
// only thing allowed to escape is slab::error(errc::config) whose message starts with the
// file's name, as the operator would see it; anything else (another exception, another
// code, a message that does not say where) aborts, which libFuzzer reports.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include <slab/error.hpp>

#include "shmd/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    (void)shmd::parse_config(text, "fuzz.toml");
  } catch (const slab::error& e) {
    const std::string_view what = e.what();
    if (e.code() == slab::errc::config && what.rfind("fuzz.toml", 0) == 0) return 0;
    std::fprintf(stderr, "fuzz_config: slab::error of code %d: %s\n", static_cast<int>(e.code()),
                 e.what());
    std::abort();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_config: escaped: %s\n", e.what());
    std::abort();
  }
  return 0;
}
