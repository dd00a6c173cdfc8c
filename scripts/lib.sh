# shellcheck shell=bash
# Helpers shared by scripts/test and scripts/demo. Source it; don't execute it.

GROKALIGN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# configure <builddir> [extra cmake args...]
# Release by default; a later -DCMAKE_BUILD_TYPE=... in the extra args overrides it.
configure() {
  local dir="$1"
  shift
  cmake -S "$GROKALIGN_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@"
}

# configure_and_build <builddir> [extra cmake args...]
configure_and_build() {
  local dir="$1"
  configure "$@"
  cmake --build "$dir" -j "$(nproc)"
}
