#!/usr/bin/env bash
# Installs every build, test and benchmark dependency from Debian 12's packages.
# Idempotent: packages already present are not touched, so a machine that has
# them needs no network. Called by tools/dev/demo and tools/dev/test.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  clang-format
  clang-tidy python3     # tools/dev/tidy, tools/dev/check-layers
  clang libclang-rt-14-dev  # tools/dev/fuzz: clang and its libFuzzer runtime (libclang_rt.fuzzer)
  libboost-dev          # Boost.Interprocess (header-only)
  libnuma-dev           # NUMA binding and placement queries
  libsystemd-dev        # sd_notify for shmd
  libgtest-dev libgmock-dev
  libbenchmark-dev
  libtomlplusplus-dev   # shmd's config parser
  procps util-linux     # sysctl, taskset, setarch
  dpkg-dev file         # cpack -G DEB: dpkg-shlibdeps computes the .deb's dependencies
  nlohmann-json3-dev    # slabctl's --json output and the tests that parse it
  tmux                  # slabctl top is driven in a pseudo-terminal by its test
  libdpdk-dev           # bench peer: rte_mempool with a per-lcore cache
  libmimalloc-dev libjemalloc-dev  # bench peers: general-purpose allocators
  gnuplot-nox           # bench: latency distribution plots
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "debian-deps: installing ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "debian-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
