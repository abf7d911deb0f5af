#!/usr/bin/env bash
# Makes podman usable on a CI machine (Debian 12, root, no Docker engine):
#   1. installs podman, runc and skopeo with apt-get when they are missing;
#   2. writes a containers.conf that lets `podman run` work here (runc, cgroupfs, and rlimits no
#      higher than conmon's; without it run fails with "setrlimit ... Operation not permitted");
#   3. with --socket (or PODMAN_SOCKET=1), starts `podman system service` for a
#      Docker-compatible socket, for testcontainers-go.
#
# Progress goes to stderr. Stdout carries only `export NAME=value` lines, so a caller does:
#
#   eval "$(bash .ci/podman-setup.sh --socket)"
#
# Environment:
#   CONTAINERS_CONF_PATH  where to write containers.conf (default /etc/streammatch/containers.conf)
#   PODMAN_SOCKET_PATH    the socket path (default /run/podman/podman.sock)
set -euo pipefail

log() { printf '%s podman-setup: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

install_packages() {
	local missing=() pkg
	command -v podman >/dev/null || missing+=(podman)
	command -v runc >/dev/null || missing+=(runc)
	command -v skopeo >/dev/null || missing+=(skopeo)
	if ((${#missing[@]} == 0)); then
		log "podman, runc and skopeo are installed"
		return
	fi
	command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
	log "installing ${missing[*]}"
	local start=$SECONDS
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 ||
		die "apt-get install ${missing[*]}"
	for pkg in "${missing[@]}"; do
		command -v "$pkg" >/dev/null || die "$pkg still missing after apt-get install"
	done
	log "installed in $((SECONDS - start))s"
}

write_conf() {
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
	log "wrote $conf"
}

start_socket() {
	local sock=$1 conf=$2
	if [[ -S $sock ]] && CONTAINERS_CONF=$conf podman --url "unix://$sock" version >/dev/null 2>&1; then
		log "podman service already answers on $sock"
		return
	fi
	mkdir -p "$(dirname "$sock")"
	rm -f "$sock"
	# setsid and nohup detach the service from this script and from CI's process group, so it
	# outlives the script; its log goes next to the socket for post-mortems.
	CONTAINERS_CONF=$conf setsid nohup podman system service --time=0 "unix://$sock" \
		>"$sock.log" 2>&1 </dev/null &
	log "started podman system service (pid $!) on $sock, log $sock.log"
	local deadline=$((SECONDS + 60))
	until CONTAINERS_CONF=$conf podman --url "unix://$sock" version >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "podman service did not answer on $sock within 60s (see $sock.log)"
		sleep 0.5
	done
	log "podman service answers on $sock"
}

main() {
	local socket=${PODMAN_SOCKET:-0}
	case ${1:-} in
	--socket) socket=1 ;;
	"") ;;
	*) die "usage: $0 [--socket]" ;;
	esac

	install_packages
	local conf=${CONTAINERS_CONF_PATH:-/etc/streammatch/containers.conf}
	write_conf "$conf"
	export CONTAINERS_CONF=$conf
	CONTAINERS_CONF=$conf podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}}' >&2 ||
		die "podman info with $conf"
	printf 'export CONTAINERS_CONF=%q\n' "$conf"

	if [[ $socket == 1 ]]; then
		local sock=${PODMAN_SOCKET_PATH:-/run/podman/podman.sock}
		start_socket "$sock" "$conf"
		printf 'export DOCKER_HOST=%q\n' "unix://$sock"
		printf 'export TESTCONTAINERS_RYUK_DISABLED=true\n'
	fi
}

main "$@"
