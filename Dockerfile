# Two stages: a full Go toolchain builds a static binary, and the image that ships holds only
# that binary on distroless static (CA certificates, tzdata, /etc/passwd, no shell). Fargate
# pulls the image on every task start, so a small image is a faster start.
#
# Build:   docker build -t streammatch --build-arg VERSION="$(git rev-parse --short HEAD)" .
# Offline: podman build --network none -v "$(go env GOMODCACHE)":/go/pkg/mod:ro \
#            --build-arg GOPROXY=off --pull=never -t streammatch .

# The build stage runs on the builder's own platform and cross-compiles to the target's
# (TARGETOS/TARGETARCH come from --platform), so an arm64 laptop builds an amd64 image at native
# speed instead of under emulation.
FROM --platform=$BUILDPLATFORM docker.io/library/golang:1.26-bookworm AS build

# GOPROXY lets users behind a corporate proxy (or CI with GOPROXY=off and a mounted module
# cache) choose where modules come from; empty means Go's default.
ARG GOPROXY
WORKDIR /src

# Downloading modules before copying the source keeps this layer cached until go.mod or go.sum
# change. The module cache is a plain layer rather than a cache mount so that a build can also
# bind-mount a read-only module cache over /go/pkg/mod (the offline CI build does).
COPY go.mod go.sum ./
RUN GOPROXY="${GOPROXY:-$(go env GOPROXY)}" go mod download

COPY . .
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
# CGO_ENABLED=0 gives a static binary that runs on distroless static (no libc). -trimpath drops
# local paths, -s -w drop the symbol table and DWARF (about a third of the size), and
# main.version is what `streammatch version` and the status page print. The build cache mount
# makes a rebuild after a source change take seconds.
RUN --mount=type=cache,target=/root/.cache/go-build \
    GOPROXY=off CGO_ENABLED=0 GOOS="$TARGETOS" GOARCH="$TARGETARCH" \
    go build -trimpath -buildvcs=false -ldflags="-s -w -X main.version=${VERSION}" -o /streammatch .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /streammatch /streammatch
# 65532 is distroless's nonroot user. The number, not the name, so that runtimes that check
# runAsNonRoot without reading /etc/passwd accept it; taskdef.json sets the same user.
USER 65532:65532
EXPOSE 8080
# The binary is its own health check (`/streammatch healthcheck`, in taskdef.json): distroless
# has no shell or curl.
ENTRYPOINT ["/streammatch"]
