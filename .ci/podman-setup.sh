#!/usr/bin/env bash
# Makes podman usable on a CI machine (Debian 12, root, no Docker engine):
#   1. installs podman, runc and skopeo with apt-get when they are missing;
#   2. writes a containers.conf that lets `podman run` work here (runc, cgroupfs, and rlimits no
#      higher than conmon's; without it run fails with "setrlimit ... Operation not permitted");
#   3. with --socket (or PODMAN_SOCKET=1), starts `podman system service` for a
#      Docker-compatible socket, for testcontainers-go.
#
# It can be sourced or run. Sourced (`source .ci/podman-setup.sh [--socket]`), it exports
# CONTAINERS_CONF (and DOCKER_HOST, TESTCONTAINERS_RYUK_DISABLED) into the caller and leaves no
# functions behind; its function names are prefixed so they cannot replace the caller's. Run,
# it prints those as `export NAME=value` lines on stdout, for
#
#   eval "$(bash .ci/podman-setup.sh --socket)"
#
# Progress goes to stderr either way. Any failure exits non-zero (and so ends a sourcing script
# that runs under set -e): CI must not carry on without working containers.
#
# Environment:
#   CONTAINERS_CONF_PATH  where to write containers.conf (default /etc/streammatch/containers.conf)
#   PODMAN_SOCKET_PATH    the socket path (default /run/podman/podman.sock)
set -euo pipefail

podman_setup_log() { printf '%s podman-setup: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
podman_setup_die() {
	podman_setup_podman_setup_log "FAILED: $*"
	exit 1
}

podman_setup_install() {
	local missing=() pkg
	command -v podman >/dev/null || missing+=(podman)
	command -v runc >/dev/null || missing+=(runc)
	command -v skopeo >/dev/null || missing+=(skopeo)
	if ((${#missing[@]} == 0)); then
		podman_setup_log "podman, runc and skopeo are installed"
		return
	fi
	command -v apt-get >/dev/null || podman_setup_die "missing ${missing[*]} and no apt-get to install them"
	podman_setup_log "installing ${missing[*]}"
	local start=$SECONDS
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || podman_setup_die "apt-get update"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 ||
		podman_setup_die "apt-get install ${missing[*]}"
	for pkg in "${missing[@]}"; do
		command -v "$pkg" >/dev/null || podman_setup_die "$pkg still missing after apt-get install"
	done
	podman_setup_log "installed in $((SECONDS - start))s"
}

podman_setup_write_conf() {
	local conf=$1
	mkdir -p "$(dirname "$conf")"
	cat >"$conf" <<'EOF'
# Written by .ci/podman-setup.sh. The default crun and systemd cgroups do not work on these
# machines, and podman's default rlimits are higher than conmon may set.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
	podman_setup_log "wrote $conf"
}

podman_setup_start_socket() {
	local sock=$1 conf=$2
	if [[ -S $sock ]] && CONTAINERS_CONF=$conf podman --url "unix://$sock" version >/dev/null 2>&1; then
		podman_setup_log "podman service already answers on $sock"
		return
	fi
	mkdir -p "$(dirname "$sock")"
	rm -f "$sock"
	# setsid and nohup detach the service from this script and from CI's process group, so it
	# outlives the script; its podman_setup_log goes next to the socket for post-mortems.
	CONTAINERS_CONF=$conf setsid nohup podman system service --time=0 "unix://$sock" \
		>"$sock.log" 2>&1 </dev/null &
	podman_setup_log "started podman system service (pid $!) on $sock, log in $sock.log"
	local deadline=$((SECONDS + 60))
	until CONTAINERS_CONF=$conf podman --url "unix://$sock" version >/dev/null 2>&1; do
		((SECONDS < deadline)) || podman_setup_die "podman service did not answer on $sock within 60s (see $sock.log)"
		sleep 0.5
	done
	podman_setup_log "podman service answers on $sock"
}

podman_setup_main() {
	local socket=${PODMAN_SOCKET:-0}
	case ${1:-} in
	--socket) socket=1 ;;
	"") ;;
	*) podman_setup_die "usage: $0 [--socket]" ;;
	esac

	podman_setup_install
	local conf=${CONTAINERS_CONF_PATH:-/etc/streammatch/containers.conf}
	podman_setup_write_conf "$conf"
	CONTAINERS_CONF=$conf podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}}' >&2 ||
		podman_setup_die "podman info with $conf"
	podman_setup_export CONTAINERS_CONF "$conf"

	if [[ $socket == 1 ]]; then
		local sock=${PODMAN_SOCKET_PATH:-/run/podman/podman.sock}
		podman_setup_start_socket "$sock" "$conf"
		podman_setup_export DOCKER_HOST "unix://$sock"
		podman_setup_export TESTCONTAINERS_RYUK_DISABLED true
	fi
}

# podman_setup_export exports NAME=VALUE into a sourcing shell, or prints the export line
# when the script runs on its own.
podman_setup_export() {
	if [[ $podman_setup_sourced == 1 ]]; then
		export "$1=$2"
	else
		printf 'export %s=%q\n' "$1" "$2"
	fi
}

podman_setup_sourced=0
[[ ${BASH_SOURCE[0]} != "$0" ]] && podman_setup_sourced=1
podman_setup_main "$@"
if [[ $podman_setup_sourced == 1 ]]; then
	unset -f podman_setup_log podman_setup_die podman_setup_install podman_setup_write_conf \
		podman_setup_start_socket podman_setup_main podman_setup_export
	unset podman_setup_sourced
fi
