#!/usr/bin/env bash
# Runs every streammatch benchmark and rewrites bench/RESULTS.md and bench/results.json.
#
#   bench/run.sh                 full run (about 8-10 minutes on 2 cores)
#   BENCH_QUICK=1 bench/run.sh   shorter windows and counts (about 3 minutes)
#
# Needs Go, python3 with boto3, moto_server and the aws CLI; podman is used for the image size
# when it and the base images (.ci/base-images.sh) are available, otherwise the image is
# recorded as not measured, with the reason. Not run by CI: CI runs go test.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${ROOT}/bench"
WORK="$(mktemp -d)"
QUICK="${BENCH_QUICK:-0}"
PIDS=()

log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill -- "-${pid}" 2>/dev/null || kill "${pid}" 2>/dev/null || true
	done
	rm -rf "${WORK}"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start runs a command in its own process group, so cleanup can stop it and its children.
start() {
	setsid "$@" >>"${WORK}/services.log" 2>&1 &
	PIDS+=("$!")
	echo "$!"
}

# wait_http waits until url answers with status want (default: any HTTP answer).
wait_http() {
	local url=$1 want=${2:-any} code
	for _ in $(seq 1 300); do
		code="$(curl -sS -o /dev/null -w '%{http_code}' "${url}" 2>/dev/null || true)"
		if [[ "${code}" != 000 && ( "${want}" == any || "${code}" == "${want}" ) ]]; then return 0; fi
		sleep 0.1
	done
	log "no answer from ${url}"
	return 1
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# jq-free JSON field read.
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

bench_go() {
	local count=$1 benchtime=$2
	log "pipeline benchmark (-cpu 1, -count ${count})"
	(cd "${ROOT}" && go test ./bench -run '^$' -bench 'BenchmarkPipeline' -cpu 1 -count "${count}" -benchtime "${benchtime}") >"${WORK}/pipeline.txt"
	(cd "${ROOT}" && go test ./bench -run '^$' -bench 'BenchmarkPipeline/decoder=selective' -cpu 1 -benchtime "${benchtime}" \
		-cpuprofile "${WORK}/pipeline.prof" -o "${WORK}/bench.test") >/dev/null
	go tool pprof -top -nodecount 12 "${WORK}/bench.test" "${WORK}/pipeline.prof" 2>/dev/null | tail -n 13 >"${WORK}/profile.txt"
	log "decoder benchmark (-count ${count})"
	(cd "${ROOT}" && go test ./stream -run '^$' -bench 'BenchmarkDecoders' -count "${count}" -benchtime "${benchtime}") >"${WORK}/decoders.txt"
	log "matcher benchmarks (-count ${count})"
	(cd "${ROOT}" && go test ./stream -run '^$' -bench '^Benchmark(Matcher|RegexpBaseline|ContainsBaseline)(English)?$' -count "${count}" -benchtime "${benchtime}") >"${WORK}/matcher.txt"
}

bench_ddb() {
	log "DynamoDB: store.Writer vs the seed's boto3 put_item, same moto_server"
	local goitems=5000 seeditems=300
	if [[ "${QUICK}" == 1 ]]; then goitems=2000 seeditems=100; fi
	(cd "${ROOT}/bench" && BENCH_DDB_OUT="${WORK}/ddb.json" BENCH_DDB_GO_ITEMS="${goitems}" BENCH_DDB_SEED_ITEMS="${seeditems}" \
		go test -run TestDynamoDBVersusSeed -count=1 .) >"${WORK}/ddb.log" 2>&1 || { cat "${WORK}/ddb.log" >&2; return 1; }
}

bench_service() {
	local window=60
	if [[ "${QUICK}" == 1 ]]; then window=15; fi
	log "building the service and the simulator"
	(cd "${ROOT}" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "${WORK}/streammatch" . \
		&& CGO_ENABLED=0 go build -trimpath -o "${WORK}/streammatch.unstripped" . \
		&& go build -o "${WORK}/twittersim" ./twittersim/cmd/twittersim \
		&& go build -o "${WORK}/startup" ./bench/startup)
	stat -c %s "${WORK}/streammatch" >"${WORK}/binary_bytes"
	go tool nm -size -sort size "${WORK}/streammatch.unstripped" >"${WORK}/nm_all.txt"
	head -n 15 "${WORK}/nm_all.txt" >"${WORK}/nm.txt"
	# Largest contributors by package: sum symbol sizes by import path prefix.
	awk '{sz=$2; name=$4; sub(/\(.*/, "", name); n=split(name, p, "."); pkg=p[1]; for (i=2;i<n;i++) pkg=pkg"."p[i]; if (pkg ~ /\//) { m=split(pkg, q, "/"); pkg=q[1]; for (i=2;i<=m && i<=3;i++) pkg=pkg"/"q[i] } s[pkg]+=sz} END {for (k in s) printf "%d %s\n", s[k], k}' \
 "${WORK}/nm_all.txt" | sort -rn >"${WORK}/nm_pkgs_all.txt"
	head -n 12 "${WORK}/nm_pkgs_all.txt" >"${WORK}/nm_pkgs.txt"

	local moto_port sim_port http_port
	moto_port="$(free_port)"; sim_port="$(free_port)"; http_port="$(free_port)"
	start moto_server -H 127.0.0.1 -p "${moto_port}" >/dev/null
	wait_http "http://127.0.0.1:${moto_port}/moto-api/"
	export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
	aws --endpoint-url "http://127.0.0.1:${moto_port}" dynamodb create-table --table-name twitterStream \
		--attribute-definitions AttributeName=user,AttributeType=S AttributeName=date,AttributeType=S \
		--key-schema AttributeName=user,KeyType=HASH AttributeName=date,KeyType=RANGE \
		--billing-mode PAY_PER_REQUEST >/dev/null
	# Dummy credentials for the simulator: it accepts only requests signed with these.
	export CONSUMERKEY=bench-ck CONSUMERSECRETKEY=bench-cs ACCESSTOKEN=bench-at ACCESSTOKENSECRET=bench-as
	export DYNAMODBTABLE=twitterStream FILTER="golang,aws,twitter" SOURCE=twitter
	export TWITTER_STREAM_URL="http://127.0.0.1:${sim_port}" HTTP_ADDR="127.0.0.1:${http_port}"
	export AWS_ENDPOINT_URL="http://127.0.0.1:${moto_port}" LOG_LEVEL=warn

	log "start-up: exec to first 200 on /healthz, and the healthcheck subcommand"
	start "${WORK}/twittersim" -addr "127.0.0.1:${sim_port}" -rate -1 >/dev/null
	wait_http "http://127.0.0.1:${sim_port}/"
	"${WORK}/startup" -bin "${WORK}/streammatch" -runs "$([[ "${QUICK}" == 1 ]] && echo 10 || echo 30)" >"${WORK}/startup.json"
	kill -- "-${PIDS[-1]}" 2>/dev/null || true

	log "memory: idle, then ${window}s at 1,000 matched messages/s"
	start "${WORK}/twittersim" -addr "127.0.0.1:${sim_port}" -rate 1150 -notice-every 0 >/dev/null
	local svc
	svc="$(start env GOMEMLIMIT=400MiB "${WORK}/streammatch")"
	PIDS+=("${svc}") # start ran in a subshell
	wait_http "http://${HTTP_ADDR}/healthz" 200
	# The service is the child of env in the new group; find it.
	local pid
	pid="$(pgrep -g "${svc}" -f "${WORK}/streammatch" | head -n 1)"
	# Idle: before the simulator is told to send; the stream is already connected at -rate 1000,
	# so idle is measured on a second instance with no tweets.
	local idle_port idle_sim idle_pid
	idle_port="$(free_port)"; idle_sim="$(free_port)"
	start "${WORK}/twittersim" -addr "127.0.0.1:${idle_sim}" -rate -1 >/dev/null
	idle_pid="$(HTTP_ADDR="127.0.0.1:${idle_port}" TWITTER_STREAM_URL="http://127.0.0.1:${idle_sim}" start env GOMEMLIMIT=400MiB "${WORK}/streammatch")"
	PIDS+=("${idle_pid}")
	wait_http "http://127.0.0.1:${idle_port}/healthz" 200
	sleep 5
	rss_kib "$(pgrep -g "${idle_pid}" -f "${WORK}/streammatch" | head -n 1)" >"${WORK}/rss_idle"
	local cpu0 t0 peak=0 sum=0 n=0 r
	cpu0="$(awk '{print $14+$15}' "/proc/${pid}/stat")"
	t0="$(curl -fsS "http://${HTTP_ADDR}/api/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"]["matched"])' 2>/dev/null || echo 0)"
	for _ in $(seq 1 "${window}"); do
		sleep 1
		r="$(rss_kib "${pid}")"
		sum=$((sum + r)); n=$((n + 1))
		if ((r > peak)); then peak=${r}; fi
	done
	local cpu1 t1
	cpu1="$(awk '{print $14+$15}' "/proc/${pid}/stat")"
	t1="$(curl -fsS "http://${HTTP_ADDR}/api/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"]["matched"])' 2>/dev/null || echo 0)"
	printf '{"window_s": %d, "rss_mean_kib": %d, "rss_peak_kib": %d, "matched": %d, "cpu_ticks": %d}\n' \
		"${window}" "$((sum / n))" "${peak}" "$((t1 - t0))" "$((cpu1 - cpu0))" >"${WORK}/rss_load.json"
	curl -fsS "http://${HTTP_ADDR}/api/status" >"${WORK}/status_after_load.json" || true
}

bench_image() {
	echo "not measured" >"${WORK}/image"
	if ! command -v podman >/dev/null; then
		echo "podman is not installed" >"${WORK}/image_reason"; return 0
	fi
	log "image: podman build (offline, base images from .ci/base-images.sh)"
	if [[ -x "${ROOT}/.ci/podman-setup.sh" ]]; then bash "${ROOT}/.ci/podman-setup.sh" >>"${WORK}/image.log" 2>&1 || true; fi
	if ! bash "${ROOT}/.ci/base-images.sh" >>"${WORK}/image.log" 2>&1; then
		echo "the base images could not be assembled (see .ci/base-images.sh)" >"${WORK}/image_reason"; return 0
	fi
	if podman build --network none -v "$(go env GOMODCACHE)":/go/pkg/mod:ro --build-arg GOPROXY=off --pull=never \
		-t localhost/streammatch:bench "${ROOT}" >>"${WORK}/image.log" 2>&1; then
		podman image inspect localhost/streammatch:bench --format '{{.Size}}' >"${WORK}/image"
	else
		echo "podman build failed (see the build log)" >"${WORK}/image_reason"
	fi
}

main() {
	trap cleanup EXIT
	cd "${ROOT}"
	local load_before
	load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
	local count=6 benchtime=1s
	if [[ "${QUICK}" == 1 ]]; then count=3 benchtime=300ms; fi
	go install golang.org/x/perf/cmd/benchstat@latest 2>/dev/null || log "benchstat not installable; raw results only"
	bench_go "${count}" "${benchtime}"
	bench_ddb
	bench_service
	bench_image
	local load_after
	load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
	python3 "${OUT}/report.py" "${WORK}" "${OUT}" "${QUICK}" "${load_before}" "${load_after}"
	log "wrote bench/RESULTS.md and bench/results.json"
}

main "$@"
