#!/usr/bin/env bash
# Assembles the two base images the Dockerfile names, without pulling anything from a registry:
#
#   docker.io/library/golang:1.26-bookworm     Debian bookworm (debootstrap, minbase) plus the
#                                              host's /usr/local/go
#   gcr.io/distroless/static-debian12:nonroot  a stand-in for distroless static: /etc/passwd with
#                                              nonroot (65532), /etc/group, the CA bundle and
#                                              zoneinfo, USER 65532
#
# CI machines reach Debian's apt mirror and the Go module proxy but no container registry, so
# `podman build --pull=never` needs these images to exist locally first. The script is
# idempotent: when both images exist it does nothing. It prints how long each step took and
# stops at the first failure.
#
# Environment:
#   DEBIAN_MIRROR   the mirror for debootstrap (default: the first bookworm URI in apt's sources)
#   GOROOT_SRC      the Go tree to copy into the build image (default: $(go env GOROOT))
#   FORCE=1         rebuild both images even when they exist
set -euo pipefail

readonly GOLANG_IMAGE="docker.io/library/golang:1.26-bookworm"
readonly DISTROLESS_IMAGE="gcr.io/distroless/static-debian12:nonroot"

log() { printf '%s base-images: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# timed runs a step and reports how long it took, so slow CI runs can be read at a glance.
timed() {
	local what=$1
	shift
	local start=$SECONDS
	log "$what ..."
	"$@" || die "$what (exit $?)"
	log "$what done in $((SECONDS - start))s"
}

# debian_mirror prints the first bookworm (non-security) mirror URI from apt's configuration,
# in either the deb822 (.sources) or the one-line (sources.list) format.
debian_mirror() {
	if [[ -n ${DEBIAN_MIRROR:-} ]]; then
		printf '%s\n' "$DEBIAN_MIRROR"
		return
	fi
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -f $f ]] || continue
		uri=$(awk '/^URIs:/ { u = $2 } /^Suites:/ && / bookworm( |$)/ && u != "" { print u; exit }' "$f")
		if [[ -n $uri && $uri != *security* ]]; then
			printf '%s\n' "$uri"
			return
		fi
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -f $f ]] || continue
		uri=$(awk '$1 == "deb" && $3 == "bookworm" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' "$f")
		if [[ -n $uri ]]; then
			printf '%s\n' "$uri"
			return
		fi
	done
	return 1
}

need() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install podman debootstrap; Go from go.dev)"
	done
}

build_golang() {
	local work=$1 mirror goroot
	mirror=$(debian_mirror) || die "no bookworm mirror in /etc/apt sources; set DEBIAN_MIRROR"
	goroot=${GOROOT_SRC:-$(go env GOROOT)}
	[[ -x $goroot/bin/go ]] || die "no Go toolchain at $goroot"
	log "mirror $mirror, Go from $goroot ($("$goroot/bin/go" version))"

	# --include installs the CA bundle inside debootstrap, so no chroot (and no /proc mount)
	# is needed afterwards.
	timed "debootstrap bookworm" debootstrap --variant=minbase --include=ca-certificates \
		bookworm "$work/rootfs" "$mirror"
	rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
	mkdir -p "$work/rootfs/usr/local" "$work/rootfs/go/bin" "$work/rootfs/go/src"
	timed "copy Go into the rootfs" cp -a "$goroot" "$work/rootfs/usr/local/go"

	timed "import $GOLANG_IMAGE" import_tar "$work/rootfs" "$GOLANG_IMAGE" \
		--change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV GOPATH=/go' \
		--change 'ENV GOTOOLCHAIN=local' \
		--change 'WORKDIR /go' \
		--change 'CMD ["bash"]'
}

build_distroless() {
	local work=$1 root=$1/distroless
	local ca=/etc/ssl/certs/ca-certificates.crt zoneinfo=/usr/share/zoneinfo
	[[ -s $ca ]] || die "no CA bundle at $ca (apt-get install ca-certificates)"
	[[ -d $zoneinfo ]] || die "no zoneinfo at $zoneinfo (apt-get install tzdata)"

	mkdir -p "$root/etc/ssl/certs" "$root/usr/share" "$root/tmp" "$root/home/nonroot" "$root/root"
	chmod 1777 "$root/tmp"
	chmod 700 "$root/root"
	chown 65532:65532 "$root/home/nonroot"
	# The same users and groups distroless ships, so USER nonroot and 65532 both resolve.
	cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
	cat >"$root/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
EOF
	cp "$ca" "$root/etc/ssl/certs/ca-certificates.crt"
	cp -a "$zoneinfo" "$root/usr/share/zoneinfo"

	timed "import $DISTROLESS_IMAGE" import_tar "$root" "$DISTROLESS_IMAGE" \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
		--change 'USER 65532:65532' \
		--change 'WORKDIR /home/nonroot'
}

# import_tar turns a directory into an image. Numeric owners keep root-owned files root-owned
# and /home/nonroot owned by 65532 whatever the host's user names are.
import_tar() {
	local dir=$1 image=$2
	shift 2
	tar --numeric-owner -C "$dir" -c . | podman import --quiet "$@" - "$image" >/dev/null
}

main() {
	need podman
	local have_golang=0 have_distroless=0
	podman image exists "$GOLANG_IMAGE" && have_golang=1
	podman image exists "$DISTROLESS_IMAGE" && have_distroless=1
	if [[ ${FORCE:-0} != 1 && $have_golang == 1 && $have_distroless == 1 ]]; then
		log "both base images exist, nothing to do ($GOLANG_IMAGE, $DISTROLESS_IMAGE)"
		return 0
	fi
	[[ ${FORCE:-0} == 1 ]] && have_golang=0 have_distroless=0

	local work
	work=$(mktemp -d "${TMPDIR:-/tmp}/base-images.XXXXXX")
	# shellcheck disable=SC2064 # expand $work now: it is local and gone by EXIT time.
	trap "rm -rf '$work'" EXIT

	local start=$SECONDS
	if [[ $have_golang == 0 ]]; then
		need debootstrap go tar
		build_golang "$work"
	else
		log "$GOLANG_IMAGE exists, reusing"
	fi
	if [[ $have_distroless == 0 ]]; then
		build_distroless "$work"
	else
		log "$DISTROLESS_IMAGE exists, reusing"
	fi
	podman image exists "$GOLANG_IMAGE" || die "$GOLANG_IMAGE missing after import"
	podman image exists "$DISTROLESS_IMAGE" || die "$DISTROLESS_IMAGE missing after import"
	log "base images ready in $((SECONDS - start))s"
	local image
	for image in "$GOLANG_IMAGE" "$DISTROLESS_IMAGE"; do
		log "$image: $(podman image inspect --format '{{.Size}}' "$image") bytes"
	done
}

main "$@"
