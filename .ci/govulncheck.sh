#!/usr/bin/env bash
# Runs govulncheck over the module. It fails on any finding (a vulnerable function that the
# code can reach) unless docs/govulncheck.md explains that finding by its ID (GO-YYYY-NNNN):
# why it does not apply, or what is done about it. govulncheck comes from the Go module proxy.
#
# The vulnerability database is not a Go module: govulncheck fetches it from vuln.go.dev, or
# from GOVULNDB (a URL, e.g. file:///path/to/vulndb) when set. Where neither can be reached,
# the check cannot run; the script says so on a line of its own and exits 0, unless
# GOVULNCHECK_REQUIRED=1, which makes that a failure (set it where the database is reachable).
set -euo pipefail

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'govulncheck.sh: %s\n' "$*" >&2; exit 1; }

main() {
  cd "$(dirname "$0")/.."
  local bin explained=docs/govulncheck.md ids id unexplained=()
  bin="$(go env GOPATH)/bin/govulncheck"
  if [[ ! -x $bin ]]; then
    log "go install golang.org/x/vuln/cmd/govulncheck@latest"
    go install golang.org/x/vuln/cmd/govulncheck@latest || die "cannot install govulncheck"
  fi
  # A global, so that the EXIT trap still sees it after main has returned.
  out=$(mktemp)
  trap 'rm -f "$out"' EXIT
  log "govulncheck ./..."
  # Exit status 3 means findings; anything else non-zero is a failure to run at all.
  local rc=0
  local db_args=()
  [[ -n ${GOVULNDB:-} ]] && db_args=(-db "$GOVULNDB")
  "$bin" "${db_args[@]}" ./... >"$out" 2>&1 || rc=$?
  cat "$out"
  if ((rc != 0 && rc != 3)) && grep -q 'fetching vulnerabilities' "$out"; then
    if [[ ${GOVULNCHECK_REQUIRED:-0} == 1 ]]; then
      die "the vulnerability database cannot be reached and GOVULNCHECK_REQUIRED=1"
    fi
    printf 'govulncheck: NOT RUN: the vulnerability database (%s) cannot be reached from this machine; see docs/govulncheck.md\n' \
      "${GOVULNDB:-https://vuln.go.dev}" >&2
    return 0
  fi
  case $rc in
    0) log "govulncheck: no vulnerabilities reached"; return 0 ;;
    3) ;;
    *) die "govulncheck could not run (status $rc)" ;;
  esac
  mapfile -t ids < <(grep -oE 'GO-[0-9]{4}-[0-9]+' "$out" | sort -u)
  ((${#ids[@]} > 0)) || die "govulncheck reported findings without IDs"
  for id in "${ids[@]}"; do
    if [[ ! -f $explained ]] || ! grep -q -- "$id" "$explained"; then
      unexplained+=("$id")
    fi
  done
  ((${#unexplained[@]} == 0)) || die "findings not explained in $explained: ${unexplained[*]}"
  log "govulncheck: ${#ids[@]} finding(s), each explained in $explained"
}

main "$@"
