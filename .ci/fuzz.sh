#!/usr/bin/env bash
# Runs every fuzz target of the module for a bounded time each (FUZZTIME, default 20s), after
# the seed corpora have run as ordinary tests. A target that finds a failing input makes the
# script fail; go test then writes the input under testdata/fuzz/ in that package, so that it
# becomes a regression case once committed.
set -euo pipefail

log() { printf '== %s\n' "$*" >&2; }

# fuzz_targets prints "package target" for every Fuzz function of every package.
fuzz_targets() {
  local pkg target
  while read -r pkg; do
    while read -r target; do
      [[ $target == Fuzz* ]] && printf '%s %s\n' "$pkg" "$target"
    done < <(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
  done < <(go list ./...)
}

main() {
  cd "$(dirname "$0")/.."
  local fuzztime=${FUZZTIME:-20s} pkg target count=0
  local targets=()
  mapfile -t targets < <(fuzz_targets)
  ((${#targets[@]} > 0)) || { printf 'fuzz.sh: no fuzz targets found\n' >&2; exit 1; }
  for line in "${targets[@]}"; do
    read -r pkg target <<<"$line"
    log "fuzz $pkg $target for $fuzztime"
    # -run '^$' skips the package's other tests; one target per run, as go test requires.
    go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -parallel 2
    count=$((count + 1))
  done
  log "fuzzed $count targets for $fuzztime each"
}

main "$@"
